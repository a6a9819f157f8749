//! Batch normalization of a layer's accumulator, for the float stage only.
//!
//! The int-model has no batchnorm: TFLite's converter folds it into the convolution before
//! quantizing, `W' = W g / sqrt(v + eps)` per output channel and
//! `b' = (b - mean) g / sqrt(v + eps) + beta`, with the running statistics. ratflow does the
//! same when QAT begins ([`BatchNorm::fold`]), so QAT, RAT and export see one plain layer whose
//! quantized weights are the folded ones; the batchnorm parameters stop existing there.
//!
//! Training mode normalizes with the batch statistics over every row of the `[R, C]`
//! accumulator (rows: images x pixels) and updates running statistics by momentum 0.1 with the
//! unbiased variance (PyTorch's `BatchNorm2d`); evaluation uses the running statistics.
//! On the CPU the training-mode normalization is one custom op (statistics in f64, the
//! textbook backward); elsewhere it is composed from standard ops.

use super::dense::with_f32;
use super::exec::Exec;
use anyhow::Result;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, Var};
use std::sync::{Arc, Mutex};

pub const MOMENTUM: f64 = 0.1;
pub const EPS: f64 = 1e-5;

pub struct BatchNorm {
    /// `[C]` scale and shift, trained.
    pub gamma: Var,
    pub beta: Var,
    /// `[C]` running statistics.
    pub mean: Tensor,
    pub var: Tensor,
}

impl BatchNorm {
    /// Identity initialisation: `gamma = 1`, `beta = 0`, running mean 0 and variance 1.
    pub fn new(c: usize, dev: &candle_core::Device) -> Result<BatchNorm> {
        Ok(BatchNorm {
            gamma: Var::ones(c, DType::F32, dev)?,
            beta: Var::zeros(c, DType::F32, dev)?,
            mean: Tensor::zeros(c, DType::F32, dev)?,
            var: Tensor::ones(c, DType::F32, dev)?,
        })
    }

    /// `x [R, C]` normalized per channel; `train` uses (and folds into the running
    /// statistics) the batch's own.
    pub fn forward(&mut self, x: &Tensor, train: bool, exec: &Exec) -> Result<Tensor> {
        let (rows, _) = x.dims2()?;
        if train && rows > 1 && !exec.portable {
            let stats = Arc::new(Mutex::new(None));
            let y = x.contiguous()?.apply_op3(
                self.gamma.as_tensor(),
                self.beta.as_tensor(),
                BnTrain {
                    stats: stats.clone(),
                },
            )?;
            // The op keeps its statistics for the backward; the running update reads a copy.
            let Some(st) = stats
                .lock()
                .expect("stats lock")
                .as_ref()
                .map(|st| BatchStats {
                    mean: st.mean.clone(),
                    var: st.var.clone(),
                })
            else {
                anyhow::bail!("batchnorm: the kernel left no statistics")
            };
            let c = st.mean.len();
            let dev = x.device();
            let mean = Tensor::from_vec(st.mean.iter().map(|&v| v as f32).collect(), c, dev)?;
            let unbiased: Vec<f32> = st
                .var
                .iter()
                .map(|&v| (v * rows as f64 / (rows - 1) as f64) as f32)
                .collect();
            let unbiased = Tensor::from_vec(unbiased, c, dev)?;
            self.mean = (self.mean.affine(1.0 - MOMENTUM, 0.0)? + mean.affine(MOMENTUM, 0.0)?)?;
            self.var = (self.var.affine(1.0 - MOMENTUM, 0.0)? + unbiased.affine(MOMENTUM, 0.0)?)?;
            return Ok(y);
        }
        let (mean, var) = if train && rows > 1 {
            let mean = x.mean(0)?;
            let centred = x.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean(0)?;
            let unbiased = var.affine(rows as f64 / (rows - 1) as f64, 0.0)?.detach();
            self.mean =
                (self.mean.affine(1.0 - MOMENTUM, 0.0)? + mean.detach().affine(MOMENTUM, 0.0)?)?;
            self.var = (self.var.affine(1.0 - MOMENTUM, 0.0)? + unbiased.affine(MOMENTUM, 0.0)?)?;
            (mean, var)
        } else {
            (self.mean.clone(), self.var.clone())
        };
        let inv = var.affine(1.0, EPS)?.sqrt()?.recip()?;
        Ok(x.broadcast_sub(&mean)?
            .broadcast_mul(&inv.mul(self.gamma.as_tensor())?)?
            .broadcast_add(self.beta.as_tensor())?)
    }

