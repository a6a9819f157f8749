//! The int-model: ratflow's versioned interchange format (DESIGN sections 2 and 5,
//! `docs/spec.md`).
//!
//! A model is a graph of int8 ops over named tensors. It is parsed from untyped JSON by hand
//! rather than by serde derive so that every rejection names the exact op and field
//! (`ops[3].multiplier[7] = 300 does not fit k_bits = 8 (op "conv1")`), and it is validated
//! completely before anything else sees it: the golden model, the RTL generator and the
//! reports only ever receive a [`Model`] that satisfies the contract (Calyx's "validate the IR,
//! then emit").
//!
//! Each op kind owns its fields, parsing, shape rule, validation, accumulator bound and JSON
//! form in one file under `ops/`; this module holds what every kind shares: tensors, the
//! graph (producers, topological order), rescale defaults, loading and saving. Version 1 files
//! (a chain of dense layers) load as a graph of `dense` ops and save back unchanged (`v1.rs`).

mod json;
pub mod ops;
pub mod random;
mod v1;

use crate::error::input;
use crate::fsio;
use crate::quant::{self, Clamp, Dyadic, Requant, Rescale, Rounding};
use anyhow::{Context, Result};
use json::Cursor;
pub use ops::{Add, AvgPool2d, Conv2d, Dense, DepthwiseConv2d, MaxPool2d, OpKind, Reshape, Window};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

pub const FORMAT: &str = "ratflow.int-model";
/// The newest format version this ratflow writes and reads (it reads every older one too).
pub const VERSION: u32 = 2;
/// Largest element count of one tensor. Activations are allocated from declared shapes, which
/// no data in the file backs, so the shape itself is bounded (64 Mi int8 codes).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 26;

/// Real scale and int8 zero point of a tensor: real value = `scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f64,
    pub zero_point: i8,
}

/// Index of a tensor in [`Model::tensors`].
pub type TensorId = usize;

/// An int8 tensor: shape `[H, W, C]` (NHWC with the batch dropped) or `[N]`, row-major with
/// channels fastest (TFLite's order, the vectors' order and the RTL streaming order).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub q: QParams,
}

impl Tensor {
    /// Element count (bounded by [`MAX_TENSOR_ELEMENTS`] once validated).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(H, W, C)` of a rank-3 tensor.
    pub fn hwc(&self) -> Option<(usize, usize, usize)> {
        match self.shape[..] {
            [h, w, c] => Some((h, w, c)),
            _ => None,
        }
    }

    /// Channels: the last dimension.
    pub fn channels(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
}

/// One op of the graph: the fields every kind shares, and the kind's own.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub name: String,
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
    /// The fused activation as output bounds.
    pub clamp: Clamp,
    /// Overrides of the model's `rescale.k_bits` / `rescale.rounding` for this op's rescalers.
    pub k_bits: Option<u32>,
    pub rounding: Option<Rounding>,
    /// The real per-output-channel weight scales `S_w[c]` of an accumulating op, when known
    /// (imported models): with the tensors' scales they give the real factors
    /// `M[c] = S_x S_w[c] / S_y`, so the rescalers can be re-derived at any k
    /// ([`Model::rederived`]) from the real values, never from rounded ones.
    pub weight_scale: Option<Vec<f64>>,
    /// Version 1's `relu` flag. With `Z_y = -128` a ReLU clamps nothing, so the clamp alone
    /// cannot say whether the file had `"relu": true`; this keeps version 1 files saving back
    /// byte for byte. It has no effect on the arithmetic (the clamp has).
    pub v1_relu: bool,
    pub kind: OpKind,
}

/// A validated int8 graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: String,
    /// The format version the model is written in: 1 for dense chains that came from (or are
    /// meant for) version 1 files, else 2.
    pub version: u32,
    /// Defaults for every rescaler.
    pub rescale: Rescale,
    pub tensors: Vec<Tensor>,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
    /// Topological order: every op's inputs are graph inputs or earlier ops' outputs.
    pub ops: Vec<Op>,
    pub provenance: Value,
}

/// An op with the tensors it reads and writes, for kind code that checks or runs it.
pub struct Io<'a> {
    pub inputs: Vec<&'a Tensor>,
    pub output: &'a Tensor,
}

