//! An accumulating layer (dense, conv2d, depthwise_conv2d) that runs either in float or as the
//! integer layer it will be exported as, with its quantizer state (activation range, learned
//! rescale, scales fixed by an imported model) kept beside its weights.
//!
//! Integer mode is one straight-through pipeline per step, matching DESIGN section 1:
//! weight codes from the current per-channel scale, bias codes from `S_x * S_w`, an exact
//! accumulator (the layer's [`Product`]), then the requantizer with `(m, s)` at `k` bits.
//! Where `(m, s)` comes from is the only difference between the training stages:
//!
//! * QAT and paper RAT derive it from the scales every step, `M = S_x S_w / S_y` (QAT at
//!   k = 31, which is the real `M` to within 2^-31, so QAT is ordinary fake quantization);
//! * learned-rescale RAT freezes the scales the integers are defined against (`S_w`, and the
//!   activation ranges) and learns `log2 M` per channel directly.
//!
//! Activation ranges are tracked as an exponential moving average of the batch min/max of the
//! real pre-quantization output (after the fused activation, so a ReLU layer's range starts at
//! 0 and its zero point is -128). EMA rather than learned ranges: it needs no extra gradient
//! path through the clamp, is what TFLite's QAT does, and on these networks the ranges are
//! smooth enough that learning them buys nothing measurable; the scale is then a plain
//! function of the range via [`quant::affine_params`], exactly as at export.
//!
//! A layer made from an imported int-model ([`Fixed`]) keeps the file's weight scales and
//! output (S, Z) exactly, so that its k = 31 export is the file itself; RAT then trains the
//! weights (and, learned-rescale, the factors) under those scales.

use super::arch::Act;
use super::batchnorm::BatchNorm;
use super::dense::dense;
use super::exec::Exec;
use super::fakequant::{ChannelQuant, CodeKind, weight_scales};
use super::im2col::Geometry;
use super::rescale::{Requantize, derive_all};
use super::{conv2d, depthwise};
use crate::model::QParams;
use crate::quant::{self, Clamp, Dyadic, Rescale, Rounding};
use anyhow::{Context, Result, bail};
use candle_core::{Tensor, Var};

/// Real range of a layer's output, tracked by EMA over training batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActRange {
    pub lo: f64,
    pub hi: f64,
}

impl ActRange {
    pub fn qparams(&self) -> QParams {
        let (scale, zero_point) = quant::affine_params(self.lo, self.hi);
        QParams { scale, zero_point }
    }

    pub(crate) fn update(slot: &mut Option<ActRange>, batch: ActRange, momentum: f64) {
        *slot = Some(match *slot {
            None => batch,
            Some(r) => ActRange {
                lo: momentum * r.lo + (1.0 - momentum) * batch.lo,
                hi: momentum * r.hi + (1.0 - momentum) * batch.hi,
            },
        });
    }

    /// The range of real values `v` (f32, after the activation), widened to include 0 as the
    /// fold below always was.
    pub(crate) fn of_values(v: &[f32]) -> ActRange {
        let (lo, hi) = v.iter().fold((0f64, 0f64), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
        ActRange { lo, hi }
    }

    /// The same range from a tensor of real values, by device-side reductions.
    pub(crate) fn of_tensor(t: &Tensor) -> Result<ActRange> {
        let lo = t.min_all()?.to_scalar::<f32>()? as f64;
        let hi = t.max_all()?.to_scalar::<f32>()? as f64;
        Ok(ActRange {
            lo: lo.min(0.0),
            hi: hi.max(0.0),
        })
    }
}

impl Act {
    /// The int-model clamp of this activation at output quantization `q` (DESIGN section 5).
    pub fn clamp(self, q: QParams) -> Clamp {
        match self {
            Act::None => Clamp::NONE,
            Act::Relu => Clamp::relu(q.zero_point),
            Act::Relu6 => Clamp::relu6(q.zero_point, q.scale),
        }
    }

