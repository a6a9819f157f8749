//! Max and average pooling (TFLite MAX_POOL_2D, AVERAGE_POOL_2D,
//! `reference_integer_ops::MaxPool` / `AveragePool`), in float and on int8 codes.
//!
//! Pools do not rescale: input and output share (S, Z). In integer mode the max of centred
//! codes is the max of the codes minus Z, exactly. The average is not translation invariant
//! under its rounding (half away from zero with a truncating division, [`quant::average`]), so
//! it is taken of the raw codes, `sum (c + Z)` over the taps inside the input, rounded, then
//! centred again; its straight-through gradient is the float mean's. Both run on standard ops
//! over the window gather, on every device; on the CPU the max pool is one custom op that
//! remembers where each maximum came from (the first, in tap order) and routes the gradient
//! there, instead of candle's reduction and mask.
//!
//! [`quant::average`]: crate::quant::average

use super::arch::Act;
use super::dense::with_f32;
use super::exec::Exec;
use super::im2col::Geometry;
use crate::model::QParams;
use anyhow::Result;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

pub struct Pool {
    pub name: String,
    pub kind: PoolKind,
    pub geometry: Geometry,
    /// A fused activation becomes the pool's output clamp.
    pub act: Act,
}

/// `x` where `lo <= x <= hi`, clamped elsewhere, with gradient 1 where the clamp does not bind
/// (the requantizer's convention: equality passes).
pub fn ste_clamp(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    let pass = x
        .ge(lo)?
        .to_dtype(DType::F32)?
        .mul(&x.le(hi)?.to_dtype(DType::F32)?)?;
    let lin = x.mul(&pass)?;
    Ok((x.detach().clamp(lo, hi)? + (&lin - lin.detach())?)?)
}

impl Pool {
    /// `[B, H, W, C]` -> `[B*OH*OW, taps, C]`.
    fn windows(&self, x: &Tensor, pad: f32, exec: &Exec) -> Result<Tensor> {
        let g = &self.geometry;
        let rows = x.dims()[0] * g.pixels();
        Ok(g.patches(x, pad, exec)?.reshape((rows, g.taps(), g.c))?)
    }

    /// Valid taps per output pixel, `[1, OH*OW, 1]` (f32), for a `[B, OH*OW, C]` sum.
    fn counts(&self, x: &Tensor) -> Result<Tensor> {
        let c: Vec<f32> = self
            .geometry
            .valid_counts()
            .iter()
            .map(|&n| n as f32)
            .collect();
        Ok(Tensor::from_vec(
            c,
            (1, self.geometry.pixels(), 1),
            x.device(),
        )?)
    }

    fn out_shape(&self, b: usize) -> (usize, usize, usize, usize) {
        let g = &self.geometry;
        (b, g.oh, g.ow, g.c)
    }

    /// The maximum over each window, `[B, H, W, C]` -> `[B*OH*OW, C]`.
    fn max(&self, x: &Tensor, exec: &Exec) -> Result<Tensor> {
        if exec.portable {
            // The first maximum in tap order (argmax), gathered: the gradient goes to that one
            // element, as in the kernel below (candle's `max` would share it among ties, which
            // are common between int8 codes).
            let w = self.windows(x, f32::MIN, exec)?;
            let at = w.argmax_keepdim(1)?;
            return Ok(w.gather(&at, 1)?.squeeze(1)?);
        }
        Ok(x.contiguous()?.apply_op1(MaxOp {
            geometry: self.geometry.clone(),
            argmax: Mutex::new(None),
        })?)
    }

    /// Real values `[B, H, W, C]` -> `[B, OH, OW, C]`.
    pub fn forward_float(&self, x: &Tensor, exec: &Exec) -> Result<Tensor> {
        let b = x.dims()[0];
        let g = &self.geometry;
        let y = match self.kind {
            PoolKind::Max => self.max(x, exec)?,
            PoolKind::Avg => self
                .windows(x, 0.0, exec)?
                .sum(1)?
                .reshape((b, g.pixels(), g.c))?
                .broadcast_div(&self.counts(x)?)?,
        };
        self.act.real(&y.reshape(self.out_shape(b))?)
    }

    /// Centred codes `x - Z` `[B, H, W, C]` -> centred codes `[B, OH, OW, C]` (same (S, Z)).
    pub fn forward_int(&self, x: &Tensor, q: QParams, exec: &Exec) -> Result<Tensor> {
        let b = x.dims()[0];
        let g = &self.geometry;
        let z = q.zero_point as f32;
        let v = match self.kind {
            PoolKind::Max => self.max(x, exec)?.reshape(self.out_shape(b))?,
            PoolKind::Avg => {
                let counts = self.counts(x)?;
                let sums = self
                    .windows(x, 0.0, exec)?
                    .sum(1)?
                    .reshape((b, g.pixels(), g.c))?;
                // Raw-code sums (exact integers), then sign(s) floor((|s| + n/2) / n) - Z:
                // below 2^24 every step is exact in f32.
                let raw = sums.broadcast_add(&counts.affine(z as f64, 0.0)?)?.detach();
                let half = counts.affine(0.5, 0.0)?.floor()?;
                let mag = raw
                    .abs()?
                    .broadcast_add(&half)?
                    .broadcast_div(&counts)?
                    .floor()?;
                let avg = mag.mul(&raw.sign()?)?.affine(1.0, -(z as f64))?;
                let mean = sums.broadcast_div(&counts)?;
                (avg + (&mean - mean.detach())?)?.reshape(self.out_shape(b))?
            }
        };
        if self.act == Act::None {
            // Codes of the input already lie in [-128, 127]: the clamp cannot bind.
            return Ok(v);
        }
        let clamp = self.act.clamp(q);
        ste_clamp(&v, clamp.lo as f32 - z, clamp.hi as f32 - z)
    }
}

