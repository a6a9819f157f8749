//! Writes a [`TfliteGraph`] back as a `.tflite` flatbuffer, so that tests (and tools) can
//! build files from real models with one thing changed: a dtype, a quantization, an op, an
//! option. What the reader keeps is written back: tensors (shape, dtype, quantization,
//! constant data inline, `is_variable`), operators (code, version, inputs, outputs and the
//! typed options of the ops the reader decodes; [`OpKind::Other`] ops are written without
//! options), graph inputs and outputs, names and the description. `read(&write(&g))` gives
//! `g` back, buffer numbering aside (constant tensors get buffers 1, 2, ... in tensor order).

use super::reader::{Activation, DType, FILE_IDENTIFIER, OpKind, Padding, TensorData, TfliteGraph};
use super::schema_generated::tflite as fb;
use flatbuffers::{FlatBufferBuilder, WIPOffset};

/// Deliberate departures from `g` for tests of files the reader refuses.
#[derive(Clone, Debug, Default)]
pub struct WriteExtras {
    /// Copies of the subgraph appended after it (a model with several subgraphs).
    pub extra_subgraphs: usize,
    /// Tensors written with (minimal) sparsity parameters.
    pub sparse_tensors: Vec<usize>,
}

/// `g` as `.tflite` bytes (file identifier `TFL3`).
pub fn write(g: &TfliteGraph) -> Vec<u8> {
    write_with(g, &WriteExtras::default())
}

