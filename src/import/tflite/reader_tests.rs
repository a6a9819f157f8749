//! Unit tests of the reader on small models built with the generated flatbuffers builders:
//! one valid model, then one field broken per test, each asserting the exact error line.

use super::*;
use crate::import::tflite::schema_generated::tflite as fb;

/// A tensor as written into the test file.
#[derive(Clone)]
struct T {
    name: &'static str,
    shape: Option<Vec<i32>>,
    dtype: fb::TensorType,
    buffer: u32,
    quant: Option<Q>,
    sparse: bool,
    external_buffer: u32,
    custom_quant: bool,
    is_variable: bool,
}

#[derive(Clone)]
struct Q {
    scale: Option<Vec<f32>>,
    zero_point: Option<Vec<i64>>,
    dim: i32,
}

#[derive(Clone)]
struct B {
    data: Vec<u8>,
    offset: u64,
    size: u64,
}

#[derive(Clone)]
struct Code {
    builtin: i32,
    deprecated: i8,
    custom: Option<&'static str>,
}

#[derive(Clone)]
enum Opts {
    None,
    Conv {
        padding: i8,
        stride: (i32, i32),
        dilation: (i32, i32),
        act: i8,
    },
    Dw {
        stride: (i32, i32),
        multiplier: i32,
    },
    Pool {
        padding: i8,
        stride: (i32, i32),
        filter: (i32, i32),
        act: i8,
    },
    Fc {
        format: i8,
        act: i8,
        keep_num_dims: bool,
    },
    Add {
        act: i8,
        pot: bool,
    },
    Reshape(Option<Vec<i32>>),
    Softmax(f32),
    Squeeze(Vec<i32>),
}

#[derive(Clone)]
struct Op {
    opcode: u32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    opts: Opts,
}

#[derive(Clone)]
struct Spec {
    version: u32,
    subgraphs: usize,
    codes: Vec<Code>,
    tensors: Vec<T>,
    buffers: Vec<B>,
    ops: Vec<Op>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
}

fn tensor(name: &'static str, shape: &[i32], dtype: fb::TensorType, buffer: u32) -> T {
    T {
        name,
        shape: Some(shape.to_vec()),
        dtype,
        buffer,
        quant: Some(Q {
            scale: Some(vec![0.5]),
            zero_point: Some(vec![-1]),
            dim: 0,
        }),
        sparse: false,
        external_buffer: 0,
        custom_quant: false,
        is_variable: false,
    }
}

fn code(builtin: fb::BuiltinOperator) -> Code {
    Code {
        builtin: builtin.0,
        deprecated: builtin.0.min(127) as i8,
        custom: None,
    }
}

fn conv_opts() -> Opts {
    Opts::Conv {
        padding: 0,
        stride: (1, 2),
        dilation: (1, 1),
        act: 1,
    }
}

/// input [1,4,4,1] int8 -> CONV_2D (weights [2,3,3,1] per-channel, bias [2] int32, SAME,
/// stride w 1 h 2, ReLU) -> [1,2,4,2] int8 -> SOFTMAX -> [1,2,4,2].
fn base() -> Spec {
    let mut w = tensor("conv/w", &[2, 3, 3, 1], fb::TensorType::INT8, 1);
    w.quant = Some(Q {
        scale: Some(vec![0.25, 0.125]),
        zero_point: Some(vec![0, 0]),
        dim: 0,
    });
    let mut bias = tensor("conv/b", &[2], fb::TensorType::INT32, 2);
    bias.quant = Some(Q {
        scale: Some(vec![0.125, 0.0625]),
        zero_point: Some(vec![0, 0]),
        dim: 0,
    });
    let mut probs = tensor("probs", &[1, 2, 4, 2], fb::TensorType::INT8, 0);
    probs.quant = Some(Q {
        scale: Some(vec![1.0 / 256.0]),
        zero_point: Some(vec![-128]),
        dim: 0,
    });
    let wdata: Vec<u8> = (0..18).map(|i| (i as i8 - 9) as u8).collect();
    let bdata: Vec<u8> = [7i32, -300].iter().flat_map(|v| v.to_le_bytes()).collect();
    Spec {
        version: 3,
        subgraphs: 1,
        codes: vec![
            code(fb::BuiltinOperator::CONV_2D),
            code(fb::BuiltinOperator::SOFTMAX),
        ],
        tensors: vec![
            tensor("input", &[1, 4, 4, 1], fb::TensorType::INT8, 0),
            w,
            bias,
            tensor("conv/out", &[1, 2, 4, 2], fb::TensorType::INT8, 0),
            probs,
        ],
        buffers: vec![
            B {
                data: vec![],
                offset: 0,
                size: 0,
            },
            B {
                data: wdata,
                offset: 0,
                size: 0,
            },
            B {
                data: bdata,
                offset: 0,
                size: 0,
            },
        ],
        ops: vec![
            Op {
                opcode: 0,
                inputs: vec![0, 1, 2],
                outputs: vec![3],
                opts: conv_opts(),
            },
            Op {
                opcode: 1,
                inputs: vec![3],
                outputs: vec![4],
                opts: Opts::Softmax(1.0),
            },
        ],
        inputs: vec![0],
        outputs: vec![4],
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let buffers: Vec<_> = s
        .buffers
        .iter()
        .map(|x| {
            let data = (!x.data.is_empty()).then(|| b.create_vector(&x.data));
            fb::Buffer::create(
                &mut b,
                &fb::BufferArgs {
                    data,
                    offset: x.offset,
                    size: x.size,
                },
            )
        })
        .collect();
    let buffers = b.create_vector(&buffers);
    let codes: Vec<_> = s
        .codes
        .iter()
        .map(|c| {
            let custom_code = c.custom.map(|n| b.create_string(n));
            fb::OperatorCode::create(
                &mut b,
                &fb::OperatorCodeArgs {
                    deprecated_builtin_code: c.deprecated,
                    custom_code,
                    version: 1,
                    builtin_code: fb::BuiltinOperator(c.builtin),
                },
            )
        })
        .collect();
    let codes = b.create_vector(&codes);
    let mut graphs = Vec::new();
    for _ in 0..s.subgraphs {
        let tensors: Vec<_> = s.tensors.iter().map(|t| build_tensor(&mut b, t)).collect();
        let tensors = b.create_vector(&tensors);
        let ops: Vec<_> = s.ops.iter().map(|o| build_op(&mut b, o)).collect();
        let ops = b.create_vector(&ops);
        let inputs = b.create_vector(&s.inputs);
        let outputs = b.create_vector(&s.outputs);
        let name = b.create_string("main");
        graphs.push(fb::SubGraph::create(
            &mut b,
            &fb::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(ops),
                name: Some(name),
                debug_metadata_index: -1,
            },
        ));
    }
    let subgraphs = b.create_vector(&graphs);
    let description = b.create_string("unit test");
    let model = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version: s.version,
            operator_codes: Some(codes),
            subgraphs: Some(subgraphs),
            description: Some(description),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut b, model);
    b.finished_data().to_vec()
}

