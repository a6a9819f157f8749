//! Reads a `.tflite` flatbuffer into plain, validated Rust data ([`TfliteGraph`]).
//!
//! Two passes, in this order, before any value from the file is used:
//! 1. the flatbuffers verifier (`root_as_model_with_opts`), with limits scaled to the file
//!    size, proves every offset, vector and string lies inside the bytes, so the generated
//!    accessors cannot read out of bounds;
//! 2. TFLite's own invariants, which the verifier cannot know: one subgraph, every tensor,
//!    buffer and operator-code index in range, buffer lengths equal to shape x element size
//!    (checked arithmetic, dimensions non-negative and bounded), buffers stored past the
//!    flatbuffer (the > 2 GB extension) inside the file, quantization arrays consistent with
//!    the shape (the checks of LiteRT's `InterpreterBuilder::ParseQuantization`), typed options
//!    in range for the ops the importer maps.
//!
//! Nothing is allocated from a size the file declares until the bytes behind it have been
//! checked to exist. Every error is one line ([`ReadError`]) naming the op (index and type) and
//! the tensor (index and name) where one is involved. Other ops are returned as
//! [`OpKind::Other`] so that the mapping layer can refuse them by name.

use super::schema_generated::tflite as fb;
use flatbuffers::{ErrorTraceDetail, InvalidFlatbuffer, VerifierOptions};
use std::fmt;
use std::path::Path;

/// The schema version LiteRT accepts (`TFLITE_SCHEMA_VERSION`); LiteRT refuses others.
pub const SCHEMA_VERSION: u32 = 3;
/// The file identifier at bytes 4..8 of every `.tflite` flatbuffer.
pub const FILE_IDENTIFIER: &[u8; 4] = b"TFL3";
/// Largest tensor rank accepted. LiteRT's kernels stop at rank 6 (some at 8); a larger rank
/// in a file is corruption, and bounding it bounds the work per tensor.
pub const MAX_RANK: usize = 16;
/// Largest element count of one tensor: LiteRT sizes tensors with `int` and `size_t`, and
/// every ratflow consumer indexes with `usize`; 2^31 - 1 keeps byte counts of 16-byte elements
/// far from overflow on every platform.
pub const MAX_ELEMENTS: u64 = i32::MAX as u64;
/// Longest name quoted in an error message, in characters (TFLite joins fused op names with
/// `;`, and a corrupted length may make a "name" as long as the file).
const MAX_NAME_IN_ERROR: usize = 120;

/// One subgraph of a `.tflite` model, validated. Indices in operators and in `inputs` /
/// `outputs` are positions in `tensors` and were checked to be in range.
#[derive(Debug, Clone, PartialEq)]
pub struct TfliteGraph {
    /// `Model.version` (always [`SCHEMA_VERSION`] once read).
    pub schema_version: u32,
    /// `Model.description` (the converter writes e.g. "MLIR Converted.").
    pub description: Option<String>,
    /// `SubGraph.name`, often "main".
    pub subgraph_name: Option<String>,
    /// Every tensor of the subgraph, in file order (`tensors[i].index == i`).
    pub tensors: Vec<Tensor>,
    /// Every operator, in the file's execution order (`operators[i].index == i`).
    pub operators: Vec<Operator>,
    /// Tensor indices of the graph inputs.
    pub inputs: Vec<usize>,
    /// Tensor indices of the graph outputs.
    pub outputs: Vec<usize>,
}

impl TfliteGraph {
    /// The tensor at `index`, if any.
    pub fn tensor(&self, index: usize) -> Option<&Tensor> {
        self.tensors.get(index)
    }
}

/// A tensor of the subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Position in [`TfliteGraph::tensors`].
    pub index: usize,
    /// The file's name (empty if absent); converter names join fused ops with `;`.
    pub name: String,
    /// Dimensions as stored (TFLite's NHWC for images, batch first). A rank-0 shape is a
    /// scalar (1 element).
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// `None` when the file has no scales (a float tensor, or a quantized type without
    /// parameters); otherwise checked as LiteRT's `ParseQuantization` does.
    pub quantization: Option<Quantization>,
    /// Constant data, `None` for activations (an empty buffer). Its length was checked
    /// against `shape` and `dtype` before it was copied.
    pub data: Option<TensorData>,
    /// Index into the model's buffer table (0 is the empty sentinel).
    pub buffer: usize,
    /// `Tensor.is_variable` (state of stateful ops; never set in the MLPerf Tiny models).
    pub is_variable: bool,
}

impl Tensor {
    /// Number of elements (product of `shape`; 1 for a scalar). Cannot overflow: every shape
    /// was checked against [`MAX_ELEMENTS`] on reading.
    pub fn element_count(&self) -> usize {
        self.shape.iter().product()
    }
}

/// TFLite's `TensorType`, with the file's code kept for values this schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Float32,
    Float16,
    Int32,
    Uint8,
    Int64,
    String,
    Bool,
    Int16,
    Complex64,
    Int8,
    Float64,
    Complex128,
    Uint64,
    Resource,
    Variant,
    Uint32,
    Uint16,
    Int4,
    Bfloat16,
    Int2,
    Uint4,
    Float8E4m3fn,
    Float8E5m2,
    /// A code newer than the schema these bindings were generated from.
    Unknown(i8),
}