    /// The activation on real values.
    pub fn real(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Act::None => x.clone(),
            Act::Relu => x.relu()?,
            Act::Relu6 => x.clamp(0f32, 6f32)?,
        })
    }

    /// The activation on one real value.
    #[inline]
    pub fn real_f32(self, v: f32) -> f32 {
        match self {
            Act::None => v,
            Act::Relu => v.max(0.0),
            Act::Relu6 => v.clamp(0.0, 6.0),
        }
    }
}

/// Learned-rescale state: `log2 M` per channel and the weight scales frozen when it began.
pub struct LearnedRescale {
    pub log2_m: Var,
    pub weight_scales: Vec<f64>,
}

/// Quantization fixed by an imported int-model: the file's real weight scales
/// (`weight_scale`) and output (S, Z), used exactly instead of being re-derived.
#[derive(Clone, Debug, PartialEq)]
pub struct Fixed {
    pub weight_scales: Vec<f64>,
    pub output: QParams,
}

/// How the accumulator is formed from the input and the `[out, fan_in]` weight matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum Product {
    /// `x [B, N]` (flattened row-major if it is not) -> `[B, out]`.
    Dense,
    /// `x [B, H, W, C]` -> `[B*OH*OW, out]`, weight rows OHWI.
    Conv2d(Geometry),
    /// `x [B, H, W, C]` -> `[B*OH*OW, C*DM]`, weight rows `[KH*KW]` per output channel.
    Depthwise {
        geometry: Geometry,
        multiplier: usize,
    },
}

impl Product {
    pub fn forward(&self, x: &Tensor, w: &Tensor, b: &Tensor, exec: &Exec) -> Result<Tensor> {
        Ok(match self {
            Product::Dense if x.rank() > 2 => dense(&x.flatten_from(1)?, w, b, exec)?,
            Product::Dense => dense(x, w, b, exec)?,
            Product::Conv2d(g) => conv2d::product(x, g, w, b, exec)?,
            Product::Depthwise {
                geometry,
                multiplier,
            } => depthwise::product(x, geometry, *multiplier, w, b, exec)?,
        })
    }
}

pub struct QuantLayer {
    pub name: String,
    pub product: Product,
    /// `[out, fan_in]` float shadow weights: dense `[O, N]`, conv2d `[O, KH*KW*C]` (OHWI),
    /// depthwise `[O, KH*KW]`.
    pub weight: Var,
    /// `[out]`.
    pub bias: Var,
    /// Float stage only: folded into `weight` and `bias` when QAT begins.
    pub bn: Option<BatchNorm>,
    pub act: Act,
    pub range: Option<ActRange>,
    pub learned: Option<LearnedRescale>,
    pub fixed: Option<Fixed>,
    /// The rounding of this layer's requantizer when it differs from the run's (imported
    /// ops keep the file's).
    pub rounding: Option<Rounding>,
}

/// The integer parameters of a layer at one moment: what export writes and what the graph
/// uses in the same step.
pub struct LayerInts {
    pub weight_scales: Vec<f64>,
    pub output: QParams,
    pub mults: Vec<Dyadic>,
}

impl QuantLayer {
    /// A float layer with the given parameters and no quantizer state.
    pub fn new(name: &str, product: Product, weight: Var, bias: Var, act: Act) -> QuantLayer {
        QuantLayer {
            name: name.to_string(),
            product,
            weight,
            bias,
            bn: None,
            act,
            range: None,
            learned: None,
            fixed: None,
            rounding: None,
        }
    }