/// Max pooling on the CPU: `[B, H, W, C]` -> `[B*OH*OW, C]`, the source of every maximum kept
/// for the backward.
struct MaxOp {
    geometry: Geometry,
    argmax: Mutex<Option<Vec<u32>>>,
}

impl CustomOp1 for MaxOp {
    fn name(&self) -> &'static str {
        "ratflow-max-pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("max pool: input must be contiguous")
        };
        let x = &s.as_slice::<f32>()?[start..end];
        let g = &self.geometry;
        let (hw, c, taps, p) = (g.h * g.w, g.c, g.taps(), g.pixels());
        let b = l.dims()[0];
        let mut out = vec![f32::MIN; b * p * c];
        let mut arg = vec![0u32; b * p * c];
        for bi in 0..b {
            for (pi, srcs) in g.sources().chunks_exact(taps).enumerate() {
                let o = (bi * p + pi) * c;
                let (dst, at) = (&mut out[o..o + c], &mut arg[o..o + c]);
                let mut first = true;
                for &src in srcs.iter().filter(|&&s| (s as usize) < hw) {
                    let base = (bi * hw + src as usize) * c;
                    for ch in 0..c {
                        let v = x[base + ch];
                        if first || v > dst[ch] {
                            dst[ch] = v;
                            at[ch] = (base + ch) as u32;
                        }
                    }
                    first = false;
                }
            }
        }
        *self.argmax.lock().expect("argmax lock") = Some(arg);
        Ok((CpuStorage::F32(out), Shape::from((b * p, c))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let Some(at) = self.argmax.lock().expect("argmax lock").take() else {
            candle_core::bail!("max pool: backward without a forward")
        };
        let mut dx = vec![0f32; arg.elem_count()];
        with_f32(grad, |g| {
            for (&i, &v) in at.iter().zip(g) {
                dx[i as usize] += v;
            }
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Window;
    use crate::quant;
    use candle_core::Device;

    /// Integer pools equal DESIGN's rule on raw codes (average: half away from zero over the
    /// valid taps, with asymmetric padding), on both op paths.
    #[test]
    fn integer_pools_follow_design() -> Result<()> {
        let dev = Device::Cpu;
        let win = Window {
            kernel: [2, 3],
            stride: [2, 2],
            dilation: [1, 1],
            padding: [0, 1, 1, 1],
        };
        let (h, w, c) = (5, 6, 2);
        let g = Geometry::new(h, w, c, win).unwrap();
        let mut rng = crate::rng::Rng::new(2);
        let q = QParams {
            scale: 0.1,
            zero_point: -7,
        };
        let codes: Vec<i8> = (0..h * w * c).map(|_| rng.i8()).collect();
        let centred: Vec<f32> = codes
            .iter()
            .map(|&v| (v as i32 - q.zero_point as i32) as f32)
            .collect();
        let x = Tensor::from_vec(centred, (1, h, w, c), &dev)?;
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for act in [Act::None, Act::Relu] {
                let pool = Pool {
                    name: "p".into(),
                    kind,
                    geometry: g.clone(),
                    act,
                };
                let clamp = act.clamp(q);
                for exec in [Exec::cpu(), Exec::cpu_portable()] {
                    let y = pool
                        .forward_int(&x, q, &exec)?
                        .flatten_all()?
                        .to_vec1::<f32>()?;
                    for oy in 0..g.oh {
                        let (ky0, ky1) = win.valid_taps(0, oy, h);
                        for ox in 0..g.ow {
                            let (kx0, kx1) = win.valid_taps(1, ox, w);
                            for ch in 0..c {
                                let mut vals = Vec::new();
                                for ky in ky0..ky1 {
                                    for kx in kx0..kx1 {
                                        let iy = oy * 2 + ky - win.padding[0];
                                        let ix = ox * 2 + kx - win.padding[2];
                                        vals.push(codes[(iy * w + ix) * c + ch] as i32);
                                    }
                                }
                                let v = match kind {
                                    PoolKind::Max => *vals.iter().max().unwrap(),
                                    PoolKind::Avg => {
                                        quant::average(vals.iter().sum(), vals.len() as u32)
                                    }
                                };
                                let want = clamp.apply(v as i64) as i32 - q.zero_point as i32;
                                let got = y[(oy * g.ow + ox) * c + ch];
                                assert_eq!(got, want as f32, "{kind:?} {act:?} ({oy}, {ox}, {ch})");
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