impl DType {
    fn from_fb(t: fb::TensorType) -> DType {
        match t {
            fb::TensorType::FLOAT32 => DType::Float32,
            fb::TensorType::FLOAT16 => DType::Float16,
            fb::TensorType::INT32 => DType::Int32,
            fb::TensorType::UINT8 => DType::Uint8,
            fb::TensorType::INT64 => DType::Int64,
            fb::TensorType::STRING => DType::String,
            fb::TensorType::BOOL => DType::Bool,
            fb::TensorType::INT16 => DType::Int16,
            fb::TensorType::COMPLEX64 => DType::Complex64,
            fb::TensorType::INT8 => DType::Int8,
            fb::TensorType::FLOAT64 => DType::Float64,
            fb::TensorType::COMPLEX128 => DType::Complex128,
            fb::TensorType::UINT64 => DType::Uint64,
            fb::TensorType::RESOURCE => DType::Resource,
            fb::TensorType::VARIANT => DType::Variant,
            fb::TensorType::UINT32 => DType::Uint32,
            fb::TensorType::UINT16 => DType::Uint16,
            fb::TensorType::INT4 => DType::Int4,
            fb::TensorType::BFLOAT16 => DType::Bfloat16,
            fb::TensorType::INT2 => DType::Int2,
            fb::TensorType::UINT4 => DType::Uint4,
            fb::TensorType::FLOAT8_E4M3FN => DType::Float8E4m3fn,
            fb::TensorType::FLOAT8_E5M2 => DType::Float8E5m2,
            other => DType::Unknown(other.0),
        }
    }

    /// TFLite's spelling (`INT8`, `FLOAT32`, ...; `TYPE_<code>` for an unknown code).
    pub fn name(self) -> String {
        let s = match self {
            DType::Float32 => "FLOAT32",
            DType::Float16 => "FLOAT16",
            DType::Int32 => "INT32",
            DType::Uint8 => "UINT8",
            DType::Int64 => "INT64",
            DType::String => "STRING",
            DType::Bool => "BOOL",
            DType::Int16 => "INT16",
            DType::Complex64 => "COMPLEX64",
            DType::Int8 => "INT8",
            DType::Float64 => "FLOAT64",
            DType::Complex128 => "COMPLEX128",
            DType::Uint64 => "UINT64",
            DType::Resource => "RESOURCE",
            DType::Variant => "VARIANT",
            DType::Uint32 => "UINT32",
            DType::Uint16 => "UINT16",
            DType::Int4 => "INT4",
            DType::Bfloat16 => "BFLOAT16",
            DType::Int2 => "INT2",
            DType::Uint4 => "UINT4",
            DType::Float8E4m3fn => "FLOAT8_E4M3FN",
            DType::Float8E5m2 => "FLOAT8_E5M2",
            DType::Unknown(code) => return format!("TYPE_{code}"),
        };
        s.to_string()
    }

    /// Bits per element in a constant buffer, `None` where the size is not a fixed width
    /// (STRING's length-prefixed encoding, RESOURCE, VARIANT, unknown codes). The sub-byte
    /// types are stored packed, `8 / bits` elements per byte, as LiteRT's converter writes
    /// them.
    pub fn bits(self) -> Option<u64> {
        match self {
            DType::Int2 => Some(2),
            DType::Int4 | DType::Uint4 => Some(4),
            DType::Uint8 | DType::Int8 | DType::Bool | DType::Float8E4m3fn | DType::Float8E5m2 => {
                Some(8)
            }
            DType::Int16 | DType::Uint16 | DType::Float16 | DType::Bfloat16 => Some(16),
            DType::Int32 | DType::Uint32 | DType::Float32 => Some(32),
            DType::Int64 | DType::Uint64 | DType::Float64 | DType::Complex64 => Some(64),
            DType::Complex128 => Some(128),
            DType::String | DType::Resource | DType::Variant | DType::Unknown(_) => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Affine quantization, `real = scale[c] * (q - zero_point[c])`, per tensor (one entry) or
/// per channel along `quantized_dimension` (one entry per index of that dimension). Scales are
/// finite and non-negative; zero points are not range-checked here (the mapping layer knows
/// which dtype each op needs).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantization {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    /// The axis the per-channel entries run along (0 for per-tensor, as the converter writes).
    pub quantized_dimension: usize,
}

impl Quantization {
    /// One (scale, zero point) for the whole tensor.
    pub fn is_per_tensor(&self) -> bool {
        self.scale.len() == 1
    }
}

/// Constant tensor data, decoded little-endian (TFLite buffers are little-endian). Lengths are
/// element counts and equal [`Tensor::element_count`].
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Int8(Vec<i8>),
    Uint8(Vec<u8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    /// Any other fixed-width type, the stored bytes (sub-byte types packed); its length is
    /// `ceil(elements * bits / 8)`.
    Raw(Vec<u8>),
}

/// TFLite `Padding`. SAME pads so that `out = ceil(in / stride)`, the odd extra row/column
/// at the bottom/right (`tflite::ComputePaddingHeightWidth`); VALID does not pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

/// TFLite `ActivationFunctionType` fused into an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    SignBit,
}

/// CONV_2D options (`Conv2DOptions`). Strides and dilations are >= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub padding: Padding,
    pub stride_w: usize,
    pub stride_h: usize,
    pub dilation_w: usize,
    pub dilation_h: usize,
    pub activation: Activation,
}

/// DEPTHWISE_CONV_2D options (`DepthwiseConv2DOptions`). Strides and dilations are >= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseConv2dOptions {
    pub padding: Padding,
    pub stride_w: usize,
    pub stride_h: usize,
    pub dilation_w: usize,
    pub dilation_h: usize,
    /// As stored, unchecked: LiteRT derives the multiplier from the shapes (output channels /
    /// input channels) and ignores this field since TensorFlow 2.0, so a mapper must too.
    pub depth_multiplier: i32,
    pub activation: Activation,
}

