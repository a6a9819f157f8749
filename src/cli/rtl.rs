//! `ratflow rtl`: synthesizable Verilog-2005 for an int-model.

use crate::model::Model;
use crate::rtl::{AccWidth, MulForm, Options, Parallel};
use anyhow::Result;
use std::path::PathBuf;

/// Synthesizable Verilog-2005 for an int-model: one module per file, ROM images, files.f,
/// manifest.json.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Output channels computed at once: P for every layer (capped at its outputs), `full`,
    /// or one value per layer (e.g. 16,8,10).
    #[arg(long, default_value = "1", value_parser = Parallel::parse)]
    pub parallel: Parallel,
    /// Name of the top module (default: the model name as a Verilog identifier).
    #[arg(long)]
    pub top: Option<String>,
    /// Requantizer multiply: `mul` (acc * m) or `csd` (canonical signed-digit shift-adds, no
    /// multiplier).
    #[arg(long, default_value = "mul", value_parser = MulForm::parse)]
    pub multiplier: MulForm,
    /// Accumulator widths: `minimal` (per layer, the narrowest that cannot overflow) or `32`.
    #[arg(long, default_value = "minimal", value_parser = AccWidth::parse)]
    pub acc: AccWidth,
}

pub fn run(a: &Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    let opts = Options {
        top: a.top.clone(),
        parallel: a.parallel.clone(),
        multiplier: a.multiplier,
        acc: a.acc,
    };
    let design = crate::rtl::generate(&model, &opts)?;
    crate::rtl::write(&design, &a.out)?;
    let p = &design.plan;
    eprintln!(
        "wrote {} ({} files) to {}: top {}, P = {:?}, multiplier {}, accumulators {:?} bits, latency {} cycles, {} cycles per inference",
        model.name,
        design.files().count(),
        a.out.display(),
        p.top,
        p.parallel(),
        p.multiplier,
        p.layers.iter().map(|l| l.acc_bits).collect::<Vec<_>>(),
        design.timing.latency,
        design.timing.interval
    );
    Ok(())
}