fn build_tensor<'a>(
    b: &mut flatbuffers::FlatBufferBuilder<'a>,
    t: &T,
) -> flatbuffers::WIPOffset<fb::Tensor<'a>> {
    let shape = t.shape.as_ref().map(|s| b.create_vector(s));
    let name = b.create_string(t.name);
    let quantization = t.quant.as_ref().map(|q| {
        let scale = q.scale.as_ref().map(|s| b.create_vector(s));
        let zero_point = q.zero_point.as_ref().map(|z| b.create_vector(z));
        let (details_type, details) = if t.custom_quant {
            let custom = b.create_vector(&[1u8, 2, 3]);
            let c = fb::CustomQuantization::create(
                b,
                &fb::CustomQuantizationArgs {
                    custom: Some(custom),
                },
            );
            (
                fb::QuantizationDetails::CustomQuantization,
                Some(c.as_union_value()),
            )
        } else {
            (fb::QuantizationDetails::NONE, None)
        };
        fb::QuantizationParameters::create(
            b,
            &fb::QuantizationParametersArgs {
                scale,
                zero_point,
                quantized_dimension: q.dim,
                details_type,
                details,
                ..Default::default()
            },
        )
    });
    let sparsity = t.sparse.then(|| {
        let order = b.create_vector(&[0i32, 1]);
        fb::SparsityParameters::create(
            b,
            &fb::SparsityParametersArgs {
                traversal_order: Some(order),
                ..Default::default()
            },
        )
    });
    fb::Tensor::create(
        b,
        &fb::TensorArgs {
            shape,
            type_: t.dtype,
            buffer: t.buffer,
            name: Some(name),
            quantization,
            is_variable: t.is_variable,
            sparsity,
            external_buffer: t.external_buffer,
            ..Default::default()
        },
    )
}

fn build_op<'a>(
    b: &mut flatbuffers::FlatBufferBuilder<'a>,
    o: &Op,
) -> flatbuffers::WIPOffset<fb::Operator<'a>> {
    use fb::ActivationFunctionType as A;
    let inputs = b.create_vector(&o.inputs);
    let outputs = b.create_vector(&o.outputs);
    let (kind, opts) = match &o.opts {
        Opts::None => (fb::BuiltinOptions::NONE, None),
        Opts::Conv {
            padding,
            stride,
            dilation,
            act,
        } => (
            fb::BuiltinOptions::Conv2DOptions,
            Some(
                fb::Conv2DOptions::create(
                    b,
                    &fb::Conv2DOptionsArgs {
                        padding: fb::Padding(*padding),
                        stride_w: stride.0,
                        stride_h: stride.1,
                        fused_activation_function: A(*act),
                        dilation_w_factor: dilation.0,
                        dilation_h_factor: dilation.1,
                        ..Default::default()
                    },
                )
                .as_union_value(),
            ),
        ),
        Opts::Dw { stride, multiplier } => (
            fb::BuiltinOptions::DepthwiseConv2DOptions,
            Some(
                fb::DepthwiseConv2DOptions::create(
                    b,
                    &fb::DepthwiseConv2DOptionsArgs {
                        padding: fb::Padding::VALID,
                        stride_w: stride.0,
                        stride_h: stride.1,
                        depth_multiplier: *multiplier,
                        fused_activation_function: A::RELU6,
                        dilation_w_factor: 2,
                        dilation_h_factor: 3,
                    },
                )
                .as_union_value(),
            ),
        ),
        Opts::Pool {
            padding,
            stride,
            filter,
            act,
        } => (
            fb::BuiltinOptions::Pool2DOptions,
            Some(
                fb::Pool2DOptions::create(
                    b,
                    &fb::Pool2DOptionsArgs {
                        padding: fb::Padding(*padding),
                        stride_w: stride.0,
                        stride_h: stride.1,
                        filter_width: filter.0,
                        filter_height: filter.1,
                        fused_activation_function: A(*act),
                    },
                )
                .as_union_value(),
            ),
        ),
        Opts::Fc {
            format,
            act,
            keep_num_dims,
        } => (
            fb::BuiltinOptions::FullyConnectedOptions,
            Some(
                fb::FullyConnectedOptions::create(
                    b,
                    &fb::FullyConnectedOptionsArgs {
                        fused_activation_function: A(*act),
                        weights_format: fb::FullyConnectedOptionsWeightsFormat(*format),
                        keep_num_dims: *keep_num_dims,
                        ..Default::default()
                    },
                )
                .as_union_value(),
            ),
        ),
        Opts::Add { act, pot } => (
            fb::BuiltinOptions::AddOptions,
            Some(
                fb::AddOptions::create(
                    b,
                    &fb::AddOptionsArgs {
                        fused_activation_function: A(*act),
                        pot_scale_int16: *pot,
                    },
                )
                .as_union_value(),
            ),
        ),
        Opts::Reshape(shape) => {
            let new_shape = shape.as_ref().map(|s| b.create_vector(s));
            (
                fb::BuiltinOptions::ReshapeOptions,
                Some(
                    fb::ReshapeOptions::create(b, &fb::ReshapeOptionsArgs { new_shape })
                        .as_union_value(),
                ),
            )
        }
        Opts::Softmax(beta) => (
            fb::BuiltinOptions::SoftmaxOptions,
            Some(
                fb::SoftmaxOptions::create(b, &fb::SoftmaxOptionsArgs { beta: *beta })
                    .as_union_value(),
            ),
        ),
        Opts::Squeeze(dims) => {
            let squeeze_dims = Some(b.create_vector(dims));
            (
                fb::BuiltinOptions::SqueezeOptions,
                Some(
                    fb::SqueezeOptions::create(b, &fb::SqueezeOptionsArgs { squeeze_dims })
                        .as_union_value(),
                ),
            )
        }
    };
    fb::Operator::create(
        b,
        &fb::OperatorArgs {
            opcode_index: o.opcode,
            inputs: Some(inputs),
            outputs: Some(outputs),
            builtin_options_type: kind,
            builtin_options: opts,
            ..Default::default()
        },
    )
}

/// The error line for a spec that must fail.
fn err(s: &Spec) -> String {
    err_bytes(&build(s))
}

fn err_bytes(bytes: &[u8]) -> String {
    let e = read(bytes).expect_err("the file must be refused");
    let line = e.to_string();
    assert!(!line.contains('\n'), "error spans lines: {line}");
    line
}

/// A one-op model around `op` (tensors 0..n from `tensors`, no softmax).
fn single_op(code_: Code, op: Op, tensors: Vec<T>, buffers: Vec<B>) -> Spec {
    let last = tensors.len() as i32 - 1;
    Spec {
        codes: vec![code_],
        tensors,
        buffers,
        ops: vec![op],
        inputs: vec![0],
        outputs: vec![last],
        ..base()
    }
}

fn empty_buffer() -> B {
    B {
        data: vec![],
        offset: 0,
        size: 0,
    }
}

// ---------------------------------------------------------------- valid files