/// AVERAGE_POOL_2D / MAX_POOL_2D options (`Pool2DOptions`). Every size is >= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dOptions {
    pub padding: Padding,
    pub stride_w: usize,
    pub stride_h: usize,
    pub filter_w: usize,
    pub filter_h: usize,
    pub activation: Activation,
}

/// FULLY_CONNECTED options. The weights format is always DEFAULT (row-major [O][N]): the
/// reader refuses SHUFFLED4x16INT8, a layout only LiteRT's optimized uint8 kernel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullyConnectedOptions {
    pub activation: Activation,
    pub keep_num_dims: bool,
    /// Hybrid (float input, int8 weights) models only.
    pub asymmetric_quantize_inputs: bool,
}

/// ADD options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOptions {
    pub activation: Activation,
    /// int16 ADD only: power-of-two scales. Absent options read as false, as LiteRT's
    /// `ParseAdd` leaves the zeroed C struct.
    pub pot_scale_int16: bool,
}

/// RESHAPE options. The target shape may also come from a second (shape) input tensor,
/// which LiteRT prefers when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshapeOptions {
    /// As stored (`-1` = inferred dimension); `None` when the options or the field are absent.
    pub new_shape: Option<Vec<i32>>,
}

/// SOFTMAX options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftmaxOptions {
    pub beta: f32,
}

/// SQUEEZE options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqueezeOptions {
    /// Axes to drop as stored (negative counts from the end; empty = every size-1 axis).
    pub squeeze_dims: Vec<i32>,
}

/// What an operator computes, with the typed options of the ops the importer maps.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    Conv2d(Conv2dOptions),
    DepthwiseConv2d(DepthwiseConv2dOptions),
    AveragePool2d(Pool2dOptions),
    MaxPool2d(Pool2dOptions),
    FullyConnected(FullyConnectedOptions),
    Add(AddOptions),
    Reshape(ReshapeOptions),
    Softmax(SoftmaxOptions),
    Quantize,
    Dequantize,
    Squeeze(SqueezeOptions),
    /// The axis is the op's second (constant) input tensor.
    ExpandDims,
    /// Any other op: TFLite's builtin name (`TANH`), `UNKNOWN_BUILTIN_<code>` for a code this
    /// schema does not know, or `CUSTOM(<custom_code>)`.
    Other(String),
}

impl OpKind {
    /// TFLite's name of the op (`CONV_2D`, ...; the [`OpKind::Other`] name otherwise).
    pub fn name(&self) -> &str {
        match self {
            OpKind::Conv2d(_) => "CONV_2D",
            OpKind::DepthwiseConv2d(_) => "DEPTHWISE_CONV_2D",
            OpKind::AveragePool2d(_) => "AVERAGE_POOL_2D",
            OpKind::MaxPool2d(_) => "MAX_POOL_2D",
            OpKind::FullyConnected(_) => "FULLY_CONNECTED",
            OpKind::Add(_) => "ADD",
            OpKind::Reshape(_) => "RESHAPE",
            OpKind::Softmax(_) => "SOFTMAX",
            OpKind::Quantize => "QUANTIZE",
            OpKind::Dequantize => "DEQUANTIZE",
            OpKind::Squeeze(_) => "SQUEEZE",
            OpKind::ExpandDims => "EXPAND_DIMS",
            OpKind::Other(name) => name,
        }
    }
}

/// One operator of the subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Position in [`TfliteGraph::operators`] (execution order).
    pub index: usize,
    /// The resolved builtin code, `max(builtin_code, deprecated_builtin_code)` as LiteRT's
    /// `GetBuiltinCode` (32 = CUSTOM).
    pub builtin_code: i32,
    /// `OperatorCode.custom_code` for CUSTOM ops.
    pub custom_code: Option<String>,
    /// `OperatorCode.version` (the kernel version the converter asked for).
    pub version: i32,
    pub kind: OpKind,
    /// Input tensor indices; `None` where the file has -1 (an optional input left out, e.g.
    /// a missing bias).
    pub inputs: Vec<Option<usize>>,
    /// Output tensor indices.
    pub outputs: Vec<usize>,
}

impl Operator {
    /// TFLite's name of the op, see [`OpKind::name`].
    pub fn name(&self) -> &str {
        self.kind.name()
    }
}

/// Whether the file is broken or merely uses something this reader does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// Not a TFLite flatbuffer, truncated, or internally inconsistent.
    Corrupt,
    /// Valid TFLite the reader refuses (several subgraphs, sparse tensors, ...).
    Unsupported,
}

/// A one-line error: `op 3 CONV_2D, tensor 7 "conv/w": buffer 4 holds ...`. Names from the
/// file are quoted with escapes and shortened, so the text never spans lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub kind: ReadErrorKind,
    /// (index, TFLite op name) of the operator at fault, when one is; the name is empty when
    /// the op's code could not be resolved.
    pub op: Option<(usize, String)>,
    /// (index, name) of the tensor at fault, when one is.
    pub tensor: Option<(usize, String)>,
    pub message: String,
}

impl ReadError {
    fn corrupt(message: impl Into<String>) -> ReadError {
        ReadError {
            kind: ReadErrorKind::Corrupt,
            op: None,
            tensor: None,
            message: message.into(),
        }
    }

    fn unsupported(message: impl Into<String>) -> ReadError {
        ReadError {
            kind: ReadErrorKind::Unsupported,
            ..ReadError::corrupt(message)
        }
    }

