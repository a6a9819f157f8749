//! `ratflow rtl`: synthesizable Verilog-2005 for an int-model.

use crate::model::Model;
use crate::rtl::{AccWidth, MulForm, Options, Parallel, Spec};
use anyhow::Result;
use std::path::PathBuf;

/// How much hardware each op gets (shared by `rtl`, `sim` and `synth`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FoldingArgs {
    /// Per-op folding (`ratflow.folding` JSON: simd, pe, rq per op; docs/rtl.md). Ops it
    /// leaves out get the rule at its `target_cycles` (or the default rule).
    #[arg(long, value_name = "FILE.json", conflicts_with_all = ["target_cycles", "parallel"])]
    pub folding: Option<PathBuf>,
    /// Give every op the cheapest folding that keeps it within N cycles per inference.
    #[arg(long, value_name = "N", conflicts_with = "parallel", value_parser = clap::value_parser!(u64).range(1..))]
    pub target_cycles: Option<u64>,
    /// Version 1 style: P output channels at once in every dense/conv2d op (the largest divisor
    /// of its output channels not above P), `full`, or one value per dense/conv2d op.
    #[arg(long, value_parser = Parallel::parse)]
    pub parallel: Option<Parallel>,
}

impl FoldingArgs {
    pub fn spec(&self) -> Result<Spec> {
        Ok(match (&self.folding, self.target_cycles, &self.parallel) {
            (Some(f), _, _) => crate::rtl::folding::load_spec(f)?,
            (None, Some(t), _) => Spec::TargetCycles(t),
            (None, None, Some(p)) => Spec::Parallel(p.clone()),
            (None, None, None) => Spec::Default,
        })
    }

    pub fn is_set(&self) -> bool {
        self.folding.is_some() || self.target_cycles.is_some() || self.parallel.is_some()
    }
}

/// Synthesizable Verilog-2005 for an int-model: the top, copies of the library modules it uses,
/// ROM images, files.f, folding.json, manifest.json.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub fold: FoldingArgs,
    /// Name of the top module (default: the model name as a bounded Verilog identifier).
    #[arg(long)]
    pub top: Option<String>,
    /// Requantizer multiply: `mul` (acc * m) or `csd` (canonical signed-digit shift-adds, no
    /// multiplier).
    #[arg(long, default_value = "mul", value_parser = MulForm::parse)]
    pub multiplier: MulForm,
    /// Accumulator widths: `minimal` (per op, the narrowest that holds its exact range) or `32`.
    #[arg(long, default_value = "minimal", value_parser = AccWidth::parse)]
    pub acc: AccWidth,
}

pub fn run(a: &Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    let opts = Options {
        top: a.top.clone(),
        folding: a.fold.spec()?,
        multiplier: a.multiplier,
        acc: a.acc,
        ..Default::default()
    };
    let design = crate::rtl::generate(&model, &opts)?;
    crate::rtl::write(&design, &a.out)?;
    let p = &design.plan;
    eprintln!(
        "wrote {} ({} files) to {}: top {}, {} units, folding {} at {} cycles, multiplier {}, \
         accumulators {}; {} cycles per inference (bottleneck {})",
        model.name,
        design.files().count(),
        a.out.display(),
        p.top,
        p.units.len(),
        p.folding.rule,
        p.folding.target,
        p.multiplier,
        p.acc,
        p.interval,
        p.bottleneck
    );
    Ok(())
}
