//! `ratflow synth`: yosys cell counts per module and in total.

use crate::model::Model;
use anyhow::Result;
use std::path::PathBuf;

/// Hardware cost with yosys: cells per module and in total, requantizers on their own.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    /// Cell library: generic gates (area in NAND2 equivalents), iCE40 (LUT4/CARRY/DFF, Fmax
    /// with nextpnr-ice40 when installed) or Xilinx 7-series (LUT/DSP48/FF).
    #[arg(long, default_value = "ice40", value_parser = parse_target)]
    pub target: crate::synth::yosys::Target,
    /// Output channels per layer computed at once (as for `ratflow rtl`).
    #[arg(long, default_value = "1", value_parser = crate::rtl::Parallel::parse)]
    pub parallel: crate::rtl::Parallel,
    /// Requantizer multiplier form: mul (`acc * m`), csd (shift-adds, no `*`; see `ratflow rtl`)
    /// or both, synthesized one after the other and compared module by module.
    #[arg(long, default_value = "mul", value_parser = parse_forms)]
    pub multiplier: Forms,
    /// Accumulator widths (as for `ratflow rtl`): minimal or 32.
    #[arg(long, default_value = "minimal", value_parser = crate::rtl::AccWidth::parse)]
    pub acc: crate::rtl::AccWidth,
    /// Synthesize the requantizers only (seconds instead of a minute for the MNIST MLP).
    #[arg(long)]
    pub requant_only: bool,
    /// Skip place-and-route (no Fmax figures).
    #[arg(long)]
    pub no_fmax: bool,
    /// Keep the generated RTL, scripts and logs here (default: a temporary folder).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_target(s: &str) -> std::result::Result<crate::synth::yosys::Target, String> {
    crate::synth::yosys::Target::parse(s)
        .ok_or_else(|| format!("unknown target {s:?}: use generic, ice40 or xilinx"))
}

/// The multiplier forms `ratflow synth` compares.
#[derive(Clone, Debug)]
pub struct Forms(pub Vec<crate::rtl::MulForm>);

/// `mul`, `csd` or `both`.
fn parse_forms(s: &str) -> std::result::Result<Forms, String> {
    use crate::rtl::MulForm;
    if s.trim() == "both" {
        return Ok(Forms(vec![MulForm::Mul, MulForm::Csd]));
    }
    MulForm::parse(s)
        .map(|f| Forms(vec![f]))
        .map_err(|_| format!("--multiplier {s:?}: expected mul, csd or both"))
}

pub fn run(a: &Args) -> Result<()> {
    use crate::synth::{self, Scope};
    let model = Model::load(&a.model)?;
    crate::tools::require("yosys", "yosys")?;
    let temp;
    let work = match &a.work {
        Some(w) => w.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let scope = if a.requant_only {
        Scope::Requant
    } else {
        Scope::Design
    };
    let mut costs = Vec::new();
    for &multiplier in &a.multiplier.0 {
        let design = crate::rtl::generate(
            &model,
            &crate::rtl::Options {
                parallel: a.parallel.clone(),
                multiplier,
                acc: a.acc,
                ..Default::default()
            },
        )?;
        // One folder per form so that both can be kept and compared.
        let base = if a.multiplier.0.len() > 1 {
            work.join(multiplier.as_str())
        } else {
            work.clone()
        };
        let rtl_dir = base.join("rtl");
        crate::rtl::write(&design, &rtl_dir)?;
        costs.push(synth::synthesize(
            &design,
            &rtl_dir,
            &base.join("synth"),
            a.target,
            scope,
            !a.no_fmax,
        )?);
    }
    match (costs.as_slice(), a.json) {
        ([one], true) => println!("{}", serde_json::to_string_pretty(&one.to_json())?),
        ([one], false) => print!("{}", one.to_text()),
        ([mul, csd], true) => {
            let mut out = serde_json::json!({
                "model": mul.model, "hash": mul.hash, "target": mul.target.as_str(),
                "forms": { "mul": mul.to_json(), "csd": csd.to_json() },
            });
            out["comparison"] = synth::compare_forms(mul, csd);
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ([mul, csd], false) => {
            print!("{}\n{}\n", mul.to_text(), csd.to_text());
            print!("{}", synth::compare_text(mul, csd));
        }
        _ => unreachable!("one or two multiplier forms"),
    }
    Ok(())
}
