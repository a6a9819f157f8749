//! The second layer of the TFLite importer: a validated [`TfliteGraph`] to an int-model
//! version 2 ([`Model`]) with TFLite's integer semantics, or a one-line refusal.
//!
//! What is mapped, each following the LiteRT code that defines it:
//! - tensors: int8 with one (S, Z) (`TfLiteAffineQuantization` with one scale); shapes folded
//!   to `[H, W, C]` or `[N]` (see [`fold_shape`]);
//! - CONV_2D, DEPTHWISE_CONV_2D (`reference_integer_ops::ConvPerChannel`,
//!   `DepthwiseConvPerChannel`), FULLY_CONNECTED (`fully_connected.cc`), AVERAGE_POOL_2D,
//!   MAX_POOL_2D (`pooling.cc`), ADD (`add.cc`, equal shapes), RESHAPE, SQUEEZE, EXPAND_DIMS
//!   (a `reshape`: LiteRT copies the bytes);
//! - padding from `ComputePaddingHeightWidth` / `ComputeOutSize` (`padding.h`): SAME puts the
//!   odd extra row or column at the bottom or right; dilation included;
//! - fused activations as clamp bounds, `CalculateActivationRangeQuantized` (`kernel_util.cc`):
//!   `Z + round_half_away(float32(f) / float32(S))`, clamped to int8;
//! - every real rescale factor formed in double precision from the file's float32 scales,
//!   `double(S_x) * double(S_w[c]) / double(S_y)` (`PopulateConvolutionQuantizationParams`,
//!   the per-channel loop of `fully_connected.cc`; checked against LiteRT 2.3 for per-tensor
//!   FULLY_CONNECTED too, whose reference kernel uses that double M), ADD's three with
//!   [`quant::add_factors`] and TFLite's left shift 20, each made `(m, s)` at k bits by
//!   [`Rescale::derive`];
//! - the rounding of each op pinned to the kernel set ([`KernelSet`]);
//! - a final SOFTMAX (and DEQUANTIZE) dropped, a QUANTIZE of a float32 graph input taken as
//!   the input quantization.
//!
//! Everything else is refused with an [`ImportError`] naming the op (index, TFLite name, and
//! the ratflow op name it would have had) and the tensor at fault.

use super::near_ties::{self, NearTies};
use super::reader::{
    Activation, DType, OpKind as TfOp, Operator, Padding, ReadError, Tensor as TfTensor,
    TensorData, TfliteGraph,
};
use crate::model::{
    Add, AvgPool2d, Conv2d, Dense, DepthwiseConv2d, MaxPool2d, Model, OpKind, QParams, Reshape,
    Tensor, TensorId, Window,
};
use crate::quant::{self, Clamp, Rescale, Rounding};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::fmt;

/// The LiteRT kernel set an import targets: it fixes the rounding of each op's rescalers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KernelSet {
    /// LiteRT's reference kernels (`BUILTIN_REF`), the kernels that define TFLite's int8
    /// semantics: conv2d, depthwise_conv2d and add `double` (gemmlowp's
    /// `MultiplyByQuantizedMultiplier`), dense `single`. Bit-exact with LiteRT on every
    /// element, except the dense near-ties [`near_ties`] counts: the reference
    /// FULLY_CONNECTED rounds `double(a) * M` in float64, which no `(m, s)` reproduces on
    /// every accumulator.
    Ref,
    /// Every rescaler `single`: the cheapest hardware (one multiply, one add, one shift). Not
    /// equal to any LiteRT kernel set on convolutions and ADD (near ties round differently).
    Single,
}

impl KernelSet {
    pub fn parse(s: &str) -> Option<KernelSet> {
        match s {
            "ref" => Some(KernelSet::Ref),
            "single" => Some(KernelSet::Single),
            _ => None,
        }
    }

    /// `ref` or `single`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelSet::Ref => "ref",
            KernelSet::Single => "single",
        }
    }

    /// What provenance records: the LiteRT op resolver the model equals, or none.
    pub fn describe(self) -> &'static str {
        match self {
            KernelSet::Ref => "BUILTIN_REF (LiteRT reference kernels)",
            KernelSet::Single => "single (every rescaler single rounding; no LiteRT kernel set)",
        }
    }

    /// The rounding of an op of `kind` under this kernel set (DESIGN section 6, measured on
    /// LiteRT 2.3).
    pub fn rounding(self, kind: &OpKind, from_fully_connected: bool) -> Rounding {
        match self {
            KernelSet::Single => Rounding::Single,
            KernelSet::Ref if from_fully_connected => Rounding::Single,
            KernelSet::Ref => match kind {
                OpKind::Dense(_) => Rounding::Single,
                _ => Rounding::Double,
            },
        }
    }
}

/// How to import.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Width of every derived multiplier `m` (31: LiteRT's int32 multipliers).
    pub k_bits: u32,
    pub kernels: KernelSet,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            k_bits: quant::MAX_K_BITS,
            kernels: KernelSet::Ref,
        }
    }
}

/// A TFLite op that became an int-model op.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MappedOp {
    /// Index in the file's operator list.
    pub tflite_index: usize,
    /// TFLite's op name (`CONV_2D`).
    pub tflite_op: String,
    /// The int-model op's name (its output tensor's name).
    pub name: String,
    /// The int-model kind (`conv2d`).
    pub kind: &'static str,
    /// The rounding of its rescalers, when it has any.
    pub rounding: Option<&'static str>,
}

/// An op left out of the integer graph (a final SOFTMAX, the edge QUANTIZE / DEQUANTIZE).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DroppedOp {
    pub tflite_index: usize,
    pub tflite_op: String,
    /// The tensor it read.
    pub input: String,
    /// The tensor it wrote.
    pub output: String,
    pub why: &'static str,
}

/// What the import did besides the model: for the summary and `provenance`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportReport {
    pub ops: Vec<MappedOp>,
    pub dropped: Vec<DroppedOp>,
    /// Dense near-ties against BUILTIN_REF's float64 FULLY_CONNECTED rule.
    pub near_ties: NearTies,
    /// Notes worth a line on stderr (bias scales that differ, underflowed rescalers).
    pub warnings: Vec<String>,
}

/// A model and what its import did.
#[derive(Clone, Debug)]
pub struct Imported {
    pub model: Model,
    pub report: ImportReport,
}

/// Why a file cannot be imported: one line naming the op and tensor at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportError {
    /// The reader refused the file (corrupt, truncated, several subgraphs, sparse, ...).
    Read(ReadError),
    /// A valid TFLite graph the int-model cannot carry.
    Map(MapError),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Read(e) => e.fmt(f),
            ImportError::Map(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ImportError {}

/// A refusal of the mapping layer:
/// `op 3 TANH "model/tanh", tensor 7 "model/tanh": TANH is not an op of the int-model (...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    /// (index, TFLite op name, the int-model op name it would have had).
    pub op: Option<(usize, String, String)>,
    /// (index, name) of the tensor at fault.
    pub tensor: Option<(usize, String)>,
    pub message: String,
}

impl MapError {
    fn new(message: impl Into<String>) -> MapError {
        MapError {
            op: None,
            tensor: None,
            message: message.into(),
        }
    }

