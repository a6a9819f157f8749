//! Random valid int-models, for tests that must not be tuned to one trained network.
//!
//! Layer sizes, weights (dense, sparse, saturated), biases, zero points, ReLU, `k`, rounding
//! mode and rescale factors spanning many octaves are all drawn from a seed. Every model is
//! valid by construction and passes [`Model::validate`].

use super::{
    Add, AvgPool2d, Conv2d, Dense, DenseLayer, DepthwiseConv2d, MaxPool2d, Model, OpKind, QParams,
    Reshape, Tensor, Window,
};
use crate::quant::{self, Clamp, Dyadic, Rescale, Rounding};
use crate::rng::Rng;
use serde_json::json;

/// What to randomize; `None` fields are drawn from the seed.
#[derive(Clone, Debug, Default)]
pub struct RandomSpec {
    pub seed: u64,
    /// Input length; 784 (the default) uses MNIST's input quantization.
    pub inputs: Option<usize>,
    /// Output sizes of every layer, last one included.
    pub layers: Option<Vec<usize>>,
    pub k_bits: Option<u32>,
    pub rounding: Option<Rounding>,
}

pub fn random_model(spec: &RandomSpec) -> Model {
    let mut rng = Rng::new(spec.seed);
    let inputs = spec.inputs.unwrap_or(784);
    let sizes = spec.layers.clone().unwrap_or_else(|| {
        let hidden = rng.range(0, 2) as usize;
        let mut v: Vec<usize> = (0..hidden).map(|_| rng.range(1, 40) as usize).collect();
        v.push(rng.range(2, 12) as usize);
        v
    });
    let k_bits = spec
        .k_bits
        .unwrap_or_else(|| *rng.pick(&[31, 31, 24, 16, 12, 8, 8, 6, 5, 4, 4, 3, 2, 1]));
    let rounding = spec.rounding.unwrap_or_else(|| {
        if rng.chance(0.5) {
            Rounding::Single
        } else {
            Rounding::Double
        }
    });
    let input_q = if inputs == 784 {
        QParams {
            scale: 1.0 / 255.0,
            zero_point: -128,
        }
    } else {
        QParams {
            scale: 1.0 / 255.0,
            zero_point: rng.i8(),
        }
    };
    let mut layers = Vec::new();
    let mut fan_in = inputs;
    let mut in_scale = input_q.scale;
    for (i, &out) in sizes.iter().enumerate() {
        let last = i + 1 == sizes.len();
        let layer = random_layer(&mut rng, i, fan_in, out, k_bits, rounding, in_scale, last);
        in_scale = layer.output.scale;
        fan_in = out;
        layers.push(layer);
    }
    let model = Model::dense_model(
        &format!("random_{}", spec.seed),
        Rescale::plain(k_bits, rounding),
        vec![inputs],
        input_q,
        layers,
        json!({ "generator": "ratflow random-model", "seed": spec.seed }),
    );
    if let Err(e) = model.validate() {
        panic!("random model generator produced an invalid model: {e}");
    }
    model
}

