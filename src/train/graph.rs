//! A graph network: the nodes of an architecture ([`super::arch`]) or of an imported
//! int-model, run in float or as the int8 graph it exports to (int-model version 2).
//!
//! Tensors are NHWC with the batch in front (`[B, H, W, C]`, or `[B, N]` once flat), the
//! int-model's order, so export writes weights and shapes without permutations and `flatten`
//! is the golden model's row-major `reshape`. In integer mode every tensor holds centred codes
//! `q - Z` of its (S, Z) (exact integers in f32), as the MLP does; pools and reshapes keep
//! their input's (S, Z), accumulating layers and adds carry their own.

use super::add::QuantAdd;
use super::arch::{Act, INPUT, NodeSpec, OpSpec};
use super::batchnorm::BatchNorm;
use super::exec::Exec;
use super::export::{F32_EXACT, warn_underflow};
use super::im2col::Geometry;
use super::layers::{Fixed, Product, QuantLayer};
use super::pool::{Pool, PoolKind};
use crate::error::input;
use crate::model::{
    self, Add, AvgPool2d, Conv2d, Dense, DepthwiseConv2d, MaxPool2d, Model, OpKind, QParams,
    Reshape, TensorId,
};
use crate::quant::{self, Clamp, Rescale, Rounding};
use crate::rng::Rng;
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor, Var};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Where a node reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Input,
    Node(usize),
}

pub enum Layer {
    Quant(QuantLayer),
    Pool(Pool),
    Add(QuantAdd),
    Reshape,
}

pub struct Node {
    pub spec: NodeSpec,
    pub inputs: Vec<Src>,
    pub layer: Layer,
}

pub struct GraphNet {
    /// Per-image input shape `[H, W, C]` or `[N]`, and its quantization.
    pub input_shape: Vec<usize>,
    pub input_q: QParams,
    pub nodes: Vec<Node>,
    pub exec: Exec,
    /// The architecture text the nodes came from, if any (provenance).
    pub arch: Option<String>,
    /// Prefix of exported model names (`mnist_cnn`, or the imported model's name).
    pub name: String,
}

/// Moves a layer's parameters and statistics to `dev` (new variables: call before building
/// an optimizer).
pub fn move_layer(l: &mut QuantLayer, dev: &Device) -> Result<()> {
    let mv = |v: &Var| -> Result<Var> { Ok(Var::from_tensor(&v.as_tensor().to_device(dev)?)?) };
    l.weight = mv(&l.weight)?;
    l.bias = mv(&l.bias)?;
    if let Some(bn) = &mut l.bn {
        bn.gamma = mv(&bn.gamma)?;
        bn.beta = mv(&bn.beta)?;
        bn.mean = bn.mean.to_device(dev)?;
        bn.var = bn.var.to_device(dev)?;
    }
    if let Some(lr) = &mut l.learned {
        lr.log2_m = mv(&lr.log2_m)?;
    }
    Ok(())
}

fn hwc(shape: &[usize], name: &str) -> Result<(usize, usize, usize)> {
    match *shape {
        [h, w, c] => Ok((h, w, c)),
        _ => Err(input(format!(
            "{name}: needs an [H, W, C] input, gets {shape:?}"
        ))),
    }
}