    fn at_tensor(mut self, t: &TfTensor) -> MapError {
        self.tensor = Some((t.index, t.name.clone()));
        self
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some((index, tf, name)) = &self.op {
            write!(
                f,
                "op {index} {} {}",
                super::reader::one_line(tf),
                super::reader::quoted(name)
            )?;
            wrote = true;
        }
        if let Some((index, name)) = &self.tensor {
            if wrote {
                f.write_str(", ")?;
            }
            write!(f, "tensor {index} {}", super::reader::quoted(name))?;
            wrote = true;
        }
        if wrote {
            f.write_str(": ")?;
        }
        f.write_str(&super::reader::one_line(&self.message))
    }
}

impl std::error::Error for MapError {}

/// Reads and imports a `.tflite` held in memory. `name` becomes the model's name.
pub fn import_bytes(
    bytes: &[u8],
    name: &str,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let g = super::read(bytes).map_err(ImportError::Read)?;
    import_graph(&g, name, opts).map_err(ImportError::Map)
}

/// Imports a `.tflite` file: the model is named after the file stem, and `provenance` records
/// the file name, its SHA-256 and the kernel set. Errors name the file; they are input errors
/// (exit code 2).
pub fn import_file(path: &std::path::Path, opts: &ImportOptions) -> anyhow::Result<Imported> {
    let bytes = std::fs::read(path).map_err(|e| {
        crate::error::input(format!("cannot read TFLite model {}: {e}", path.display()))
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let mut imported = import_bytes(&bytes, &name, opts)
        .map_err(|e| crate::error::input(format!("{}: {e}", path.display())))?;
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sha = crate::fsio::sha256_hex(&bytes);
    if let Some(p) = imported.model.provenance.as_object_mut() {
        p.insert(
            "source".into(),
            json!({ "file": file, "sha256": sha, "bytes": bytes.len() }),
        );
    }
    Ok(imported)
}

/// Maps a read graph onto an int-model (see the module documentation). The model is
/// validated before it is returned.
pub fn import_graph(
    g: &TfliteGraph,
    name: &str,
    opts: &ImportOptions,
) -> Result<Imported, MapError> {
    if !(1..=quant::MAX_K_BITS).contains(&opts.k_bits) {
        return Err(MapError::new(format!(
            "k = {} is outside 1..={}",
            opts.k_bits,
            quant::MAX_K_BITS
        )));
    }
    Mapper::new(g, opts).run(name)
}

/// Which tensors and ops sit at the float edges of the graph, and the graph's int8 input and
/// outputs.
struct Edges {
    /// The int8 tensor ratflow takes as input.
    input: usize,
    /// The float32 graph input quantized by a QUANTIZE, with that op.
    float_input: Option<(usize, usize)>,
    /// The int8 tensors that become the model's outputs, in the file's output order.
    outputs: Vec<usize>,
    /// Ops left out: the input QUANTIZE and the tail SOFTMAX / DEQUANTIZE chains.
    skipped: Vec<bool>,
    dropped: Vec<DroppedOp>,
}

struct Mapper<'a> {
    g: &'a TfliteGraph,
    opts: &'a ImportOptions,
    /// Unique int-model names of the file's tensors.
    names: Vec<String>,
    /// Readers of each tensor: (op index, input slot).
    consumers: Vec<Vec<(usize, usize)>>,
    producer: Vec<Option<usize>>,
    /// The int-model tensor of each mapped file tensor.
    ids: HashMap<usize, TensorId>,
    warnings: Vec<String>,
    ops: Vec<MappedOp>,
    /// Per int-model op: whether it came from a FULLY_CONNECTED (for the near-tie check).
    from_fc: Vec<bool>,
}

/// What an op being mapped reads and writes, with the context its errors need.
struct At<'g> {
    op: &'g Operator,
    /// The int-model op name (the output tensor's name, or `<OP>_<index>`).
    name: String,
}

impl At<'_> {
    fn err(&self, message: impl Into<String>) -> MapError {
        MapError {
            op: Some((self.op.index, self.op.name().to_string(), self.name.clone())),
            tensor: None,
            message: message.into(),
        }
    }
}