    fn at_op(mut self, index: usize, name: &str) -> ReadError {
        self.op = Some((index, name.to_string()));
        self
    }

    fn at_tensor(mut self, index: usize, name: &str) -> ReadError {
        self.tensor = Some((index, name.to_string()));
        self
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some((index, name)) = &self.op {
            write!(f, "op {index}")?;
            // Empty when the op's code itself could not be resolved.
            if !name.is_empty() {
                write!(f, " {}", one_line(name))?;
            }
            wrote = true;
        }
        if let Some((index, name)) = &self.tensor {
            if wrote {
                f.write_str(", ")?;
            }
            write!(f, "tensor {index} {}", quoted(name))?;
            wrote = true;
        }
        if wrote {
            f.write_str(": ")?;
        }
        f.write_str(&one_line(&self.message))
    }
}

impl std::error::Error for ReadError {}

/// A name from the file, quoted with Rust's escapes and cut to [`MAX_NAME_IN_ERROR`] chars.
pub(super) fn quoted(name: &str) -> String {
    let count = name.chars().count();
    if count <= MAX_NAME_IN_ERROR {
        format!("{name:?}")
    } else {
        let head: String = name.chars().take(MAX_NAME_IN_ERROR).collect();
        format!("{head:?}... ({count} chars)")
    }
}

/// Escapes line breaks and other control characters (op names can hold custom codes from the
/// file; messages can quote file strings).
pub(super) fn one_line(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect()
    } else {
        s.to_string()
    }
}

/// Reads and validates a `.tflite` file; errors name the file and are marked as input errors
/// (exit code 2).
pub fn read_file(path: &Path) -> anyhow::Result<TfliteGraph> {
    let bytes = std::fs::read(path).map_err(|e| {
        crate::error::input(format!("cannot read TFLite model {}: {e}", path.display()))
    })?;
    read(&bytes).map_err(|e| crate::error::input(format!("{}: {e}", path.display())))
}

/// Reads and validates a `.tflite` flatbuffer held in memory (the whole file: buffers stored
/// past the flatbuffer are located by file offset).
///
/// Errors: [`ReadErrorKind::Corrupt`] for anything inconsistent (empty, truncated, wrong
/// identifier, failed verification, index out of range, buffer length not matching the shape,
/// bad quantization arrays, option values out of range), [`ReadErrorKind::Unsupported`] for
/// valid TFLite this reader refuses (schema version other than 3, more than one subgraph,
/// sparse tensors, custom quantization, data in external files, shuffled FC weights).
pub fn read(bytes: &[u8]) -> Result<TfliteGraph, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::corrupt("empty file (0 bytes)"));
    }
    // Root offset (4 bytes) then the identifier (4 bytes).
    if bytes.len() < 8 {
        return Err(ReadError::corrupt(format!(
            "truncated: {} bytes, shorter than a flatbuffer header (8 bytes)",
            bytes.len()
        )));
    }
    if &bytes[4..8] != FILE_IDENTIFIER {
        return Err(ReadError::corrupt(format!(
            "not a TFLite model: file identifier \"{}\", expected \"TFL3\"",
            bytes[4..8].escape_ascii()
        )));
    }
    let model = fb::root_as_model_with_opts(&verifier_options(bytes.len()), bytes)
        .map_err(|e| ReadError::corrupt(verifier_message(&e, bytes.len())))?;

    if model.version() != SCHEMA_VERSION {
        return Err(ReadError::unsupported(format!(
            "schema version {}, expected {SCHEMA_VERSION}",
            model.version()
        )));
    }
    let subgraph = match model.subgraphs() {
        Some(list) if list.len() == 1 => list.get(0),
        None => return Err(ReadError::corrupt("the model has no subgraph")),
        Some(list) if list.is_empty() => {
            return Err(ReadError::corrupt("the model has no subgraph"));
        }
        Some(list) => {
            return Err(ReadError::unsupported(format!(
                "multiple subgraphs ({}): control flow and several signatures are not supported, only single-subgraph models",
                list.len()
            )));
        }
    };

    let codes = resolve_operator_codes(&model)?;
    let tensors_fb = subgraph.tensors();
    let tensor_count = tensors_fb.map_or(0, |t| t.len());

    let operators = match subgraph.operators() {
        Some(ops) => ops
            .iter()
            .enumerate()
            .map(|(index, op)| read_operator(index, &op, &codes, tensor_count))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };

    let buffers = model.buffers();
    let tensors = match tensors_fb {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let name = t.name().unwrap_or("");
                read_tensor(&t, buffers, bytes)
                    .map(|tensor| Tensor {
                        index,
                        name: name.to_string(),
                        ..tensor
                    })
                    .map_err(|e| with_first_user(e.at_tensor(index, name), index, &operators))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };

    let inputs = graph_indices(subgraph.inputs(), tensor_count, "input")?;
    let outputs = graph_indices(subgraph.outputs(), tensor_count, "output")?;

    Ok(TfliteGraph {
        schema_version: model.version(),
        description: model.description().map(str::to_string),
        subgraph_name: subgraph.name().map(str::to_string),
        tensors,
        operators,
        inputs,
        outputs,
    })
}

/// Verifier limits scaled to the file. A well-formed file holds at most one table per 4 bytes
/// (each table starts with a 4-byte vtable offset), and its "apparent size" (bytes visited,
/// shared vtables counted at every visit) stays within a small multiple of its length. A
/// crafted file whose offsets alias one another expands into a DAG that the verifier walks as
/// a tree; these limits stop that walk early. TFLite nests tables 5 deep
/// (Model/SubGraph/Tensor/QuantizationParameters/CustomQuantization), far below 64.
fn verifier_options(len: usize) -> VerifierOptions {
    VerifierOptions {
        max_depth: 64,
        max_tables: len / 4 + 64,
        max_apparent_size: len.saturating_mul(8).max(1 << 20),
        ignore_missing_null_terminator: false,
    }
}