impl GraphNet {
    /// Builds the nodes with fresh parameters: He-uniform weights (bound `sqrt(6 / fan_in)`)
    /// from `seed` in node order, zero biases, identity batchnorms. Checks that every input
    /// exists earlier and every declared shape is the one the op produces.
    pub fn build(
        specs: Vec<NodeSpec>,
        input_shape: &[usize],
        input_q: QParams,
        seed: u64,
    ) -> Result<GraphNet> {
        let mut rng = Rng::new(seed);
        let dev = Device::Cpu;
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        let mut nodes = Vec::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name.clone();
            let mut inputs = Vec::new();
            for i in &spec.inputs {
                inputs.push(match (i.as_str(), index.get(i)) {
                    (INPUT, _) => Src::Input,
                    (_, Some(&j)) => Src::Node(j),
                    _ => bail!(input(format!(
                        "node {name}: input {i:?} is neither the graph input nor an earlier node"
                    ))),
                });
            }
            let want = if matches!(spec.op, OpSpec::Add) { 2 } else { 1 };
            if inputs.len() != want {
                bail!(input(format!(
                    "node {name}: {} inputs, a {} takes {want}",
                    inputs.len(),
                    kind_name(&spec.op)
                )));
            }
            let shape_of = |s: Src| match s {
                Src::Input => input_shape.to_vec(),
                Src::Node(j) => shapes[j].clone(),
            };
            let in_shape = shape_of(inputs[0]);
            let mut he = |out: usize, fan_in: usize| -> Result<Var> {
                let bound = (6.0 / fan_in as f64).sqrt();
                let w: Vec<f32> = (0..out * fan_in)
                    .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
                    .collect();
                Ok(Var::from_vec(w, (out, fan_in), &dev)?)
            };
            let quant = |product: Product, weight: Var, out: usize, bn: bool| -> Result<Layer> {
                let mut l = QuantLayer::new(
                    &name,
                    product,
                    weight,
                    Var::zeros(out, DType::F32, &dev)?,
                    spec.act,
                );
                if bn {
                    l.bn = Some(BatchNorm::new(out, &dev)?);
                }
                Ok(Layer::Quant(l))
            };
            let geometry = |c_out: Option<usize>| -> Result<(Geometry, Vec<usize>)> {
                let (h, w, c) = hwc(&in_shape, &name)?;
                let window = spec.op.window().expect("windowed op");
                let g = Geometry::new(h, w, c, window)
                    .map_err(|e| input(format!("node {name}: {e}")))?;
                let shape = vec![g.oh, g.ow, c_out.unwrap_or(c)];
                Ok((g, shape))
            };
            let (layer, out_shape) = match spec.op {
                OpSpec::Conv2d {
                    filters, batchnorm, ..
                } => {
                    let (g, shape) = geometry(Some(filters))?;
                    let fan = g.taps() * g.c;
                    let w = he(filters, fan)?;
                    (quant(Product::Conv2d(g), w, filters, batchnorm)?, shape)
                }
                OpSpec::DepthwiseConv2d {
                    multiplier,
                    batchnorm,
                    ..
                } => {
                    let c = hwc(&in_shape, &name)?.2;
                    let (g, shape) = geometry(Some(c * multiplier))?;
                    let w = he(c * multiplier, g.taps())?;
                    let product = Product::Depthwise {
                        geometry: g,
                        multiplier,
                    };
                    (quant(product, w, c * multiplier, batchnorm)?, shape)
                }
                OpSpec::Dense { units, batchnorm } => {
                    let fan = in_shape.iter().product();
                    let w = he(units, fan)?;
                    (quant(Product::Dense, w, units, batchnorm)?, vec![units])
                }
                OpSpec::MaxPool2d { .. } | OpSpec::AvgPool2d { .. } => {
                    let (g, shape) = geometry(None)?;
                    let kind = if matches!(spec.op, OpSpec::MaxPool2d { .. }) {
                        PoolKind::Max
                    } else {
                        PoolKind::Avg
                    };
                    g.window
                        .check_every_window_valid(g.h, g.w)
                        .map_err(|e| input(format!("node {name}: {e}")))?;
                    let pool = Pool {
                        name: name.clone(),
                        kind,
                        geometry: g,
                        act: spec.act,
                    };
                    (Layer::Pool(pool), shape)
                }
                OpSpec::Add => {
                    let other = shape_of(inputs[1]);
                    if other != in_shape {
                        bail!(input(format!(
                            "node {name}: adds a {in_shape:?} and a {other:?} tensor (shapes must be equal)"
                        )));
                    }
                    (Layer::Add(QuantAdd::new(&name, spec.act)), in_shape.clone())
                }
                OpSpec::Reshape { ref shape } => {
                    let n: usize = in_shape.iter().product();
                    if shape.iter().product::<usize>() != n {
                        bail!(input(format!(
                            "node {name}: reshapes {in_shape:?} to {shape:?} (element counts differ)"
                        )));
                    }
                    if spec.act != Act::None {
                        bail!(input(format!(
                            "node {name}: a reshape carries no activation"
                        )));
                    }
                    (Layer::Reshape, shape.clone())
                }
            };
            if out_shape != spec.shape {
                bail!(input(format!(
                    "node {name}: declared shape {:?} but the op produces {out_shape:?}",
                    spec.shape
                )));
            }
            if index.insert(name.clone(), nodes.len()).is_some() || name == INPUT {
                bail!(input(format!("node {name}: the name is used twice")));
            }
            shapes.push(out_shape);
            nodes.push(Node {
                spec,
                inputs,
                layer,
            });
        }
        if nodes.is_empty() {
            bail!(input("the network has no nodes"));
        }
        Ok(GraphNet {
            input_shape: input_shape.to_vec(),
            input_q,
            nodes,
            exec: Exec::cpu(),
            arch: None,
            name: "graph".into(),
        })
    }

    /// Moves every parameter to `exec`'s device and uses its op implementation from now on.
    pub fn set_exec(&mut self, exec: Exec) -> Result<()> {
        for n in &mut self.nodes {
            match &mut n.layer {
                Layer::Quant(l) => move_layer(l, &exec.device)?,
                Layer::Add(a) => {
                    if let Some(t) = &a.learned {
                        a.learned =
                            Some(Var::from_tensor(&t.as_tensor().to_device(&exec.device)?)?);
                    }
                }
                _ => {}
            }
        }
        self.exec = exec;
        Ok(())
    }

    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Classes: the element count of the last node's output.
    pub fn classes(&self) -> usize {
        self.nodes
            .last()
            .map_or(0, |n| n.spec.shape.iter().product())
    }

    fn batch_shape(&self, b: usize, shape: &[usize]) -> Vec<usize> {
        let mut s = vec![b];
        s.extend_from_slice(shape);
        s
    }

    /// Pixel batches `[B, n]` (values `q + 128` of the input codes, as the data loader gives
    /// them) as centred codes `[B, input shape]` on the network's device.
    pub fn centred_input(&self, px: &Tensor) -> Result<Tensor> {
        let b = px.dims()[0];
        let off = 128.0 + self.input_q.zero_point as f64;
        let x = px.to_device(&self.exec.device)?;
        let x = if off != 0.0 { x.affine(1.0, -off)? } else { x };
        Ok(x.reshape(self.batch_shape(b, &self.input_shape))?)
    }

    /// Real logits `[B, classes]` from real inputs (`S_x (q - Z_x)`) of shape `[B, input]`;
    /// with `observe`, every quantized tensor's range takes in this batch (calibration).
    pub fn forward_float(
        &mut self,
        x: &Tensor,
        train: bool,
        observe: Option<f64>,
    ) -> Result<Tensor> {
        let b = x.dims()[0];
        let exec = &self.exec;
        let mut vals: Vec<Tensor> = Vec::with_capacity(self.nodes.len());
        for node in &mut self.nodes {
            let ins: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|s| match s {
                    Src::Input => x,
                    Src::Node(j) => &vals[*j],
                })
                .collect();
            let mut shape = vec![b];
            shape.extend_from_slice(&node.spec.shape);
            let y = match &mut node.layer {
                Layer::Quant(l) => {
                    let y = l.forward_float(ins[0], train, exec)?.reshape(shape)?;
                    if let Some(m) = observe {
                        if exec.portable {
                            l.observe_tensor(&y, m)?;
                        } else {
                            l.observe(&y.flatten_all()?.to_vec1::<f32>()?, m);
                        }
                    }
                    y
                }
                Layer::Pool(p) => p.forward_float(ins[0], exec)?,
                Layer::Add(a) => {
                    let y = a.forward_float(ins[0], ins[1])?;
                    if let Some(m) = observe {
                        a.observe(&y, m)?;
                    }
                    y
                }
                Layer::Reshape => ins[0].reshape(shape)?,
            };
            vals.push(y);
        }
        Ok(vals.pop().expect("nodes").flatten_from(1)?)
    }

    /// The quantization of every node's output under the current ranges.
    pub fn qparams(&self) -> Result<Vec<QParams>> {
        let mut qs: Vec<QParams> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let q_in = |s: Src| match s {
                Src::Input => self.input_q,
                Src::Node(j) => qs[j],
            };
            let q = match &n.layer {
                Layer::Quant(l) => l.output_qparams()?,
                Layer::Add(a) => a.output_qparams()?,
                Layer::Pool(_) | Layer::Reshape => q_in(n.inputs[0]),
            };
            qs.push(q);
        }
        Ok(qs)
    }

    /// Real logits `S_out (y - Z_out)` from centred input codes through the integer graph.
    /// `momentum` set means training: ranges update from this batch.
    pub fn forward_int(
        &mut self,
        x: &Tensor,
        spec: Rescale,
        momentum: Option<f64>,
    ) -> Result<Tensor> {
        let b = x.dims()[0];
        let exec = &self.exec;
        let mut vals: Vec<(Tensor, QParams)> = Vec::with_capacity(self.nodes.len());
        for node in &mut self.nodes {
            let ins: Vec<(&Tensor, QParams)> = node
                .inputs
                .iter()
                .map(|s| match s {
                    Src::Input => (x, self.input_q),
                    Src::Node(j) => (&vals[*j].0, vals[*j].1),
                })
                .collect();
            let mut shape = vec![b];
            shape.extend_from_slice(&node.spec.shape);
            let (x0, q0) = ins[0];
            let out = match &mut node.layer {
                Layer::Quant(l) => {
                    let (y, q) = l.forward_int(x0, q0, spec, momentum, exec)?;
                    (y.reshape(shape)?, q)
                }
                Layer::Pool(p) => (p.forward_int(x0, q0, exec)?, q0),
                Layer::Add(a) => {
                    let (x1, q1) = ins[1];
                    a.forward_int(x0, x1, q0, q1, spec, momentum, exec)?
                }
                Layer::Reshape => (x0.reshape(shape)?, q0),
            };
            vals.push(out);
        }
        let (y, q) = vals.pop().expect("nodes");
        Ok(y.flatten_from(1)?.affine(q.scale, 0.0)?)
    }

    /// Weights, biases and batchnorm scales/shifts (what Adam trains at the main rate).
    pub fn weight_vars(&self) -> Vec<Var> {
        let mut v = Vec::new();
        for n in &self.nodes {
            if let Layer::Quant(l) = &n.layer {
                v.push(l.weight.clone());
                v.push(l.bias.clone());
                if let Some(bn) = &l.bn {
                    v.push(bn.gamma.clone());
                    v.push(bn.beta.clone());
                }
            }
        }
        v
    }

    /// Learned `log2 M` of every rescaler (empty unless learned-rescale training began).
    pub fn rescale_vars(&self) -> Vec<Var> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.layer {
                Layer::Quant(l) => l.learned.as_ref().map(|r| r.log2_m.clone()),
                Layer::Add(a) => a.learned.clone(),
                _ => None,
            })
            .collect()
    }

    pub fn has_ranges(&self) -> bool {
        self.nodes.iter().all(|n| match &n.layer {
            Layer::Quant(l) => l.has_range(),
            Layer::Add(a) => a.has_range(),
            _ => true,
        })
    }

    /// Whether any layer still has a batchnorm (the float stage's network).
    pub fn has_batchnorm(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(&n.layer, Layer::Quant(l) if l.bn.is_some()))
    }

    /// Folds every batchnorm into its layer (QAT's first step, as TFLite's converter).
    pub fn fold_batchnorm(&mut self) -> Result<()> {
        for n in &mut self.nodes {
            if let Layer::Quant(l) = &mut n.layer {
                l.fold_batchnorm()?;
            }
        }
        Ok(())
    }

    /// Freezes every rescaler's scales and starts learning its `log2 M`.
    pub fn start_learned(&mut self) -> Result<()> {
        let qs = self.qparams()?;
        let q_of = |s: Src| match s {
            Src::Input => self.input_q,
            Src::Node(j) => qs[j],
        };
        let ins: Vec<Vec<QParams>> = self
            .nodes
            .iter()
            .map(|n| n.inputs.iter().map(|&s| q_of(s)).collect())
            .collect();
        let dev = self.exec.device.clone();
        for (n, qin) in self.nodes.iter_mut().zip(ins) {
            match &mut n.layer {
                Layer::Quant(l) => l.start_learned(qin[0])?,
                Layer::Add(a) => a.start_learned(qin[0], qin[1], &dev)?,
                _ => {}
            }
        }
        Ok(())
    }

    pub fn is_finite(&self) -> Result<bool> {
        for v in self.weight_vars().iter().chain(&self.rescale_vars()) {
            let s = v.abs()?.sum_all()?.to_scalar::<f32>()?;
            if !s.is_finite() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The int-model (version 2) of the current state under `spec`: what the graph computes
    /// in integer mode, op for op, with the real weight scales in `weight_scale`.
    pub fn to_model(&self, spec: Rescale, name: &str, provenance: Value) -> Result<Model> {
        let qs = self.qparams()?;
        let mut m = Model::new_graph(
            name,
            spec,
            model::Tensor {
                name: INPUT.into(),
                shape: self.input_shape.clone(),
                q: self.input_q,
            },
        );
        let mut ids: Vec<TensorId> = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            let src = |s: Src| match s {
                Src::Input => 0,
                Src::Node(j) => ids[j],
            };
            let inputs: Vec<TensorId> = n.inputs.iter().map(|&s| src(s)).collect();
            let q_in = m.tensors[inputs[0]].q;
            let out_t = model::Tensor {
                name: n.spec.name.clone(),
                shape: n.spec.shape.clone(),
                q: qs[i],
            };
            let mut rounding = None;
            let mut weight_scale = None;
            let (kind, clamp) = match &n.layer {
                Layer::Quant(l) => {
                    let ints = l
                        .ints(q_in, spec)
                        .with_context(|| format!("exporting {}", l.name))?;
                    let (weight, bias) = l.codes(q_in, &ints)?;
                    warn_underflow(&l.name, &ints.mults);
                    let multiplier = ints.mults.iter().map(|d| d.m).collect();
                    let shift = ints.mults.iter().map(|d| d.s).collect();
                    let out = l.out_features();
                    let kind = match &l.product {
                        Product::Dense => OpKind::Dense(Dense {
                            in_features: l.in_features(),
                            out_features: out,
                            weight,
                            bias,
                            multiplier,
                            shift,
                        }),
                        Product::Conv2d(g) => OpKind::Conv2d(Conv2d {
                            window: g.window,
                            in_channels: g.c,
                            out_channels: out,
                            weight,
                            bias,
                            multiplier,
                            shift,
                        }),
                        Product::Depthwise {
                            geometry,
                            multiplier: dm,
                        } => {
                            // [O][taps] -> [taps][O].
                            let taps = geometry.taps();
                            let t = (0..taps * out)
                                .map(|i| weight[(i % out) * taps + i / out])
                                .collect();
                            OpKind::DepthwiseConv2d(DepthwiseConv2d {
                                window: geometry.window,
                                in_channels: geometry.c,
                                depth_multiplier: *dm,
                                weight: t,
                                bias,
                                multiplier,
                                shift,
                            })
                        }
                    };
                    rounding = l.rounding;
                    weight_scale = Some(ints.weight_scales.clone());
                    (kind, l.act.clamp(ints.output))
                }
                Layer::Pool(p) => {
                    let kind = match p.kind {
                        PoolKind::Max => OpKind::MaxPool2d(MaxPool2d {
                            window: p.geometry.window,
                        }),
                        PoolKind::Avg => OpKind::AvgPool2d(AvgPool2d {
                            window: p.geometry.window,
                        }),
                    };
                    (kind, p.act.clamp(qs[i]))
                }
                Layer::Add(a) => {
                    let q1 = m.tensors[inputs[1]].q;
                    let (aq, out) = a
                        .ints(q_in, q1, spec)
                        .with_context(|| format!("exporting {}", a.name))?;
                    let d = [aq.inputs[0], aq.inputs[1], aq.output.mult];
                    warn_underflow(&a.name, &d);
                    rounding = a.rounding;
                    (
                        OpKind::Add(Add {
                            multiplier: d.map(|d| d.m),
                            shift: d.map(|d| d.s),
                            left_shift: aq.left_shift,
                        }),
                        a.act.clamp(out),
                    )
                }
                Layer::Reshape => (OpKind::Reshape(Reshape), Clamp::NONE),
            };
            let id = m.push_op(&n.spec.name, inputs, out_t, clamp, kind);
            let op = m.ops.last_mut().expect("just pushed");
            // Only where it differs from the model's default, as a file would say it.
            op.rounding = rounding.filter(|r| *r != spec.rounding);
            op.weight_scale = weight_scale;
            ids.push(id);
        }
        m.outputs = vec![*ids.last().expect("nodes")];
        m.provenance = provenance;
        m.validate()
            .map_err(|e| anyhow::anyhow!("exported model is invalid: {e}"))?;
        for op in &m.ops {
            if let Some((lo, hi)) = model::ops::acc_range(&m, op)
                && lo.abs().max(hi.abs()) > F32_EXACT
            {
                eprintln!(
                    "warning: {}: worst-case accumulator {} exceeds 2^24; the training graph's f32 \
                     accumulators may round, so graph and golden model can disagree on rare inputs",
                    op.name,
                    lo.abs().max(hi.abs())
                );
            }
        }
        Ok(m)
    }

    /// A network initialised from an int-model (version 2, or a version 1 dense chain): float
    /// weights `S_w[c] w` and biases `S_x S_w[c] b` from the file's codes and real weight
    /// scales, every tensor's (S, Z) and every op's rounding fixed to the file's, so that
    /// exporting it at the file's k reproduces the file's integers. Fails (one line, naming
    /// the op) on what cannot be trained: an accumulating op without `weight_scale`, an ADD
    /// whose left shift is not TFLite's 20, a clamp that is no activation.
    pub fn from_model(m: &Model) -> Result<GraphNet> {
        let mut specs = Vec::with_capacity(m.ops.len());
        let tname = |t: TensorId| -> String {
            if t == m.inputs[0] {
                INPUT.to_string()
            } else {
                format!("t:{}", m.tensors[t].name)
            }
        };
        // Node names are the op names; tensor names map to the op producing them.
        let mut producer: HashMap<TensorId, String> = HashMap::new();
        for (i, op) in m.ops.iter().enumerate() {
            let at = |why: String| input(format!("{}: ops[{i}] {:?}: {why}", m.name, op.name));
            let io = m.io(op);
            let out_q = io.output.q;
            let act = act_of(op.clamp, out_q).ok_or_else(|| {
                at(format!(
                    "clamp [{}, {}] is not NONE, RELU or RELU6 at the output's (S, Z)",
                    op.clamp.lo, op.clamp.hi
                ))
            })?;
            let window = |w: model::Window| (w.kernel, w.stride, w.dilation, w.padding);
            let opspec = match &op.kind {
                OpKind::Conv2d(c) => {
                    let (kernel, stride, dilation, padding) = window(c.window);
                    OpSpec::Conv2d {
                        filters: c.out_channels,
                        kernel,
                        stride,
                        dilation,
                        padding,
                        batchnorm: false,
                    }
                }
                OpKind::DepthwiseConv2d(c) => {
                    let (kernel, stride, dilation, padding) = window(c.window);
                    OpSpec::DepthwiseConv2d {
                        multiplier: c.depth_multiplier,
                        kernel,
                        stride,
                        dilation,
                        padding,
                        batchnorm: false,
                    }
                }
                OpKind::Dense(d) => OpSpec::Dense {
                    units: d.out_features,
                    batchnorm: false,
                },
                OpKind::MaxPool2d(p) => OpSpec::MaxPool2d {
                    kernel: p.window.kernel,
                    stride: p.window.stride,
                    padding: p.window.padding,
                },
                OpKind::AvgPool2d(p) => OpSpec::AvgPool2d {
                    kernel: p.window.kernel,
                    stride: p.window.stride,
                    padding: p.window.padding,
                },
                OpKind::Add(a) => {
                    if a.left_shift != quant::ADD_LEFT_SHIFT {
                        return Err(at(format!(
                            "left_shift = {} (training emulates TFLite's {})",
                            a.left_shift,
                            quant::ADD_LEFT_SHIFT
                        )));
                    }
                    OpSpec::Add
                }
                OpKind::Reshape(_) => OpSpec::Reshape {
                    shape: io.output.shape.clone(),
                },
            };
            if op.kind.accumulates() && op.weight_scale.is_none() {
                return Err(at(
                    "no weight_scale: the real weight scales are needed to dequantize the weights (re-import the model, or export it with this ratflow)".into(),
                ));
            }
            let inputs = op
                .inputs
                .iter()
                .map(|&t| {
                    if t == m.inputs[0] {
                        Ok(INPUT.to_string())
                    } else {
                        producer
                            .get(&t)
                            .cloned()
                            .ok_or_else(|| at(format!("input {} has no producer", tname(t))))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            producer.insert(op.output, op.name.clone());
            specs.push(NodeSpec {
                name: op.name.clone(),
                inputs,
                op: opspec,
                act,
                shape: io.output.shape.clone(),
            });
        }
        if m.outputs[0] != m.ops.last().map_or(usize::MAX, |o| o.output) {
            return Err(input(format!(
                "{}: the first output is not the last op's: training reads the last op's output as the logits",
                m.name
            )));
        }
        let mut net = GraphNet::build(specs, &m.input().shape, m.input().q, 0)
            .with_context(|| format!("model {}", m.name))?;
        net.name = m.name.clone();
        for (node, op) in net.nodes.iter_mut().zip(&m.ops) {
            let io = m.io(op);
            let (sx, out_q) = (io.input().q.scale, io.output.q);
            let rounding = Some(op.rounding.unwrap_or(m.rescale.rounding));
            match &mut node.layer {
                Layer::Quant(l) => {
                    let ch = op.kind.channels().expect("accumulating op");
                    let ws = op.weight_scale.clone().expect("checked above");
                    let (o, fan) = (l.out_features(), l.in_features());
                    let codes: Vec<i8> = match &op.kind {
                        OpKind::Dense(d) => d.weight.clone(),
                        OpKind::Conv2d(c) => c.weight.clone(),
                        OpKind::DepthwiseConv2d(c) => (0..o * fan)
                            .map(|i| c.weight[(i % fan) * o + i / fan])
                            .collect(),
                        _ => unreachable!("accumulating op"),
                    };
                    let w: Vec<f32> = codes
                        .iter()
                        .enumerate()
                        .map(|(i, &q)| (ws[i / fan] * q as f64) as f32)
                        .collect();
                    let b: Vec<f32> = (0..o)
                        .map(|c| (sx * ws[c] * ch.bias[c] as f64) as f32)
                        .collect();
                    l.weight = Var::from_vec(w, (o, fan), &Device::Cpu)?;
                    l.bias = Var::from_vec(b, o, &Device::Cpu)?;
                    l.fixed = Some(Fixed {
                        weight_scales: ws,
                        output: out_q,
                    });
                    l.rounding = rounding;
                }
                Layer::Add(a) => {
                    a.fixed = Some(out_q);
                    a.rounding = rounding;
                }
                _ => {}
            }
        }
        Ok(net)
    }

    /// Everything of the network the checkpoint metadata records (with the tensors of
    /// [`GraphNet::tensors`] it rebuilds the network).
    pub fn metadata(&self) -> Value {
        let rounding: serde_json::Map<String, Value> = self
            .nodes
            .iter()
            .filter_map(|n| {
                let r = match &n.layer {
                    Layer::Quant(l) => l.rounding,
                    Layer::Add(a) => a.rounding,
                    _ => None,
                };
                r.map(|r| (n.spec.name.clone(), json!(r.as_str())))
            })
            .collect();
        let specs: Vec<&NodeSpec> = self.nodes.iter().map(|n| &n.spec).collect();
        json!({
            "input": { "shape": self.input_shape, "scale": self.input_q.scale,
                       "zero_point": self.input_q.zero_point },
            "name": self.name, "arch": self.arch, "nodes": specs, "rounding": rounding,
        })
    }

    /// Every parameter and statistic, named `{node}.{what}`: f32 `weight`, `bias`, `bn_gamma`,
    /// `bn_beta`, `bn_mean`, `bn_var`, `log2_m`; f64 `range` (`[lo, hi]`), `weight_scale`
    /// (frozen with `log2_m`), `fixed_weight_scale`, `fixed_output` (`[S, Z]`).
    pub fn tensors(&self) -> Result<Vec<(String, GraphTensor)>> {
        let mut out = Vec::new();
        let f32t = |t: &Tensor| -> Result<GraphTensor> {
            Ok(GraphTensor::F32(
                t.dims().to_vec(),
                t.flatten_all()?.to_vec1::<f32>()?,
            ))
        };
        for n in &self.nodes {
            let name = &n.spec.name;
            let mut put = |what: &str, t: GraphTensor| out.push((format!("{name}.{what}"), t));
            match &n.layer {
                Layer::Quant(l) => {
                    put("weight", f32t(&l.weight)?);
                    put("bias", f32t(&l.bias)?);
                    if let Some(bn) = &l.bn {
                        put("bn_gamma", f32t(&bn.gamma)?);
                        put("bn_beta", f32t(&bn.beta)?);
                        put("bn_mean", f32t(&bn.mean)?);
                        put("bn_var", f32t(&bn.var)?);
                    }
                    if let Some(r) = l.range {
                        put("range", GraphTensor::F64(vec![r.lo, r.hi]));
                    }
                    if let Some(lr) = &l.learned {
                        put("log2_m", f32t(&lr.log2_m)?);
                        put("weight_scale", GraphTensor::F64(lr.weight_scales.clone()));
                    }
                    if let Some(f) = &l.fixed {
                        put(
                            "fixed_weight_scale",
                            GraphTensor::F64(f.weight_scales.clone()),
                        );
                        put(
                            "fixed_output",
                            GraphTensor::F64(vec![f.output.scale, f.output.zero_point as f64]),
                        );
                    }
                }
                Layer::Add(a) => {
                    if let Some(r) = a.range {
                        put("range", GraphTensor::F64(vec![r.lo, r.hi]));
                    }
                    if let Some(t) = &a.learned {
                        put("log2_m", f32t(t)?);
                    }
                    if let Some(q) = &a.fixed {
                        put(
                            "fixed_output",
                            GraphTensor::F64(vec![q.scale, q.zero_point as f64]),
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Rebuilds a network from [`GraphNet::metadata`] and a tensor lookup (checkpoints).
    pub fn restore(
        meta: &Value,
        get: &dyn Fn(&str) -> Result<Option<GraphTensor>>,
    ) -> Result<GraphNet> {
        let inp = &meta["input"];
        let shape: Vec<usize> =
            serde_json::from_value(inp["shape"].clone()).context("graph.input.shape")?;
        let input_q = QParams {
            scale: inp["scale"].as_f64().context("graph.input.scale")?,
            zero_point: inp["zero_point"]
                .as_i64()
                .and_then(|z| i8::try_from(z).ok())
                .context("graph.input.zero_point")?,
        };
        let specs: Vec<NodeSpec> =
            serde_json::from_value(meta["nodes"].clone()).context("graph.nodes")?;
        let mut net = GraphNet::build(specs, &shape, input_q, 0)?;
        net.arch = meta["arch"].as_str().map(str::to_string);
        net.name = meta["name"].as_str().unwrap_or("graph").to_string();
        let f32v = |name: &str, dims: &[usize]| -> Result<Option<Tensor>> {
            match get(name)? {
                None => Ok(None),
                Some(GraphTensor::F32(d, v)) if d == dims => {
                    Ok(Some(Tensor::from_vec(v, d, &Device::Cpu)?))
                }
                Some(GraphTensor::F32(d, _)) => bail!("{name} has shape {d:?}, expected {dims:?}"),
                Some(GraphTensor::F64(_)) => bail!("{name} is F64, expected F32"),
            }
        };
        let f64v = |name: &str, len: usize| -> Result<Option<Vec<f64>>> {
            match get(name)? {
                None => Ok(None),
                Some(GraphTensor::F64(v)) if v.len() == len => Ok(Some(v)),
                Some(_) => bail!("{name}: expected {len} F64 values"),
            }
        };
        let qp = |v: Vec<f64>| QParams {
            scale: v[0],
            zero_point: v[1] as i8,
        };
        let rounding = &meta["rounding"];
        for n in &mut net.nodes {
            let name = n.spec.name.clone();
            let r = rounding[&name].as_str().and_then(Rounding::parse);
            match &mut n.layer {
                Layer::Quant(l) => {
                    let (o, fan) = (l.out_features(), l.in_features());
                    let need = |what: &str, dims: &[usize]| -> Result<Tensor> {
                        f32v(&format!("{name}.{what}"), dims)?
                            .with_context(|| format!("tensor {name}.{what} missing"))
                    };
                    l.weight = Var::from_tensor(&need("weight", &[o, fan])?)?;
                    l.bias = Var::from_tensor(&need("bias", &[o])?)?;
                    if let Some(bn) = &mut l.bn {
                        match f32v(&format!("{name}.bn_gamma"), &[o])? {
                            Some(g) => {
                                bn.gamma = Var::from_tensor(&g)?;
                                bn.beta = Var::from_tensor(&need("bn_beta", &[o])?)?;
                                bn.mean = need("bn_mean", &[o])?;
                                bn.var = need("bn_var", &[o])?;
                            }
                            // Folded (QAT and later): the weights already carry it.
                            None => l.bn = None,
                        }
                    }
                    l.range = f64v(&format!("{name}.range"), 2)?
                        .map(|v| super::layers::ActRange { lo: v[0], hi: v[1] });
                    if let Some(t) = f32v(&format!("{name}.log2_m"), &[o])? {
                        let ws = f64v(&format!("{name}.weight_scale"), o)?
                            .with_context(|| format!("{name}.weight_scale missing"))?;
                        l.learned = Some(super::layers::LearnedRescale {
                            log2_m: Var::from_tensor(&t)?,
                            weight_scales: ws,
                        });
                    }
                    if let Some(ws) = f64v(&format!("{name}.fixed_weight_scale"), o)? {
                        let out = f64v(&format!("{name}.fixed_output"), 2)?
                            .with_context(|| format!("{name}.fixed_output missing"))?;
                        l.fixed = Some(Fixed {
                            weight_scales: ws,
                            output: qp(out),
                        });
                    }
                    l.rounding = r;
                }
                Layer::Add(a) => {
                    a.range = f64v(&format!("{name}.range"), 2)?
                        .map(|v| super::layers::ActRange { lo: v[0], hi: v[1] });
                    if let Some(t) = f32v(&format!("{name}.log2_m"), &[3])? {
                        a.learned = Some(Var::from_tensor(&t)?);
                    }
                    a.fixed = f64v(&format!("{name}.fixed_output"), 2)?.map(qp);
                    a.rounding = r;
                }
                _ => {}
            }
        }
        Ok(net)
    }
}

/// A checkpoint tensor of a graph network.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphTensor {
    F32(Vec<usize>, Vec<f32>),
    F64(Vec<f64>),
}

fn kind_name(op: &OpSpec) -> &'static str {
    match op {
        OpSpec::Conv2d { .. } => "conv2d",
        OpSpec::DepthwiseConv2d { .. } => "depthwise_conv2d",
        OpSpec::Dense { .. } => "dense",
        OpSpec::MaxPool2d { .. } => "max_pool2d",
        OpSpec::AvgPool2d { .. } => "avg_pool2d",
        OpSpec::Add => "add",
        OpSpec::Reshape { .. } => "reshape",
    }
}

/// The activation a clamp stands for at output quantization `q`, if any.
fn act_of(c: Clamp, q: QParams) -> Option<Act> {
    [Act::None, Act::Relu, Act::Relu6]
        .into_iter()
        .find(|a| a.clamp(q) == c)
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