impl<'a> Mapper<'a> {
    fn new(g: &'a TfliteGraph, opts: &'a ImportOptions) -> Mapper<'a> {
        let n = g.tensors.len();
        let mut consumers = vec![Vec::new(); n];
        let mut producer = vec![None; n];
        for op in &g.operators {
            for (slot, t) in op.inputs.iter().enumerate() {
                if let Some(t) = t {
                    consumers[*t].push((op.index, slot));
                }
            }
            for &t in &op.outputs {
                // The first writer wins; a second one is refused when its op is mapped.
                producer[t].get_or_insert(op.index);
            }
        }
        Mapper {
            g,
            opts,
            names: unique_names(g),
            consumers,
            producer,
            ids: HashMap::new(),
            warnings: Vec::new(),
            ops: Vec::new(),
            from_fc: Vec::new(),
        }
    }

    fn run(mut self, name: &str) -> Result<Imported, MapError> {
        let edges = self.edges()?;
        let input = self.activation(edges.input).map_err(|e| {
            e.at_tensor(&self.g.tensors[edges.input])
                .with_message_prefix("graph input: ")
        })?;
        let rescale = Rescale::plain(self.opts.k_bits, Rounding::Single);
        let mut model = Model::new_graph(name, rescale, input);
        self.ids.insert(edges.input, 0);

        for op in &self.g.operators {
            if edges.skipped[op.index] {
                continue;
            }
            self.map_op(&mut model, op)?;
        }

        let mut outputs = Vec::new();
        for &t in &edges.outputs {
            let tensor = &self.g.tensors[t];
            let Some(&id) = self.ids.get(&t) else {
                return Err(MapError::new(
                    "graph output is not written by any op ratflow maps (an output that is the input, or a constant)",
                )
                .at_tensor(tensor));
            };
            if id == 0 {
                return Err(MapError::new(
                    "graph output is the graph input: the model computes nothing",
                )
                .at_tensor(tensor));
            }
            if !outputs.contains(&id) {
                outputs.push(id);
            }
        }
        model.outputs = outputs;

        let near_ties = near_ties::count(&model, &self.from_fc);
        if near_ties.differ > 0 {
            self.warnings.push(format!(
                "{} dense accumulator(s) where the imported `single` rescale and BUILTIN_REF's float64 FULLY_CONNECTED requantize differ (first: {})",
                near_ties.differ,
                near_ties
                    .examples
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            ));
        }
        let report = ImportReport {
            ops: self.ops,
            dropped: edges.dropped.clone(),
            near_ties,
            warnings: self.warnings,
        };
        model.provenance = provenance(self.g, self.opts, &report, &edges, &model);
        model
            .validate()
            .map_err(|e| MapError::new(format!("the imported model is invalid: {e}")))?;
        Ok(Imported { model, report })
    }

    /// Finds the int8 input (behind a QUANTIZE for float inputs) and the int8 outputs (before
    /// a final SOFTMAX and/or DEQUANTIZE).
    fn edges(&self) -> Result<Edges, MapError> {
        let g = self.g;
        let mut skipped = vec![false; g.operators.len()];
        let mut dropped = Vec::new();
        if g.inputs.len() != 1 {
            return Err(MapError::new(format!(
                "the graph has {} inputs: ratflow graphs have exactly one",
                g.inputs.len()
            )));
        }
        let input = g.inputs[0];
        let t = &g.tensors[input];
        let (input, float_input) = match t.dtype {
            DType::Float32 => {
                let readers = &self.consumers[input];
                if let Some(&(op, slot)) = readers
                    .iter()
                    .find(|(op, _)| g.operators[*op].kind != TfOp::Quantize)
                {
                    return Err(self
                        .at(&g.operators[op])
                        .err(format!(
                            "input {slot} is the FLOAT32 graph input: float and hybrid ops are not supported (a float input must go through one QUANTIZE to int8)"
                        ))
                        .at_tensor(t));
                }
                let [(q, _)] = readers[..] else {
                    return Err(MapError::new(format!(
                        "the float32 graph input is read by {} QUANTIZE ops; ratflow takes a float input only when a single QUANTIZE converts it to int8",
                        readers.len()
                    ))
                    .at_tensor(t));
                };
                let op = &g.operators[q];
                let Some(&out) = op.outputs.first() else {
                    return Err(self.at(op).err("QUANTIZE has no output"));
                };
                skipped[q] = true;
                dropped.push(DroppedOp {
                    tflite_index: q,
                    tflite_op: "QUANTIZE".into(),
                    input: self.names[input].clone(),
                    output: self.names[out].clone(),
                    why: "float32 graph input: its int8 output is the model's input",
                });
                (out, Some((input, q)))
            }
            _ => (input, None),
        };

        let mut outputs = Vec::new();
        for &out in &g.outputs {
            let mut t = out;
            // A chain of SOFTMAX / DEQUANTIZE that nothing else reads is dropped.
            let mut downstream: Vec<usize> = Vec::new();
            while let Some(p) = self.producer[t] {
                let op = &g.operators[p];
                let why = match op.kind {
                    TfOp::Softmax(_) => {
                        "final SOFTMAX: the class is the argmax of its input (DESIGN section 5)"
                    }
                    TfOp::Dequantize => {
                        "float32 graph output: its int8 input is the model's output"
                    }
                    _ => break,
                };
                let only_tail_readers = self.consumers[t]
                    .iter()
                    .all(|(reader, _)| downstream.contains(reader));
                let Some(Some(input)) = op.inputs.first() else {
                    break;
                };
                if !only_tail_readers || g.inputs.contains(input) {
                    break;
                }
                if !skipped[p] {
                    skipped[p] = true;
                    dropped.push(DroppedOp {
                        tflite_index: p,
                        tflite_op: op.name().to_string(),
                        input: self.names[*input].clone(),
                        output: self.names[t].clone(),
                        why,
                    });
                }
                downstream.push(p);
                t = *input;
            }
            outputs.push(t);
        }
        dropped.sort_by_key(|d| d.tflite_index);
        Ok(Edges {
            input,
            float_input,
            outputs,
            skipped,
            dropped,
        })
    }

    fn at<'g>(&self, op: &'g Operator) -> At<'g> {
        let name = match op.outputs.first() {
            Some(&t) if !self.g.tensors[t].name.is_empty() => self.names[t].clone(),
            _ => format!("{}_{}", op.name(), op.index),
        };
        At { op, name }
    }

    /// An activation tensor as an int-model tensor: int8, one (S, Z) with S > 0, no data.
    fn activation(&self, t: usize) -> Result<Tensor, MapError> {
        let tensor = &self.g.tensors[t];
        let err = |m: String| MapError::new(m).at_tensor(tensor);
        let fail = |m: String| Err(err(m));
        if tensor.is_variable {
            return fail("variable (stateful) tensors are not supported".into());
        }
        match tensor.dtype {
            DType::Int8 => {}
            DType::Uint8 => {
                return fail(
                    "activations are UINT8: only int8 activations are supported (convert with int8 inference input/output types)".into(),
                );
            }
            DType::Int16 => {
                return fail(
                    "activations are INT16 (16x8 quantization): only int8 activations are supported".into(),
                );
            }
            DType::Float32 | DType::Float16 | DType::Float64 | DType::Bfloat16 => {
                return fail(format!(
                    "activations are {}: float or hybrid ops are not supported, only fully int8-quantized graphs",
                    tensor.dtype
                ));
            }
            other => {
                return fail(format!(
                    "activations are {other}: only int8 activations are supported"
                ));
            }
        }
        if tensor.data.is_some() {
            return fail(
                "is a constant where an activation is expected: ratflow ops read activations only there".into(),
            );
        }
        let Some(q) = &tensor.quantization else {
            return fail("int8 tensor without quantization parameters (scale, zero point)".into());
        };
        if !q.is_per_tensor() {
            return fail(format!(
                "per-channel quantization of an activation ({} scales along dimension {}): ratflow tensors have one (S, Z)",
                q.scale.len(),
                q.quantized_dimension
            ));
        }
        let scale = q.scale[0];
        if scale <= 0.0 {
            return fail(format!("scale is {scale}: an activation scale must be > 0"));
        }
        let zp = q.zero_point[0];
        let Ok(zero_point) = i8::try_from(zp) else {
            return fail(format!("zero point {zp} is outside int8"));
        };
        let shape = fold_shape(&tensor.shape).map_err(err)?;
        Ok(Tensor {
            name: self.names[t].clone(),
            shape,
            q: QParams {
                scale: scale as f64,
                zero_point,
            },
        })
    }

    /// The int-model tensor an op reads in input `slot` (an earlier op's output or the graph
    /// input).
    fn read(&self, at: &At, slot: usize) -> Result<(usize, TensorId), MapError> {
        let Some(Some(t)) = at.op.inputs.get(slot) else {
            return Err(at.err(format!(
                "input {slot} is missing ({} inputs)",
                at.op.inputs.len()
            )));
        };
        let tensor = &self.g.tensors[*t];
        match self.ids.get(t) {
            Some(&id) => Ok((*t, id)),
            None if tensor.data.is_some() => Err(at
                .err(format!(
                    "input {slot} is a constant tensor: ratflow's {} reads activations there",
                    at.op.name()
                ))
                .at_tensor(tensor)),
            None => {
                let why = match self.producer[*t] {
                    Some(p) => format!(
                        "is written by op {p} {}, which is not part of the integer graph",
                        self.g.operators[p].name()
                    ),
                    None if self.g.inputs.contains(t) => {
                        "is the float32 graph input itself (only its QUANTIZE may read it)".into()
                    }
                    None => "is neither a graph input nor written by an earlier op".into(),
                };
                Err(at.err(format!("input {slot} {why}")).at_tensor(tensor))
            }
        }
    }

    /// The op's single output as an int-model tensor.
    fn output(&self, at: &At) -> Result<(usize, Tensor), MapError> {
        let [t] = at.op.outputs[..] else {
            return Err(at.err(format!(
                "has {} outputs: ratflow ops write one tensor",
                at.op.outputs.len()
            )));
        };
        if self.producer[t] != Some(at.op.index) {
            return Err(at
                .err("writes a tensor another op writes too")
                .at_tensor(&self.g.tensors[t]));
        }
        let tensor = self.activation(t).map_err(|e| at.wrap(e))?;
        Ok((t, tensor))
    }

    /// Maps one op (or refuses it).
    fn map_op(&mut self, model: &mut Model, op: &Operator) -> Result<(), MapError> {
        let at = self.at(op);
        let mapped = match &op.kind {
            TfOp::Conv2d(o) => {
                self.arity(&at, 2..=3)?;
                let (x, xid) = self.read(&at, 0)?;
                let out = self.output(&at)?;
                let w = self.weights(&at, 1, 4, 0)?;
                let [oc, kh, kw, c] = dims4(&w.tensor.shape);
                let (h, wd, xc) = self.image(&at, x)?;
                if c != xc {
                    return Err(at
                        .err(format!(
                            "the weights have {c} input channels but the input has {xc}: grouped convolutions are not supported"
                        ))
                        .at_tensor(w.tensor));
                }
                let bias = self.bias(&at, oc, x, &w)?;
                let window = geometry(
                    &at,
                    (h, wd),
                    (kh, kw),
                    (o.stride_h, o.stride_w),
                    (o.dilation_h, o.dilation_w),
                    o.padding,
                )?;
                self.check_image_out(&at, out.0, &window, oc)?;
                Mapped {
                    clamp: self.clamp(&at, o.activation, out.0)?,
                    kind: OpKind::Conv2d(Conv2d {
                        window: window.window,
                        in_channels: c,
                        out_channels: oc,
                        weight: w.data.to_vec(),
                        bias,
                        multiplier: Vec::new(),
                        shift: Vec::new(),
                    }),
                    inputs: vec![xid],
                    output: out,
                    from_fc: false,
                    weight_scale: Some(w.scales),
                }
            }
            TfOp::DepthwiseConv2d(o) => {
                self.arity(&at, 2..=3)?;
                let (x, xid) = self.read(&at, 0)?;
                let out = self.output(&at)?;
                let w = self.weights(&at, 1, 4, 3)?;
                let [one, kh, kw, oc] = dims4(&w.tensor.shape);
                if one != 1 {
                    return Err(at
                        .err(format!(
                            "depthwise weights {:?} must be [1, KH, KW, O]",
                            w.tensor.shape
                        ))
                        .at_tensor(w.tensor));
                }
                let (h, wd, c) = self.image(&at, x)?;
                if !oc.is_multiple_of(c) {
                    // LiteRT derives the depth multiplier from the shapes, not the option.
                    return Err(at
                        .err(format!(
                            "{oc} output channels are not a whole multiple of the input's {c} (depth multiplier = output / input channels)"
                        ))
                        .at_tensor(w.tensor));
                }
                let bias = self.bias(&at, oc, x, &w)?;
                let window = geometry(
                    &at,
                    (h, wd),
                    (kh, kw),
                    (o.stride_h, o.stride_w),
                    (o.dilation_h, o.dilation_w),
                    o.padding,
                )?;
                self.check_image_out(&at, out.0, &window, oc)?;
                Mapped {
                    clamp: self.clamp(&at, o.activation, out.0)?,
                    kind: OpKind::DepthwiseConv2d(DepthwiseConv2d {
                        window: window.window,
                        in_channels: c,
                        depth_multiplier: oc / c,
                        weight: w.data.to_vec(),
                        bias,
                        multiplier: Vec::new(),
                        shift: Vec::new(),
                    }),
                    inputs: vec![xid],
                    output: out,
                    from_fc: false,
                    weight_scale: Some(w.scales),
                }
            }
            TfOp::FullyConnected(o) => {
                self.arity(&at, 2..=3)?;
                let (x, xid) = self.read(&at, 0)?;
                let out = self.output(&at)?;
                let w = self.weights(&at, 1, 2, 0)?;
                let (oc, n) = (w.tensor.shape[0], w.tensor.shape[1]);
                let elements = self.g.tensors[x].element_count();
                if !elements.is_multiple_of(n) {
                    return Err(at.err(format!(
                        "the input's {elements} elements are not whole rows of the weights' {n} columns"
                    )));
                }
                let rows = elements / n;
                let y = &self.g.tensors[out.0];
                if y.element_count() != rows * oc {
                    return Err(at
                        .err(format!(
                            "the output has {} elements, the op computes {rows} x {oc}",
                            y.element_count()
                        ))
                        .at_tensor(y));
                }
                let bias = self.bias(&at, oc, x, &w)?;
                let clamp = self.clamp(&at, o.activation, out.0)?;
                let kind = if rows == 1 {
                    OpKind::Dense(Dense {
                        in_features: n,
                        out_features: oc,
                        weight: w.data.to_vec(),
                        bias,
                        multiplier: Vec::new(),
                        shift: Vec::new(),
                    })
                } else {
                    // The same weights on every row (keep_num_dims, or a batch of rows): a
                    // 1x1 convolution over [A, B, N] computes exactly those dot products.
                    let xs = model.tensors[xid].shape.clone();
                    match (&xs[..], &out.1.shape[..]) {
                        ([a, b, xn], [ya, yb, yo]) if *xn == n && (ya, yb, *yo) == (a, b, oc) => {
                            OpKind::Conv2d(Conv2d {
                                window: Window {
                                    kernel: [1, 1],
                                    stride: [1, 1],
                                    dilation: [1, 1],
                                    padding: [0; 4],
                                },
                                in_channels: n,
                                out_channels: oc,
                                weight: w.data.to_vec(),
                                bias,
                                multiplier: Vec::new(),
                                shift: Vec::new(),
                            })
                        }
                        _ => {
                            return Err(at.err(format!(
                                "applies its weights to {rows} rows (input {:?}, output {:?}); ratflow maps that only when the rows fold to [H, W, {n}] -> [H, W, {oc}]",
                                self.g.tensors[x].shape, y.shape
                            )));
                        }
                    }
                };
                Mapped {
                    clamp,
                    kind,
                    inputs: vec![xid],
                    output: out,
                    from_fc: true,
                    weight_scale: Some(w.scales),
                }
            }
            TfOp::AveragePool2d(o) | TfOp::MaxPool2d(o) => {
                self.arity(&at, 1..=1)?;
                let (x, xid) = self.read(&at, 0)?;
                let out = self.output(&at)?;
                let (h, wd, c) = self.image(&at, x)?;
                let window = geometry(
                    &at,
                    (h, wd),
                    (o.filter_h, o.filter_w),
                    (o.stride_h, o.stride_w),
                    (1, 1),
                    o.padding,
                )?;
                self.check_image_out(&at, out.0, &window, c)?;
                self.same_qparams(&at, x, out.0)?;
                let window = window.window;
                Mapped {
                    clamp: self.clamp(&at, o.activation, out.0)?,
                    kind: if matches!(op.kind, TfOp::MaxPool2d(_)) {
                        OpKind::MaxPool2d(MaxPool2d { window })
                    } else {
                        OpKind::AvgPool2d(AvgPool2d { window })
                    },
                    inputs: vec![xid],
                    output: out,
                    from_fc: false,
                    weight_scale: None,
                }
            }
            TfOp::Add(o) => {
                self.arity(&at, 2..=2)?;
                let (a, aid) = self.read(&at, 0)?;
                let (b, bid) = self.read(&at, 1)?;
                let out = self.output(&at)?;
                let (sa, sb) = (&self.g.tensors[a].shape, &self.g.tensors[b].shape);
                if sa != sb {
                    return Err(at.err(format!(
                        "broadcast ADD: input shapes {sa:?} and {sb:?} differ; ratflow's add needs equal shapes"
                    )));
                }
                let sy = &self.g.tensors[out.0].shape;
                if sy != sa {
                    return Err(at
                        .err(format!("the output shape {sy:?} is not the inputs' {sa:?}"))
                        .at_tensor(&self.g.tensors[out.0]));
                }
                Mapped {
                    clamp: self.clamp(&at, o.activation, out.0)?,
                    kind: OpKind::Add(Add {
                        multiplier: [0; 3],
                        shift: [0; 3],
                        left_shift: quant::ADD_LEFT_SHIFT,
                    }),
                    inputs: vec![aid, bid],
                    output: out,
                    from_fc: false,
                    weight_scale: None,
                }
            }
            TfOp::Reshape(_) | TfOp::Squeeze(_) | TfOp::ExpandDims => {
                // The second input (RESHAPE's shape, EXPAND_DIMS' axis) only decides the
                // output shape, which the file declares.
                let arity = match op.kind {
                    TfOp::Squeeze(_) => 1..=1,
                    TfOp::ExpandDims => 2..=2,
                    _ => 1..=2,
                };
                self.arity(&at, arity)?;
                let (x, xid) = self.read(&at, 0)?;
                let out = self.output(&at)?;
                let (xn, yn) = (
                    self.g.tensors[x].element_count(),
                    self.g.tensors[out.0].element_count(),
                );
                if xn != yn {
                    return Err(at
                        .err(format!(
                            "the output has {yn} elements, the input {xn}: a reshape keeps every element"
                        ))
                        .at_tensor(&self.g.tensors[out.0]));
                }
                self.same_qparams(&at, x, out.0)?;
                Mapped {
                    clamp: Clamp::NONE,
                    kind: OpKind::Reshape(Reshape),
                    inputs: vec![xid],
                    output: out,
                    from_fc: false,
                    weight_scale: None,
                }
            }
            TfOp::Softmax(_) => {
                return Err(self.refuse_op(
                    &at,
                    "SOFTMAX inside the graph: only a final SOFTMAX (whose output nothing but a DEQUANTIZE reads) is dropped; the integer graph has no softmax",
                ));
            }
            TfOp::Quantize => {
                return Err(self.refuse_op(
                    &at,
                    "QUANTIZE inside the graph (a requantize or a float-to-int8 conversion): only the QUANTIZE of a float32 graph input is supported",
                ));
            }
            TfOp::Dequantize => {
                return Err(self.refuse_op(
                    &at,
                    "DEQUANTIZE inside the graph (float ops follow): only a DEQUANTIZE of the graph's final output is supported",
                ));
            }
            TfOp::Other(name) => {
                return Err(self.refuse_op(
                    &at,
                    &format!("{name} is not an op of ratflow's int-model ({SUPPORTED})"),
                ));
            }
        };
        self.push(model, &at, mapped)
    }

    fn refuse_op(&self, at: &At, message: &str) -> MapError {
        let e = at.err(message);
        match at.op.outputs.first() {
            Some(&t) => e.at_tensor(&self.g.tensors[t]),
            None => e,
        }
    }

    /// The op's input count must be in `range`.
    fn arity(&self, at: &At, range: std::ops::RangeInclusive<usize>) -> Result<(), MapError> {
        let n = at.op.inputs.len();
        if !range.contains(&n) {
            let want = if range.start() == range.end() {
                range.start().to_string()
            } else {
                format!("{} to {}", range.start(), range.end())
            };
            return Err(at.err(format!("has {n} inputs, {} takes {want}", at.op.name())));
        }
        Ok(())
    }

    /// Derives the rescalers of a mapped op and appends it to the model.
    fn push(&mut self, model: &mut Model, at: &At, m: Mapped) -> Result<(), MapError> {
        let Mapped {
            mut kind,
            inputs,
            output: (t, out),
            clamp,
            from_fc,
            weight_scale,
        } = m;
        let rounding = self.opts.kernels.rounding(&kind, from_fc);
        let reals: Option<Vec<f64>> = match &kind {
            OpKind::Add(a) => Some(
                quant::add_factors(
                    model.tensors[inputs[0]].q.scale,
                    model.tensors[inputs[1]].q.scale,
                    out.q.scale,
                    a.left_shift,
                )
                .to_vec(),
            ),
            _ => weight_scale.as_ref().map(|ws| {
                let (sx, sy) = (model.tensors[inputs[0]].q.scale, out.q.scale);
                // double(S_x) * double(S_w[c]) / double(S_y), the order TFLite multiplies
                // in and the one `Model::real_factors` re-derives with.
                ws.iter().map(|&sw| sx * sw / sy).collect()
            }),
        };
        if let Some(reals) = &reals {
            let r = Rescale::plain(self.opts.k_bits, rounding);
            let mut ds = Vec::with_capacity(reals.len());
            let mut underflow = Vec::new();
            for (c, &real) in reals.iter().enumerate() {
                let d = r
                    .derive(real)
                    .map_err(|e| at.err(format!("rescaler {c}: {e}")))?;
                r.check(d.mult).map_err(|why| {
                    at.err(format!(
                        "rescaler {c} (M = {real:e}) at k = {}, {rounding} rounding: {why}",
                        r.k_bits
                    ))
                })?;
                if d.underflow {
                    underflow.push(c);
                }
                ds.push(d.mult);
            }
            if !underflow.is_empty() {
                self.warnings.push(format!(
                    "op {} {} {}: rescaler(s) {underflow:?} underflow (M below 2^-{} at k = {}): (m, s) = (0, 0), the output is the zero point, as in LiteRT",
                    at.op.index,
                    at.op.name(),
                    super::reader::quoted(&at.name),
                    quant::MAX_SHIFT - r.k_bits + 1,
                    r.k_bits
                ));
            }
            kind.set_dyadics(&ds);
        }
        let kind_name = kind.name();
        let id = model.push_op(&at.name, inputs, out, clamp, kind);
        let op = model.ops.last_mut().expect("just pushed");
        op.rounding = reals.is_some().then_some(rounding);
        op.weight_scale = weight_scale;
        self.ids.insert(t, id);
        self.from_fc.push(from_fc);
        self.ops.push(MappedOp {
            tflite_index: at.op.index,
            tflite_op: at.op.name().to_string(),
            name: at.name.clone(),
            kind: kind_name,
            rounding: reals.is_some().then_some(rounding.as_str()),
        });
        Ok(())
    }

    /// The constant int8 weights in input `slot`: symmetric, per tensor or per channel along
    /// `axis` (the output channels), with their scales per output channel.
    fn weights(
        &self,
        at: &At,
        slot: usize,
        rank: usize,
        axis: usize,
    ) -> Result<Weights<'a>, MapError> {
        let Some(Some(t)) = at.op.inputs.get(slot) else {
            return Err(at.err(format!("has no weights (input {slot})")));
        };
        let tensor = &self.g.tensors[*t];
        let fail = |m: String| Err(at.err(m).at_tensor(tensor));
        let Some(data) = &tensor.data else {
            return fail(
                "the weights are not a constant tensor: ratflow bakes constant weights".into(),
            );
        };
        let data = match (tensor.dtype, data) {
            (DType::Int8, TensorData::Int8(v)) => v.as_slice(),
            (DType::Uint8, _) => {
                return fail(
                    "the weights are UINT8 (asymmetric uint8 quantization): only symmetric int8 weights are supported".into(),
                );
            }
            (DType::Float32 | DType::Float16, _) => {
                return fail(format!(
                    "the weights are {}: float models are not supported, only int8-quantized ones",
                    tensor.dtype
                ));
            }
            (other, _) => {
                return fail(format!(
                    "the weights are {other}: only int8 weights are supported"
                ));
            }
        };
        if tensor.shape.len() != rank {
            return fail(format!(
                "the weights have shape {:?}, {} expects rank {rank}",
                tensor.shape,
                at.op.name()
            ));
        }
        let channels = tensor.shape[axis];
        let Some(q) = &tensor.quantization else {
            return fail("int8 weights without quantization parameters".into());
        };
        if let Some((c, z)) = q.zero_point.iter().enumerate().find(|(_, z)| **z != 0) {
            return fail(format!(
                "asymmetric weights (zero point {z} at index {c}): only symmetric int8 weights (zero point 0) are supported"
            ));
        }
        if !q.is_per_tensor() && q.quantized_dimension != axis {
            return fail(format!(
                "per-channel scales along dimension {}, but the output channels are dimension {axis}",
                q.quantized_dimension
            ));
        }
        if let Some((c, s)) = q.scale.iter().enumerate().find(|(_, s)| **s <= 0.0) {
            return fail(format!(
                "weight scale[{c}] is {s}: ratflow needs positive weight scales"
            ));
        }
        let scales = (0..channels)
            .map(|c| q.scale[if q.is_per_tensor() { 0 } else { c }] as f64)
            .collect();
        Ok(Weights {
            tensor,
            data,
            scales,
        })
    }

    /// The int32 bias in input 2, or zeros when the op has none. Its scale should be
    /// `S_x * S_w[c]`; TFLite adds the stored integers whatever the scale says, and so does
    /// ratflow, so a different scale is reported, not refused.
    fn bias(
        &mut self,
        at: &At,
        channels: usize,
        x: usize,
        w: &Weights,
    ) -> Result<Vec<i32>, MapError> {
        let Some(Some(t)) = at.op.inputs.get(2) else {
            return Ok(vec![0; channels]);
        };
        let tensor = &self.g.tensors[*t];
        let fail = |m: String| Err(at.err(m).at_tensor(tensor));
        let values = match (&tensor.data, tensor.dtype) {
            (Some(TensorData::Int32(v)), DType::Int32) => v,
            (None, _) => {
                return fail("the bias is not a constant tensor".into());
            }
            (_, DType::Int64) => {
                return fail(
                    "the bias is INT64 (16x8 quantization): int8 ops take an int32 bias".into(),
                );
            }
            (_, other) => {
                return fail(format!("the bias is {other}: int8 ops take an int32 bias"));
            }
        };
        if values.len() != channels {
            return fail(format!(
                "the bias has {} values for {channels} output channels",
                values.len()
            ));
        }
        let sx = self.g.tensors[x]
            .quantization
            .as_ref()
            .map_or(0.0, |q| q.scale[0] as f64);
        match &tensor.quantization {
            None => self.warnings.push(format!(
                "op {} {} {}: the bias has no scale (TFLite expects S_x * S_w); its integers are added as stored",
                at.op.index,
                at.op.name(),
                super::reader::quoted(&at.name)
            )),
            Some(q) => {
                let mut worst: Option<(usize, f64)> = None;
                let mut count = 0;
                for (c, &sw) in w.scales.iter().enumerate() {
                    let sb = q.scale[if q.is_per_tensor() { 0 } else { c.min(q.scale.len() - 1) }];
                    let want = sx * sw;
                    let rel = ((sb as f64) - want).abs() / want;
                    // The converter stores float32(S_x * S_w): within 2^-24 of the double
                    // product. TFLite's own check allows 1e-6.
                    if rel > 1e-6 {
                        count += 1;
                        if worst.is_none_or(|(_, r)| rel > r) {
                            worst = Some((c, rel));
                        }
                    }
                }
                if let Some((c, rel)) = worst {
                    self.warnings.push(format!(
                        "op {} {} {}: the bias scale differs from S_x * S_w on {count} of {channels} channel(s) (largest relative difference {rel:.3e}, channel {c}); TFLite adds the int32 bias as stored, and so does ratflow",
                        at.op.index,
                        at.op.name(),
                        super::reader::quoted(&at.name)
                    ));
                }
            }
        }
        Ok(values.clone())
    }

    /// `(H, W, C)` of a `[1, H, W, C]` input.
    fn image(&self, at: &At, x: usize) -> Result<(usize, usize, usize), MapError> {
        let t = &self.g.tensors[x];
        match t.shape[..] {
            [1, h, w, c] => Ok((h, w, c)),
            _ => Err(at
                .err(format!(
                    "the input has shape {:?}; {} reads [1, H, W, C]",
                    t.shape,
                    at.op.name()
                ))
                .at_tensor(t)),
        }
    }

    /// The declared output shape must be `[1, OH, OW, channels]` as LiteRT computes it.
    fn check_image_out(
        &self,
        at: &At,
        y: usize,
        geo: &Geometry,
        channels: usize,
    ) -> Result<(), MapError> {
        let t = &self.g.tensors[y];
        let want = [1, geo.out.0, geo.out.1, channels];
        if t.shape != want {
            return Err(at
                .err(format!(
                    "the output is declared {:?} but {} computes {want:?}",
                    t.shape,
                    at.op.name()
                ))
                .at_tensor(t));
        }
        Ok(())
    }

    /// Pools and reshapes copy codes: LiteRT never rescales them, so input and output must
    /// share (S, Z) exactly for the int-model to say the same thing.
    fn same_qparams(&self, at: &At, x: usize, y: usize) -> Result<(), MapError> {
        let q = |t: usize| {
            self.g.tensors[t]
                .quantization
                .as_ref()
                .map(|q| (q.scale[0], q.zero_point[0]))
        };
        if q(x) != q(y) {
            let show = |v: Option<(f32, i64)>| match v {
                Some((s, z)) => format!("({s:e}, {z})"),
                None => "none".into(),
            };
            return Err(at
                .err(format!(
                    "the output's (S, Z) = {} differs from the input's {}: LiteRT's {} copies codes without rescaling, so ratflow needs them equal",
                    show(q(y)),
                    show(q(x)),
                    at.op.name()
                ))
                .at_tensor(&self.g.tensors[y]));
        }
        Ok(())
    }

    /// The fused activation as clamp bounds on output `y`.
    fn clamp(&self, at: &At, act: Activation, y: usize) -> Result<Clamp, MapError> {
        let q = self.g.tensors[y]
            .quantization
            .as_ref()
            .expect("outputs were checked to be quantized");
        let zp = i8::try_from(q.zero_point[0]).expect("outputs were checked to be int8");
        activation_clamp(act, q.scale[0], zp).map_err(|m| at.err(m).at_tensor(&self.g.tensors[y]))
    }
}

