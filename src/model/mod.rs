//! The int-model: ratflow's versioned interchange format (README "int-model JSON").
//!
//! A model is parsed from untyped JSON by hand rather than by serde derive so that every
//! rejection names the exact field (`layers[1].multiplier[7] = 300 does not fit k_bits = 8`),
//! and it is validated completely before anything else sees it: the golden model, the RTL
//! generator and the reports only ever receive a [`Model`] that satisfies README's contract.

mod json;
pub mod random;

use crate::error::input;
use crate::fsio;
use crate::quant::{self, Multiplier, Requant, Rounding, csd};
use anyhow::{Context, Result};
use json::Cursor;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

pub const FORMAT: &str = "ratflow.int-model";
pub const VERSION: u64 = 1;

/// Model-wide rescale settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RescaleSpec {
    pub k_bits: u32,
    pub rounding: Rounding,
    /// Optional limit on the non-zero CSD digits of every multiplicand.
    pub csd_digits: Option<u32>,
}

/// Real scale and int8 zero point of a tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f64,
    pub zero_point: i8,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub shape: Vec<usize>,
    pub qparams: QParams,
}

/// A fully connected layer in integer form. `weight` is row-major `[out_features][in_features]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLayer {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Vec<i8>,
    pub bias: Vec<i32>,
    pub multiplier: Vec<u32>,
    pub shift: Vec<u32>,
    pub output: QParams,
    pub relu: bool,
}

impl DenseLayer {
    pub fn row(&self, c: usize) -> &[i8] {
        &self.weight[c * self.in_features..(c + 1) * self.in_features]
    }

    pub fn mult(&self, c: usize) -> Multiplier {
        Multiplier {
            m: self.multiplier[c],
            s: self.shift[c],
        }
    }

    /// Worst-case |accumulator| of channel `c` (DESIGN's i32 bound).
    pub fn acc_bound(&self, c: usize) -> i64 {
        quant::accumulator_bound(self.row(c), self.bias[c])
    }

    /// Exact reachable accumulator range of channel `c` over all int8 inputs, given the input
    /// zero point: each term `(x - Z_x) * w` is extremal at x = -128 or x = 127.
    pub fn acc_range(&self, c: usize, input_zp: i8) -> (i64, i64) {
        let (xlo, xhi) = (-128 - input_zp as i64, 127 - input_zp as i64);
        let mut lo = self.bias[c] as i64;
        let mut hi = lo;
        for &w in self.row(c) {
            let (a, b) = (xlo * w as i64, xhi * w as i64);
            lo += a.min(b);
            hi += a.max(b);
        }
        (lo, hi)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: String,
    pub rescale: RescaleSpec,
    pub input: InputSpec,
    pub layers: Vec<DenseLayer>,
    pub provenance: Value,
}

impl Model {
    pub fn input_len(&self) -> usize {
        self.input.shape.iter().product()
    }

