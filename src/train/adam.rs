//! AdamW as one in-place pass per parameter.
//!
//! candle-nn's `AdamW` spells the update as about fourteen tensor operations per parameter,
//! each allocating a fresh tensor, then copies three results back into the variables. For the
//! 100k-weight first layer that is most of a millisecond per step, more than the layer's
//! forward product. This optimizer keeps the moments as plain vectors and updates weights in
//! place through a candle in-place op: the same update rule (decoupled weight decay, bias-
//! corrected moments, PyTorch's defaults), one read of the gradient, one write of the weight.
//!
//! Off the CPU the moments are device tensors and the update is the same expression in
//! standard tensor ops (`affine`, `sqrt`, `div`), in the same order of f32 operations.

use super::exec::Exec;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var, bail};
use std::sync::Mutex;

pub struct AdamW {
    params: Vec<Param>,
    pub lr: f64,
    pub weight_decay: f64,
    step: i32,
    portable: bool,
}

struct Param {
    var: Var,
    /// First and second moments (fast path).
    moments: Mutex<(Vec<f32>, Vec<f32>)>,
    /// First and second moments as device tensors (portable path).
    tensors: Option<(Tensor, Tensor)>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

struct Update<'a> {
    moments: &'a Mutex<(Vec<f32>, Vec<f32>)>,
    lr: f32,
    decay: f32,
    scale_m: f32,
    scale_v: f32,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "ratflow-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            bail!("adamw: parameter and gradient must be contiguous")
        };
        let CpuStorage::F32(theta) = s1 else {
            bail!("adamw: parameters must be f32")
        };
        let theta = &mut theta[a..b];
        let g = &s2.as_slice::<f32>()?[c..d];
        let mut guard = self.moments.lock().expect("moments lock");
        let (m, v) = &mut *guard;
        if g.len() != theta.len() || m.len() != theta.len() {
            bail!(
                "adamw: gradient has {} values for {} parameters",
                g.len(),
                theta.len()
            );
        }
        let (b1, b2) = (BETA1 as f32, BETA2 as f32);
        for (((t, &gi), mi), vi) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *mi = b1 * *mi + (1.0 - b1) * gi;
            *vi = b2 * *vi + (1.0 - b2) * gi * gi;
            let step = (*mi * self.scale_m) / ((*vi * self.scale_v).sqrt() + EPS as f32);
            *t = *t * self.decay - self.lr * step;
        }
        Ok(())
    }
}

impl AdamW {
    /// The optimizer of `vars` with the update kernel `exec` selects.
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64, exec: &Exec) -> Result<AdamW> {
        let params = vars
            .into_iter()
            .map(|var| {
                let n = if exec.portable { 0 } else { var.elem_count() };
                let tensors = if exec.portable {
                    Some((var.zeros_like()?, var.zeros_like()?))
                } else {
                    None
                };
                Ok(Param {
                    var,
                    moments: Mutex::new((vec![0.0; n], vec![0.0; n])),
                    tensors,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            params,
            lr,
            weight_decay,
            step: 0,
            portable: exec.portable,
        })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let scale_m = (1.0 / (1.0 - BETA1.powi(self.step))) as f32;
        let scale_v = (1.0 / (1.0 - BETA2.powi(self.step))) as f32;
        if self.portable {
            return self.step_portable(grads, scale_m, scale_v);
        }
        for p in &self.params {
            if let Some(g) = grads.get(&p.var) {
                let update = Update {
                    moments: &p.moments,
                    lr: self.lr as f32,
                    decay: (1.0 - self.lr * self.weight_decay) as f32,
                    scale_m,
                    scale_v,
                };
                p.var.inplace_op2(g, &update)?;
            }
        }
        Ok(())
    }

    /// The update of the kernel above from standard tensor ops (any device).
    fn step_portable(&mut self, grads: &GradStore, scale_m: f32, scale_v: f32) -> Result<()> {
        let (b1, b2) = (BETA1 as f32, BETA2 as f32);
        let lr = self.lr as f32;
        let decay = (1.0 - self.lr * self.weight_decay) as f32;
        for p in &mut self.params {
            let (Some(g), Some((m, v))) = (grads.get(&p.var), p.tensors.as_mut()) else {
                continue;
            };
            *m = (m.affine(b1 as f64, 0.0)? + g.affine((1.0 - b1) as f64, 0.0)?)?;
            *v = (v.affine(b2 as f64, 0.0)? + g.affine((1.0 - b2) as f64, 0.0)?.mul(g)?)?;
            let step = m.affine(scale_m as f64, 0.0)?.div(
                &v.affine(scale_v as f64, 0.0)?
                    .sqrt()?
                    .affine(1.0, EPS as f32 as f64)?,
            )?;
            let theta = (p.var.affine(decay as f64, 0.0)? - step.affine(lr as f64, 0.0)?)?;
            p.var.set(&theta)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use candle_nn::Optimizer;

    /// Same trajectory as candle-nn's AdamW (up to f32 rounding of the fused expression).
    #[test]
    fn matches_candle_nn_adamw() -> Result<()> {
        let dev = Device::Cpu;
        let init = Tensor::new(&[[0.5f32, -1.0, 2.0], [0.1, 0.0, -0.3]], &dev)?;
        let target = Tensor::new(&[[1f32, 2.0, -1.0], [0.0, 0.5, 0.25]], &dev)?;
        let (a, b) = (Var::from_tensor(&init)?, Var::from_tensor(&init)?);
        let mut ours = AdamW::new(vec![a.clone()], 0.05, 0.01, &Exec::cpu())?;
        let mut theirs = candle_nn::AdamW::new(
            vec![b.clone()],
            candle_nn::ParamsAdamW {
                lr: 0.05,
                weight_decay: 0.01,
                ..Default::default()
            },
        )?;
        for _ in 0..50 {
            ours.step(&(a.as_tensor() - &target)?.sqr()?.sum_all()?.backward()?)?;
            theirs.backward_step(&(b.as_tensor() - &target)?.sqr()?.sum_all()?)?;
        }
        let (x, y) = (
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?,
        );
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() < 1e-4, "{x:?} vs {y:?}");
        }
        // And it converged towards the target.
        let t = target.flatten_all()?.to_vec1::<f32>()?;
        assert!((x[0] - t[0]).abs() < 0.2, "{x:?}");
        Ok(())
    }

    /// The tensor-op update follows the kernel's trajectory (the same f32 operations in the
    /// same order; the tolerance only covers a backend that fuses differently).
    #[test]
    fn portable_path_matches_the_kernel() -> Result<()> {
        let dev = Device::Cpu;
        let init = Tensor::rand(-1f32, 1., (5, 7), &dev)?;
        let target = Tensor::rand(-1f32, 1., (5, 7), &dev)?;
        let (a, b) = (Var::from_tensor(&init)?, Var::from_tensor(&init)?);
        let mut fast = AdamW::new(vec![a.clone()], 0.01, 0.1, &Exec::cpu())?;
        let mut port = AdamW::new(vec![b.clone()], 0.01, 0.1, &Exec::cpu_portable())?;
        for step in 0..100 {
            fast.lr = 0.01 * (1.0 - step as f64 / 100.0);
            port.lr = fast.lr;
            fast.step(&(a.as_tensor() - &target)?.sqr()?.sum_all()?.backward()?)?;
            port.step(&(b.as_tensor() - &target)?.sqr()?.sum_all()?.backward()?)?;
        }
        let (x, y) = (
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?,
        );
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() <= 1e-5, "{x:?} vs {y:?}");
        }
        Ok(())
    }
}