impl Io<'_> {
    /// The single input of a one-input op.
    pub fn input(&self) -> &Tensor {
        self.inputs[0]
    }
}

impl Model {
    /// The graph's input tensor (validation guarantees exactly one).
    pub fn input(&self) -> &Tensor {
        &self.tensors[self.inputs[0]]
    }

    /// The first output tensor: what vectors call `output` and what classifies.
    pub fn output(&self) -> &Tensor {
        &self.tensors[self.outputs[0]]
    }

    pub fn input_len(&self) -> usize {
        self.input().len()
    }

    /// Classes: the element count of the first output.
    pub fn num_classes(&self) -> usize {
        self.output().len()
    }

    pub fn io(&self, op: &Op) -> Io<'_> {
        Io {
            inputs: op.inputs.iter().map(|&t| &self.tensors[t]).collect(),
            output: &self.tensors[op.output],
        }
    }

    pub fn tensor_id(&self, name: &str) -> Option<TensorId> {
        self.tensors.iter().position(|t| t.name == name)
    }

    /// The rescale settings in force for `op`: the model's, with the op's overrides.
    pub fn op_rescale(&self, op: &Op) -> Rescale {
        Rescale {
            k_bits: op.k_bits.unwrap_or(self.rescale.k_bits),
            rounding: op.rounding.unwrap_or(self.rescale.rounding),
            csd_digits: self.rescale.csd_digits,
        }
    }

    /// The widest rescaler of the model: "the model's k" where one number is reported.
    pub fn widest_k(&self) -> u32 {
        self.ops
            .iter()
            .filter(|op| op.kind.has_rescalers())
            .map(|op| self.op_rescale(op).k_bits)
            .max()
            .unwrap_or(self.rescale.k_bits)
    }

    /// The requantizer of output channel `c` of accumulating op `op` (dense, conv2d,
    /// depthwise_conv2d); `None` for other kinds.
    pub fn requant(&self, op: &Op, c: usize) -> Option<Requant> {
        let ch = op.kind.channels()?;
        let r = self.op_rescale(op);
        Some(Requant {
            mult: ch.mult(c),
            k: r.k_bits,
            rounding: r.rounding,
            zero_point: self.tensors[op.output].q.zero_point,
            clamp: op.clamp,
        })
    }

    /// The three requantizers of an `add` op.
    pub fn add_requant(&self, op: &Op) -> Option<quant::AddRequant> {
        let OpKind::Add(a) = &op.kind else {
            return None;
        };
        let r = self.op_rescale(op);
        Some(quant::AddRequant {
            input_zero_points: [
                self.tensors[op.inputs[0]].q.zero_point,
                self.tensors[op.inputs[1]].q.zero_point,
            ],
            left_shift: a.left_shift,
            inputs: [a.mult(0), a.mult(1)],
            output: Requant {
                mult: a.mult(2),
                k: r.k_bits,
                rounding: r.rounding,
                zero_point: self.tensors[op.output].q.zero_point,
                clamp: op.clamp,
            },
        })
    }

    /// The model as a chain of dense ops over a flat input, if it is one (the MLP the trainer
    /// and the dense RTL datapath handle).
    pub fn dense_chain(&self) -> Option<Vec<&Dense>> {
        let mut current = self.inputs[0];
        let mut chain = Vec::new();
        for op in &self.ops {
            match &op.kind {
                OpKind::Dense(d) if op.inputs == [current] => {
                    chain.push(d);
                    current = op.output;
                }
                _ => return None,
            }
        }
        (self.outputs == [current] && !chain.is_empty()).then_some(chain)
    }

    /// Loads and validates a model file; errors name the file, op and field.
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

    /// Parses and validates model JSON of any supported version.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Model> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| input(format!("not UTF-8 text ({e})")))?;
        let root: Value =
            serde_json::from_str(text).map_err(|e| input(format!("not valid JSON: {e}")))?;
        let root = Cursor::root(&root);
        let format = root.field("format")?.string()?;
        if format != FORMAT {
            return Err(input(format!("format = {format:?}, expected {FORMAT:?}")));
        }
        let version_c = root.field("version")?;
        let model = match version_c.u64()? {
            1 => v1::parse(&root)?,
            2 => parse_v2(&root)?,
            v => {
                return Err(version_c.error(format!(
                    "= {v} is not supported (this ratflow reads int-model versions 1 and {VERSION})"
                )));
            }
        };
        model.validate().map_err(input)?;
        Ok(model)
    }

    /// Validates everything parsing alone does not: the graph, every op against its tensors,
    /// every (m, s) against its k, every accumulator against i32. Errors name the op and field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        check_rescale(&self.rescale, "rescale")?;
        for t in &self.tensors {
            check_tensor(t)?;
        }
        self.check_graph()?;
        let mut names = HashMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            // Version 1 never required unique layer names; its files load unchanged.
            if let Some(j) = names.insert(op.name.as_str(), i)
                && self.version >= 2
            {
                return Err(format!(
                    "ops[{i}].name = {:?} is also the name of ops[{j}]: op names are unique",
                    op.name
                ));
            }
            self.check_op(op).map_err(|e| at_op(i, op, &e))?;
        }
        Ok(())
    }

    fn check_op(&self, op: &Op) -> std::result::Result<(), String> {
        if let Some(k) = op.k_bits
            && !(1..=quant::MAX_K_BITS).contains(&k)
        {
            return Err(format!("k_bits = {k} is outside 1..={}", quant::MAX_K_BITS));
        }
        if op.clamp.lo > op.clamp.hi {
            return Err(format!(
                "clamp = [{}, {}] has lo > hi",
                op.clamp.lo, op.clamp.hi
            ));
        }
        if let Some(ws) = &op.weight_scale {
            match op.kind.channels() {
                None => {
                    return Err(format!(
                        "weight_scale: a {} op has no weights",
                        op.kind.name()
                    ));
                }
                Some(ch) if ch.len() != ws.len() => {
                    return Err(format!(
                        "weight_scale has {} entries, expected one per output channel ({})",
                        ws.len(),
                        ch.len()
                    ));
                }
                _ => {}
            }
            if let Some(i) = ws.iter().position(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(format!(
                    "weight_scale[{i}] = {} must be a positive finite number",
                    ws[i]
                ));
            }
        }
        let want = op.kind.input_count();
        if op.inputs.len() != want {
            return Err(format!(
                "inputs has {} tensors, a {} op takes {want}",
                op.inputs.len(),
                op.kind.name()
            ));
        }
        let io = self.io(op);
        op.kind.check(&io, op)?;
        let rescale = self.op_rescale(op);
        for (i, mult) in op.kind.dyadics().into_iter().enumerate() {
            rescale.check(mult).map_err(|why| {
                if why.starts_with("shift") {
                    format!("shift[{i}] = {}: {why}", mult.s)
                } else {
                    format!("multiplier[{i}] = {}: {why}", mult.m)
                }
            })?;
        }
        if let Some(aq) = self.add_requant(op) {
            let bound = aq.sum_bound();
            if bound > i32::MAX as i64 {
                return Err(format!(
                    "multiplier: the sum of the rescaled inputs reaches {bound}, which overflows i32"
                ));
            }
        }
        Ok(())
    }

    /// Producers, topological order and cycles, graph inputs and outputs.
    fn check_graph(&self) -> std::result::Result<(), String> {
        if self.inputs.len() != 1 {
            return Err(format!(
                "inputs lists {} tensors: ratflow runs graphs with exactly one input",
                self.inputs.len()
            ));
        }
        if self.outputs.is_empty() {
            return Err("outputs: a model needs at least one output".into());
        }
        if self.ops.is_empty() {
            return Err("ops: a model needs at least one op".into());
        }
        let mut producer: Vec<Option<usize>> = vec![None; self.tensors.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let t = &self.tensors[op.output];
            if self.inputs.contains(&op.output) {
                return Err(at_op(
                    i,
                    op,
                    &format!("output = {:?} is a graph input", t.name),
                ));
            }
            if let Some(j) = producer[op.output] {
                return Err(at_op(
                    i,
                    op,
                    &format!(
                        "output = {:?} is also the output of ops[{j}]: every tensor has one producer",
                        t.name
                    ),
                ));
            }
            producer[op.output] = Some(i);
        }
        for (i, op) in self.ops.iter().enumerate() {
            for (n, &t) in op.inputs.iter().enumerate() {
                if self.inputs.contains(&t) {
                    continue;
                }
                let name = &self.tensors[t].name;
                match producer[t] {
                    None => {
                        return Err(at_op(
                            i,
                            op,
                            &format!(
                                "inputs[{n}] = {name:?} is neither a graph input nor produced by any op"
                            ),
                        ));
                    }
                    Some(j) if j >= i => {
                        let why = match self.cycle_through(i, &producer) {
                            Some(path) => format!("inputs[{n}] = {name:?} closes a cycle: {path}"),
                            None => format!(
                                "inputs[{n}] = {name:?} is produced by ops[{j}], which comes later: ops are listed in topological order"
                            ),
                        };
                        return Err(at_op(i, op, &why));
                    }
                    Some(_) => {}
                }
            }
        }
        for (n, &t) in self.outputs.iter().enumerate() {
            if producer[t].is_none() && !self.inputs.contains(&t) {
                return Err(format!(
                    "outputs[{n}] = {:?} is not produced by any op",
                    self.tensors[t].name
                ));
            }
        }
        Ok(())
    }

    /// A cycle through op `start`, as `ops[a] -> ops[b] -> ops[a]`, if one exists.
    fn cycle_through(&self, start: usize, producer: &[Option<usize>]) -> Option<String> {
        // Walk producers backwards from `start`'s inputs; reaching `start` again is a cycle.
        let mut stack = vec![(start, vec![start])];
        let mut seen = vec![false; self.ops.len()];
        while let Some((op, path)) = stack.pop() {
            for &t in &self.ops[op].inputs {
                let Some(p) = producer[t] else { continue };
                if p == start {
                    let mut names: Vec<String> =
                        path.iter().rev().map(|i| format!("ops[{i}]")).collect();
                    names.push(format!("ops[{start}]"));
                    return Some(names.join(" -> "));
                }
                if !seen[p] {
                    seen[p] = true;
                    let mut next = path.clone();
                    next.push(p);
                    stack.push((p, next));
                }
            }
        }
        None
    }

    /// The canonical JSON text (what `save` writes): version 1 for dense chains loaded from
    /// version 1, else version 2. Weight rows are one line each so files stay diffable.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        let version = if self.version == 1 && v1::representable(self) {
            1
        } else {
            VERSION
        };
        let _ = writeln!(
            out,
            "  \"format\": \"{FORMAT}\",\n  \"version\": {version},"
        );
        let _ = writeln!(out, "  \"name\": {},", js(&self.name));
        self.write_content(version, &mut out);
        let prov = serde_json::to_string_pretty(&self.provenance).expect("Value serializes");
        let _ = writeln!(out, ",\n  \"provenance\": {}", prov.replace('\n', "\n  "));
        out.push_str("}\n");
        out
    }

    fn write_content(&self, version: u32, out: &mut String) {
        if version == 1 {
            v1::write_content(self, out);
            return;
        }
        write_rescale(&self.rescale, out);
        out.push_str("  \"tensors\": {\n");
        for (i, t) in self.tensors.iter().enumerate() {
            let sep = if i + 1 < self.tensors.len() { "," } else { "" };
            let _ = writeln!(
                out,
                "    {}: {{ \"shape\": {}, \"scale\": {}, \"zero_point\": {} }}{sep}",
                js(&t.name),
                js(&t.shape),
                js(&t.q.scale),
                t.q.zero_point
            );
        }
        out.push_str("  },\n");
        let names = |ids: &[TensorId]| -> String {
            js(&ids
                .iter()
                .map(|&t| self.tensors[t].name.as_str())
                .collect::<Vec<_>>())
        };
        let _ = writeln!(out, "  \"inputs\": {},", names(&self.inputs));
        let _ = writeln!(out, "  \"outputs\": {},", names(&self.outputs));
        out.push_str("  \"ops\": [");
        for (i, op) in self.ops.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            let _ = write!(
                out,
                "    {{ \"kind\": \"{}\", \"name\": {}, \"inputs\": {}, \"output\": {}",
                op.kind.name(),
                js(&op.name),
                names(&op.inputs),
                js(&self.tensors[op.output].name)
            );
            if !matches!(op.kind, OpKind::Reshape(_)) || op.clamp != Clamp::NONE {
                let _ = write!(out, ", \"clamp\": [{}, {}]", op.clamp.lo, op.clamp.hi);
            }
            if let Some(r) = op.rounding {
                let _ = write!(out, ", \"rounding\": \"{r}\"");
            }
            if let Some(k) = op.k_bits {
                let _ = write!(out, ", \"k_bits\": {k}");
            }
            if let Some(ws) = &op.weight_scale {
                let _ = write!(out, ", \"weight_scale\": {}", js(ws));
            }
            op.kind.write_fields(out);
            out.push_str(" }");
        }
        out.push_str("\n  ]");
    }

    /// Content hash: SHA-256 of the canonical integer content (rescale, tensors, ops), so the
    /// name and provenance do not change it. Names RTL, caches and vectors.
    pub fn content_hash(&self) -> String {
        let mut content = String::new();
        let version = if self.version == 1 && v1::representable(self) {
            1
        } else {
            VERSION
        };
        self.write_content(version, &mut content);
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

/// `ops[3] "conv1" (conv2d): why`: the op named by index, name and kind.
fn at_op(i: usize, op: &Op, why: &str) -> String {
    format!("ops[{i}] {:?} ({}): {why}", op.name, op.kind.name())
}

pub(crate) fn js<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn write_rescale(r: &Rescale, out: &mut String) {
    let csd = r
        .csd_digits
        .map(|d| format!(", \"csd_digits\": {d}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  \"rescale\": {{ \"k_bits\": {}, \"rounding\": \"{}\"{csd} }},",
        r.k_bits, r.rounding
    );
}

fn check_rescale(r: &Rescale, at: &str) -> std::result::Result<(), String> {
    if !(1..=quant::MAX_K_BITS).contains(&r.k_bits) {
        return Err(format!(
            "{at}.k_bits = {} is outside 1..={}",
            r.k_bits,
            quant::MAX_K_BITS
        ));
    }
    if let Some(d) = r.csd_digits
        && !(1..=quant::MAX_CSD_DIGITS).contains(&d)
    {
        return Err(format!(
            "{at}.csd_digits = {d} is outside 1..={}",
            quant::MAX_CSD_DIGITS
        ));
    }
    Ok(())
}

fn check_tensor(t: &Tensor) -> std::result::Result<(), String> {
    let at = format!("tensors.{:?}", t.name);
    if t.shape.is_empty() || t.shape.len() > 3 || t.shape.contains(&0) {
        return Err(format!(
            "{at}.shape = {:?} must be [N] or [H, W, C] with positive sizes",
            t.shape
        ));
    }
    element_count(&t.shape).map_err(|e| format!("{at}.shape {e}"))?;
    check_qparams(&t.q, &at)
}

/// The element count of a shape, refusing products that overflow or exceed
/// [`MAX_TENSOR_ELEMENTS`].
pub(crate) fn element_count(shape: &[usize]) -> std::result::Result<usize, String> {
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).ok_or_else(|| {
            format!("= {shape:?}: the element count overflows (product of the dimensions)")
        })?;
    }
    if n > MAX_TENSOR_ELEMENTS {
        return Err(format!(
            "= {shape:?} has {n} elements, more than the limit {MAX_TENSOR_ELEMENTS}"
        ));
    }
    Ok(n)
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

fn qparams(c: &Cursor) -> Result<QParams> {
    let scale_c = c.field("scale")?;
    let scale = scale_c.f64()?;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(scale_c.error(format!("= {scale} must be a positive finite number")));
    }
    let zero_point = c.field("zero_point")?.int_in(-128, 127)? as i8;
    Ok(QParams { scale, zero_point })
}