    /// The folded `(W', b')` of a layer with weight rows `w [C, N]` and bias `b [C]`, in f64.
    pub fn fold(&self, w: &[f32], b: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let gamma = self.gamma.to_vec1::<f32>()?;
        let beta = self.beta.to_vec1::<f32>()?;
        let mean = self.mean.to_vec1::<f32>()?;
        let var = self.var.to_vec1::<f32>()?;
        let c = gamma.len();
        let n = w.len() / c.max(1);
        let scale: Vec<f64> = (0..c)
            .map(|i| gamma[i] as f64 / (var[i] as f64 + EPS).sqrt())
            .collect();
        let w2 = w
            .chunks_exact(n)
            .zip(&scale)
            .flat_map(|(row, &s)| row.iter().map(move |&v| (v as f64 * s) as f32))
            .collect();
        let b2 = (0..c)
            .map(|i| ((b[i] as f64 - mean[i] as f64) * scale[i] + beta[i] as f64) as f32)
            .collect();
        Ok((w2, b2))
    }
}

/// Per-channel statistics of one training batch (f64).
struct BatchStats {
    mean: Vec<f64>,
    /// Biased variance.
    var: Vec<f64>,
}

/// Training-mode normalization of `x [R, C]` with scale and shift, as one op.
struct BnTrain {
    stats: Arc<Mutex<Option<BatchStats>>>,
}

impl BnTrain {
    fn statistics(x: &[f32], c: usize) -> BatchStats {
        let rows = (x.len() / c) as f64;
        let mean: Vec<f64> = channel_sums(x, c, |b, r| {
            for (s, &v) in b.iter_mut().zip(r) {
                *s += v;
            }
        })
        .iter()
        .map(|s| s / rows)
        .collect();
        let m32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let var = channel_sums(x, c, |b, r| {
            for ((s, &v), &m) in b.iter_mut().zip(r).zip(&m32) {
                let d = v - m;
                *s += d * d;
            }
        })
        .iter()
        .map(|s| s / rows)
        .collect();
        BatchStats { mean, var }
    }
}