/// One line from the verifier's error (its `Display` spans several lines), with the path of
/// fields it was verifying, outermost first: `Model.subgraphs[0].tensors[3].shape`.
fn verifier_message(e: &InvalidFlatbuffer, len: usize) -> String {
    let (what, trace) = match e {
        InvalidFlatbuffer::MissingRequiredField {
            required,
            error_trace,
        } => (
            format!("missing required field {required}"),
            Some(error_trace),
        ),
        InvalidFlatbuffer::InconsistentUnion {
            field,
            field_type,
            error_trace,
        } => (
            // Exactly one of the union's type and value fields is set.
            format!("union fields {field_type} and {field} disagree (one is missing)"),
            Some(error_trace),
        ),
        InvalidFlatbuffer::Utf8Error {
            range, error_trace, ..
        } => (
            format!("string at [{}, {}) is not UTF-8", range.start, range.end),
            Some(error_trace),
        ),
        InvalidFlatbuffer::MissingNullTerminator { range, error_trace } => (
            format!(
                "string at [{}, {}) has no NUL terminator",
                range.start, range.end
            ),
            Some(error_trace),
        ),
        InvalidFlatbuffer::Unaligned {
            position,
            unaligned_type,
            error_trace,
        } => (
            format!("unaligned {unaligned_type} at byte {position}"),
            Some(error_trace),
        ),
        InvalidFlatbuffer::RangeOutOfBounds { range, error_trace } => (
            format!("range [{}, {}) is out of bounds", range.start, range.end),
            Some(error_trace),
        ),
        InvalidFlatbuffer::SignedOffsetOutOfBounds {
            soffset,
            position,
            error_trace,
        } => (
            format!("offset {soffset} at byte {position} points out of bounds"),
            Some(error_trace),
        ),
        InvalidFlatbuffer::TooManyTables => ("too many tables".to_string(), None),
        InvalidFlatbuffer::ApparentSizeTooLarge => (
            "apparent size too large (aliased offsets)".to_string(),
            None,
        ),
        InvalidFlatbuffer::DepthLimitReached => ("tables nested too deep".to_string(), None),
    };
    let mut path = String::from("Model");
    if let Some(trace) = trace {
        for detail in trace.as_ref().iter().rev() {
            match detail {
                ErrorTraceDetail::VectorElement { index, .. } => {
                    path.push_str(&format!("[{index}]"))
                }
                ErrorTraceDetail::TableField { field_name, .. } => {
                    path.push('.');
                    path.push_str(field_name);
                }
                ErrorTraceDetail::UnionVariant { variant, .. } => {
                    path.push_str(&format!("<{variant}>"))
                }
            }
        }
    }
    format!("corrupt or truncated flatbuffer ({len} bytes): {what} at {path}")
}

/// An operator code resolved as LiteRT does.
struct Code {
    builtin: i32,
    custom: Option<String>,
    version: i32,
    /// TFLite name: builtin name, `UNKNOWN_BUILTIN_<n>` or `CUSTOM(<code>)`.
    name: String,
}

/// Resolves every `OperatorCode` as LiteRT's `GetBuiltinCode`: the larger of the int32
/// `builtin_code` and the int8 `deprecated_builtin_code` (old files fill only the latter; new
/// ones write 127, PLACEHOLDER_FOR_GREATER_OP_CODES, there for codes above 126).
fn resolve_operator_codes(model: &fb::Model) -> Result<Vec<Code>, ReadError> {
    let Some(list) = model.operator_codes() else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, oc)| {
            let builtin = oc
                .builtin_code()
                .0
                .max(i32::from(oc.deprecated_builtin_code()));
            if builtin < 0 {
                return Err(ReadError::corrupt(format!(
                    "operator code {i}: builtin code {builtin} is negative"
                )));
            }
            let op = fb::BuiltinOperator(builtin);
            let (custom, name) = if op == fb::BuiltinOperator::CUSTOM {
                let Some(code) = oc.custom_code() else {
                    return Err(ReadError::corrupt(format!(
                        "operator code {i}: CUSTOM without a custom_code"
                    )));
                };
                (Some(code.to_string()), format!("CUSTOM({})", quoted(code)))
            } else {
                let name = match op.variant_name() {
                    Some(n) => n.to_string(),
                    None => format!("UNKNOWN_BUILTIN_{builtin}"),
                };
                (None, name)
            };
            Ok(Code {
                builtin,
                custom,
                version: oc.version(),
                name,
            })
        })
        .collect()
}

fn read_operator(
    index: usize,
    op: &fb::Operator,
    codes: &[Code],
    tensor_count: usize,
) -> Result<Operator, ReadError> {
    let opcode_index = op.opcode_index() as usize;
    let Some(code) = codes.get(opcode_index) else {
        return Err(ReadError::corrupt(format!(
            "opcode index {opcode_index} out of range (the model has {} operator codes)",
            codes.len()
        ))
        .at_op(index, ""));
    };
    let at = |e: ReadError| e.at_op(index, &code.name);

    let mut inputs = Vec::new();
    for (slot, t) in op.inputs().iter().flat_map(|v| v.iter()).enumerate() {
        inputs.push(if t == -1 {
            None
        } else {
            Some(tensor_index(t, tensor_count, "input", slot).map_err(at)?)
        });
    }
    let mut outputs = Vec::new();
    for (slot, t) in op.outputs().iter().flat_map(|v| v.iter()).enumerate() {
        outputs.push(tensor_index(t, tensor_count, "output", slot).map_err(at)?);
    }
    let kind = op_kind(op, code).map_err(at)?;
    Ok(Operator {
        index,
        builtin_code: code.builtin,
        custom_code: code.custom.clone(),
        version: code.version,
        kind,
        inputs,
        outputs,
    })
}