fn parse_rounding(c: &Cursor) -> Result<Rounding> {
    Rounding::parse(c.string()?)
        .ok_or_else(|| c.error(format!("= {} is not \"single\" or \"double\"", c.value())))
}

/// `rescale`: `k_bits` (required), `rounding` (default `single`), optional `csd_digits`.
fn parse_rescale(c: &Cursor, rounding_required: bool) -> Result<Rescale> {
    let k_bits = c.field("k_bits")?.int_in(1, quant::MAX_K_BITS as i64)? as u32;
    let rounding = match c.opt_field("rounding") {
        Some(r) => parse_rounding(&r)?,
        None if rounding_required => parse_rounding(&c.field("rounding")?)?,
        None => Rounding::Single,
    };
    let csd_digits = match c.opt_field("csd_digits") {
        Some(d) if !d.value().is_null() => Some(d.int_in(1, quant::MAX_CSD_DIGITS as i64)? as u32),
        _ => None,
    };
    Ok(Rescale {
        k_bits,
        rounding,
        csd_digits,
    })
}

fn parse_v2(root: &Cursor) -> Result<Model> {
    let name = root.field("name")?.string()?.to_string();
    let rescale = parse_rescale(&root.field("rescale")?, false)?;
    let tensors_c = root.field("tensors")?;
    let mut tensors = Vec::new();
    let mut ids = HashMap::new();
    for (tname, tc) in tensors_c.entries()? {
        let shape_c = tc.field("shape")?;
        let shape = shape_c
            .array()?
            .iter()
            .map(|d| d.int_in(1, MAX_TENSOR_ELEMENTS as i64).map(|v| v as usize))
            .collect::<Result<Vec<_>>>()?;
        if shape.is_empty() || shape.len() > 3 {
            return Err(shape_c.error(format!(
                "= {shape:?} must be [N] or [H, W, C] (rank 1 or 3)"
            )));
        }
        element_count(&shape).map_err(|e| shape_c.error(e))?;
        ids.insert(tname.to_string(), tensors.len());
        tensors.push(Tensor {
            name: tname.to_string(),
            shape,
            q: qparams(&tc)?,
        });
    }
    let names = |c: &Cursor| -> Result<Vec<TensorId>> {
        c.array()?
            .iter()
            .map(|n| {
                let s = n.string()?;
                ids.get(s).copied().ok_or_else(|| {
                    n.error(format!("= {s:?} is not a tensor declared in `tensors`"))
                })
            })
            .collect()
    };
    let inputs = names(&root.field("inputs")?)?;
    let outputs = names(&root.field("outputs")?)?;
    let mut ops = Vec::new();
    for oc in root.field("ops")?.array()? {
        let op_name = oc.field("name")?.string()?.to_string();
        let context = |e: anyhow::Error| {
            let msg = format!("{e} (op {op_name:?})");
            input(msg)
        };
        let kind_c = oc.field("kind")?;
        let kind_name = kind_c.string()?;
        let op_inputs = names(&oc.field("inputs")?).map_err(context)?;
        let out_c = oc.field("output")?;
        let out_name = out_c.string().map_err(context)?;
        let output = *ids
            .get(out_name)
            .ok_or_else(|| {
                out_c.error(format!(
                    "= {out_name:?} is not a tensor declared in `tensors`"
                ))
            })
            .map_err(context)?;
        // DESIGN: every op carries its fused activation; only `reshape` may omit it.
        let clamp_c = if kind_name == "reshape" {
            oc.opt_field("clamp")
        } else {
            Some(oc.field("clamp").map_err(context)?)
        };
        let clamp = match clamp_c {
            None => Clamp::NONE,
            Some(c) => {
                let v = c.array_len(2).map_err(context)?;
                let lo = v[0].int_in(-128, 127).map_err(context)? as i8;
                let hi = v[1].int_in(-128, 127).map_err(context)? as i8;
                if lo > hi {
                    return Err(context(c.error(format!("= [{lo}, {hi}] has lo > hi"))));
                }
                Clamp { lo, hi }
            }
        };
        let rounding = oc
            .opt_field("rounding")
            .map(|c| parse_rounding(&c))
            .transpose()
            .map_err(context)?;
        let k_bits = oc
            .opt_field("k_bits")
            .map(|c| c.int_in(1, quant::MAX_K_BITS as i64).map(|v| v as u32))
            .transpose()
            .map_err(context)?;
        let weight_scale = match oc.opt_field("weight_scale") {
            None => None,
            Some(c) => Some(
                c.array()
                    .map_err(context)?
                    .iter()
                    .map(|v| {
                        let x = v.f64()?;
                        if x.is_finite() && x > 0.0 {
                            Ok(x)
                        } else {
                            Err(v.error(format!("= {x} must be a positive finite number")))
                        }
                    })
                    .collect::<Result<Vec<f64>>>()
                    .map_err(context)?,
            ),
        };
        let io = Io {
            inputs: op_inputs.iter().map(|&t| &tensors[t]).collect(),
            output: &tensors[output],
        };
        let kind = OpKind::parse(kind_name, &kind_c, &oc, &io).map_err(context)?;
        ops.push(Op {
            name: op_name,
            inputs: op_inputs,
            output,
            clamp,
            k_bits,
            rounding,
            weight_scale,
            v1_relu: false,
            kind,
        });
    }
    let provenance = root
        .opt_field("provenance")
        .map(|c| c.value().clone())
        .unwrap_or(Value::Null);
    Ok(Model {
        name,
        version: 2,
        rescale,
        tensors,
        inputs,
        outputs,
        ops,
        provenance,
    })
}

