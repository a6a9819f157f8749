//! int-model version 1 (DESIGN section 2): a chain of dense layers. It loads as a graph of
//! `dense` ops over tensors named after the layers, and a model that came from version 1 saves
//! back byte for byte in version 1 (its content hash, and so every RTL header and cache key,
//! is unchanged).

use super::json::Cursor;
use super::{Dense, DenseLayer, Model, OpKind, QParams};
use crate::error::input;
use crate::quant::{self, Clamp};
use anyhow::Result;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt::Write as _;

/// Tensor names for version 1 layers: the layer name when it is unique and not `input`,
/// else `layers[i]`, so that any version 1 file (whose names need not be unique) loads.
pub(super) fn tensor_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.collect();
    let mut seen = HashSet::new();
    let dup: HashSet<&str> = names
        .iter()
        .filter(|n| !seen.insert(**n))
        .copied()
        .collect();
    names
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            if n == "input" || dup.contains(n) {
                format!("layers[{i}]")
            } else {
                n.to_string()
            }
        })
        .collect()
}

pub(super) fn parse(root: &Cursor) -> Result<Model> {
    let name = root.field("name")?.string()?.to_string();
    let rescale = super::parse_rescale(&root.field("rescale")?, true)?;
    let k_bits = rescale.k_bits;
    let input_c = root.field("input")?;
    let shape_c = input_c.field("shape")?;
    let shape = shape_c
        .array()?
        .iter()
        .map(|c| c.int_in(1, 1 << 24).map(|v| v as usize))
        .collect::<Result<Vec<_>>>()?;
    if shape.is_empty() {
        return Err(shape_c.error("must be non-empty"));
    }
    super::element_count(&shape).map_err(|e| shape_c.error(e))?;
    let input_q = super::qparams(&input_c)?;
    let layers_c = root.field("layers")?;
    let mut layers = Vec::new();
    for lc in layers_c.array()? {
        let l = parse_layer(&lc, k_bits)?;
        layers.push(l);
    }
    if layers.is_empty() {
        return Err(input("layers: a model needs at least one layer"));
    }
    check_layers(&shape, &rescale, &layers).map_err(input)?;
    let provenance = root
        .opt_field("provenance")
        .map(|c| c.value().clone())
        .unwrap_or(Value::Null);
    Ok(Model::dense_model(
        &name, rescale, shape, input_q, layers, provenance,
    ))
}

fn parse_layer(lc: &Cursor, k_bits: u32) -> Result<DenseLayer> {
    let kind = lc.field("kind")?;
    if kind.string()? != "dense" {
        return Err(kind.error(format!(
            "= {} is not a supported layer kind (only \"dense\")",
            kind.value()
        )));
    }
    let name = lc.field("name")?.string()?.to_string();
    let in_features = lc.field("in_features")?.int_in(1, 1 << 24)? as usize;
    let out_features = lc.field("out_features")?.int_in(1, 1 << 24)? as usize;
    // Row lengths are checked as rows are read: a declared size is never allocated up front.
    let weight = lc
        .field("weight")?
        .int_tensor(&[out_features, in_features], -128, 127)?
        .into_iter()
        .map(|v| v as i8)
        .collect();
    let ints = |field: &str, lo: i64, hi: i64| -> Result<Vec<i64>> {
        lc.field(field)?.int_tensor(&[out_features], lo, hi)
    };
    let bias = ints("bias", i32::MIN as i64, i32::MAX as i64)?
        .into_iter()
        .map(|v| v as i32)
        .collect();
    let multiplier: Vec<u32> = lc
        .field("multiplier")?
        .array_len(out_features)?
        .iter()
        .map(|c| {
            let m = c.int_in(0, u32::MAX as i64)?;
            if m >> k_bits != 0 {
                return Err(c.error(format!("= {m} does not fit k_bits = {k_bits}")));
            }
            Ok(m as u32)
        })
        .collect::<Result<_>>()?;
    let shift = ints("shift", 0, quant::MAX_SHIFT as i64)?
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let output = super::qparams(&lc.field("output")?)?;
    let relu = lc.field("relu")?.bool()?;
    Ok(DenseLayer {
        name,
        dense: Dense {
            in_features,
            out_features,
            weight,
            bias,
            multiplier,
            shift,
        },
        output,
        relu,
    })
}