/// The ops the importer maps, for refusal messages.
const SUPPORTED: &str = "supported: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D, ADD, RESHAPE, SQUEEZE, EXPAND_DIMS, a final SOFTMAX, QUANTIZE/DEQUANTIZE at float32 graph edges";

/// An op ready to be appended: its kind without rescalers yet.
struct Mapped {
    kind: OpKind,
    inputs: Vec<TensorId>,
    /// (file tensor, int-model tensor) of the output.
    output: (usize, Tensor),
    clamp: Clamp,
    /// Whether it came from a FULLY_CONNECTED (dense rounding and the near-tie check).
    from_fc: bool,
    weight_scale: Option<Vec<f64>>,
}

/// Constant weights with their per-output-channel scales.
struct Weights<'a> {
    tensor: &'a TfTensor,
    data: &'a [i8],
    scales: Vec<f64>,
}

impl MapError {
    fn with_message_prefix(mut self, prefix: &str) -> MapError {
        self.message = format!("{prefix}{}", self.message);
        self
    }
}

impl At<'_> {
    /// Adds this op to an error raised about one of its tensors.
    fn wrap(&self, mut e: MapError) -> MapError {
        if e.op.is_none() {
            e.op = Some((self.op.index, self.op.name().to_string(), self.name.clone()));
        }
        e
    }
}