    pub fn num_classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_features)
    }

    /// The input quantization parameters of layer `i`.
    pub fn layer_input(&self, i: usize) -> QParams {
        if i == 0 {
            self.input.qparams
        } else {
            self.layers[i - 1].output
        }
    }

    /// The requantizer of layer `i`, channel `c`.
    pub fn requant(&self, i: usize, c: usize) -> Requant {
        let l = &self.layers[i];
        Requant {
            mult: l.mult(c),
            k: self.rescale.k_bits,
            rounding: self.rescale.rounding,
            zero_point: l.output.zero_point,
            relu: l.relu,
        }
    }

    /// The real rescale factor `M = S_x * S_w / S_y` a channel stands for, as carried by its
    /// integer multiplier (the float weight scale is not part of the format).
    pub fn effective_m(&self, i: usize, c: usize) -> f64 {
        self.layers[i].mult(c).value()
    }

    /// Loads and validates a model file.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path)
            .map_err(|e| input(format!("cannot read model {}: {e}", path.display())))?;
        Model::from_json_bytes(&bytes).map_err(|e| {
            let msg = format!("{}: {e}", path.display());
            match e.downcast::<crate::error::InputError>() {
                Ok(_) => input(msg),
                Err(other) => other.context(msg),
            }
        })
    }

    /// Parses and validates model JSON; errors name the first bad field.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Model> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| input(format!("not UTF-8 text ({e})")))?;
        let root: Value =
            serde_json::from_str(text).map_err(|e| input(format!("not valid JSON: {e}")))?;
        let model = parse(&Cursor::root(&root))?;
        model.validate().map_err(input)?;
        Ok(model)
    }

    /// Validates everything that parsing alone does not: cross-field rules and the i32 bound.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let k = self.rescale.k_bits;
        if !(1..=quant::MAX_K_BITS).contains(&k) {
            return Err(format!(
                "rescale.k_bits = {k} is outside 1..={}",
                quant::MAX_K_BITS
            ));
        }
        if let Some(d) = self.rescale.csd_digits
            && !(1..=quant::MAX_CSD_DIGITS).contains(&d)
        {
            return Err(format!(
                "rescale.csd_digits = {d} is outside 1..={}",
                quant::MAX_CSD_DIGITS
            ));
        }
        if self.input.shape.is_empty() || self.input.shape.contains(&0) {
            return Err(format!(
                "input.shape = {:?} must be non-empty with positive sizes",
                self.input.shape
            ));
        }
        check_qparams(&self.input.qparams, "input")?;
        if self.layers.is_empty() {
            return Err("layers: a model needs at least one layer".into());
        }
        let mut fan_in = self.input_len();
        for (i, l) in self.layers.iter().enumerate() {
            let at = format!("layers[{i}]");
            if l.in_features != fan_in {
                return Err(format!(
                    "{at}.in_features = {} but its input has {fan_in} values",
                    l.in_features
                ));
            }
            if l.out_features == 0 {
                return Err(format!("{at}.out_features must be positive"));
            }
            let n = l.out_features;
            if l.weight.len() != n * l.in_features {
                return Err(format!(
                    "{at}.weight has {} values, expected {n} x {}",
                    l.weight.len(),
                    l.in_features
                ));
            }
            for (field, len) in [
                ("bias", l.bias.len()),
                ("multiplier", l.multiplier.len()),
                ("shift", l.shift.len()),
            ] {
                if len != n {
                    return Err(format!(
                        "{at}.{field} has {len} entries, expected out_features = {n}"
                    ));
                }
            }
            check_qparams(&l.output, &format!("{at}.output"))?;
            for c in 0..n {
                let mult = l.mult(c);
                if let Err(why) = quant::check_multiplier(mult, k, self.rescale.rounding) {
                    let field = if why.starts_with("multiplier") {
                        format!("multiplier[{c}] = {}", mult.m)
                    } else {
                        format!("shift[{c}] = {}", mult.s)
                    };
                    return Err(format!("{at}.{field}: {why}"));
                }
                if let Some(d) = self.rescale.csd_digits {
                    let w = csd::weight(mult.m as u64);
                    if w > d {
                        return Err(format!(
                            "{at}.multiplier[{c}] = {} has {w} non-zero CSD digits, more than rescale.csd_digits = {d}",
                            mult.m
                        ));
                    }
                }
                let bound = l.acc_bound(c);
                if bound > i32::MAX as i64 {
                    return Err(format!(
                        "{at} channel {c}: worst-case accumulator 255*sum|w| + |b| = {bound} overflows i32"
                    ));
                }
            }
            fan_in = n;
        }
        Ok(())
    }

    /// The canonical JSON text (what `save` writes). Weight rows are one line each so the file
    /// stays diffable and compact; floats use the shortest round-tripping form.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(
            out,
            "  \"format\": \"{FORMAT}\",\n  \"version\": {VERSION},"
        );
        let _ = writeln!(out, "  \"name\": {},", js(&self.name));
        self.write_content(&mut out);
        let prov = serde_json::to_string_pretty(&self.provenance).expect("Value serializes");
        let _ = writeln!(out, ",\n  \"provenance\": {}", prov.replace('\n', "\n  "));
        out.push_str("}\n");
        out
    }

    fn write_content(&self, out: &mut String) {
        let r = &self.rescale;
        let csd = r
            .csd_digits
            .map(|d| format!(", \"csd_digits\": {d}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  \"rescale\": {{ \"k_bits\": {}, \"rounding\": \"{}\"{csd} }},",
            r.k_bits, r.rounding
        );
        let _ = writeln!(
            out,
            "  \"input\": {{ \"shape\": {}, \"scale\": {}, \"zero_point\": {} }},",
            js(&self.input.shape),
            js(&self.input.qparams.scale),
            self.input.qparams.zero_point
        );
        out.push_str("  \"layers\": [");
        for (i, l) in self.layers.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            let _ = writeln!(
                out,
                "    {{ \"kind\": \"dense\", \"name\": {}, \"in_features\": {}, \"out_features\": {}, \"relu\": {},",
                js(&l.name),
                l.in_features,
                l.out_features,
                l.relu
            );
            let _ = writeln!(
                out,
                "      \"output\": {{ \"scale\": {}, \"zero_point\": {} }},",
                js(&l.output.scale),
                l.output.zero_point
            );
            let _ = writeln!(out, "      \"multiplier\": {},", js(&l.multiplier));
            let _ = writeln!(out, "      \"shift\": {},", js(&l.shift));
            let _ = writeln!(out, "      \"bias\": {},", js(&l.bias));
            out.push_str("      \"weight\": [\n");
            for c in 0..l.out_features {
                let sep = if c + 1 < l.out_features { "," } else { "" };
                let _ = writeln!(out, "        {}{sep}", js(&l.row(c)));
            }
            out.push_str("      ] }");
        }
        out.push_str("\n  ]");
    }

    /// Content hash: SHA-256 of the canonical integer content (rescale, input, layers), so the
    /// name and provenance do not change it. Names RTL, caches and vectors.
    pub fn content_hash(&self) -> String {
        let mut content = String::new();
        self.write_content(&mut content);
        fsio::sha256_hex(content.as_bytes())[..16].to_string()
    }

    /// Validates, then writes atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.validate()
            .map_err(|e| anyhow::anyhow!("refusing to save an invalid model: {e}"))?;
        fsio::write_atomic(path, self.to_json().as_bytes())
            .with_context(|| format!("saving model {}", path.display()))
    }
}