#[allow(clippy::too_many_arguments)]
fn random_layer(
    rng: &mut Rng,
    index: usize,
    fan_in: usize,
    out: usize,
    k: u32,
    rounding: Rounding,
    in_scale: f64,
    last: bool,
) -> DenseLayer {
    // Weight style per layer: full-range, small, sparse, or saturated at the int8 extremes.
    let style = rng.range(0, 3);
    let mut weight = Vec::with_capacity(out * fan_in);
    for _ in 0..out * fan_in {
        let w = match style {
            0 => rng.range(-127, 127),
            1 => rng.range(-8, 8),
            2 if rng.chance(0.8) => 0,
            2 => rng.range(-127, 127),
            _ => *rng.pick(&[-128, -127, 127, 0]),
        };
        weight.push(w as i8);
    }
    let mut bias = Vec::with_capacity(out);
    let mut multiplier = Vec::with_capacity(out);
    let mut shift = Vec::with_capacity(out);
    for c in 0..out {
        let row = &weight[c * fan_in..(c + 1) * fan_in];
        let l1: i64 = row.iter().map(|&w| (w as i64).abs()).sum();
        let l2: f64 = row.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt();
        let room = i32::MAX as i64 - 255 * l1;
        let b = match rng.range(0, 4) {
            0 => 0,
            1 => rng.range(-(room.min(1 << 20)), room.min(1 << 20)),
            2 => rng.range(-room, room),
            _ => rng.range(-1000, 1000).clamp(-room, room),
        };
        bias.push(b as i32);
        // Scale a typical accumulator (inputs spread over 0..255, std ~74) to ~64 codes, then
        // spread over several octaves so outputs both saturate and sit near zero.
        let typical = (74.0 * l2 + (b as f64).abs() / 4.0).max(1.0);
        let mut real = 64.0 / typical;
        real *= (rng.unit() * 8.0 - 4.0).exp2();
        if rng.chance(0.03) {
            // Tiny M: a shift near or past the limit.
            real = (-(rng.range(30, 70) as f64)).exp2();
        } else if rounding == Rounding::Single && rng.chance(0.05) {
            // M >= 1 (s < k) is legal in single mode only.
            real = 1.0 + rng.unit() * 2.0;
        }
        let mult = derive_legal(real, k, rounding);
        multiplier.push(mult.m);
        shift.push(mult.s);
    }
    let zero_point = rng.i8();
    let relu = !last && rng.chance(0.7);
    let mean_m = multiplier
        .iter()
        .zip(&shift)
        .map(|(&m, &s)| Dyadic { m, s }.value())
        .filter(|v| *v > 0.0)
        .fold(0.0, f64::max)
        .max(1e-12);
    DenseLayer {
        name: format!("fc{}", index + 1),
        dense: Dense {
            in_features: fan_in,
            out_features: out,
            weight,
            bias,
            multiplier,
            shift,
        },
        output: QParams {
            scale: in_scale / 127.0 / mean_m,
            zero_point,
        },
        relu,
    }
}

/// (m, s) for `real` at `k`, nudged into what the model format allows for `rounding`: no
/// negative shift, and in `double` mode `s >= k` and never the (0, 0) underflow encoding.
fn derive_legal(real: f64, k: u32, rounding: Rounding) -> Dyadic {
    let largest_below_one = Dyadic {
        m: ((1u64 << k) - 1) as u32,
        s: k,
    };
    match quant::derive_multiplier(real, k) {
        Err(_) => {
            if rounding == Rounding::Single {
                quant::derive_multiplier((1u64 << (k - 1)) as f64, k)
                    .expect("2^(k-1) is representable")
                    .mult
            } else {
                largest_below_one
            }
        }
        Ok(d) if rounding == Rounding::Double && (d.underflow || d.mult.s < k) => {
            if d.underflow {
                Dyadic {
                    m: 1u32 << (k - 1),
                    s: 62,
                }
            } else {
                largest_below_one
            }
        }
        Ok(d) => d.mult,
    }
}

/// What to randomize in a random graph; `None` fields are drawn from the seed.
#[derive(Clone, Debug, Default)]
pub struct GraphSpec {
    pub seed: u64,
    /// The model's default k (ops may still override it with a narrower one).
    pub k_bits: Option<u32>,
    pub rounding: Option<Rounding>,
}

/// Builds random graphs op by op, keeping every tensor's scale plausible so that outputs
/// neither all saturate nor all sit at the zero point.
struct GraphBuilder {
    rng: Rng,
    model: Model,
    count: usize,
}

impl GraphBuilder {
    /// A tensor or op name: short, or (now and then) as long and punctuated as TFLite's.
    fn name(&mut self, kind: &str) -> (String, String) {
        self.count += 1;
        let n = self.count;
        if self.rng.chance(0.15) {
            let long = format!(
                "model/{kind}_{n}/BiasAdd;model/{kind}_{n}/Conv2D;model/batch_normalization_{n}/FusedBatchNormV3;{kind}/bias"
            );
            (format!("{kind}{n} op"), long)
        } else {
            (format!("op{n}_{kind}"), format!("t{n}"))
        }
    }