/// A tensor index from an op's or the graph's list, checked against the tensor count.
fn tensor_index(t: i32, count: usize, role: &str, slot: usize) -> Result<usize, ReadError> {
    match usize::try_from(t) {
        Ok(i) if i < count => Ok(i),
        _ => Err(ReadError::corrupt(format!(
            "{role} {slot} refers to tensor {t}, but the subgraph has {count} tensors"
        ))),
    }
}

fn graph_indices(
    list: Option<flatbuffers::Vector<'_, i32>>,
    count: usize,
    role: &str,
) -> Result<Vec<usize>, ReadError> {
    list.iter()
        .flat_map(|v| v.iter())
        .enumerate()
        .map(|(slot, t)| {
            tensor_index(t, count, role, slot)
                .map_err(|e| ReadError::corrupt(format!("graph {}", e.message)))
        })
        .collect()
}

/// Typed options for the ops the importer maps; `Other` for every other op. The options
/// table must be the op's own type when present (a mismatch is corruption: LiteRT would read
/// zeros); when absent, ops with sizes (convolutions, pools) are refused and the others take
/// LiteRT's zeroed defaults.
fn op_kind(op: &fb::Operator, code: &Code) -> Result<OpKind, ReadError> {
    use fb::BuiltinOperator as B;
    use fb::BuiltinOptions as O;
    let expect = |want: O| -> Result<(), ReadError> {
        let got = op.builtin_options_type();
        if got == O::NONE || got == want {
            Ok(())
        } else {
            Err(ReadError::corrupt(format!(
                "builtin options are {}, expected {}",
                options_name(got),
                options_name(want)
            )))
        }
    };
    let missing = |want: O| {
        ReadError::corrupt(format!(
            "{} missing (strides and sizes have no default)",
            options_name(want)
        ))
    };
    let op_code = fb::BuiltinOperator(code.builtin);
    Ok(match op_code {
        B::CONV_2D => {
            expect(O::Conv2DOptions)?;
            let o = op
                .builtin_options_as_conv_2_doptions()
                .ok_or_else(|| missing(O::Conv2DOptions))?;
            OpKind::Conv2d(Conv2dOptions {
                padding: padding(o.padding())?,
                stride_w: positive(o.stride_w(), "stride_w")?,
                stride_h: positive(o.stride_h(), "stride_h")?,
                dilation_w: positive(o.dilation_w_factor(), "dilation_w_factor")?,
                dilation_h: positive(o.dilation_h_factor(), "dilation_h_factor")?,
                activation: activation(o.fused_activation_function())?,
            })
        }
        B::DEPTHWISE_CONV_2D => {
            expect(O::DepthwiseConv2DOptions)?;
            let o = op
                .builtin_options_as_depthwise_conv_2_doptions()
                .ok_or_else(|| missing(O::DepthwiseConv2DOptions))?;
            OpKind::DepthwiseConv2d(DepthwiseConv2dOptions {
                padding: padding(o.padding())?,
                stride_w: positive(o.stride_w(), "stride_w")?,
                stride_h: positive(o.stride_h(), "stride_h")?,
                dilation_w: positive(o.dilation_w_factor(), "dilation_w_factor")?,
                dilation_h: positive(o.dilation_h_factor(), "dilation_h_factor")?,
                depth_multiplier: o.depth_multiplier(),
                activation: activation(o.fused_activation_function())?,
            })
        }
        B::AVERAGE_POOL_2D | B::MAX_POOL_2D => {
            expect(O::Pool2DOptions)?;
            let o = op
                .builtin_options_as_pool_2_doptions()
                .ok_or_else(|| missing(O::Pool2DOptions))?;
            let pool = Pool2dOptions {
                padding: padding(o.padding())?,
                stride_w: positive(o.stride_w(), "stride_w")?,
                stride_h: positive(o.stride_h(), "stride_h")?,
                filter_w: positive(o.filter_width(), "filter_width")?,
                filter_h: positive(o.filter_height(), "filter_height")?,
                activation: activation(o.fused_activation_function())?,
            };
            if op_code == B::MAX_POOL_2D {
                OpKind::MaxPool2d(pool)
            } else {
                OpKind::AveragePool2d(pool)
            }
        }
        B::FULLY_CONNECTED => {
            expect(O::FullyConnectedOptions)?;
            match op.builtin_options_as_fully_connected_options() {
                Some(o) => {
                    let format = o.weights_format();
                    if format != fb::FullyConnectedOptionsWeightsFormat::DEFAULT {
                        return Err(ReadError::unsupported(format!(
                            "weights_format {}: only DEFAULT (row-major [O][N]) weights are supported",
                            format
                                .variant_name()
                                .map_or_else(|| format!("code {}", format.0), str::to_string)
                        )));
                    }
                    OpKind::FullyConnected(FullyConnectedOptions {
                        activation: activation(o.fused_activation_function())?,
                        keep_num_dims: o.keep_num_dims(),
                        asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
                    })
                }
                None => OpKind::FullyConnected(FullyConnectedOptions {
                    activation: Activation::None,
                    keep_num_dims: false,
                    asymmetric_quantize_inputs: false,
                }),
            }
        }
        B::ADD => {
            expect(O::AddOptions)?;
            match op.builtin_options_as_add_options() {
                Some(o) => OpKind::Add(AddOptions {
                    activation: activation(o.fused_activation_function())?,
                    pot_scale_int16: o.pot_scale_int16(),
                }),
                None => OpKind::Add(AddOptions {
                    activation: Activation::None,
                    pot_scale_int16: false,
                }),
            }
        }
        B::RESHAPE => {
            expect(O::ReshapeOptions)?;
            let new_shape = op
                .builtin_options_as_reshape_options()
                .and_then(|o| o.new_shape())
                .map(|v| v.iter().collect());
            OpKind::Reshape(ReshapeOptions { new_shape })
        }
        B::SOFTMAX => {
            expect(O::SoftmaxOptions)?;
            let beta = op
                .builtin_options_as_softmax_options()
                .map_or(0.0, |o| o.beta());
            OpKind::Softmax(SoftmaxOptions { beta })
        }
        B::SQUEEZE => {
            expect(O::SqueezeOptions)?;
            let squeeze_dims = op
                .builtin_options_as_squeeze_options()
                .and_then(|o| o.squeeze_dims())
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            OpKind::Squeeze(SqueezeOptions { squeeze_dims })
        }
        B::QUANTIZE => OpKind::Quantize,
        B::DEQUANTIZE => OpKind::Dequantize,
        B::EXPAND_DIMS => OpKind::ExpandDims,
        _ => OpKind::Other(code.name.clone()),
    })
}