#[test]
fn base_model_reads_back_every_field() {
    let g = read(&build(&base())).unwrap();
    assert_eq!(g.schema_version, 3);
    assert_eq!(g.description.as_deref(), Some("unit test"));
    assert_eq!(g.subgraph_name.as_deref(), Some("main"));
    assert_eq!(g.inputs, vec![0]);
    assert_eq!(g.outputs, vec![4]);
    assert_eq!(g.tensors.len(), 5);
    for (i, t) in g.tensors.iter().enumerate() {
        assert_eq!(t.index, i);
    }
    let w = &g.tensors[1];
    assert_eq!(w.name, "conv/w");
    assert_eq!(w.shape, vec![2, 3, 3, 1]);
    assert_eq!(w.dtype, DType::Int8);
    assert_eq!(w.buffer, 1);
    assert_eq!(w.element_count(), 18);
    assert!(!w.is_variable);
    let want: Vec<i8> = (0..18).map(|i| i as i8 - 9).collect();
    assert_eq!(w.data, Some(TensorData::Int8(want)));
    let q = w.quantization.as_ref().unwrap();
    assert_eq!(q.scale, vec![0.25, 0.125]);
    assert_eq!(q.zero_point, vec![0, 0]);
    assert_eq!(q.quantized_dimension, 0);
    assert!(!q.is_per_tensor());
    assert_eq!(
        g.tensors[2].data,
        Some(TensorData::Int32(vec![7, -300])),
        "int32 little-endian"
    );
    let input = &g.tensors[0];
    assert_eq!(input.data, None);
    assert!(input.quantization.as_ref().unwrap().is_per_tensor());
    assert_eq!(input.quantization.as_ref().unwrap().zero_point, vec![-1]);

    assert_eq!(g.operators.len(), 2);
    let conv = &g.operators[0];
    assert_eq!(conv.index, 0);
    assert_eq!(conv.name(), "CONV_2D");
    assert_eq!(conv.builtin_code, 3);
    assert_eq!(conv.custom_code, None);
    assert_eq!(conv.version, 1);
    assert_eq!(conv.inputs, vec![Some(0), Some(1), Some(2)]);
    assert_eq!(conv.outputs, vec![3]);
    assert_eq!(
        conv.kind,
        OpKind::Conv2d(Conv2dOptions {
            padding: Padding::Same,
            stride_w: 1,
            stride_h: 2,
            dilation_w: 1,
            dilation_h: 1,
            activation: Activation::Relu,
        })
    );
    assert_eq!(g.operators[1].index, 1);
    assert_eq!(
        g.operators[1].kind,
        OpKind::Softmax(SoftmaxOptions { beta: 1.0 })
    );
    assert_eq!(g.tensor(4).map(|t| t.name.as_str()), Some("probs"));
    assert!(g.tensor(5).is_none());
}

#[test]
fn typed_options_of_every_mapped_op() {
    let t = |n| tensor(n, &[1, 4], fb::TensorType::INT8, 0);
    let cases: Vec<(fb::BuiltinOperator, Opts, OpKind)> = vec![
        (
            fb::BuiltinOperator::DEPTHWISE_CONV_2D,
            Opts::Dw {
                stride: (2, 1),
                multiplier: 2,
            },
            OpKind::DepthwiseConv2d(DepthwiseConv2dOptions {
                padding: Padding::Valid,
                stride_w: 2,
                stride_h: 1,
                dilation_w: 2,
                dilation_h: 3,
                depth_multiplier: 2,
                activation: Activation::Relu6,
            }),
        ),
        (
            fb::BuiltinOperator::AVERAGE_POOL_2D,
            Opts::Pool {
                padding: 1,
                stride: (2, 3),
                filter: (4, 5),
                act: 0,
            },
            OpKind::AveragePool2d(Pool2dOptions {
                padding: Padding::Valid,
                stride_w: 2,
                stride_h: 3,
                filter_w: 4,
                filter_h: 5,
                activation: Activation::None,
            }),
        ),
        (
            fb::BuiltinOperator::MAX_POOL_2D,
            Opts::Pool {
                padding: 0,
                stride: (1, 1),
                filter: (2, 2),
                act: 2,
            },
            OpKind::MaxPool2d(Pool2dOptions {
                padding: Padding::Same,
                stride_w: 1,
                stride_h: 1,
                filter_w: 2,
                filter_h: 2,
                activation: Activation::ReluN1To1,
            }),
        ),
        (
            fb::BuiltinOperator::FULLY_CONNECTED,
            Opts::Fc {
                format: 0,
                act: 3,
                keep_num_dims: true,
            },
            OpKind::FullyConnected(FullyConnectedOptions {
                activation: Activation::Relu6,
                keep_num_dims: true,
                asymmetric_quantize_inputs: false,
            }),
        ),
        (
            fb::BuiltinOperator::FULLY_CONNECTED,
            Opts::None,
            OpKind::FullyConnected(FullyConnectedOptions {
                activation: Activation::None,
                keep_num_dims: false,
                asymmetric_quantize_inputs: false,
            }),
        ),
        (
            fb::BuiltinOperator::ADD,
            Opts::Add { act: 4, pot: false },
            OpKind::Add(AddOptions {
                activation: Activation::Tanh,
                pot_scale_int16: false,
            }),
        ),
        (
            fb::BuiltinOperator::ADD,
            Opts::Add { act: 5, pot: true },
            OpKind::Add(AddOptions {
                activation: Activation::SignBit,
                pot_scale_int16: true,
            }),
        ),
        (
            fb::BuiltinOperator::ADD,
            Opts::None,
            OpKind::Add(AddOptions {
                activation: Activation::None,
                pot_scale_int16: false,
            }),
        ),
        (
            fb::BuiltinOperator::RESHAPE,
            Opts::Reshape(Some(vec![-1, 4])),
            OpKind::Reshape(ReshapeOptions {
                new_shape: Some(vec![-1, 4]),
            }),
        ),
        (
            fb::BuiltinOperator::RESHAPE,
            Opts::Reshape(None),
            OpKind::Reshape(ReshapeOptions { new_shape: None }),
        ),
        (
            fb::BuiltinOperator::RESHAPE,
            Opts::None,
            OpKind::Reshape(ReshapeOptions { new_shape: None }),
        ),
        (
            fb::BuiltinOperator::SOFTMAX,
            Opts::None,
            OpKind::Softmax(SoftmaxOptions { beta: 0.0 }),
        ),
        (
            fb::BuiltinOperator::SQUEEZE,
            Opts::Squeeze(vec![0, -2]),
            OpKind::Squeeze(SqueezeOptions {
                squeeze_dims: vec![0, -2],
            }),
        ),
        (
            fb::BuiltinOperator::SQUEEZE,
            Opts::None,
            OpKind::Squeeze(SqueezeOptions {
                squeeze_dims: vec![],
            }),
        ),
        (fb::BuiltinOperator::QUANTIZE, Opts::None, OpKind::Quantize),
        (
            fb::BuiltinOperator::DEQUANTIZE,
            Opts::None,
            OpKind::Dequantize,
        ),
        (
            fb::BuiltinOperator::EXPAND_DIMS,
            Opts::None,
            OpKind::ExpandDims,
        ),
        (
            fb::BuiltinOperator::TANH,
            Opts::None,
            OpKind::Other("TANH".into()),
        ),
        (
            fb::BuiltinOperator::CONCATENATION,
            Opts::None,
            OpKind::Other("CONCATENATION".into()),
        ),
    ];
    for (builtin, opts, want) in cases {
        let s = single_op(
            code(builtin),
            Op {
                opcode: 0,
                inputs: vec![0],
                outputs: vec![1],
                opts,
            },
            vec![t("a"), t("b")],
            vec![empty_buffer()],
        );
        let g = read(&build(&s)).unwrap();
        assert_eq!(g.operators[0].kind, want, "{want:?}");
        assert_eq!(g.operators[0].name(), want.name());
        assert_eq!(g.operators[0].builtin_code, builtin.0);
    }
}

