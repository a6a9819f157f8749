//! `ratflow import`: an int8 `.tflite` to an int-model version 2.

use crate::import::tflite::{self, ImportOptions, Imported, KernelSet};
use anyhow::Result;
use std::path::PathBuf;

/// Imports an int8 TFLite model (LiteRT flatbuffer) as an int-model version 2 with TFLite's
/// integer semantics.
///
/// Kernel sets (--kernels): `ref` (default) pins every op's rounding to LiteRT's reference
/// kernels (BUILTIN_REF: conv2d, depthwise_conv2d and add `double`, dense `single`), equal to
/// LiteRT on every element except the dense near-ties the import counts and reports; `single`
/// makes every rescaler `single`, the cheapest hardware, equal to no LiteRT kernel set.
/// LiteRT's optimized kernel sets are not offered: BUILTIN_WITHOUT_DEFAULT_DELEGATES (ruy)
/// rounds conv2d and dense with ruy's own rule, depthwise with ruy's rule on the first
/// 8 * floor(C / 8) channels and the reference rule on the rest, and ADD's inputs once
/// (DESIGN section 6, measured on LiteRT 2.3 x86): an artefact of one build's SIMD paths, not
/// of the model. XNNPACK (the default) requantizes in float32 with round-to-even, which no
/// integer (m, s) rescaler reproduces.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The `.tflite` file (int8 activations; float32 input/output behind QUANTIZE/DEQUANTIZE
    /// is accepted).
    pub model: PathBuf,
    /// The int-model JSON to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Multiplier width k of every derived (m, s) (31: LiteRT's int32 multipliers).
    #[arg(long, default_value_t = 31, value_parser = super::parse_k)]
    pub k: u32,
    /// Rounding of each op: `ref` (LiteRT BUILTIN_REF) or `single` (every rescaler single).
    #[arg(long, default_value = "ref", value_parser = parse_kernels)]
    pub kernels: KernelSet,
    /// Print the summary as JSON (the import report) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_kernels(s: &str) -> std::result::Result<KernelSet, String> {
    KernelSet::parse(s).ok_or_else(|| format!("kernel set {s:?} is not ref or single"))
}

pub fn run(a: &Args) -> Result<()> {
    let opts = ImportOptions {
        k_bits: a.k,
        kernels: a.kernels,
    };
    let imported = tflite::import_file(&a.model, &opts)?;
    imported.model.save(&a.out)?;
    for d in &imported.report.dropped {
        eprintln!(
            "note: dropped op {} {} ({}): {:?} -> {:?}",
            d.tflite_index, d.tflite_op, d.why, d.input, d.output
        );
    }
    for w in &imported.report.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        println!("{}", serde_json::to_string(&imported.report)?);
    } else {
        print!("{}", summary(&imported, &opts));
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// The text summary: one line per op, then the dropped ops and the near-tie count.
pub fn summary(imported: &Imported, opts: &ImportOptions) -> String {
    use std::fmt::Write as _;
    let m = &imported.model;
    let r = &imported.report;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} ops, input {:?} {:?}, output {:?} {:?}; k = {}, kernels {} ({})",
        m.name,
        m.ops.len(),
        m.input().name,
        m.input().shape,
        m.output().name,
        m.output().shape,
        opts.k_bits,
        opts.kernels.as_str(),
        opts.kernels.describe()
    );
    for (op, mop) in m.ops.iter().zip(&r.ops) {
        let out = &m.tensors[op.output];
        let _ = writeln!(
            s,
            "  {:>3} {:<18} -> {:<16} {:<8} clamp [{}, {}]  {:?} {:?}",
            mop.tflite_index,
            mop.tflite_op,
            mop.kind,
            mop.rounding.unwrap_or("-"),
            op.clamp.lo,
            op.clamp.hi,
            out.shape,
            short(&op.name),
        );
    }
    for d in &r.dropped {
        let _ = writeln!(
            s,
            "  {:>3} {:<18} dropped: {}",
            d.tflite_index, d.tflite_op, d.why
        );
    }
    let nt = &r.near_ties;
    let _ = writeln!(
        s,
        "dense near-ties (imported single vs BUILTIN_REF's float64 FULLY_CONNECTED): {} accumulator(s) over {} op(s), {} channel(s){}",
        nt.differ,
        nt.ops,
        nt.channels,
        nt.examples
            .first()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default()
    );
    s
}

/// A long TFLite name (fused ops join theirs with `;`) cut for one summary line.
fn short(name: &str) -> String {
    const MAX: usize = 60;
    if name.chars().count() <= MAX {
        name.to_string()
    } else {
        let head: String = name.chars().take(MAX).collect();
        format!("{head}...")
    }
}