    /// Per-op overrides: a narrower k, or the other rounding, on some ops. Returns the
    /// overrides and the rescale settings they give.
    fn overrides(&mut self) -> (Option<u32>, Option<Rounding>, Rescale) {
        let default = self.model.rescale;
        let mut k = None;
        let mut rounding = None;
        if self.rng.chance(0.25) {
            let narrow = *self.rng.pick(&[2u32, 3, 4, 5, 8, 12]);
            if narrow < default.k_bits {
                k = Some(narrow);
            }
        }
        if self.rng.chance(0.2) {
            rounding = Some(match default.rounding {
                Rounding::Single => Rounding::Double,
                Rounding::Double => Rounding::Single,
            });
        }
        let r = Rescale {
            k_bits: k.unwrap_or(default.k_bits),
            rounding: rounding.unwrap_or(default.rounding),
            csd_digits: None,
        };
        (k, rounding, r)
    }

    /// Appends an op and applies the per-op overrides.
    fn push(
        &mut self,
        name: &str,
        inputs: Vec<usize>,
        output: Tensor,
        clamp: Clamp,
        kind: OpKind,
        over: (Option<u32>, Option<Rounding>),
    ) -> usize {
        let out = self.model.push_op(name, inputs, output, clamp, kind);
        let op = self.model.ops.last_mut().expect("just pushed");
        (op.k_bits, op.rounding) = over;
        out
    }