/// Whether the model can be written as version 1: a dense chain whose clamps are NONE or ReLU
/// and which uses no per-op rescale overrides.
pub(super) fn representable(m: &Model) -> bool {
    m.dense_chain().is_some()
        && m.ops.iter().all(|op| {
            let zp = m.tensors[op.output].q.zero_point;
            op.k_bits.is_none()
                && op.rounding.is_none()
                && (op.clamp == Clamp::NONE || op.clamp == Clamp::relu(zp))
        })
}

/// The version 1 body (everything but format, version, name and provenance), exactly as
/// ratflow has always written it.
pub(super) fn write_content(m: &Model, out: &mut String) {
    super::write_rescale(&m.rescale, out);
    let input = m.input();
    let _ = writeln!(
        out,
        "  \"input\": {{ \"shape\": {}, \"scale\": {}, \"zero_point\": {} }},",
        super::js(&input.shape),
        super::js(&input.q.scale),
        input.q.zero_point
    );
    out.push_str("  \"layers\": [");
    for (i, op) in m.ops.iter().enumerate() {
        let OpKind::Dense(l) = &op.kind else {
            unreachable!("representable() checked a dense chain")
        };
        let output: QParams = m.tensors[op.output].q;
        let relu = op.v1_relu || op.clamp != Clamp::NONE;
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = writeln!(
            out,
            "    {{ \"kind\": \"dense\", \"name\": {}, \"in_features\": {}, \"out_features\": {}, \"relu\": {},",
            super::js(&op.name),
            l.in_features,
            l.out_features,
            relu
        );
        let _ = writeln!(
            out,
            "      \"output\": {{ \"scale\": {}, \"zero_point\": {} }},",
            super::js(&output.scale),
            output.zero_point
        );
        let _ = writeln!(out, "      \"multiplier\": {},", super::js(&l.multiplier));
        let _ = writeln!(out, "      \"shift\": {},", super::js(&l.shift));
        let _ = writeln!(out, "      \"bias\": {},", super::js(&l.bias));
        out.push_str("      \"weight\": [\n");
        for c in 0..l.out_features {
            let sep = if c + 1 < l.out_features { "," } else { "" };
            let _ = writeln!(out, "        {}{sep}", super::js(&l.row(c)));
        }
        out.push_str("      ] }");
    }
    out.push_str("\n  ]");
}

/// Version 1's cross-field rules with version 1's field names (`layers[1].in_features`), checked
/// before the layers become a graph so that messages keep naming the fields of the file.
fn check_layers(
    shape: &[usize],
    rescale: &quant::Rescale,
    layers: &[DenseLayer],
) -> std::result::Result<(), String> {
    let mut fan_in: usize = shape.iter().product();
    for (i, l) in layers.iter().enumerate() {
        let at = format!("layers[{i}]");
        let d = &l.dense;
        if d.in_features != fan_in {
            return Err(format!(
                "{at}.in_features = {} but its input has {fan_in} values",
                d.in_features
            ));
        }
        for c in 0..d.out_features {
            let mult = d.mult(c);
            if let Err(why) = rescale.check(mult) {
                let field = if why.starts_with("shift") {
                    format!("shift[{c}] = {}", mult.s)
                } else {
                    format!("multiplier[{c}] = {}", mult.m)
                };
                return Err(format!("{at}.{field}: {why}"));
            }
            let bound = d.acc_bound(c);
            if bound > i32::MAX as i64 {
                return Err(format!(
                    "{at} channel {c}: worst-case accumulator 255*sum|w| + |b| = {bound} overflows i32"
                ));
            }
        }
        fan_in = d.out_features;
    }
    Ok(())
}