#[test]
fn op_names_are_tflites() {
    let names = [
        (
            OpKind::Conv2d(Conv2dOptions {
                padding: Padding::Same,
                stride_w: 1,
                stride_h: 1,
                dilation_w: 1,
                dilation_h: 1,
                activation: Activation::None,
            }),
            "CONV_2D",
        ),
        (OpKind::Quantize, "QUANTIZE"),
        (OpKind::Dequantize, "DEQUANTIZE"),
        (OpKind::ExpandDims, "EXPAND_DIMS"),
        (OpKind::Other("MUL".into()), "MUL"),
    ];
    for (k, n) in names {
        assert_eq!(k.name(), n);
    }
}

#[test]
fn opcode_resolution_follows_get_builtin_code() {
    let t = |n| tensor(n, &[4], fb::TensorType::INT8, 0);
    let case = |c: Code| {
        let s = single_op(
            c,
            Op {
                opcode: 0,
                inputs: vec![0],
                outputs: vec![1],
                opts: Opts::None,
            },
            vec![t("a"), t("b")],
            vec![empty_buffer()],
        );
        read(&build(&s))
    };
    // Old files: only the int8 field.
    let g = case(Code {
        builtin: 0,
        deprecated: 9,
        custom: None,
    })
    .unwrap();
    assert_eq!(g.operators[0].name(), "FULLY_CONNECTED");
    // New files, code > 127: deprecated holds the placeholder 127.
    let g = case(Code {
        builtin: 150,
        deprecated: 127,
        custom: None,
    })
    .unwrap();
    assert_eq!(g.operators[0].kind, OpKind::Other("GELU".into()));
    assert_eq!(g.operators[0].builtin_code, 150);
    // A code newer than the schema.
    let g = case(Code {
        builtin: 4000,
        deprecated: 127,
        custom: None,
    })
    .unwrap();
    assert_eq!(
        g.operators[0].kind,
        OpKind::Other("UNKNOWN_BUILTIN_4000".into())
    );
    // Custom op.
    let g = case(Code {
        builtin: 32,
        deprecated: 32,
        custom: Some("MyOp"),
    })
    .unwrap();
    assert_eq!(
        g.operators[0].kind,
        OpKind::Other("CUSTOM(\"MyOp\")".into())
    );
    assert_eq!(g.operators[0].custom_code.as_deref(), Some("MyOp"));
    // Both negative: corrupt.
    let e = case(Code {
        builtin: -3,
        deprecated: -5,
        custom: None,
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "operator code 0: builtin code -3 is negative"
    );
    assert_eq!(e.kind, ReadErrorKind::Corrupt);
    let e = case(Code {
        builtin: 32,
        deprecated: 32,
        custom: None,
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "operator code 0: CUSTOM without a custom_code"
    );
}

#[test]
fn optional_inputs_read_as_none() {
    let mut s = base();
    s.ops[0].inputs = vec![0, 1, -1];
    let g = read(&build(&s)).unwrap();
    assert_eq!(g.operators[0].inputs, vec![Some(0), Some(1), None]);
}

#[test]
fn buffer_past_the_flatbuffer_is_read_from_the_file() {
    // The > 2 GB layout: the flatbuffer, then raw data at an offset recorded in the Buffer.
    let mut s = base();
    let wdata = s.buffers[1].data.clone();
    s.buffers[1] = B {
        data: vec![],
        offset: 2,
        size: 18,
    };
    let len = build(&s).len();
    // Same field widths, so the flatbuffer's length does not change with the offset's value.
    let offset = len.next_multiple_of(16);
    s.buffers[1].offset = offset as u64;
    let mut bytes = build(&s);
    assert_eq!(bytes.len(), len);
    bytes.resize(offset, 0);
    bytes.extend_from_slice(&wdata);
    let g = read(&bytes).unwrap();
    let want: Vec<i8> = wdata.iter().map(|&b| b as i8).collect();
    assert_eq!(g.tensors[1].data, Some(TensorData::Int8(want)));

    // One byte short of the file: refused, naming the tensor and its op.
    bytes.pop();
    assert_eq!(
        err_bytes(&bytes),
        format!(
            "op 0 CONV_2D, tensor 1 \"conv/w\": buffer 1 points at bytes [{offset}, {offset} + 18) outside the file ({} bytes)",
            offset + 17
        )
    );
}

#[test]
fn offset_one_means_inline_data() {
    // LiteRT reads the offset only when > 1 (0 and 1 are "unused").
    let mut s = base();
    s.buffers[1].offset = 1;
    s.buffers[1].size = 99;
    let g = read(&build(&s)).unwrap();
    assert!(matches!(g.tensors[1].data, Some(TensorData::Int8(ref v)) if v.len() == 18));
}

#[test]
fn data_types_decode_little_endian_with_packed_sub_byte_types() {
    let cases: Vec<(fb::TensorType, Vec<i32>, Vec<u8>, TensorData)> = vec![
        (
            fb::TensorType::UINT8,
            vec![2],
            vec![1, 255],
            TensorData::Uint8(vec![1, 255]),
        ),
        (
            fb::TensorType::INT16,
            vec![2],
            vec![0x01, 0x80, 0xff, 0x7f],
            TensorData::Int16(vec![-32767, 32767]),
        ),
        (
            fb::TensorType::INT64,
            vec![1],
            (-5i64).to_le_bytes().to_vec(),
            TensorData::Int64(vec![-5]),
        ),
        (
            fb::TensorType::FLOAT32,
            vec![1],
            1.5f32.to_le_bytes().to_vec(),
            TensorData::Float32(vec![1.5]),
        ),
        // 3 INT4 values in 2 bytes.
        (
            fb::TensorType::INT4,
            vec![3],
            vec![0x21, 0x03],
            TensorData::Raw(vec![0x21, 0x03]),
        ),
        // 5 INT2 values in 2 bytes.
        (
            fb::TensorType::INT2,
            vec![5],
            vec![0xe4, 0x01],
            TensorData::Raw(vec![0xe4, 0x01]),
        ),
        (
            fb::TensorType::FLOAT16,
            vec![1, 1],
            vec![0x00, 0x3c],
            TensorData::Raw(vec![0x00, 0x3c]),
        ),
        (
            fb::TensorType::COMPLEX128,
            vec![1],
            vec![0; 16],
            TensorData::Raw(vec![0; 16]),
        ),
    ];
    for (dtype, shape, data, want) in cases {
        let mut c = tensor("c", &shape, dtype, 1);
        c.quant = None;
        let s = single_op(
            code(fb::BuiltinOperator::QUANTIZE),
            Op {
                opcode: 0,
                inputs: vec![1],
                outputs: vec![2],
                opts: Opts::None,
            },
            vec![
                tensor("x", &[1], fb::TensorType::INT8, 0),
                c,
                tensor("y", &[1], fb::TensorType::INT8, 0),
            ],
            vec![
                empty_buffer(),
                B {
                    data: data.clone(),
                    offset: 0,
                    size: 0,
                },
            ],
        );
        let g = read(&build(&s)).unwrap();
        assert_eq!(g.tensors[1].data.as_ref(), Some(&want), "{dtype:?}");
        assert_eq!(g.tensors[1].quantization, None);

        // One byte more is a size mismatch for every type.
        let mut longer = s.clone();
        longer.buffers[1].data.push(0);
        let line = err(&longer);
        assert!(
            line.contains(&format!("holds {} bytes", data.len() + 1)),
            "{line}"
        );
    }
}

#[test]
fn scalars_and_absent_shapes_have_one_element() {
    let mut s = base();
    s.tensors[2].shape = None;
    s.tensors[2].quant = None;
    s.buffers[2].data = 9i32.to_le_bytes().to_vec();
    let g = read(&build(&s)).unwrap();
    assert_eq!(g.tensors[2].shape, Vec::<usize>::new());
    assert_eq!(g.tensors[2].element_count(), 1);
    assert_eq!(g.tensors[2].data, Some(TensorData::Int32(vec![9])));
}

#[test]
fn zero_sized_tensor_without_data_is_fine() {
    let mut s = base();
    s.tensors[0].shape = Some(vec![0, 4]);
    let g = read(&build(&s)).unwrap();
    assert_eq!(g.tensors[0].element_count(), 0);
    assert_eq!(g.tensors[0].data, None);
}

#[test]
fn variable_tensor_flag_is_kept() {
    let mut s = base();
    s.tensors[3].is_variable = true;
    let g = read(&build(&s)).unwrap();
    assert!(g.tensors[3].is_variable);
}

#[test]
fn quantization_without_scales_is_no_quantization() {
    let mut s = base();
    s.tensors[0].quant = Some(Q {
        scale: None,
        zero_point: Some(vec![3]),
        dim: 7,
    });
    s.tensors[3].quant = Some(Q {
        scale: Some(vec![]),
        zero_point: None,
        dim: 0,
    });
    let g = read(&build(&s)).unwrap();
    assert_eq!(g.tensors[0].quantization, None);
    assert_eq!(g.tensors[3].quantization, None);
}

#[test]
fn per_channel_along_the_last_axis() {
    // Depthwise weights [1, 3, 3, C] quantize along dimension 3.
    let mut s = base();
    s.tensors[1].shape = Some(vec![1, 3, 3, 2]);
    s.tensors[1].quant.as_mut().unwrap().dim = 3;
    let g = read(&build(&s)).unwrap();
    assert_eq!(
        g.tensors[1]
            .quantization
            .as_ref()
            .unwrap()
            .quantized_dimension,
        3
    );
}

#[test]
fn zero_scale_is_left_to_the_mapping_layer() {
    let mut s = base();
    s.tensors[1].quant.as_mut().unwrap().scale = Some(vec![0.0, 0.5]);
    assert!(read(&build(&s)).is_ok());
}

// ---------------------------------------------------------------- bad files

#[test]
fn empty_file() {
    assert_eq!(err_bytes(&[]), "empty file (0 bytes)");
    assert_eq!(read(&[]).unwrap_err().kind, ReadErrorKind::Corrupt);
}

#[test]
fn shorter_than_a_header() {
    assert_eq!(
        err_bytes(&[0x10, 0, 0, 0, b'T', b'F', b'L']),
        "truncated: 7 bytes, shorter than a flatbuffer header (8 bytes)"
    );
}

#[test]
fn header_only() {
    // Eight bytes are a header, not a model: the verifier refuses the root offset.
    let mut bytes = 16u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"TFL3");
    assert_eq!(
        err_bytes(&bytes),
        "corrupt or truncated flatbuffer (8 bytes): range [16, 20) is out of bounds at Model"
    );
}

#[test]
fn truncated_file() {
    let bytes = build(&base());
    let line = err_bytes(&bytes[..bytes.len() / 2]);
    assert!(
        line.starts_with(&format!(
            "corrupt or truncated flatbuffer ({} bytes): ",
            bytes.len() / 2
        )),
        "{line}"
    );
    assert!(line.contains("out of bounds at Model"), "{line}");
}

#[test]
fn verifier_error_names_the_field_path() {
    // Point tensor 0's name string past the end of the file.
    let mut s = base();
    s.tensors[0].name = "UNIQUE_NAME_MARKER";
    let mut bytes = build(&s);
    let at = bytes
        .windows(18)
        .position(|w| w == b"UNIQUE_NAME_MARKER")
        .unwrap();
    // The u32 length sits right before the string's bytes.
    bytes[at - 4..at].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let line = err_bytes(&bytes);
    assert!(
        line.starts_with("corrupt or truncated flatbuffer"),
        "{line}"
    );
    assert!(
        line.ends_with("is out of bounds at Model.subgraphs[0].tensors[0].name"),
        "{line}"
    );
}

#[test]
fn wrong_file_identifier() {
    let mut bytes = build(&base());
    bytes[4..8].copy_from_slice(b"AB\nD");
    assert_eq!(
        err_bytes(&bytes),
        "not a TFLite model: file identifier \"AB\\nD\", expected \"TFL3\""
    );
}

#[test]
fn two_subgraphs() {
    let s = Spec {
        subgraphs: 2,
        ..base()
    };
    let e = read(&build(&s)).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "multiple subgraphs (2): control flow and several signatures are not supported, only single-subgraph models"
    );
}