/// Helpers for building models in code (trainer export, importer, random graphs).
impl Model {
    /// An empty version 2 graph with one input tensor.
    pub fn new_graph(name: &str, rescale: Rescale, input: Tensor) -> Model {
        Model {
            name: name.to_string(),
            version: VERSION,
            rescale,
            tensors: vec![input],
            inputs: vec![0],
            outputs: Vec::new(),
            ops: Vec::new(),
            provenance: Value::Null,
        }
    }

    /// Declares a tensor and returns its id.
    pub fn add_tensor(&mut self, tensor: Tensor) -> TensorId {
        self.tensors.push(tensor);
        self.tensors.len() - 1
    }

    /// Appends an op writing a new tensor `output` and returns that tensor's id.
    pub fn push_op(
        &mut self,
        name: &str,
        inputs: Vec<TensorId>,
        output: Tensor,
        clamp: Clamp,
        kind: OpKind,
    ) -> TensorId {
        let out = self.add_tensor(output);
        self.ops.push(Op {
            name: name.to_string(),
            inputs,
            output: out,
            clamp,
            k_bits: None,
            rounding: None,
            weight_scale: None,
            v1_relu: false,
            kind,
        });
        out
    }
}

/// A dense layer in the version 1 shape, for building dense chains in code.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLayer {
    pub name: String,
    pub dense: Dense,
    pub output: QParams,
    pub relu: bool,
}