fn dims4(shape: &[usize]) -> [usize; 4] {
    [shape[0], shape[1], shape[2], shape[3]]
}

/// A window with TFLite's resolved padding and output size.
struct Geometry {
    window: Window,
    /// `(OH, OW)` as LiteRT's `ComputeOutSize` gives it.
    out: (usize, usize),
}

/// TFLite's `ComputeOutSize` and `ComputePaddingWithOffset` (`kernels/padding.h`) along one
/// axis: `(out, pad_before, pad_after)`. SAME: `out = ceil(n / s)`, total padding
/// `max(0, (out - 1) s + (k - 1) d + 1 - n)`, the odd unit after (bottom/right); VALID:
/// `out = (n + s - ((k - 1) d + 1)) / s` (C division), no padding. `None` when the output
/// would be empty or a size overflows.
pub fn tflite_axis(
    padding: Padding,
    n: usize,
    k: usize,
    s: usize,
    d: usize,
) -> Option<(usize, usize, usize)> {
    let (n, k, s, d) = (n as i128, k as i128, s as i128, d as i128);
    if s < 1 || d < 1 || k < 1 {
        return None;
    }
    let effective = (k - 1) * d + 1;
    // C's integer division truncates toward zero; the numerator can be negative for VALID.
    let out = match padding {
        Padding::Same => (n + s - 1) / s,
        Padding::Valid => (n + s - effective) / s,
    };
    if out < 1 {
        return None;
    }
    let total = ((out - 1) * s + effective - n).max(0);
    let before = total / 2;
    let after = before + total % 2;
    Some((
        usize::try_from(out).ok()?,
        usize::try_from(before).ok()?,
        usize::try_from(after).ok()?,
    ))
}