#[test]
fn no_subgraph() {
    let s = Spec {
        subgraphs: 0,
        ..base()
    };
    assert_eq!(err(&s), "the model has no subgraph");
}

#[test]
fn no_subgraphs_field() {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let model = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version: 3,
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut b, model);
    assert_eq!(err_bytes(b.finished_data()), "the model has no subgraph");
}

#[test]
fn schema_version_other_than_3() {
    let s = Spec {
        version: 2,
        ..base()
    };
    assert_eq!(err(&s), "schema version 2, expected 3");
}

#[test]
fn buffer_index_out_of_range() {
    let mut s = base();
    s.tensors[1].buffer = 9;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": buffer 9 out of range (the model has 3 buffers)"
    );
}

#[test]
fn buffer_index_one_past_the_end() {
    let mut s = base();
    s.tensors[2].buffer = 3;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 2 \"conv/b\": buffer 3 out of range (the model has 3 buffers)"
    );
}

#[test]
fn buffer_size_mismatch_with_shape() {
    let mut s = base();
    s.buffers[1].data.pop();
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": buffer 1 holds 17 bytes, but shape [2, 3, 3, 1] of INT8 needs 18"
    );
    let mut s = base();
    s.buffers[2].data.extend_from_slice(&[0; 4]);
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 2 \"conv/b\": buffer 2 holds 12 bytes, but shape [2] of INT32 needs 8"
    );
}

#[test]
fn tensor_error_without_a_user_op_names_only_the_tensor() {
    let mut s = base();
    s.tensors
        .push(tensor("orphan", &[1, -1], fb::TensorType::INT8, 0));
    assert_eq!(
        err(&s),
        "tensor 5 \"orphan\": negative dimension -1 in shape [1, -1]"
    );
}

#[test]
fn buffer_with_inline_data_and_offset() {
    let mut s = base();
    s.buffers[1].offset = 64;
    s.buffers[1].size = 18;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": buffer 1 has both inline data (18 bytes) and a file offset (64)"
    );
}

#[test]
fn external_offset_overflowing_u64() {
    let mut s = base();
    s.buffers[1] = B {
        data: vec![],
        offset: u64::MAX - 4,
        size: 18,
    };
    let line = err(&s);
    assert_eq!(
        line,
        format!(
            "op 0 CONV_2D, tensor 1 \"conv/w\": buffer 1 points at bytes [{}, {} + 18) outside the file ({} bytes)",
            u64::MAX - 4,
            u64::MAX - 4,
            build(&s).len()
        )
    );
}

