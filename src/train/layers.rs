//! A dense layer that runs either in float or as the integer layer it will be exported as,
//! with its quantizer state (activation range, learned rescale) kept beside its weights.
//!
//! Integer mode is one straight-through pipeline per step, matching DESIGN section 1:
//! weight codes from the current per-channel scale, bias codes from `S_x * S_w`, an exact
//! accumulator, then the requantizer with `(m, s)` at `k` bits. Where `(m, s)` comes from is
//! the only difference between the training stages:
//!
//! * QAT and paper RAT derive it from the scales every step, `M = S_x S_w / S_y` (QAT at
//!   k = 31, which is the real `M` to within 2^-31, so QAT is ordinary fake quantization);
//! * learned-rescale RAT freezes the scales the integers are defined against (`S_w`, and the
//!   activation ranges) and learns `log2 M` per channel directly.
//!
//! Activation ranges are tracked as an exponential moving average of the batch min/max of the
//! real pre-quantization output (after ReLU for hidden layers, so their range starts at 0 and
//! the zero point is -128). EMA rather than learned ranges: it needs no extra gradient path
//! through the clamp, is what TFLite's QAT does, and on a 3-layer MLP the ranges are smooth
//! enough that learning them buys nothing measurable; the scale is then a plain function of
//! the range via [`quant::affine_params`], exactly as at export.

use super::dense::dense;
use super::fakequant::{ChannelQuant, CodeKind, weight_scales};
use super::rescale::{Requantize, derive_all};
use crate::model::QParams;
use crate::quant::{self, Dyadic, Rescale};
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

    fn update(slot: &mut Option<ActRange>, batch: ActRange, momentum: f64) {
        *slot = Some(match *slot {
            None => batch,
            Some(r) => ActRange {
                lo: momentum * r.lo + (1.0 - momentum) * batch.lo,
                hi: momentum * r.hi + (1.0 - momentum) * batch.hi,
            },
        });
    }
}

/// Learned-rescale state: `log2 M` per channel and the weight scales frozen when it began.
pub struct LearnedRescale {
    pub log2_m: Var,
    pub weight_scales: Vec<f64>,
}

pub struct QuantDense {
    pub name: String,
    /// `[out, in]`, float shadow weights.
    pub weight: Var,
    /// `[out]`.
    pub bias: Var,
    pub relu: bool,
    pub range: Option<ActRange>,
    pub learned: Option<LearnedRescale>,
}

/// The integer parameters of a layer at one moment: what export writes and what the graph
/// uses in the same step.
pub struct LayerInts {
    pub weight_scales: Vec<f64>,
    pub output: QParams,
    pub mults: Vec<Dyadic>,
}

impl QuantDense {
    pub fn out_features(&self) -> usize {
        self.bias.dims()[0]
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `relu(x W^T + b)` on real values.
    pub fn forward_float(&self, x: &Tensor) -> Result<Tensor> {
        let y = dense(x, &self.weight, &self.bias)?;
        Ok(if self.relu { y.relu()? } else { y })
    }

    /// Folds a batch of real outputs (after ReLU for hidden layers) into the EMA range.
    pub fn observe(&mut self, real: &[f32], momentum: f64) {
        let (lo, hi) = real.iter().fold((0f64, 0f64), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
        ActRange::update(&mut self.range, ActRange { lo, hi }, momentum);
    }

    fn current_weight_scales(&self) -> Result<Vec<f64>> {
        match &self.learned {
            Some(l) => Ok(l.weight_scales.clone()),
            None => Ok(weight_scales(&self.weight)?),
        }
    }

    fn output_qparams(&self) -> Result<QParams> {
        match &self.range {
            Some(r) => Ok(r.qparams()),
            None => bail!(
                "{}: no activation range yet (calibrate from a float model first)",
                self.name
            ),
        }
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

    /// One integer layer: centred input codes `x - Z_x` in, centred output codes `y - Z_y`
    /// out. With `momentum`, the batch also updates the activation range first (training).
    pub fn forward_int(
        &mut self,
        x: &Tensor,
        input: QParams,
        spec: Rescale,
        momentum: Option<f64>,
    ) -> Result<(Tensor, QParams)> {
        let weight_scales = self.current_weight_scales()?;
        let codes = ChannelQuant {
            kind: CodeKind::Weight,
            scales: weight_scales.clone(),
            may_clamp: self.learned.is_some(),
        }
        .apply(&self.weight)?;
        let bias = ChannelQuant {
            kind: CodeKind::Bias,
            scales: weight_scales.iter().map(|&sw| input.scale * sw).collect(),
            may_clamp: false,
        }
        .apply(&self.bias)?;
        let acc = dense(x, &codes, &bias)?;
        if let (Some(m), None) = (momentum, &self.learned) {
            let a = acc.flatten_all()?.to_vec1::<f32>()?;
            let n = self.out_features();
            let real: Vec<f32> = a
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let r = (v as f64 * input.scale * weight_scales[i % n]) as f32;
                    if self.relu { r.max(0.0) } else { r }
                })
                .collect();
            self.observe(&real, m);
        }
        let ints = self
            .ints(input, spec)
            .with_context(|| format!("requantizer of {}", self.name))?;
        let rq = Requantize {
            mults: ints.mults,
            k: spec.k_bits,
            rounding: spec.rounding,
            zero_point: ints.output.zero_point,
            relu: self.relu,
        };
        let y = match &self.learned {
            Some(l) => rq.apply_learned(&acc, &l.log2_m)?,
            None => rq.apply(&acc)?,
        };
        Ok((y, ints.output))
    }

    /// Starts learned-rescale training: freezes today's weight scales and ranges and sets
    /// `log2 M` to the real factor they imply.
    pub fn start_learned(&mut self, input: QParams) -> Result<()> {
        let weight_scales = weight_scales(&self.weight)?;
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
}