/// Per-channel sums over the rows of `x [R, C]`: `add(block, row)` accumulates one row into
/// an f32 block, and blocks of 128 rows are gathered in f64 (vectorizable inner loops,
/// rounding error of a 128-term f32 sum).
fn channel_sums(x: &[f32], c: usize, add: impl Fn(&mut [f32], &[f32])) -> Vec<f64> {
    let mut total = vec![0f64; c];
    let mut block = vec![0f32; c];
    for rows in x.chunks(128 * c) {
        block.fill(0.0);
        for r in rows.chunks_exact(c) {
            add(&mut block, r);
        }
        for (t, &b) in total.iter_mut().zip(&block) {
            *t += b as f64;
        }
    }
    total
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "ratflow-batchnorm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (Some((x0, x1)), Some((g0, g1)), Some((b0, b1))) = (
            xl.contiguous_offsets(),
            gl.contiguous_offsets(),
            bl.contiguous_offsets(),
        ) else {
            candle_core::bail!("batchnorm: operands must be contiguous")
        };
        let x = &xs.as_slice::<f32>()?[x0..x1];
        let gamma = &gs.as_slice::<f32>()?[g0..g1];
        let beta = &bs.as_slice::<f32>()?[b0..b1];
        let c = gamma.len();
        let st = Self::statistics(x, c);
        let scale: Vec<f32> = (0..c)
            .map(|i| (gamma[i] as f64 / (st.var[i] + EPS).sqrt()) as f32)
            .collect();
        let mean: Vec<f32> = st.mean.iter().map(|&m| m as f32).collect();
        let mut y = Vec::with_capacity(x.len());
        for r in x.chunks_exact(c) {
            y.extend(
                r.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .zip(beta)
                    .map(|(((&v, &m), &s), &b)| (v - m) * s + b),
            );
        }
        *self.stats.lock().expect("stats lock") = Some(st);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    /// `dx = gamma / sigma (g - mean(g) - x_hat mean(g x_hat))`; `dgamma = sum g x_hat`,
    /// `dbeta = sum g`, with the forward's batch statistics.
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = gamma.dims1()?;
        let gv = gamma.to_vec1::<f32>()?;
        let st = match self.stats.lock().expect("stats lock").as_ref() {
            Some(st) => BatchStats {
                mean: st.mean.clone(),
                var: st.var.clone(),
            },
            None => with_f32(x, |v| Self::statistics(v, c))?,
        };
        let rows = x.elem_count() / c;
        let mean: Vec<f32> = st.mean.iter().map(|&m| m as f32).collect();
        let inv: Vec<f32> = st
            .var
            .iter()
            .map(|&v| (1.0 / (v + EPS).sqrt()) as f32)
            .collect();
        let (mut dgamma, mut dbeta) = (vec![0f64; c], vec![0f64; c]);
        let mut dx = vec![0f32; rows * c];
        with_f32(x, |xv| {
            with_f32(grad, |g| {
                let mut sg = vec![0f32; c];
                let mut sgx = vec![0f32; c];
                let mut xhat = vec![0f32; c];
                for (blk_x, blk_g) in xv.chunks(128 * c).zip(g.chunks(128 * c)) {
                    sg.fill(0.0);
                    sgx.fill(0.0);
                    for (xr, gr) in blk_x.chunks_exact(c).zip(blk_g.chunks_exact(c)) {
                        for ((h, &v), (&m, &iv)) in
                            xhat.iter_mut().zip(xr).zip(mean.iter().zip(&inv))
                        {
                            *h = (v - m) * iv;
                        }
                        for ((a, b), (&gv, &h)) in
                            sg.iter_mut().zip(sgx.iter_mut()).zip(gr.iter().zip(&xhat))
                        {
                            *a += gv;
                            *b += gv * h;
                        }
                    }
                    for ch in 0..c {
                        dbeta[ch] += sg[ch] as f64;
                        dgamma[ch] += sgx[ch] as f64;
                    }
                }
                let mg: Vec<f32> = dbeta.iter().map(|&v| (v / rows as f64) as f32).collect();
                let mgx: Vec<f32> = dgamma.iter().map(|&v| (v / rows as f64) as f32).collect();
                let k: Vec<f32> = (0..c).map(|ch| gv[ch] * inv[ch]).collect();
                for ((d, xr), gr) in dx
                    .chunks_exact_mut(c)
                    .zip(xv.chunks_exact(c))
                    .zip(g.chunks_exact(c))
                {
                    for (((d, &v), &gv), (((&m, &iv), &kk), (&a, &b))) in d
                        .iter_mut()
                        .zip(xr)
                        .zip(gr)
                        .zip(mean.iter().zip(&inv).zip(&k).zip(mg.iter().zip(&mgx)))
                    {
                        *d = kk * (gv - a - (v - m) * iv * b);
                    }
                }
            })
        })??;
        let dev = x.device();
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        Ok((
            Some(Tensor::from_vec(dx, x.dims(), dev)?),
            Some(Tensor::from_vec(f32s(dgamma), c, dev)?),
            Some(Tensor::from_vec(f32s(dbeta), c, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Folding reproduces the evaluation-mode layer: `bn(x W^T + b) = x W'^T + b'`.
    #[test]
    fn fold_equals_evaluation_mode() -> Result<()> {
        let dev = Device::Cpu;
        let mut bn = BatchNorm::new(3, &dev)?;
        let x = Tensor::rand(-1f32, 1., (50, 4), &dev)?;
        let w = Tensor::rand(-1f32, 1., (3, 4), &dev)?;
        let b = Tensor::rand(-1f32, 1., 3, &dev)?;
        bn.gamma.set(&Tensor::new(&[0.5f32, 2.0, -1.0], &dev)?)?;
        bn.beta.set(&Tensor::new(&[0.1f32, -0.2, 0.3], &dev)?)?;
        // A few training batches move the running statistics off the identity.
        for _ in 0..5 {
            let acc = x.matmul(&w.t()?)?.broadcast_add(&b)?.affine(3.0, 1.0)?;
            bn.forward(&acc, true, &Exec::cpu())?;
        }
        let acc = x.matmul(&w.t()?)?.broadcast_add(&b)?;
        let want = bn
            .forward(&acc, false, &Exec::cpu())?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (w2, b2) = bn.fold(&w.flatten_all()?.to_vec1()?, &b.to_vec1()?)?;
        let got = x
            .matmul(&Tensor::from_vec(w2, (3, 4), &dev)?.t()?)?
            .broadcast_add(&Tensor::from_vec(b2, 3, &dev)?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (p, q) in got.iter().zip(&want) {
            assert!((p - q).abs() < 1e-4, "{p} vs {q}");
        }
        assert_ne!(bn.mean.to_vec1::<f32>()?, vec![0.0; 3]);
        Ok(())
    }

    /// The fused kernel equals the standard-op composition: values, gradients and running
    /// statistics, to f32 rounding.
    #[test]
    fn kernel_matches_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::rand(-2f32, 3., (40, 5), &dev)?)?;
        let w = Tensor::rand(-1f32, 1., (40, 5), &dev)?;
        let mut out = Vec::new();
        for exec in [Exec::cpu(), Exec::cpu_portable()] {
            let mut bn = BatchNorm::new(5, &dev)?;
            bn.gamma
                .set(&Tensor::new(&[0.5f32, 2.0, -1.0, 1.0, 3.0], &dev)?)?;
            let y = bn.forward(&(x.as_tensor() * 1.0)?, true, &exec)?;
            let g = (&y * &w)?.sum_all()?.backward()?;
            out.push(vec![
                y.flatten_all()?.to_vec1::<f32>()?,
                g.get(&x).unwrap().flatten_all()?.to_vec1::<f32>()?,
                g.get(&bn.gamma).unwrap().to_vec1::<f32>()?,
                g.get(&bn.beta).unwrap().to_vec1::<f32>()?,
                bn.mean.to_vec1::<f32>()?,
                bn.var.to_vec1::<f32>()?,
            ]);
        }
        for (a, b) in out[0].iter().zip(&out[1]) {
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "{p} vs {q}");
            }
        }
        Ok(())
    }
}