#[test]
fn sparse_tensor() {
    let mut s = base();
    s.tensors[1].sparse = true;
    let e = read(&build(&s)).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "op 0 CONV_2D, tensor 1 \"conv/w\": sparse tensors are not supported (densify the model before import)"
    );
}

#[test]
fn external_buffer_file() {
    let mut s = base();
    s.tensors[1].external_buffer = 4;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": constant data in an external file (external_buffer 4) is not supported"
    );
}

#[test]
fn tensor_index_out_of_range_in_an_op() {
    let mut s = base();
    s.ops[0].inputs[1] = 7;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D: input 1 refers to tensor 7, but the subgraph has 5 tensors"
    );
    let mut s = base();
    s.ops[1].outputs[0] = -1;
    assert_eq!(
        err(&s),
        "op 1 SOFTMAX: output 0 refers to tensor -1, but the subgraph has 5 tensors"
    );
    let mut s = base();
    s.ops[0].inputs[0] = -2;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D: input 0 refers to tensor -2, but the subgraph has 5 tensors"
    );
    let mut s = base();
    s.ops[0].inputs[0] = 5;
    assert!(err(&s).contains("input 0 refers to tensor 5"));
}

#[test]
fn graph_input_or_output_out_of_range() {
    let mut s = base();
    s.inputs = vec![0, 5];
    assert_eq!(
        err(&s),
        "graph input 1 refers to tensor 5, but the subgraph has 5 tensors"
    );
    let mut s = base();
    s.outputs = vec![-1];
    assert_eq!(
        err(&s),
        "graph output 0 refers to tensor -1, but the subgraph has 5 tensors"
    );
}

#[test]
fn negative_dimension() {
    let mut s = base();
    s.tensors[3].shape = Some(vec![1, -2, 4, 2]);
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 3 \"conv/out\": negative dimension -2 in shape [1, -2, 4, 2]"
    );
}

#[test]
fn huge_shape() {
    let mut s = base();
    s.tensors[3].shape = Some(vec![65536, 32768]);
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 3 \"conv/out\": shape [65536, 32768] has more than 2147483647 elements"
    );
    // Just at the limit: accepted (no data, nothing allocated).
    let mut s = base();
    s.tensors[3].shape = Some(vec![i32::MAX]);
    s.tensors[3].quant = None;
    let g = read(&build(&s)).unwrap();
    assert_eq!(g.tensors[3].element_count(), i32::MAX as usize);
    // Wrapping products are caught step by step.
    let mut s = base();
    s.tensors[3].shape = Some(vec![i32::MAX, i32::MAX, i32::MAX, 4]);
    assert!(err(&s).contains("has more than 2147483647 elements"));
}

#[test]
fn rank_above_the_limit() {
    let mut s = base();
    s.tensors[0].shape = Some(vec![1; MAX_RANK + 1]);
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 0 \"input\": rank 17 exceeds 16"
    );
    let mut s = base();
    s.tensors[0].shape = Some(vec![1; MAX_RANK]);
    s.tensors[0].quant = None;
    assert!(read(&build(&s)).is_ok());
}

#[test]
fn opcode_index_out_of_range() {
    let mut s = base();
    s.ops[1].opcode = 2;
    assert_eq!(
        err(&s),
        "op 1: opcode index 2 out of range (the model has 2 operator codes)"
    );
}

#[test]
fn quantization_arrays_inconsistent() {
    let mut s = base();
    s.tensors[1].quant.as_mut().unwrap().zero_point = Some(vec![0]);
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": quantization has 2 scales but 1 zero points"
    );
    let mut s = base();
    s.tensors[1].quant.as_mut().unwrap().zero_point = None;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": quantization has 2 scales but no zero points"
    );
    let mut s = base();
    s.tensors[1].quant.as_mut().unwrap().dim = 1;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": 2 scales: must be 1 (per tensor) or 3 (per channel along dimension 1 of shape [2, 3, 3, 1])"
    );
    let mut s = base();
    s.tensors[1].quant.as_mut().unwrap().dim = 4;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": quantized_dimension 4 out of range for rank 4"
    );
    let mut s = base();
    s.tensors[1].quant.as_mut().unwrap().dim = -1;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"conv/w\": quantized_dimension -1 out of range for rank 4"
    );
    // A scalar takes one scale along dimension 0 only.
    let mut s = base();
    s.tensors[0].shape = Some(vec![]);
    s.tensors[0].quant.as_mut().unwrap().dim = 1;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 0 \"input\": quantized_dimension 1 out of range for rank 0"
    );
    let mut s = base();
    s.tensors[0].shape = Some(vec![]);
    s.tensors[0].quant = Some(Q {
        scale: Some(vec![1.0, 2.0]),
        zero_point: Some(vec![0, 0]),
        dim: 0,
    });
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 0 \"input\": 2 scales for a scalar, must be 1"
    );
}

#[test]
fn scales_must_be_finite_and_not_negative() {
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (-0.5, "-0.5"),
        (-0.0, "-0"),
    ] {
        let mut s = base();
        s.tensors[1].quant.as_mut().unwrap().scale = Some(vec![0.25, bad]);
        assert_eq!(
            err(&s),
            format!(
                "op 0 CONV_2D, tensor 1 \"conv/w\": scale[1] is {shown}, must be finite and >= 0"
            )
        );
    }
}

#[test]
fn custom_quantization() {
    let mut s = base();
    s.tensors[0].custom_quant = true;
    let e = read(&build(&s)).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "op 0 CONV_2D, tensor 0 \"input\": custom quantization (QuantizationDetails) is not supported"
    );
}

/// A details table under an explicit NONE type passes the verifier (it checks a variant only
/// for known types); the reader still refuses it rather than silently ignore it.
#[test]
fn custom_quantization_under_a_none_type() {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let custom = b.create_vector(&[1u8]);
    let details = fb::CustomQuantization::create(
        &mut b,
        &fb::CustomQuantizationArgs {
            custom: Some(custom),
        },
    );
    let scale = b.create_vector(&[0.5f32]);
    let zero_point = b.create_vector(&[0i64]);
    // Write the NONE type explicitly instead of leaving the field out.
    b.force_defaults(true);
    let q = fb::QuantizationParameters::create(
        &mut b,
        &fb::QuantizationParametersArgs {
            scale: Some(scale),
            zero_point: Some(zero_point),
            details_type: fb::QuantizationDetails::NONE,
            details: Some(details.as_union_value()),
            ..Default::default()
        },
    );
    b.force_defaults(false);
    let name = b.create_string("x");
    let t = fb::Tensor::create(
        &mut b,
        &fb::TensorArgs {
            name: Some(name),
            type_: fb::TensorType::INT8,
            quantization: Some(q),
            ..Default::default()
        },
    );
    let tensors = b.create_vector(&[t]);
    let graph = fb::SubGraph::create(
        &mut b,
        &fb::SubGraphArgs {
            tensors: Some(tensors),
            ..Default::default()
        },
    );
    let graphs = b.create_vector(&[graph]);
    let empty = fb::Buffer::create(&mut b, &fb::BufferArgs::default());
    let buffers = b.create_vector(&[empty]);
    let model = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version: 3,
            subgraphs: Some(graphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut b, model);
    assert_eq!(
        err_bytes(b.finished_data()),
        "tensor 0 \"x\": custom quantization (QuantizationDetails) is not supported"
    );
}