fn js<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn check_qparams(q: &QParams, at: &str) -> std::result::Result<(), String> {
    if !(q.scale.is_finite() && q.scale > 0.0) {
        return Err(format!(
            "{at}.scale = {} must be a positive finite number",
            q.scale
        ));
    }
    Ok(())
}

fn parse(root: &Cursor) -> Result<Model> {
    let format = root.field("format")?.string()?;
    if format != FORMAT {
        return Err(input(format!("format = {format:?}, expected {FORMAT:?}")));
    }
    let version = root.field("version")?.u64()?;
    if version != VERSION {
        return Err(input(format!(
            "version = {version} is not supported (this ratflow reads int-model version {VERSION})"
        )));
    }
    let name = root.field("name")?.string()?.to_string();
    let rescale_c = root.field("rescale")?;
    let k_c = rescale_c.field("k_bits")?;
    let k_bits = k_c.int_in(1, quant::MAX_K_BITS as i64)? as u32;
    let rounding_c = rescale_c.field("rounding")?;
    let rounding = Rounding::parse(rounding_c.string()?).ok_or_else(|| {
        rounding_c.error(format!(
            "= {} is not \"single\" or \"double\"",
            rounding_c.value()
        ))
    })?;
    let csd_digits = match rescale_c.opt_field("csd_digits") {
        Some(c) if !c.value().is_null() => Some(c.int_in(1, 16)? as u32),
        _ => None,
    };
    let input_c = root.field("input")?;
    let shape = input_c
        .field("shape")?
        .array()?
        .iter()
        .map(|c| c.int_in(1, 1 << 24).map(|v| v as usize))
        .collect::<Result<Vec<_>>>()?;
    let input_q = qparams(&input_c)?;
    let layers_c = root.field("layers")?;
    let mut layers = Vec::new();
    for lc in layers_c.array()? {
        layers.push(parse_layer(&lc, k_bits)?);
    }
    let provenance = root
        .opt_field("provenance")
        .map(|c| c.value().clone())
        .unwrap_or(Value::Null);
    Ok(Model {
        name,
        rescale: RescaleSpec {
            k_bits,
            rounding,
            csd_digits,
        },
        input: InputSpec {
            shape,
            qparams: input_q,
        },
        layers,
        provenance,
    })
}

fn qparams(c: &Cursor) -> Result<QParams> {
    let scale_c = c.field("scale")?;
    let scale = scale_c.f64()?;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(scale_c.error(format!("= {scale} must be a positive finite number")));
    }
    let zero_point = c.field("zero_point")?.int_in(-128, 127)? as i8;
    Ok(QParams { scale, zero_point })
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
    let weight_c = lc.field("weight")?;
    let rows = weight_c.array_len(out_features)?;
    let mut weight = Vec::with_capacity(out_features * in_features);
    for row in rows {
        for w in row.array_len(in_features)? {
            weight.push(w.int_in(-128, 127)? as i8);
        }
    }
    let ints = |field: &str, lo: i64, hi: i64| -> Result<Vec<i64>> {
        lc.field(field)?
            .array_len(out_features)?
            .iter()
            .map(|c| c.int_in(lo, hi))
            .collect()
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
    let output = qparams(&lc.field("output")?)?;
    let relu = lc.field("relu")?.bool()?;
    Ok(DenseLayer {
        name,
        in_features,
        out_features,
        weight,
        bias,
        multiplier,
        shift,
        output,
        relu,
    })
}

#[cfg(test)]
mod tests;
