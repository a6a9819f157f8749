//! `ratflow inspect`: ops, shapes, rescale settings, m/s ranges and accumulator bounds.

use crate::model::{Model, Op, OpKind};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// Ops, shapes, k, rounding, per-op m/s and real-M ranges, exact accumulator ranges and the i32
/// bound of an int-model.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// What `inspect` reports for one op.
#[derive(Serialize)]
struct OpFacts {
    name: String,
    kind: &'static str,
    inputs: Vec<String>,
    output: String,
    shape: Vec<usize>,
    output_scale: f64,
    output_zero_point: i8,
    clamp: [i8; 2],
    k_bits: Option<u32>,
    rounding: Option<&'static str>,
    /// Non-zero `m` range, `s` range, and the real factors they stand for.
    multiplier: Option<[u32; 2]>,
    shift: Option<[u32; 2]>,
    m_real: Option<[f64; 2]>,
    zero_multipliers: usize,
    per_tensor: Option<bool>,
    /// Exact reachable accumulator range over all int8 inputs (accumulating ops).
    acc_range: Option<[i64; 2]>,
    acc_bits: Option<u32>,
    parameters: usize,
}

#[derive(Serialize)]
struct ModelFacts {
    name: String,
    hash: String,
    version: u32,
    k_bits: u32,
    rounding: &'static str,
    csd_digits: Option<u32>,
    input: String,
    input_shape: Vec<usize>,
    input_scale: f64,
    input_zero_point: i8,
    parameters: usize,
    ops: Vec<OpFacts>,
}

fn op_facts(model: &Model, op: &Op) -> OpFacts {
    let io = model.io(op);
    let out = io.output;
    let has = op.kind.has_rescalers();
    let r = model.op_rescale(op);
    let ds = op.kind.dyadics();
    let nz: Vec<_> = ds.iter().filter(|d| d.m != 0).collect();
    let range = |f: &dyn Fn(&crate::quant::Dyadic) -> u32| -> Option<[u32; 2]> {
        Some([
            nz.iter().map(|d| f(d)).min()?,
            nz.iter().map(|d| f(d)).max()?,
        ])
    };
    let reals: Vec<f64> = nz.iter().map(|d| d.value()).collect();
    let acc_range = crate::model::ops::acc_range(model, op);
    let parameters = match &op.kind {
        OpKind::Dense(d) => d.weight.len() + d.bias.len(),
        OpKind::Conv2d(c) => c.weight.len() + c.bias.len(),
        OpKind::DepthwiseConv2d(c) => c.weight.len() + c.bias.len(),
        _ => 0,
    };
    OpFacts {
        name: op.name.clone(),
        kind: op.kind.name(),
        inputs: io.inputs.iter().map(|t| t.name.clone()).collect(),
        output: out.name.clone(),
        shape: out.shape.clone(),
        output_scale: out.q.scale,
        output_zero_point: out.q.zero_point,
        clamp: [op.clamp.lo, op.clamp.hi],
        k_bits: has.then_some(r.k_bits),
        rounding: has.then_some(r.rounding.as_str()),
        multiplier: range(&|d| d.m),
        shift: range(&|d| d.s),
        m_real: (!reals.is_empty()).then(|| {
            [
                reals.iter().cloned().fold(f64::INFINITY, f64::min),
                reals.iter().cloned().fold(0.0, f64::max),
            ]
        }),
        zero_multipliers: ds.len() - nz.len(),
        per_tensor: op.kind.channels().map(|c| c.per_tensor()),
        acc_range: acc_range.map(|(lo, hi)| [lo, hi]),
        acc_bits: acc_range.map(|(lo, hi)| crate::rtl::verilog::sbits(lo, hi)),
        parameters,
    }
}

pub fn run(a: &Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    let ops: Vec<OpFacts> = model.ops.iter().map(|op| op_facts(&model, op)).collect();
    let t = model.input();
    let facts = ModelFacts {
        name: model.name.clone(),
        hash: model.content_hash(),
        version: model.version,
        k_bits: model.widest_k(),
        rounding: model.rescale.rounding.as_str(),
        csd_digits: model.rescale.csd_digits,
        input: t.name.clone(),
        input_shape: t.shape.clone(),
        input_scale: t.q.scale,
        input_zero_point: t.q.zero_point,
        parameters: ops.iter().map(|o| o.parameters).sum(),
        ops,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&facts)?);
        return Ok(());
    }
    println!(
        "model     {} (hash {}, int-model version {})",
        facts.name, facts.hash, facts.version
    );
    println!(
        "rescale   k = {} bits, {} rounding{}",
        facts.k_bits,
        facts.rounding,
        facts
            .csd_digits
            .map(|d| format!(", at most {d} CSD digits"))
            .unwrap_or_default()
    );
    println!(
        "input     {} {:?}, S = {:.6}, Z = {}",
        facts.input, facts.input_shape, facts.input_scale, facts.input_zero_point
    );
    println!("params    {}", facts.parameters);
    for f in &facts.ops {
        let mut line = format!(
            "{:<18} {:<16} -> {:?} S={:.5} Z={} clamp [{}, {}]",
            f.name, f.kind, f.shape, f.output_scale, f.output_zero_point, f.clamp[0], f.clamp[1]
        );
        if let (Some(m), Some(s), Some(mr)) = (f.multiplier, f.shift, f.m_real) {
            line += &format!(
                "  k = {} {}  m {}..{}  s {}..{}  M {:.3e}..{:.3e}",
                f.k_bits.unwrap_or(0),
                f.rounding.unwrap_or(""),
                m[0],
                m[1],
                s[0],
                s[1],
                mr[0],
                mr[1]
            );
        }
        if let (Some(r), Some(b)) = (f.acc_range, f.acc_bits) {
            line += &format!("  acc {}..{} ({b} bits)", r[0], r[1]);
        }
        if f.per_tensor == Some(true) {
            line += "  per-tensor";
        }
        println!("{line}");
        if f.zero_multipliers > 0 {
            println!(
                "{:18} {} rescaler(s) with m = 0 always output the zero point",
                "", f.zero_multipliers
            );
        }
    }
    Ok(())
}