impl Model {
    /// A version 1 model: a chain of dense layers over a flat input of `input_shape`.
    pub fn dense_model(
        name: &str,
        rescale: Rescale,
        input_shape: Vec<usize>,
        input_q: QParams,
        layers: Vec<DenseLayer>,
        provenance: Value,
    ) -> Model {
        let mut m = Model::new_graph(
            name,
            rescale,
            Tensor {
                name: "input".into(),
                shape: input_shape,
                q: input_q,
            },
        );
        m.version = 1;
        let names = v1::tensor_names(layers.iter().map(|l| l.name.as_str()));
        let mut x = 0;
        for (l, tname) in layers.into_iter().zip(names) {
            let clamp = if l.relu {
                Clamp::relu(l.output.zero_point)
            } else {
                Clamp::NONE
            };
            let out = Tensor {
                name: tname,
                shape: vec![l.dense.out_features],
                q: l.output,
            };
            x = m.push_op(&l.name, vec![x], out, clamp, OpKind::Dense(l.dense));
            m.ops.last_mut().expect("just pushed").v1_relu = l.relu;
        }
        m.outputs = vec![x];
        m.provenance = provenance;
        m
    }
}

impl Model {
    /// The real factor of every rescaler of `op`, in `dyadics()` order: `S_x S_w[c] / S_y` per
    /// channel of accumulating ops (from `weight_scale`), ADD's three from its tensors' scales
    /// ([`quant::add_factors`]). `None` when the op has no rescalers or no weight scales.
    pub fn real_factors(&self, op: &Op) -> Option<Vec<f64>> {
        let io = self.io(op);
        match &op.kind {
            OpKind::Add(a) => Some(
                quant::add_factors(
                    io.inputs[0].q.scale,
                    io.inputs[1].q.scale,
                    io.output.q.scale,
                    a.left_shift,
                )
                .to_vec(),
            ),
            k if k.accumulates() => {
                let sx = io.inputs[0].q.scale;
                let sy = io.output.q.scale;
                Some(
                    op.weight_scale
                        .as_ref()?
                        .iter()
                        .map(|&sw| sx * sw / sy)
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// The model with every rescaler re-derived from its real factor under `rescale` (k,
    /// digit budget; each op keeps its own rounding), the per-op k overrides dropped. What a
    /// PTQ sweep over k evaluates. Errors name the op that cannot be re-derived (no weight
    /// scales, or a factor that `double` rounding or the k cannot express).
    pub fn rederived(&self, rescale: Rescale) -> std::result::Result<Model, String> {
        let mut out = self.clone();
        out.rescale.k_bits = rescale.k_bits;
        out.rescale.csd_digits = rescale.csd_digits;
        for (i, op) in self.ops.iter().enumerate() {
            if !op.kind.has_rescalers() {
                continue;
            }
            let reals = self.real_factors(op).ok_or_else(|| {
                at_op(
                    i,
                    op,
                    "weight_scale is missing: the real rescale factors are unknown, so (m, s) cannot be re-derived at another k",
                )
            })?;
            let rounding = op.rounding.unwrap_or(self.rescale.rounding);
            let r = Rescale {
                rounding,
                ..rescale
            };
            let mut ds = Vec::with_capacity(reals.len());
            for (c, &real) in reals.iter().enumerate() {
                let mut d = r
                    .derive(real)
                    .map_err(|e| at_op(i, op, &format!("rescaler {c}: {e}")))?
                    .mult;
                // A factor just below 1 can round up to exactly 1 at k bits (s = k - 1), which
                // `double` cannot express; the nearest factor it can is (2^k - 1) 2^-k.
                if rounding == Rounding::Double && d.m != 0 && d.s < r.k_bits && real < 1.0 {
                    d = Dyadic {
                        m: ((1u64 << r.k_bits) - 1) as u32,
                        s: r.k_bits,
                    };
                }
                r.check(d)
                    .map_err(|e| at_op(i, op, &format!("rescaler {c} at {}: {e}", r.describe())))?;
                ds.push(d);
            }
            let new = &mut out.ops[i];
            new.k_bits = None;
            new.kind.set_dyadics(&ds);
        }
        out.validate()?;
        Ok(out)
    }
}

/// One layer of a dense chain as version 1 saw it: the dense op with its input and output
/// quantization. Dereferences to the [`Dense`] op.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    pub name: &'a str,
    pub dense: &'a Dense,
    pub input: QParams,
    pub output: QParams,
    pub clamp: Clamp,
    /// A fused ReLU (`clamp` = [Z_y, 127]).
    pub relu: bool,
}

impl std::ops::Deref for Layer<'_> {
    type Target = Dense;
    fn deref(&self) -> &Dense {
        self.dense
    }
}

impl Model {
    /// The layers of a dense chain (empty for any other graph): what the MLP trainer and the
    /// dense RTL datapath work on.
    pub fn layers(&self) -> Vec<Layer<'_>> {
        if self.dense_chain().is_none() {
            return Vec::new();
        }
        self.ops
            .iter()
            .map(|op| {
                let OpKind::Dense(dense) = &op.kind else {
                    unreachable!("dense_chain() checked every op")
                };
                let output = self.tensors[op.output].q;
                Layer {
                    name: &op.name,
                    dense,
                    input: self.tensors[op.inputs[0]].q,
                    output,
                    clamp: op.clamp,
                    relu: op.v1_relu || op.clamp != Clamp::NONE,
                }
            })
            .collect()
    }

    /// The input quantization of layer `i` of a dense chain.
    pub fn layer_input(&self, i: usize) -> QParams {
        self.tensors[self.ops[i].inputs[0]].q
    }

    /// The requantizer of layer `i`, channel `c`, of a dense chain.
    pub fn layer_requant(&self, i: usize, c: usize) -> Requant {
        self.requant(&self.ops[i], c)
            .expect("dense layers have requantizers")
    }

    /// The dense op of layer `i`, mutable (tests plant faults through it).
    pub fn dense_mut(&mut self, i: usize) -> &mut Dense {
        match &mut self.ops[i].kind {
            OpKind::Dense(d) => d,
            other => panic!("op {i} is a {}, not dense", other.name()),
        }
    }
}

/// A per-channel `(m, s)` accessor shared by the kinds that carry them.
pub(crate) fn dyadic(multiplier: &[u32], shift: &[u32], c: usize) -> Dyadic {
    Dyadic {
        m: multiplier[c],
        s: shift[c],
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_v2;
