//! Straight-through quantizers for weights and biases.
//!
//! The training graph carries *integer codes* (as f32) rather than dequantized reals: a layer
//! multiplies int8 input codes by int8 weight codes and adds int32 bias codes, exactly the
//! accumulator of DESIGN section 1, so the rescale that follows can be emulated bit for bit.
//! (Classic fake quantization, `S * round(x / S)` in the real domain, is the same function
//! up to a per-channel factor; carrying codes keeps the factor out of the graph.)
//!
//! The codes are computed by the semantics module itself ([`quant::quantize_weight`],
//! [`quant::quantize_bias`]), element by element, so the graph and the exported int-model
//! agree on every code. Backward is the straight-through estimator: `d code / d x = 1 / S`
//! for the channel's scale `S`, zero where the weight code clamps at +-127 (only possible when
//! the scale is frozen, as in learned-rescale RAT).
//!
//! Off the CPU (or when forced, [`Exec::portable`]) the same codes come from standard tensor
//! ops in f64 (`round` is half away from zero on every candle backend, as `f64::round` is),
//! and the straight-through gradient from `codes + (x/S - detach(x/S))`.

use super::exec::Exec;
use crate::quant;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, bail};

/// Which DESIGN rule turns a real value into its integer code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// int8 symmetric: `clamp(round(W / S_w), -127, 127)`.
    Weight,
    /// int32: `round(B / (S_x S_w))`.
    Bias,
}

/// Per-channel quantization of a `[C, N]` (weights) or `[C]` (bias) tensor: channel `c`
/// uses `scales[c]`, which is `S_w[c]` for weights and `S_x * S_w[c]` for biases.
pub struct ChannelQuant {
    pub kind: CodeKind,
    pub scales: Vec<f64>,
    /// Whether a value may fall outside the code range (frozen scales); if not, the backward
    /// pass skips the range test.
    pub may_clamp: bool,
}

impl ChannelQuant {
    /// The codes of `x` (`[C]` or `[C, N]`), with the straight-through gradient.
    pub fn apply(self, x: &Tensor, exec: &Exec) -> Result<Tensor> {
        if exec.portable {
            self.portable(x)
        } else {
            x.apply_op1(self)
        }
    }

    /// The same codes and gradient from standard ops: `clamp(round(x / S))` in f64, exactly
    /// [`quant::quantize_weight`] / [`quant::quantize_bias`]; gradient `1 / S` per channel
    /// (zero past the weight clamp when `may_clamp`).
    fn portable(&self, x: &Tensor) -> Result<Tensor> {
        let (c, n) = channels(x.dims())?;
        if c != self.scales.len() {
            bail!(
                "channel quantizer: {c} channels but {} scales",
                self.scales.len()
            );
        }
        let dev = x.device();
        let x2 = x.reshape((c, n))?;
        let s = Tensor::from_vec(self.scales.clone(), (c, 1), dev)?;
        let ratio = x2.detach().to_dtype(DType::F64)?.broadcast_div(&s)?;
        let (lo, hi) = match self.kind {
            CodeKind::Weight => (-127f64, 127f64),
            CodeKind::Bias => (i32::MIN as f64, i32::MAX as f64),
        };
        let codes = ratio.round()?.clamp(lo, hi)?.to_dtype(DType::F32)?;
        let inv: Vec<f32> = self.scales.iter().map(|&s| (1.0 / s) as f32).collect();
        let mut lin = x2.broadcast_mul(&Tensor::from_vec(inv, (c, 1), dev)?)?;
        if self.may_clamp && self.kind == CodeKind::Weight {
            let pass = ratio.abs()?.le(127.5)?.to_dtype(DType::F32)?;
            lin = lin.mul(&pass)?;
        }
        (codes + (&lin - lin.detach())?)?.reshape(x.dims())
    }

