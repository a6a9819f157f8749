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

use anyhow::Result;
use candle_core::{DType, Tensor, Var};

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
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (rows, _) = x.dims2()?;
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
            bn.forward(&acc, true)?;
        }
        let acc = x.matmul(&w.t()?)?.broadcast_add(&b)?;
        let want = bn.forward(&acc, false)?.flatten_all()?.to_vec1::<f32>()?;
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
}