/// The window of a convolution or pool with TFLite's padding resolved.
fn geometry(
    at: &At,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (dh, dw): (usize, usize),
    padding: Padding,
) -> Result<Geometry, MapError> {
    let axis = |n, k, s, d, what: &str| {
        tflite_axis(padding, n, k, s, d).ok_or_else(|| {
            at.err(format!(
                "a {k}-tap window (dilation {d}, stride {s}) has no {} output on {n} input {what}",
                match padding {
                    Padding::Same => "SAME",
                    Padding::Valid => "VALID",
                }
            ))
        })
    };
    let (oh, top, bottom) = axis(h, kh, sh, dh, "rows")?;
    let (ow, left, right) = axis(w, kw, sw, dw, "columns")?;
    let window = Window {
        kernel: [kh, kw],
        stride: [sh, sw],
        dilation: [dh, dw],
        padding: [top, bottom, left, right],
    };
    window.check(true).map_err(|e| at.err(e))?;
    // The int-model computes its output size from the explicit padding; it must agree.
    if window.out_hw(h, w) != Ok((oh, ow)) {
        return Err(at.err(format!(
            "internal: the resolved padding {:?} gives {:?}, TFLite {:?}",
            window.padding,
            window.out_hw(h, w),
            (oh, ow)
        )));
    }
    Ok(Geometry {
        window,
        out: (oh, ow),
    })
}