    /// Codes of a row-major `[C, n]` slice. Dispatches to a copy compiled with SSE4.1 where
    /// the CPU has it: the same Rust (the same `quant` functions, so the same results), but
    /// `f64::round` becomes an inline instruction sequence instead of a libm call, which lets
    /// the loop vectorize (the 100k-weight first layer is quantized every step).
    fn codes(&self, x: &[f32], n: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sse4.1") {
            // SAFETY: the feature was just detected on this CPU.
            unsafe { self.codes_sse41(x, n, out) };
            return;
        }
        self.codes_plain(x, n, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.1")]
    fn codes_sse41(&self, x: &[f32], n: usize, out: &mut [f32]) {
        self.codes_plain(x, n, out);
    }

    #[inline(always)]
    fn codes_plain(&self, x: &[f32], n: usize, out: &mut [f32]) {
        for (ch, (row, dst)) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)).enumerate() {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = self.code(v, ch);
            }
        }
    }

    #[inline(always)]
    fn code(&self, v: f32, c: usize) -> f32 {
        match self.kind {
            CodeKind::Weight => quant::quantize_weight(v, self.scales[c]) as f32,
            CodeKind::Bias => {
                // i32 codes above 2^24 are not exact in f32; such a bias would also break the
                // exact accumulator emulation, and the accumulator check rejects it at export.
                quant::quantize_bias(v, 1.0, self.scales[c]) as f32
            }
        }
    }

    /// Whether `v` lies inside the code range (the STE passes gradient only there).
    fn passes(&self, v: f32, c: usize) -> bool {
        match self.kind {
            CodeKind::Weight => (v as f64 / self.scales[c]).abs() <= 127.5,
            CodeKind::Bias => true,
        }
    }
}

fn channels(dims: &[usize]) -> Result<(usize, usize)> {
    match dims {
        [c] => Ok((*c, 1)),
        [c, n] => Ok((*c, *n)),
        _ => bail!("channel quantizer: expected [C] or [C, N], got {dims:?}"),
    }
}

impl CustomOp1 for ChannelQuant {
    fn name(&self) -> &'static str {
        "ratflow-channel-quant"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            bail!("channel quantizer: input must be contiguous")
        };
        let x = &s.as_slice::<f32>()?[start..end];
        let (c, n) = channels(l.dims())?;
        if c != self.scales.len() {
            bail!(
                "channel quantizer: {c} channels but {} scales",
                self.scales.len()
            );
        }
        let mut out = vec![0f32; x.len()];
        self.codes(x, n, &mut out);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (_, n) = channels(arg.dims())?;
        let mut g = grad.flatten_all()?.to_vec1::<f32>()?;
        // Scales derived from the tensor itself (max|W| / 127) never clamp; only frozen
        // scales need the per-element range test.
        let vals = if self.may_clamp {
            Some(arg.flatten_all()?.to_vec1::<f32>()?)
        } else {
            None
        };
        for (ch, row) in g.chunks_exact_mut(n).enumerate() {
            let inv = (1.0 / self.scales[ch]) as f32;
            match &vals {
                None => row.iter_mut().for_each(|v| *v *= inv),
                Some(vals) => {
                    for (v, &x) in row.iter_mut().zip(&vals[ch * n..(ch + 1) * n]) {
                        *v = if self.passes(x, ch) { *v * inv } else { 0.0 };
                    }
                }
            }
        }
        Ok(Some(Tensor::from_vec(g, arg.dims(), arg.device())?))
    }
}