fn options_name(o: fb::BuiltinOptions) -> String {
    o.variant_name()
        .map_or_else(|| format!("options type {}", o.0), str::to_string)
}

fn padding(p: fb::Padding) -> Result<Padding, ReadError> {
    match p {
        fb::Padding::SAME => Ok(Padding::Same),
        fb::Padding::VALID => Ok(Padding::Valid),
        other => Err(ReadError::corrupt(format!(
            "padding code {} is neither SAME (0) nor VALID (1)",
            other.0
        ))),
    }
}

fn activation(a: fb::ActivationFunctionType) -> Result<Activation, ReadError> {
    use fb::ActivationFunctionType as A;
    Ok(match a {
        A::NONE => Activation::None,
        A::RELU => Activation::Relu,
        A::RELU_N1_TO_1 => Activation::ReluN1To1,
        A::RELU6 => Activation::Relu6,
        A::TANH => Activation::Tanh,
        A::SIGN_BIT => Activation::SignBit,
        other => {
            return Err(ReadError::corrupt(format!(
                "fused activation code {} is unknown",
                other.0
            )));
        }
    })
}

/// A stride, dilation or filter size: at least 1.
fn positive(v: i32, field: &str) -> Result<usize, ReadError> {
    match usize::try_from(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ReadError::corrupt(format!("{field} is {v}, must be >= 1"))),
    }
}

/// Adds the first operator that reads or writes tensor `t` to a tensor error, so the message
/// names the op where the mapping layer would have met the tensor.
fn with_first_user(e: ReadError, t: usize, operators: &[Operator]) -> ReadError {
    let user = operators
        .iter()
        .find(|op| op.inputs.contains(&Some(t)) || op.outputs.contains(&t));
    match user {
        Some(op) => e.at_op(op.index, op.name()),
        None => e,
    }
}

/// Reads one tensor (index and name are filled in by the caller).
fn read_tensor(
    t: &fb::Tensor,
    buffers: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::Buffer<'_>>>>,
    file: &[u8],
) -> Result<Tensor, ReadError> {
    if t.sparsity().is_some() {
        return Err(ReadError::unsupported(
            "sparse tensors are not supported (densify the model before import)",
        ));
    }
    if t.external_buffer() != 0 {
        return Err(ReadError::unsupported(format!(
            "constant data in an external file (external_buffer {}) is not supported",
            t.external_buffer()
        )));
    }
    let dtype = DType::from_fb(t.type_());
    let shape = read_shape(t.shape())?;
    let count = element_count(&shape)?;
    let quantization = match t.quantization() {
        Some(q) => read_quantization(&q, &shape)?,
        None => None,
    };

    let buffer = t.buffer() as usize;
    let buffer_count = buffers.map_or(0, |b| b.len());
    let Some(buf) = buffers
        .filter(|_| buffer < buffer_count)
        .map(|b| b.get(buffer))
    else {
        return Err(ReadError::corrupt(format!(
            "buffer {buffer} out of range (the model has {buffer_count} buffers)"
        )));
    };
    let bytes = buffer_bytes(&buf, buffer, file)?;
    let data = if bytes.is_empty() {
        None
    } else {
        Some(decode(bytes, dtype, count, &shape, buffer)?)
    };
    Ok(Tensor {
        index: 0,
        name: String::new(),
        shape,
        dtype,
        quantization,
        data,
        buffer,
        is_variable: t.is_variable(),
    })
}

fn read_shape(shape: Option<flatbuffers::Vector<'_, i32>>) -> Result<Vec<usize>, ReadError> {
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    if shape.len() > MAX_RANK {
        return Err(ReadError::corrupt(format!(
            "rank {} exceeds {MAX_RANK}",
            shape.len()
        )));
    }
    shape
        .iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| {
                ReadError::corrupt(format!(
                    "negative dimension {d} in shape {:?}",
                    shape.iter().collect::<Vec<_>>()
                ))
            })
        })
        .collect()
}