/// TFLite's `CalculateActivationRangeQuantized` for int8: NONE [-128, 127]; RELU
/// [max(-128, q(0)), 127]; RELU6 [max(-128, q(0)), min(127, q(6))]; RELU_N1_TO_1
/// [max(-128, q(-1)), min(127, q(1))], with `q(f) = Z + round_half_away(float32(f) / S)` in
/// float32 (LiteRT refuses a quotient outside int32, and so does this).
pub fn activation_clamp(act: Activation, scale: f32, zp: i8) -> Result<Clamp, String> {
    let q = |f: f32| -> Result<i64, String> {
        let tmp = (f / scale).round();
        if !(tmp >= i32::MIN as f32 && tmp <= i32::MAX as f32) {
            return Err(format!(
                "the fused activation bound {f} / S = {tmp} overflows int32 (S = {scale:e}); LiteRT refuses it too"
            ));
        }
        Ok(zp as i64 + tmp as i64)
    };
    let to_i8 = |v: i64| v.clamp(-128, 127) as i8;
    Ok(match act {
        Activation::None => Clamp::NONE,
        Activation::Relu => Clamp {
            lo: to_i8(q(0.0)?.max(-128)),
            hi: 127,
        },
        Activation::Relu6 => Clamp {
            lo: to_i8(q(0.0)?.max(-128)),
            hi: to_i8(q(6.0)?.min(127)),
        },
        Activation::ReluN1To1 => Clamp {
            lo: to_i8(q(-1.0)?.max(-128)),
            hi: to_i8(q(1.0)?.min(127)),
        },
        Activation::Tanh | Activation::SignBit => {
            return Err(format!(
                "fused activation {}: ratflow's ops clamp only (NONE, RELU, RELU_N1_TO_1, RELU6)",
                if act == Activation::Tanh {
                    "TANH"
                } else {
                    "SIGN_BIT"
                }
            ));
        }
    })
}

/// Folds a TFLite shape into the int-model's `[H, W, C]` or `[N]`: `[1, H, W, C]` ->
/// `[H, W, C]`; `[1, T, C]` -> `[T, 1, C]` (a 1-D signal, channels last); `[1, N]` and `[N]`
/// -> `[N]`; `[A, B]` -> `[A, B, 1]`; a scalar -> `[1]`; leading 1s beyond rank 4 are dropped.
/// A batch other than 1 and ranks above 4 are refused. Element order is unchanged (row-major).
pub fn fold_shape(shape: &[usize]) -> Result<Vec<usize>, String> {
    if shape.contains(&0) {
        return Err(format!("shape {shape:?} has no elements"));
    }
    let mut s = shape;
    while s.len() > 4 && s[0] == 1 {
        s = &s[1..];
    }
    Ok(match *s {
        [] => vec![1],
        [n] | [1, n] => vec![n],
        [a, b] => vec![a, b, 1],
        [1, t, c] => vec![t, 1, c],
        [1, h, w, c] => vec![h, w, c],
        _ => {
            return Err(format!(
                "shape {shape:?}: ratflow folds [1, H, W, C], [1, T, C], [1, N], [A, B] and [N]; a batch other than 1 is not supported"
            ));
        }
    })
}