    pub fn out_features(&self) -> usize {
        self.bias.dims()[0]
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `act(bn(product(x, W) + b))` on real values; `train` selects batch statistics.
    pub fn forward_float(&mut self, x: &Tensor, train: bool, exec: &Exec) -> Result<Tensor> {
        let y = self.product.forward(x, &self.weight, &self.bias, exec)?;
        let y = match &mut self.bn {
            Some(bn) => bn.forward(&y, train, exec)?,
            None => y,
        };
        self.act.real(&y)
    }

    /// Folds a batch of real outputs (after the activation) into the EMA range.
    pub fn observe(&mut self, real: &[f32], momentum: f64) {
        ActRange::update(&mut self.range, ActRange::of_values(real), momentum);
    }

    /// Folds a batch of real outputs held in a tensor (any device) into the EMA range.
    pub fn observe_tensor(&mut self, real: &Tensor, momentum: f64) -> Result<()> {
        ActRange::update(&mut self.range, ActRange::of_tensor(real)?, momentum);
        Ok(())
    }

    fn current_weight_scales(&self) -> Result<Vec<f64>> {
        match (&self.learned, &self.fixed) {
            (Some(l), _) => Ok(l.weight_scales.clone()),
            (None, Some(f)) => Ok(f.weight_scales.clone()),
            (None, None) => Ok(weight_scales(&self.weight)?),
        }
    }

    /// The output quantization: fixed by an import, else from the tracked range.
    pub fn output_qparams(&self) -> Result<QParams> {
        match (&self.fixed, &self.range) {
            (Some(f), _) => Ok(f.output),
            (None, Some(r)) => Ok(r.qparams()),
            (None, None) => bail!(
                "{}: no activation range yet (calibrate from a float model first)",
                self.name
            ),
        }
    }

    /// Whether the layer has an output quantization (tracked or fixed).
    pub fn has_range(&self) -> bool {
        self.range.is_some() || self.fixed.is_some()
    }

    /// Real rescale factors `M = S_x S_w / S_y` the scales call for.
    pub fn real_m(input: QParams, weight_scales: &[f64], output: QParams) -> Vec<f64> {
        weight_scales
            .iter()
            .map(|&sw| input.scale * sw / output.scale)
            .collect()
    }

    /// The layer's integer parameters for an input with `input` quantization.
    pub fn ints(&self, input: QParams, spec: Rescale) -> Result<LayerInts> {
        let weight_scales = self.current_weight_scales()?;
        let output = self.output_qparams()?;
        let real = match &self.learned {
            Some(l) => l
                .log2_m
                .to_vec1::<f32>()?
                .iter()
                .map(|&t| (t as f64).exp2())
                .collect(),
            None => Self::real_m(input, &weight_scales, output),
        };
        let mults = derive_all(&real, spec, &self.name)?;
        Ok(LayerInts {
            weight_scales,
            output,
            mults,
        })
    }

    /// The int8 weight codes (`[out, fan_in]` row-major) and i32 bias codes that `ints`
    /// defines, as export writes them.
    pub fn codes(&self, input: QParams, ints: &LayerInts) -> Result<(Vec<i8>, Vec<i32>)> {
        let inp = self.in_features();
        let w = self.weight.flatten_all()?.to_vec1::<f32>()?;
        let b = self.bias.to_vec1::<f32>()?;
        let weight = w
            .chunks_exact(inp)
            .zip(&ints.weight_scales)
            .flat_map(|(row, &s)| row.iter().map(move |&v| quant::quantize_weight(v, s)))
            .collect();
        let bias = b
            .iter()
            .zip(&ints.weight_scales)
            .map(|(&v, &s)| quant::quantize_bias(v, input.scale, s))
            .collect();
        Ok((weight, bias))
    }

    /// The rounding this layer's requantizer uses under `spec`.
    pub fn rounding(&self, spec: Rescale) -> Rounding {
        self.rounding.unwrap_or(spec.rounding)
    }

    /// One integer layer: centred input codes `x - Z_x` in, centred output codes `y - Z_y`
    /// out, as `[rows, out]` (rows: batch, or batch x pixels). With `momentum`, the batch
    /// also updates the activation range first (training).
    pub fn forward_int(
        &mut self,
        x: &Tensor,
        input: QParams,
        spec: Rescale,
        momentum: Option<f64>,
        exec: &Exec,
    ) -> Result<(Tensor, QParams)> {
        let weight_scales = self.current_weight_scales()?;
        let frozen = self.learned.is_some() || self.fixed.is_some();
        let codes = ChannelQuant {
            kind: CodeKind::Weight,
            scales: weight_scales.clone(),
            may_clamp: frozen,
        }
        .apply(&self.weight, exec)?;
        let bias = ChannelQuant {
            kind: CodeKind::Bias,
            scales: weight_scales.iter().map(|&sw| input.scale * sw).collect(),
            may_clamp: false,
        }
        .apply(&self.bias, exec)?;
        let acc = self.product.forward(x, &codes, &bias, exec)?;
        if let (Some(m), false) = (momentum, frozen) {
            self.observe_acc(&acc, input.scale, &weight_scales, m, exec)?;
        }
        let ints = self
            .ints(input, spec)
            .with_context(|| format!("requantizer of {}", self.name))?;
        let rq = Requantize {
            mults: ints.mults,
            k: spec.k_bits,
            rounding: self.rounding(spec),
            zero_point: ints.output.zero_point,
            clamp: self.act.clamp(ints.output),
        };
        let y = match &self.learned {
            Some(l) => rq.apply_learned(&acc, &l.log2_m, exec)?,
            None => rq.apply(&acc, exec)?,
        };
        Ok((y, ints.output))
    }

    /// The range update from integer accumulators: real value `(a S_x) S_w[c]` in f64,
    /// rounded to f32, through the activation. That map is non-decreasing in `a` for each
    /// channel, so the batch's extremes are the images of each channel's extreme
    /// accumulators: only `2 C` values are mapped, with the same arithmetic on both op paths.
    fn observe_acc(
        &mut self,
        acc: &Tensor,
        sx: f64,
        weight_scales: &[f64],
        momentum: f64,
        exec: &Exec,
    ) -> Result<()> {
        let c = weight_scales.len();
        let (lo, hi): (Vec<f32>, Vec<f32>) = if exec.portable {
            let a = acc.detach();
            (a.min(0)?.to_vec1()?, a.max(0)?.to_vec1()?)
        } else {
            super::dense::with_f32(acc, |a| {
                let (mut lo, mut hi) = (vec![f32::MAX; c], vec![f32::MIN; c]);
                for row in a.chunks_exact(c) {
                    for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                        *l = l.min(v);
                        *h = h.max(v);
                    }
                }
                (lo, hi)
            })?
        };
        let act = self.act;
        let real: Vec<f32> = lo
            .iter()
            .chain(&hi)
            .enumerate()
            .map(|(i, &v)| act.real_f32((v as f64 * sx * weight_scales[i % c]) as f32))
            .collect();
        self.observe(&real, momentum);
        Ok(())
    }