    /// `(m, s)` per channel of an accumulating op, from the real factors, legal for the op's
    /// k and rounding; all channels share one with probability 1/4 (per-tensor).
    /// Also returns the real factors the `(m, s)` stand for (per-tensor: all the first's; a
    /// dead channel: one far below 2^-62).
    fn rescalers(
        &mut self,
        reals: &[f64],
        k: u32,
        rounding: Rounding,
    ) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
        let mut reals = reals.to_vec();
        if self.rng.chance(0.25) {
            let first = reals[0];
            reals.iter_mut().for_each(|r| *r = first);
        }
        // A dead channel now and then (m = 0, output fixed at the zero point).
        if reals.len() > 1 && self.rng.chance(0.2) {
            let c = self.rng.range(0, reals.len() as i64 - 1) as usize;
            reals[c] = 2f64.powi(-80);
        }
        // An underflowed factor is (0, 0) in both modes (DESIGN section 1).
        let ds: Vec<Dyadic> = reals
            .iter()
            .map(|&r| match quant::derive_multiplier(r, k) {
                Ok(d) if d.underflow => d.mult,
                _ => derive_legal(r, k, rounding),
            })
            .collect();
        (
            ds.iter().map(|d| d.m).collect(),
            ds.iter().map(|d| d.s).collect(),
            reals,
        )
    }

    fn clamp(&mut self, zp: i8, scale: f64) -> Clamp {
        match self.rng.range(0, 2) {
            0 => Clamp::NONE,
            1 => Clamp::relu(zp),
            _ => Clamp::relu6(zp, scale),
        }
    }

    fn weights(&mut self, n: usize) -> Vec<i8> {
        let style = self.rng.range(0, 3);
        (0..n)
            .map(|_| {
                (match style {
                    0 => self.rng.range(-127, 127),
                    1 => self.rng.range(-8, 8),
                    2 if self.rng.chance(0.7) => 0,
                    2 => self.rng.range(-127, 127),
                    _ => *self.rng.pick(&[-128, -127, 127, 0]),
                }) as i8
            })
            .collect()
    }

    /// Bias and real rescale factors for channels whose weights are `rows` (one slice per
    /// channel), scaled so a typical accumulator lands on ~64 codes.
    fn bias_and_reals(&mut self, rows: &[Vec<i8>]) -> (Vec<i32>, Vec<f64>) {
        let mut bias = Vec::new();
        let mut reals = Vec::new();
        for row in rows {
            let l1: i64 = row.iter().map(|&w| (w as i64).abs()).sum();
            let l2: f64 = row.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt();
            let room = (i32::MAX as i64 - 255 * l1).max(0);
            let b = match self.rng.range(0, 3) {
                0 => 0,
                1 => self.rng.range(-(room.min(1 << 16)), room.min(1 << 16)),
                _ => self.rng.range(-1000, 1000).clamp(-room, room),
            };
            bias.push(b as i32);
            let typical = (60.0 * l2 + (b as f64).abs() / 4.0).max(1.0);
            // Below 1, as in real networks: every factor is then legal in `double` mode and at
            // every k (M >= 1 is exercised by the dense-chain generator).
            let mut real = (64.0 / typical * (self.rng.unit() * 4.0 - 2.0).exp2()).min(0.99);
            if self.rng.chance(0.02) {
                real = (-(self.rng.range(30, 70) as f64)).exp2();
            }
            reals.push(real);
        }
        (bias, reals)
    }

    /// Appends an accumulating op: `kind` from weights `rows`, output `shape`.
    fn accumulating(
        &mut self,
        x: usize,
        shape: Vec<usize>,
        rows: Vec<Vec<i8>>,
        make: impl FnOnce(Vec<i32>, Vec<u32>, Vec<u32>) -> OpKind,
        kind: &str,
    ) -> usize {
        let (op_name, t_name) = self.name(kind);
        let zp = self.rng.i8();
        let (bias, reals) = self.bias_and_reals(&rows);
        // The output scale is free: fix it, then the factors are M relative to it.
        let scale = self.model.tensors[x].q.scale * (self.rng.unit() * 6.0 - 3.0).exp2();
        let clamp = self.clamp(zp, scale);
        let (k, rounding, r) = self.overrides();
        let (m, s, reals) = self.rescalers(&reals, r.k_bits, r.rounding);
        let sx = self.model.tensors[x].q.scale;
        let out = self.push(
            &op_name,
            vec![x],
            Tensor {
                name: t_name,
                shape,
                q: QParams {
                    scale,
                    zero_point: zp,
                },
            },
            clamp,
            make(bias, m, s),
            (k, rounding),
        );
        // M = S_x S_w / S_y, so these weight scales re-derive the same real factors.
        self.model.ops.last_mut().expect("just pushed").weight_scale =
            Some(reals.iter().map(|&r| r * scale / sx).collect());
        out
    }

    fn window(&mut self, h: usize, w: usize, pool: bool) -> Window {
        let kh = self.rng.range(1, 3.min(h as i64)) as usize;
        let kw = self.rng.range(1, 3.min(w as i64)) as usize;
        let stride = [self.rng.range(1, 2) as usize, self.rng.range(1, 2) as usize];
        let dilation = if !pool && self.rng.chance(0.2) && h > 4 && w > 4 {
            [2, self.rng.range(1, 2) as usize]
        } else {
            [1, 1]
        };
        // SAME-like (odd extra at the bottom/right), VALID, or explicit; always less than the
        // kernel so that no pool window lies entirely in the padding.
        let pad = |rng: &mut Rng, k: usize, d: usize| -> (usize, usize) {
            let span = (k - 1) * d;
            match rng.range(0, 2) {
                0 => (span / 2, span - span / 2),
                1 => (0, 0),
                _ => (
                    rng.range(0, (k as i64 - 1).min(2)) as usize,
                    rng.range(0, (k as i64 - 1).min(2)) as usize,
                ),
            }
        };
        let (pt, pb) = pad(&mut self.rng, kh, dilation[0]);
        let (pl, pr) = pad(&mut self.rng, kw, dilation[1]);
        let mut win = Window {
            kernel: [kh, kw],
            stride,
            dilation,
            padding: [pt, pb, pl, pr],
        };
        if pool {
            // SAME padding for a pool may exceed the kernel - 1 bound only with dilation,
            // which pools do not have; clip to keep every window non-empty.
            win.padding = [
                pt.min(kh - 1),
                pb.min(kh - 1),
                pl.min(kw - 1),
                pr.min(kw - 1),
            ];
        }
        win
    }

    fn conv(&mut self, x: usize, out_c: usize) -> usize {
        let (h, w, c) = self.model.tensors[x].hwc().expect("rank 3");
        let win = self.window(h, w, false);
        let (oh, ow) = win.out_hw(h, w).expect("window fits");
        let k = win.taps() * c;
        let rows: Vec<Vec<i8>> = (0..out_c).map(|_| self.weights(k)).collect();
        let weight = rows.concat();
        self.accumulating(
            x,
            vec![oh, ow, out_c],
            rows,
            move |bias, multiplier, shift| {
                OpKind::Conv2d(Conv2d {
                    window: win,
                    in_channels: c,
                    out_channels: out_c,
                    weight,
                    bias,
                    multiplier,
                    shift,
                })
            },
            "conv2d",
        )
    }

    fn depthwise(&mut self, x: usize) -> usize {
        let (h, w, c) = self.model.tensors[x].hwc().expect("rank 3");
        let dm = self.rng.range(1, 2) as usize;
        let win = self.window(h, w, false);
        let (oh, ow) = win.out_hw(h, w).expect("window fits");
        let o = c * dm;
        let weight = self.weights(win.taps() * o);
        let rows: Vec<Vec<i8>> = (0..o)
            .map(|ch| (0..win.taps()).map(|t| weight[t * o + ch]).collect())
            .collect();
        self.accumulating(
            x,
            vec![oh, ow, o],
            rows,
            move |bias, multiplier, shift| {
                OpKind::DepthwiseConv2d(DepthwiseConv2d {
                    window: win,
                    in_channels: c,
                    depth_multiplier: dm,
                    weight,
                    bias,
                    multiplier,
                    shift,
                })
            },
            "depthwise_conv2d",
        )
    }

    fn dense(&mut self, x: usize, out: usize) -> usize {
        let n = self.model.tensors[x].len();
        let rows: Vec<Vec<i8>> = (0..out).map(|_| self.weights(n)).collect();
        let weight = rows.concat();
        self.accumulating(
            x,
            vec![out],
            rows,
            move |bias, multiplier, shift| {
                OpKind::Dense(Dense {
                    in_features: n,
                    out_features: out,
                    weight,
                    bias,
                    multiplier,
                    shift,
                })
            },
            "dense",
        )
    }

    fn pool(&mut self, x: usize, avg: bool) -> usize {
        let t = self.model.tensors[x].clone();
        let (h, w, c) = t.hwc().expect("rank 3");
        let win = self.window(h, w, true);
        let (oh, ow) = win.out_hw(h, w).expect("window fits");
        let kind = if avg { "avg_pool2d" } else { "max_pool2d" };
        let (op_name, t_name) = self.name(kind);
        let clamp = if self.rng.chance(0.3) {
            Clamp::relu(t.q.zero_point)
        } else {
            Clamp::NONE
        };
        let kind = if avg {
            OpKind::AvgPool2d(AvgPool2d { window: win })
        } else {
            OpKind::MaxPool2d(MaxPool2d { window: win })
        };
        self.model.push_op(
            &op_name,
            vec![x],
            Tensor {
                name: t_name,
                shape: vec![oh, ow, c],
                q: t.q,
            },
            clamp,
            kind,
        )
    }

    /// A residual block: a shape-preserving conv branch added back to its input, whose scale
    /// differs from the branch's.
    fn residual(&mut self, x: usize) -> usize {
        let (h, w, c) = self.model.tensors[x].hwc().expect("rank 3");
        let k = *self.rng.pick(&[1usize, 3]);
        let win = Window {
            kernel: [k.min(h), k.min(w)],
            stride: [1, 1],
            dilation: [1, 1],
            padding: [
                (k.min(h) - 1) / 2,
                k.min(h) / 2,
                (k.min(w) - 1) / 2,
                k.min(w) / 2,
            ],
        };
        let rows: Vec<Vec<i8>> = (0..c).map(|_| self.weights(win.taps() * c)).collect();
        let weight = rows.concat();
        let branch = self.accumulating(
            x,
            vec![h, w, c],
            rows,
            move |bias, multiplier, shift| {
                OpKind::Conv2d(Conv2d {
                    window: win,
                    in_channels: c,
                    out_channels: c,
                    weight,
                    bias,
                    multiplier,
                    shift,
                })
            },
            "conv2d",
        );
        let (s1, s2) = (
            self.model.tensors[x].q.scale,
            self.model.tensors[branch].q.scale,
        );
        let (op_name, t_name) = self.name("add");
        let zp = self.rng.i8();
        let scale = (s1 + s2) * (self.rng.unit() * 2.0 - 1.0).exp2();
        let clamp = self.clamp(zp, scale);
        let left_shift = if self.rng.chance(0.8) {
            quant::ADD_LEFT_SHIFT
        } else {
            self.rng.range(8, quant::MAX_ADD_LEFT_SHIFT as i64) as u32
        };
        let (k, rounding, r) = self.overrides();
        let factors = quant::add_factors(s1, s2, scale, left_shift);
        let ds = factors.map(|f| derive_legal(f, r.k_bits, r.rounding));
        self.push(
            &op_name,
            vec![x, branch],
            Tensor {
                name: t_name,
                shape: vec![h, w, c],
                q: QParams {
                    scale,
                    zero_point: zp,
                },
            },
            clamp,
            OpKind::Add(Add {
                multiplier: ds.map(|d| d.m),
                shift: ds.map(|d| d.s),
                left_shift,
            }),
            (k, rounding),
        )
    }
}