#[test]
fn constant_string_data() {
    let mut s = base();
    s.tensors[2].dtype = fb::TensorType::STRING;
    let e = read(&build(&s)).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "op 0 CONV_2D, tensor 2 \"conv/b\": constant data of type STRING (no fixed element size) is not supported"
    );
    let mut s = base();
    s.tensors[2].dtype = fb::TensorType(99);
    assert!(err(&s).contains("constant data of type TYPE_99 (no fixed element size)"));
    // Without data an unknown type is only reported, for the mapping layer to refuse.
    let mut s = base();
    s.tensors[3].dtype = fb::TensorType(99);
    assert_eq!(
        read(&build(&s)).unwrap().tensors[3].dtype,
        DType::Unknown(99)
    );
}

#[test]
fn options_of_another_op() {
    let mut s = base();
    s.ops[0].opts = Opts::Pool {
        padding: 0,
        stride: (1, 1),
        filter: (1, 1),
        act: 0,
    };
    assert_eq!(
        err(&s),
        "op 0 CONV_2D: builtin options are Pool2DOptions, expected Conv2DOptions"
    );
    let mut s = base();
    s.ops[1].opts = Opts::Add { act: 0, pot: false };
    assert_eq!(
        err(&s),
        "op 1 SOFTMAX: builtin options are AddOptions, expected SoftmaxOptions"
    );
}

#[test]
fn convolution_without_options() {
    let mut s = base();
    s.ops[0].opts = Opts::None;
    assert_eq!(
        err(&s),
        "op 0 CONV_2D: Conv2DOptions missing (strides and sizes have no default)"
    );
    for (builtin, name, opts) in [
        (
            fb::BuiltinOperator::DEPTHWISE_CONV_2D,
            "DEPTHWISE_CONV_2D",
            "DepthwiseConv2DOptions",
        ),
        (
            fb::BuiltinOperator::AVERAGE_POOL_2D,
            "AVERAGE_POOL_2D",
            "Pool2DOptions",
        ),
        (
            fb::BuiltinOperator::MAX_POOL_2D,
            "MAX_POOL_2D",
            "Pool2DOptions",
        ),
    ] {
        let mut s = base();
        s.codes[0] = code(builtin);
        s.ops[0].opts = Opts::None;
        assert_eq!(
            err(&s),
            format!("op 0 {name}: {opts} missing (strides and sizes have no default)")
        );
    }
}

#[test]
fn sizes_below_one() {
    let cases = [
        (
            Opts::Conv {
                padding: 0,
                stride: (0, 1),
                dilation: (1, 1),
                act: 0,
            },
            "stride_w is 0",
        ),
        (
            Opts::Conv {
                padding: 0,
                stride: (1, -1),
                dilation: (1, 1),
                act: 0,
            },
            "stride_h is -1",
        ),
        (
            Opts::Conv {
                padding: 0,
                stride: (1, 1),
                dilation: (0, 1),
                act: 0,
            },
            "dilation_w_factor is 0",
        ),
        (
            Opts::Conv {
                padding: 0,
                stride: (1, 1),
                dilation: (1, 0),
                act: 0,
            },
            "dilation_h_factor is 0",
        ),
    ];
    for (opts, want) in cases {
        let mut s = base();
        s.ops[0].opts = opts;
        assert_eq!(err(&s), format!("op 0 CONV_2D: {want}, must be >= 1"));
    }
    let mut s = base();
    s.codes[0] = code(fb::BuiltinOperator::MAX_POOL_2D);
    s.ops[0].opts = Opts::Pool {
        padding: 1,
        stride: (1, 1),
        filter: (0, 2),
        act: 0,
    };
    assert_eq!(err(&s), "op 0 MAX_POOL_2D: filter_width is 0, must be >= 1");
    s.ops[0].opts = Opts::Pool {
        padding: 1,
        stride: (1, 1),
        filter: (2, 0),
        act: 0,
    };
    assert_eq!(
        err(&s),
        "op 0 MAX_POOL_2D: filter_height is 0, must be >= 1"
    );
    s.codes[0] = code(fb::BuiltinOperator::DEPTHWISE_CONV_2D);
    s.ops[0].opts = Opts::Dw {
        stride: (1, 0),
        multiplier: 1,
    };
    assert_eq!(
        err(&s),
        "op 0 DEPTHWISE_CONV_2D: stride_h is 0, must be >= 1"
    );
}

#[test]
fn unknown_padding_and_activation_codes() {
    let mut s = base();
    s.ops[0].opts = Opts::Conv {
        padding: 2,
        stride: (1, 1),
        dilation: (1, 1),
        act: 0,
    };
    assert_eq!(
        err(&s),
        "op 0 CONV_2D: padding code 2 is neither SAME (0) nor VALID (1)"
    );
    s.ops[0].opts = Opts::Conv {
        padding: 0,
        stride: (1, 1),
        dilation: (1, 1),
        act: 6,
    };
    assert_eq!(err(&s), "op 0 CONV_2D: fused activation code 6 is unknown");
}

#[test]
fn shuffled_fully_connected_weights() {
    let mut s = base();
    s.codes[0] = code(fb::BuiltinOperator::FULLY_CONNECTED);
    s.ops[0].opts = Opts::Fc {
        format: 1,
        act: 0,
        keep_num_dims: false,
    };
    let e = read(&build(&s)).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "op 0 FULLY_CONNECTED: weights_format SHUFFLED4x16INT8: only DEFAULT (row-major [O][N]) weights are supported"
    );
    s.ops[0].opts = Opts::Fc {
        format: 7,
        act: 0,
        keep_num_dims: false,
    };
    assert!(err(&s).contains("weights_format code 7: only DEFAULT"));
}

#[test]
fn names_in_errors_stay_on_one_line_and_short() {
    let mut s = base();
    s.tensors[1].name = "evil\nname\r\u{7}";
    s.buffers[1].data.pop();
    assert_eq!(
        err(&s),
        "op 0 CONV_2D, tensor 1 \"evil\\nname\\r\\u{7}\": buffer 1 holds 17 bytes, but shape [2, 3, 3, 1] of INT8 needs 18"
    );
    let long: &'static str = Box::leak("x".repeat(500).into_boxed_str());
    let mut s = base();
    s.tensors[1].name = long;
    s.buffers[1].data.pop();
    let line = err(&s);
    assert!(
        line.starts_with(&format!(
            "op 0 CONV_2D, tensor 1 \"{}\"... (500 chars): buffer 1",
            "x".repeat(120)
        )),
        "{line}"
    );
    // Custom op codes are file strings too.
    let mut s = base();
    s.codes[0] = Code {
        builtin: 32,
        deprecated: 32,
        custom: Some("a\nb"),
    };
    s.buffers[1].data.pop();
    assert!(err(&s).starts_with("op 0 CUSTOM(\"a\\nb\"), tensor 1"));
}

#[test]
fn error_display_parts() {
    let e = ReadError::corrupt("multi\nline").at_op(3, "X\nY");
    assert_eq!(e.to_string(), "op 3 X\\nY: multi\\nline");
    let e = ReadError::unsupported("m").at_tensor(2, "t");
    assert_eq!(e.to_string(), "tensor 2 \"t\": m");
    assert_eq!(e.kind, ReadErrorKind::Unsupported);
    assert_eq!(ReadError::corrupt("plain").to_string(), "plain");
}