/// [`write`] with the departures of `extras`.
pub fn write_with(g: &TfliteGraph, extras: &WriteExtras) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();

    // Buffer 0 is the empty sentinel every activation points at.
    let mut buffers = vec![fb::Buffer::create(&mut b, &fb::BufferArgs::default())];
    let mut buffer_of = vec![0u32; g.tensors.len()];
    for t in &g.tensors {
        if let Some(d) = &t.data {
            let bytes = data_bytes(d);
            let data = b.create_vector(&bytes);
            buffer_of[t.index] = buffers.len() as u32;
            buffers.push(fb::Buffer::create(
                &mut b,
                &fb::BufferArgs {
                    data: Some(data),
                    ..Default::default()
                },
            ));
        }
    }
    let buffers = b.create_vector(&buffers);

    // One operator code per distinct (builtin, custom code, version), in first-use order.
    let mut codes: Vec<(i32, Option<String>, i32)> = Vec::new();
    let mut code_of = Vec::with_capacity(g.operators.len());
    for op in &g.operators {
        let key = (op.builtin_code, op.custom_code.clone(), op.version);
        let i = match codes.iter().position(|c| *c == key) {
            Some(i) => i,
            None => {
                codes.push(key);
                codes.len() - 1
            }
        };
        code_of.push(i as u32);
    }
    let codes: Vec<_> = codes
        .iter()
        .map(|(builtin, custom, version)| {
            let custom_code = custom.as_ref().map(|c| b.create_string(c));
            fb::OperatorCode::create(
                &mut b,
                &fb::OperatorCodeArgs {
                    // Codes above 126 live in `builtin_code`; the int8 field holds the
                    // placeholder 127 there, as the converter writes.
                    deprecated_builtin_code: (*builtin).min(127) as i8,
                    custom_code,
                    version: *version,
                    builtin_code: fb::BuiltinOperator(*builtin),
                },
            )
        })
        .collect();
    let codes = b.create_vector(&codes);

    let mut subgraphs = Vec::new();
    for _ in 0..=extras.extra_subgraphs {
        let tensors: Vec<_> = g
            .tensors
            .iter()
            .map(|t| {
                let shape = b.create_vector(&t.shape.iter().map(|&d| d as i32).collect::<Vec<_>>());
                let name = b.create_string(&t.name);
                let quantization = t.quantization.as_ref().map(|q| {
                    let scale = b.create_vector(&q.scale);
                    let zero_point = b.create_vector(&q.zero_point);
                    fb::QuantizationParameters::create(
                        &mut b,
                        &fb::QuantizationParametersArgs {
                            scale: Some(scale),
                            zero_point: Some(zero_point),
                            quantized_dimension: q.quantized_dimension as i32,
                            ..Default::default()
                        },
                    )
                });
                let sparsity = extras.sparse_tensors.contains(&t.index).then(|| {
                    let order: Vec<i32> = (0..t.shape.len() as i32).collect();
                    let order = b.create_vector(&order);
                    fb::SparsityParameters::create(
                        &mut b,
                        &fb::SparsityParametersArgs {
                            traversal_order: Some(order),
                            ..Default::default()
                        },
                    )
                });
                fb::Tensor::create(
                    &mut b,
                    &fb::TensorArgs {
                        shape: Some(shape),
                        type_: tensor_type(t.dtype),
                        buffer: buffer_of[t.index],
                        name: Some(name),
                        quantization,
                        is_variable: t.is_variable,
                        sparsity,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let tensors = b.create_vector(&tensors);
        let ops: Vec<_> = g
            .operators
            .iter()
            .zip(&code_of)
            .map(|(op, &code)| {
                let inputs: Vec<i32> = op
                    .inputs
                    .iter()
                    .map(|t| t.map_or(-1, |t| t as i32))
                    .collect();
                let outputs: Vec<i32> = op.outputs.iter().map(|&t| t as i32).collect();
                let inputs = b.create_vector(&inputs);
                let outputs = b.create_vector(&outputs);
                let (options_type, options) = options(&mut b, &op.kind);
                fb::Operator::create(
                    &mut b,
                    &fb::OperatorArgs {
                        opcode_index: code,
                        inputs: Some(inputs),
                        outputs: Some(outputs),
                        builtin_options_type: options_type,
                        builtin_options: options,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let ops = b.create_vector(&ops);
        let ins: Vec<i32> = g.inputs.iter().map(|&t| t as i32).collect();
        let outs: Vec<i32> = g.outputs.iter().map(|&t| t as i32).collect();
        let inputs = b.create_vector(&ins);
        let outputs = b.create_vector(&outs);
        let name = g.subgraph_name.as_ref().map(|n| b.create_string(n));
        subgraphs.push(fb::SubGraph::create(
            &mut b,
            &fb::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(ops),
                name,
                debug_metadata_index: -1,
            },
        ));
    }
    let subgraphs = b.create_vector(&subgraphs);
    let description = g.description.as_ref().map(|d| b.create_string(d));
    let model = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version: g.schema_version,
            operator_codes: Some(codes),
            subgraphs: Some(subgraphs),
            description,
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    b.finish(
        model,
        Some(std::str::from_utf8(FILE_IDENTIFIER).expect("ASCII")),
    );
    b.finished_data().to_vec()
}

/// Little-endian bytes of constant data (the `Raw` bytes as they are).
fn data_bytes(d: &TensorData) -> Vec<u8> {
    match d {
        TensorData::Int8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::Uint8(v) | TensorData::Raw(v) => v.clone(),
        TensorData::Int16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn tensor_type(d: DType) -> fb::TensorType {
    use fb::TensorType as T;
    match d {
        DType::Float32 => T::FLOAT32,
        DType::Float16 => T::FLOAT16,
        DType::Int32 => T::INT32,
        DType::Uint8 => T::UINT8,
        DType::Int64 => T::INT64,
        DType::String => T::STRING,
        DType::Bool => T::BOOL,
        DType::Int16 => T::INT16,
        DType::Complex64 => T::COMPLEX64,
        DType::Int8 => T::INT8,
        DType::Float64 => T::FLOAT64,
        DType::Complex128 => T::COMPLEX128,
        DType::Uint64 => T::UINT64,
        DType::Resource => T::RESOURCE,
        DType::Variant => T::VARIANT,
        DType::Uint32 => T::UINT32,
        DType::Uint16 => T::UINT16,
        DType::Int4 => T::INT4,
        DType::Bfloat16 => T::BFLOAT16,
        DType::Int2 => T::INT2,
        DType::Uint4 => T::UINT4,
        DType::Float8E4m3fn => T::FLOAT8_E4M3FN,
        DType::Float8E5m2 => T::FLOAT8_E5M2,
        DType::Unknown(code) => T(code),
    }
}

fn padding(p: Padding) -> fb::Padding {
    match p {
        Padding::Same => fb::Padding::SAME,
        Padding::Valid => fb::Padding::VALID,
    }
}

fn activation(a: Activation) -> fb::ActivationFunctionType {
    use fb::ActivationFunctionType as A;
    match a {
        Activation::None => A::NONE,
        Activation::Relu => A::RELU,
        Activation::ReluN1To1 => A::RELU_N1_TO_1,
        Activation::Relu6 => A::RELU6,
        Activation::Tanh => A::TANH,
        Activation::SignBit => A::SIGN_BIT,
    }
}

type Options = (
    fb::BuiltinOptions,
    Option<WIPOffset<flatbuffers::UnionWIPOffset>>,
);

/// The typed options table of an op the reader decodes.
fn options(b: &mut FlatBufferBuilder, kind: &OpKind) -> Options {
    use fb::BuiltinOptions as O;
    match kind {
        OpKind::Conv2d(o) => (
            O::Conv2DOptions,
            Some(
                fb::Conv2DOptions::create(
                    b,
                    &fb::Conv2DOptionsArgs {
                        padding: padding(o.padding),
                        stride_w: o.stride_w as i32,
                        stride_h: o.stride_h as i32,
                        fused_activation_function: activation(o.activation),
                        dilation_w_factor: o.dilation_w as i32,
                        dilation_h_factor: o.dilation_h as i32,
                        ..Default::default()
                    },
                )
                .as_union_value(),
            ),
        ),
        OpKind::DepthwiseConv2d(o) => (
            O::DepthwiseConv2DOptions,
            Some(
                fb::DepthwiseConv2DOptions::create(
                    b,
                    &fb::DepthwiseConv2DOptionsArgs {
                        padding: padding(o.padding),
                        stride_w: o.stride_w as i32,
                        stride_h: o.stride_h as i32,
                        depth_multiplier: o.depth_multiplier,
                        fused_activation_function: activation(o.activation),
                        dilation_w_factor: o.dilation_w as i32,
                        dilation_h_factor: o.dilation_h as i32,
                    },
                )
                .as_union_value(),
            ),
        ),
        OpKind::AveragePool2d(o) | OpKind::MaxPool2d(o) => (
            O::Pool2DOptions,
            Some(
                fb::Pool2DOptions::create(
                    b,
                    &fb::Pool2DOptionsArgs {
                        padding: padding(o.padding),
                        stride_w: o.stride_w as i32,
                        stride_h: o.stride_h as i32,
                        filter_width: o.filter_w as i32,
                        filter_height: o.filter_h as i32,
                        fused_activation_function: activation(o.activation),
                    },
                )
                .as_union_value(),
            ),
        ),
        OpKind::FullyConnected(o) => (
            O::FullyConnectedOptions,
            Some(
                fb::FullyConnectedOptions::create(
                    b,
                    &fb::FullyConnectedOptionsArgs {
                        fused_activation_function: activation(o.activation),
                        keep_num_dims: o.keep_num_dims,
                        asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
                        ..Default::default()
                    },
                )
                .as_union_value(),
            ),
        ),
        OpKind::Add(o) => (
            O::AddOptions,
            Some(
                fb::AddOptions::create(
                    b,
                    &fb::AddOptionsArgs {
                        fused_activation_function: activation(o.activation),
                        pot_scale_int16: o.pot_scale_int16,
                    },
                )
                .as_union_value(),
            ),
        ),
        OpKind::Reshape(o) => {
            let new_shape = o.new_shape.as_ref().map(|s| b.create_vector(s));
            (
                O::ReshapeOptions,
                Some(
                    fb::ReshapeOptions::create(b, &fb::ReshapeOptionsArgs { new_shape })
                        .as_union_value(),
                ),
            )
        }
        OpKind::Softmax(o) => (
            O::SoftmaxOptions,
            Some(
                fb::SoftmaxOptions::create(b, &fb::SoftmaxOptionsArgs { beta: o.beta })
                    .as_union_value(),
            ),
        ),
        OpKind::Squeeze(o) => {
            let squeeze_dims = Some(b.create_vector(&o.squeeze_dims));
            (
                O::SqueezeOptions,
                Some(
                    fb::SqueezeOptions::create(b, &fb::SqueezeOptionsArgs { squeeze_dims })
                        .as_union_value(),
                ),
            )
        }
        OpKind::Quantize | OpKind::Dequantize | OpKind::ExpandDims | OpKind::Other(_) => {
            (O::NONE, None)
        }
    }
}