/// Product of the dimensions, refused above [`MAX_ELEMENTS`] (checked at every step, so no
/// product can wrap).
fn element_count(shape: &[usize]) -> Result<u64, ReadError> {
    let mut count: u64 = 1;
    for &d in shape {
        count = count
            .checked_mul(d as u64)
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| {
                ReadError::corrupt(format!(
                    "shape {shape:?} has more than {MAX_ELEMENTS} elements"
                ))
            })?;
    }
    Ok(count)
}

/// LiteRT's `ParseQuantization` checks, plus finite non-negative scales (a NaN or negative
/// scale has no meaning and would poison every multiplier derived from it).
fn read_quantization(
    q: &fb::QuantizationParameters,
    shape: &[usize],
) -> Result<Option<Quantization>, ReadError> {
    if q.details_type() != fb::QuantizationDetails::NONE || q.details().is_some() {
        return Err(ReadError::unsupported(
            "custom quantization (QuantizationDetails) is not supported",
        ));
    }
    let scale: Vec<f32> = match q.scale() {
        Some(s) if !s.is_empty() => s.iter().collect(),
        // LiteRT: no scales means no quantization, whatever else is there.
        _ => return Ok(None),
    };
    let Some(zero_point) = q.zero_point() else {
        return Err(ReadError::corrupt(format!(
            "quantization has {} scales but no zero points",
            scale.len()
        )));
    };
    let zero_point: Vec<i64> = zero_point.iter().collect();
    if zero_point.len() != scale.len() {
        return Err(ReadError::corrupt(format!(
            "quantization has {} scales but {} zero points",
            scale.len(),
            zero_point.len()
        )));
    }
    let qd = q.quantized_dimension();
    let dim = match usize::try_from(qd) {
        Ok(d) if d < shape.len() || (shape.is_empty() && d == 0) => d,
        _ => {
            return Err(ReadError::corrupt(format!(
                "quantized_dimension {qd} out of range for rank {}",
                shape.len()
            )));
        }
    };
    if shape.is_empty() && scale.len() != 1 {
        return Err(ReadError::corrupt(format!(
            "{} scales for a scalar, must be 1",
            scale.len()
        )));
    }
    let channels = shape.get(dim).copied().unwrap_or(1);
    if scale.len() != 1 && scale.len() != channels {
        return Err(ReadError::corrupt(format!(
            "{} scales: must be 1 (per tensor) or {channels} (per channel along dimension {dim} of shape {shape:?})",
            scale.len()
        )));
    }
    if let Some((c, s)) = scale
        .iter()
        .enumerate()
        .find(|(_, s)| !s.is_finite() || s.is_sign_negative())
    {
        return Err(ReadError::corrupt(format!(
            "scale[{c}] is {s}, must be finite and >= 0"
        )));
    }
    Ok(Some(Quantization {
        scale,
        zero_point,
        quantized_dimension: dim,
    }))
}

/// The bytes of buffer `index`: its inline `data`, or, for a model written with the > 2 GB
/// extension (`offset` > 1, as LiteRT tests it), `size` bytes at file offset `offset`,
/// refused unless they lie inside the file. A buffer with both is refused as ambiguous.
fn buffer_bytes<'a>(
    buf: &fb::Buffer<'a>,
    index: usize,
    file: &'a [u8],
) -> Result<&'a [u8], ReadError> {
    let inline = buf.data().map_or(&[][..], |d| d.bytes());
    let offset = buf.offset();
    if offset <= 1 {
        return Ok(inline);
    }
    if !inline.is_empty() {
        return Err(ReadError::corrupt(format!(
            "buffer {index} has both inline data ({} bytes) and a file offset ({offset})",
            inline.len()
        )));
    }
    let size = buf.size();
    let range = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(o, s)| Some(o..o.checked_add(s)?))
        .filter(|r| r.end <= file.len());
    match range {
        Some(r) => Ok(&file[r]),
        None => Err(ReadError::corrupt(format!(
            "buffer {index} points at bytes [{offset}, {offset} + {size}) outside the file ({} bytes)",
            file.len()
        ))),
    }
}

/// Checks the buffer length against the shape, then copies it out typed.
fn decode(
    bytes: &[u8],
    dtype: DType,
    count: u64,
    shape: &[usize],
    buffer: usize,
) -> Result<TensorData, ReadError> {
    let Some(bits) = dtype.bits() else {
        return Err(ReadError::unsupported(format!(
            "constant data of type {dtype} (no fixed element size) is not supported"
        )));
    };
    // count <= 2^31 - 1 and bits <= 128: the product cannot overflow u64.
    let need = (count * bits).div_ceil(8);
    if bytes.len() as u64 != need {
        return Err(ReadError::corrupt(format!(
            "buffer {buffer} holds {} bytes, but shape {shape:?} of {dtype} needs {need}",
            bytes.len()
        )));
    }
    Ok(match dtype {
        DType::Int8 => TensorData::Int8(bytes.iter().map(|&b| b as i8).collect()),
        DType::Uint8 => TensorData::Uint8(bytes.to_vec()),
        DType::Int16 => TensorData::Int16(le(bytes, i16::from_le_bytes)),
        DType::Int32 => TensorData::Int32(le(bytes, i32::from_le_bytes)),
        DType::Int64 => TensorData::Int64(le(bytes, i64::from_le_bytes)),
        DType::Float32 => TensorData::Float32(le(bytes, f32::from_le_bytes)),
        _ => TensorData::Raw(bytes.to_vec()),
    })
}

/// Decodes little-endian values of `N` bytes (the length was checked to be a multiple).
fn le<const N: usize, T>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            from(a)
        })
        .collect()
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