/// Per-channel weight scales `S_w[c] = max|W[c,:]| / 127` of a `[C, N]` tensor, by
/// [`quant::weight_scale`] so that training and export agree exactly. Off the CPU only the
/// row maxima travel to the host (the same f32 maxima, hence the same scales).
pub fn weight_scales(w: &Tensor) -> Result<Vec<f64>> {
    let (_, n) = channels(w.dims())?;
    if !w.device().is_cpu() {
        let max = w.abs()?.max(1)?.to_vec1::<f32>()?;
        return Ok(max.iter().map(|&m| quant::weight_scale(&[m])).collect());
    }
    let vals = w.flatten_all()?.to_vec1::<f32>()?;
    Ok(vals.chunks_exact(n).map(quant::weight_scale).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn forward_codes_are_the_design_rule() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[0.5f32, -0.25, 0.126], [2.0, -4.0, 1.0]], &dev)?;
        let scales = weight_scales(&w)?;
        assert_eq!(scales, vec![0.5 / 127.0, 4.0 / 127.0]);
        let codes = ChannelQuant {
            kind: CodeKind::Weight,
            scales: scales.clone(),
            may_clamp: false,
        }
        .apply(&w, &Exec::cpu())?
        .to_vec2::<f32>()?;
        let expect: Vec<Vec<f32>> = [[0.5f32, -0.25, 0.126], [2.0, -4.0, 1.0]]
            .iter()
            .zip(&scales)
            .map(|(row, &s)| {
                row.iter()
                    .map(|&v| quant::quantize_weight(v, s) as f32)
                    .collect()
            })
            .collect();
        assert_eq!(codes, expect);
        assert_eq!(codes[0], vec![127.0, -64.0, 32.0]);
        assert_eq!(codes[1], vec![64.0, -127.0, 32.0]);
        Ok(())
    }

    #[test]
    fn bias_codes_round_half_away() -> Result<()> {
        let dev = Device::Cpu;
        let b = Tensor::new(&[2.5f32, -2.5, 7.0], &dev)?;
        let codes = ChannelQuant {
            kind: CodeKind::Bias,
            scales: vec![1.0, 1.0, 2.0],
            may_clamp: false,
        }
        .apply(&b, &Exec::cpu())?
        .to_vec1::<f32>()?;
        assert_eq!(codes, vec![3.0, -3.0, 4.0]);
        Ok(())
    }

    /// The straight-through gradient is `1 / S` per channel, and zero past the clamp.
    #[test]
    fn gradient_passes_straight_through() -> Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[[1.0f32, 2.0], [3.0, -300.0]], &dev)?)?;
        let codes = ChannelQuant {
            kind: CodeKind::Weight,
            scales: vec![0.5, 2.0],
            may_clamp: true,
        }
        .apply(&w, &Exec::cpu())?;
        assert_eq!(
            codes.to_vec2::<f32>()?,
            vec![vec![2.0, 4.0], vec![2.0, -127.0]]
        );
        let grads = codes.sum_all()?.backward()?;
        let g = grads.get(&w).unwrap().to_vec2::<f32>()?;
        assert_eq!(g, vec![vec![2.0, 2.0], vec![0.5, 0.0]]);
        Ok(())
    }

    /// The standard-op path gives the same codes and the same gradients, for weights (with
    /// and without the clamp) and biases, on random values including exact ties.
    #[test]
    fn portable_path_matches_the_kernel() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(3);
        let mut vals: Vec<f32> = (0..6 * 40)
            .map(|_| (rng.unit() as f32 - 0.5) * 3.0)
            .collect();
        // Ties at +-0.5 codes (scale 0.5 below) and values past the clamp.
        vals[0] = 0.25;
        vals[1] = -0.75;
        vals[2] = 90.0;
        for (kind, shape, may_clamp) in [
            (CodeKind::Weight, vec![6, 40], false),
            (CodeKind::Weight, vec![6, 40], true),
            (CodeKind::Bias, vec![240], false),
        ] {
            let c = shape[0];
            let scales: Vec<f64> = (0..c).map(|i| 0.5 / (i + 1) as f64).collect();
            let x = Var::from_tensor(&Tensor::from_vec(vals.clone(), shape.clone(), &dev)?)?;
            let q = |exec: &Exec| {
                ChannelQuant {
                    kind,
                    scales: scales.clone(),
                    may_clamp,
                }
                .apply(&x, exec)
            };
            let (a, b) = (q(&Exec::cpu())?, q(&Exec::cpu_portable())?);
            assert_eq!(
                a.flatten_all()?.to_vec1::<f32>()?,
                b.flatten_all()?.to_vec1::<f32>()?,
                "{kind:?}"
            );
            let w = Tensor::rand(-1f32, 1., shape.clone(), &dev)?;
            let ga = (a * &w)?.sum_all()?.backward()?;
            let gb = (b * &w)?.sum_all()?.backward()?;
            assert_eq!(
                ga.get(&x).unwrap().flatten_all()?.to_vec1::<f32>()?,
                gb.get(&x).unwrap().flatten_all()?.to_vec1::<f32>()?,
                "{kind:?} may_clamp {may_clamp}"
            );
        }
        Ok(())
    }
}