    /// Starts learned-rescale training: freezes today's weight scales and ranges and sets
    /// `log2 M` to the real factor they imply.
    pub fn start_learned(&mut self, input: QParams) -> Result<()> {
        let weight_scales = self.current_weight_scales()?;
        let output = self.output_qparams()?;
        let theta: Vec<f32> = Self::real_m(input, &weight_scales, output)
            .iter()
            .map(|m| m.log2() as f32)
            .collect();
        let n = theta.len();
        self.learned = Some(LearnedRescale {
            log2_m: Var::from_vec(theta, n, self.weight.device())?,
            weight_scales,
        });
        Ok(())
    }

    /// Folds the batchnorm (if any) into the weights and bias with its running statistics,
    /// as TFLite's converter does, and drops it. Returns whether there was one.
    pub fn fold_batchnorm(&mut self) -> Result<bool> {
        let Some(bn) = self.bn.take() else {
            return Ok(false);
        };
        let dev = self.weight.device().clone();
        let dims = self.weight.dims().to_vec();
        let (w, b) = bn.fold(
            &self.weight.flatten_all()?.to_vec1::<f32>()?,
            &self.bias.to_vec1::<f32>()?,
        )?;
        self.weight = Var::from_vec(w, dims, &dev)?;
        let n = b.len();
        self.bias = Var::from_vec(b, n, &dev)?;
        Ok(true)
    }
}