#[test]
fn dtype_names_and_widths() {
    let all = [
        (fb::TensorType::FLOAT32, "FLOAT32", Some(32)),
        (fb::TensorType::FLOAT16, "FLOAT16", Some(16)),
        (fb::TensorType::INT32, "INT32", Some(32)),
        (fb::TensorType::UINT8, "UINT8", Some(8)),
        (fb::TensorType::INT64, "INT64", Some(64)),
        (fb::TensorType::STRING, "STRING", None),
        (fb::TensorType::BOOL, "BOOL", Some(8)),
        (fb::TensorType::INT16, "INT16", Some(16)),
        (fb::TensorType::COMPLEX64, "COMPLEX64", Some(64)),
        (fb::TensorType::INT8, "INT8", Some(8)),
        (fb::TensorType::FLOAT64, "FLOAT64", Some(64)),
        (fb::TensorType::COMPLEX128, "COMPLEX128", Some(128)),
        (fb::TensorType::UINT64, "UINT64", Some(64)),
        (fb::TensorType::RESOURCE, "RESOURCE", None),
        (fb::TensorType::VARIANT, "VARIANT", None),
        (fb::TensorType::UINT32, "UINT32", Some(32)),
        (fb::TensorType::UINT16, "UINT16", Some(16)),
        (fb::TensorType::INT4, "INT4", Some(4)),
        (fb::TensorType::BFLOAT16, "BFLOAT16", Some(16)),
        (fb::TensorType::INT2, "INT2", Some(2)),
        (fb::TensorType::UINT4, "UINT4", Some(4)),
        (fb::TensorType::FLOAT8_E4M3FN, "FLOAT8_E4M3FN", Some(8)),
        (fb::TensorType::FLOAT8_E5M2, "FLOAT8_E5M2", Some(8)),
        (fb::TensorType(-7), "TYPE_-7", None),
    ];
    for (code, name, bits) in all {
        let d = DType::from_fb(code);
        assert_eq!(d.name(), name);
        assert_eq!(d.to_string(), name);
        // The schema's own spelling, where it has one.
        if let Some(schema) = code.variant_name() {
            assert_eq!(schema, name);
        }
        assert_eq!(d.bits(), bits, "{name}");
    }
}

/// A file whose 20,000 tensor offsets all point at one tensor table (with a quantization
/// table inside): the verifier walks the DAG as a tree, 40,000 tables in an 80 KB file.
/// `rich` gives the shared tensor a shape and scales, so the bytes visited pass the apparent
/// size limit first; without them the table count passes `max_tables` (one per 4 bytes).
fn aliased_tensors(rich: bool) -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let (scale, zero_point, shape) = if rich {
        (
            Some(b.create_vector(&[0.5f32; 8])),
            Some(b.create_vector(&[0i64; 8])),
            Some(b.create_vector(&[8i32])),
        )
    } else {
        (None, None, None)
    };
    let q = fb::QuantizationParameters::create(
        &mut b,
        &fb::QuantizationParametersArgs {
            scale,
            zero_point,
            ..Default::default()
        },
    );
    let t = fb::Tensor::create(
        &mut b,
        &fb::TensorArgs {
            shape,
            type_: fb::TensorType::INT8,
            quantization: Some(q),
            ..Default::default()
        },
    );
    let tensors = b.create_vector(&vec![t; 20_000]);
    let graph = fb::SubGraph::create(
        &mut b,
        &fb::SubGraphArgs {
            tensors: Some(tensors),
            ..Default::default()
        },
    );
    let graphs = b.create_vector(&[graph]);
    let empty = fb::Buffer::create(&mut b, &fb::BufferArgs::default());
    let buffers = b.create_vector(&[empty]);
    let model = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version: 3,
            subgraphs: Some(graphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut b, model);
    b.finished_data().to_vec()
}

#[test]
fn aliased_tables_hit_the_verifier_limits() {
    for (rich, what) in [
        (true, "apparent size too large (aliased offsets)"),
        (false, "too many tables"),
    ] {
        let bytes = aliased_tensors(rich);
        assert_eq!(
            err_bytes(&bytes),
            format!(
                "corrupt or truncated flatbuffer ({} bytes): {what} at Model",
                bytes.len()
            )
        );
        // The crate's default limits (10^6 tables, 2 GiB) let it through: the limits scaled
        // to the file are what stop it.
        assert!(fb::root_as_model(&bytes).is_ok());
    }
}

#[test]
fn verifier_limits_scale_with_the_file() {
    let small = verifier_options(100);
    assert_eq!(small.max_tables, 100 / 4 + 64);
    assert_eq!(small.max_apparent_size, 1 << 20);
    assert_eq!(small.max_depth, 64);
    assert!(!small.ignore_missing_null_terminator);
    let big = verifier_options(1 << 24);
    assert_eq!(big.max_tables, (1 << 22) + 64);
    assert_eq!(big.max_apparent_size, 1 << 27);
}

/// Regenerates the seeds of `tests/fixtures/tflite-corpus/` (run by hand:
/// `cargo test --release --lib make_corpus_seeds -- --ignored --nocapture`): mutates the base
/// model with a fixed seed and keeps, per kind of error, the input with the shortest error
/// line. Writes `target/tflite-corpus-seeds/NN.tflite` and prints `NN<TAB>kind<TAB>line`.
#[test]
#[ignore]
fn make_corpus_seeds() {
    use std::collections::BTreeMap;
    let mut rng = crate::rng::Rng::new(20260501);
    let base_bytes = build(&base());
    let mut seen: BTreeMap<String, (Vec<u8>, String)> = BTreeMap::new();
    for _ in 0..2_000_000 {
        let mut b = base_bytes.clone();
        for _ in 0..rng.range(1, 3) {
            let len = b.len() as i64;
            match rng.range(0, 3) {
                0 => {
                    let p = rng.range(0, len - 1) as usize;
                    b[p] ^= rng.range(1, 255) as u8;
                }
                1 => {
                    let p = (rng.range(0, len - 4) as usize) & !3;
                    let r = rng.next_u64() as u32;
                    let v =
                        *rng.pick(&[0u32, 1, 2, 0x7fff_ffff, 0x8000_0000, u32::MAX, 255, 1000, r]);
                    b[p..p + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {
                    let p = rng.range(0, len - 4) as usize;
                    let v = rng.next_u64() as u32;
                    b[p..p + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        if let Err(e) = read(&b) {
            let line = e.to_string();
            // The kind: the message up to its first number or quoted part.
            let msg = match e.message.split_once("): ") {
                Some((a, rest)) if a.starts_with("corrupt") => rest.to_string(),
                _ => e.message.clone(),
            };
            let mut kind: String = msg
                .split(|c: char| c.is_ascii_digit() || "\"([-".contains(c))
                .next()
                .unwrap_or_default()
                .to_string();
            for family in ["builtin options are", "constant data of type"] {
                if kind.starts_with(family) {
                    kind = family.to_string();
                }
            }
            if seen.get(&kind).is_none_or(|(_, l)| line.len() < l.len()) {
                seen.insert(kind, (b, line));
            }
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tflite-corpus-seeds");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (kind, (b, line))) in seen.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:02}.tflite")), b).unwrap();
        println!("{i:02}\t{kind}\t{line}");
    }
}