/// A unique int-model name for every file tensor: the file's name, `tensor_<i>` when empty,
/// `<name>#<i>` for a repeated name (LiteRT does not require unique names).
fn unique_names(g: &TfliteGraph) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    g.tensors
        .iter()
        .map(|t| {
            let base = if t.name.is_empty() {
                format!("tensor_{}", t.index)
            } else {
                t.name.clone()
            };
            let mut name = base.clone();
            if seen.contains(&name) {
                name = format!("{base}#{}", t.index);
            }
            while seen.contains(&name) {
                name.push('_');
            }
            seen.insert(name.clone());
            name
        })
        .collect()
}

/// The `provenance` object of an imported model (the source file and its hash are added by
/// [`import_file`]).
fn provenance(
    g: &TfliteGraph,
    opts: &ImportOptions,
    report: &ImportReport,
    edges: &Edges,
    model: &Model,
) -> serde_json::Value {
    let mut rounding = serde_json::Map::new();
    for op in &report.ops {
        if let Some(r) = op.rounding {
            let key = if op.tflite_op == "FULLY_CONNECTED" && op.kind != "dense" {
                format!("{} (from FULLY_CONNECTED)", op.kind)
            } else {
                op.kind.to_string()
            };
            rounding.insert(key, json!(r));
        }
    }
    let edge = |t: usize| {
        let q = g.tensors[t].quantization.as_ref();
        json!({
            "tensor": g.tensors[t].name,
            "scale": q.map(|q| q.scale[0]),
            "zero_point": q.map(|q| q.zero_point[0]),
        })
    };
    let float_input = edges.float_input.map(|(f, _)| {
        json!({
            "float32": g.tensors[f].name,
            "int8": model.input().name,
            "quantize": { "scale": model.input().q.scale, "zero_point": model.input().q.zero_point },
        })
    });
    let float_outputs: Vec<_> = report
        .dropped
        .iter()
        .filter(|d| d.tflite_op == "DEQUANTIZE")
        .map(|d| json!({ "int8": d.input, "float32": d.output }))
        .collect();
    json!({
        "importer": format!("ratflow {} import (TFLite)", env!("CARGO_PKG_VERSION")),
        "tflite": {
            "description": g.description,
            "subgraph": g.subgraph_name,
            "schema_version": g.schema_version,
            "operators": g.operators.len(),
            "graph_input": edge(g.inputs[0]),
        },
        "kernels": opts.kernels.as_str(),
        "kernel_set": opts.kernels.describe(),
        "k_bits": opts.k_bits,
        "rounding": rounding,
        "real_multipliers": "double(S_x) * double(S_w[c]) / double(S_y) from the file's float32 scales; ADD: quant::add_factors, left shift 20",
        "float_input": float_input,
        "float_outputs": float_outputs,
        "dropped": report.dropped,
        "ops": report.ops,
        "dense_near_ties": report.near_ties,
        "warnings": report.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ComputeOutSize` / `ComputePaddingWithOffset` on the cases that matter: SAME with an
    /// odd total (extra at the end), even kernels, dilation, strides larger than the kernel,
    /// VALID dropping the remainder, and no output.
    #[test]
    fn tflite_padding_and_output_sizes() {
        use Padding::{Same, Valid};
        // (padding, n, k, s, d) -> (out, before, after)
        let cases = [
            ((Same, 49, 10, 2, 1), Some((25, 4, 5))),
            ((Same, 10, 4, 2, 1), Some((5, 1, 1))),
            ((Same, 7, 3, 1, 1), Some((7, 1, 1))),
            ((Same, 8, 3, 2, 1), Some((4, 0, 1))),
            ((Same, 7, 4, 1, 1), Some((7, 1, 2))),
            ((Same, 9, 3, 1, 2), Some((9, 2, 2))),
            ((Same, 6, 1, 4, 1), Some((2, 0, 0))),
            ((Same, 32, 3, 2, 1), Some((16, 0, 1))),
            ((Valid, 9, 3, 2, 1), Some((4, 0, 0))),
            ((Valid, 7, 2, 2, 1), Some((3, 0, 0))),
            ((Valid, 11, 3, 1, 4), Some((3, 0, 0))),
            ((Valid, 2, 3, 1, 1), None),
            ((Valid, 5, 3, 1, 3), None),
        ];
        for ((p, n, k, s, d), want) in cases {
            assert_eq!(
                tflite_axis(p, n, k, s, d),
                want,
                "{p:?} n {n} k {k} s {s} d {d}"
            );
        }
    }

    /// `CalculateActivationRangeQuantized` for int8, float32 division, half away from zero.
    #[test]
    fn activation_bounds() {
        let c = |act, s: f32, z| activation_clamp(act, s, z).map(|c| (c.lo, c.hi));
        assert_eq!(c(Activation::None, 0.1, 3), Ok((-128, 127)));
        assert_eq!(c(Activation::Relu, 0.1, -40), Ok((-40, 127)));
        // RELU6 with S = 12/255: 6/S = 127.5 in float32 rounds away to 128, bound 0.
        assert_eq!(c(Activation::Relu6, 12.0 / 255.0, -128), Ok((-128, 0)));
        assert_eq!(c(Activation::Relu6, 6.0 / 255.0, -128), Ok((-128, 127)));
        assert_eq!(c(Activation::Relu6, 0.01, 100), Ok((100, 127)));
        // RELU_N1_TO_1: 1 / 0.013 = 76.9 -> 77.
        assert_eq!(c(Activation::ReluN1To1, 0.013, 5), Ok((-72, 82)));
        assert_eq!(c(Activation::ReluN1To1, 0.001, 0), Ok((-128, 127)));
        assert!(
            c(Activation::Relu6, 1e-30, 0)
                .unwrap_err()
                .contains("overflows int32")
        );
        assert!(c(Activation::Tanh, 0.1, 0).unwrap_err().contains("TANH"));
        assert!(
            c(Activation::SignBit, 0.1, 0)
                .unwrap_err()
                .contains("SIGN_BIT")
        );
    }

    #[test]
    fn shape_folding() {
        let f = |s: &[usize]| fold_shape(s);
        assert_eq!(f(&[1, 49, 10, 1]), Ok(vec![49, 10, 1]));
        assert_eq!(f(&[1, 640]), Ok(vec![640]));
        assert_eq!(f(&[640]), Ok(vec![640]));
        assert_eq!(f(&[49, 10]), Ok(vec![49, 10, 1]));
        assert_eq!(f(&[1, 25, 64]), Ok(vec![25, 1, 64]));
        assert_eq!(f(&[]), Ok(vec![1]));
        assert_eq!(f(&[1, 1, 2, 3, 4]), Ok(vec![2, 3, 4]));
        assert!(f(&[2, 7, 9, 3]).unwrap_err().contains("batch"));
        assert!(f(&[3, 4, 5]).is_err());
        assert!(f(&[1, 0, 3]).unwrap_err().contains("no elements"));
        assert!(f(&[2, 1, 1, 1, 1]).is_err());
    }
}