/// A random valid version 2 graph using every op kind: conv2d (strides 1 and 2, SAME, VALID
/// and explicit padding, dilation), depthwise_conv2d (depth multiplier 1 or 2), a residual
/// add of two branches with different scales, both pools (padding, border counts), reshape
/// and a final dense; fused NONE/RELU/RELU6 clamps, per-channel and per-tensor (m, s), dead
/// channels, per-op narrow k and the other rounding on some ops. Valid by construction.
pub fn random_graph(spec: &GraphSpec) -> Model {
    let mut rng = Rng::new(spec.seed ^ 0x6772_6170_6873);
    let k_bits = spec
        .k_bits
        .unwrap_or_else(|| *rng.pick(&[31, 31, 16, 8, 8, 6, 5, 4, 4, 3, 2]));
    let rounding = spec.rounding.unwrap_or_else(|| {
        if rng.chance(0.5) {
            Rounding::Single
        } else {
            Rounding::Double
        }
    });
    let h = rng.range(6, 12) as usize;
    let w = rng.range(5, 11) as usize;
    // Channel counts of 4 and 8 take the engine's in-place (implicit im2col) convolution path,
    // others its gathered one.
    let c = *rng.pick(&[1usize, 2, 3, 4]);
    let input = Tensor {
        name: "input".into(),
        shape: vec![h, w, c],
        q: QParams {
            scale: (rng.unit() * 4.0 - 6.0).exp2(),
            zero_point: rng.i8(),
        },
    };
    let mut b = GraphBuilder {
        rng,
        model: Model::new_graph(
            &format!("random_graph_{}", spec.seed),
            Rescale::plain(k_bits, rounding),
            input,
        ),
        count: 0,
    };
    let oc = *b.rng.pick(&[2usize, 3, 4, 5, 8]);
    let mut x = b.conv(0, oc);
    x = b.depthwise(x);
    x = b.residual(x);
    let avg_first = b.rng.chance(0.5);
    x = b.pool(x, avg_first);
    x = b.pool(x, !avg_first);
    let t = b.model.tensors[x].clone();
    let (op_name, t_name) = b.name("reshape");
    x = b.model.push_op(
        &op_name,
        vec![x],
        Tensor {
            name: t_name,
            shape: vec![t.len()],
            q: t.q,
        },
        Clamp::NONE,
        OpKind::Reshape(Reshape),
    );
    let classes = b.rng.range(2, 10) as usize;
    x = b.dense(x, classes);
    b.model.outputs = vec![x];
    b.model.provenance = json!({ "generator": "ratflow random-model --graph", "seed": spec.seed });
    if let Err(e) = b.model.validate() {
        panic!("random graph generator produced an invalid model: {e}");
    }
    b.model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_seeds_are_valid_and_varied() {
        let mut ks = std::collections::BTreeSet::new();
        let mut modes = std::collections::BTreeSet::new();
        let mut saw_m_ge_1 = false;
        let mut saw_underflow = false;
        for seed in 0..300 {
            let m = random_model(&RandomSpec {
                seed,
                ..Default::default()
            });
            m.validate().unwrap();
            ks.insert(m.rescale.k_bits);
            modes.insert(m.rescale.rounding.as_str());
            for l in m.dense_chain().unwrap() {
                for c in 0..l.out_features {
                    saw_m_ge_1 |= l.mult(c).s < m.rescale.k_bits && l.multiplier[c] != 0;
                    saw_underflow |= l.multiplier[c] == 0;
                }
            }
            // Round-trips through the file format unchanged.
            let back = Model::from_json_bytes(m.to_json().as_bytes()).unwrap();
            assert_eq!(back, m);
        }
        assert!(ks.len() >= 10, "{ks:?}");
        assert_eq!(modes.len(), 2);
        assert!(saw_m_ge_1 && saw_underflow);
    }

    #[test]
    fn same_seed_same_model() {
        let spec = RandomSpec {
            seed: 7,
            ..Default::default()
        };
        assert_eq!(random_model(&spec).to_json(), random_model(&spec).to_json());
    }
}
