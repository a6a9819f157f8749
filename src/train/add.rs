//! The residual add (TFLite ADD, `reference_integer_ops::Add`) with its three rescalers, in
//! float and as the int8 op it will be exported as.
//!
//! Integer mode runs DESIGN section 5's ADD exactly: each input's centred code is widened by
//! `2^20`, rescaled by `(m_i, s_i)`, the two are summed, and the sum rescaled by
//! `(m_out, s_out)` to the output (S, Z) and clamped. Those intermediate values reach 2^28,
//! beyond f32's exact integers, so the codes are computed in integers: on the CPU by a
//! forward-only custom op calling [`quant::AddRequant`] (the golden model's function), off it
//! in i64 tensor arithmetic ([`rescale_i64`]). The gradient is straight through the rescale,
//! `dy/dc_i = M_i M_out 2^20` of the k-bit factors where the clamp does not bind, written with
//! `detach` so both paths share it. The three factors follow the stage as every other
//! rescaler does: derived from the scales (QAT at k = 31, paper RAT at k), or learned as
//! `log2 M` (learned-rescale RAT, gradient `ln 2` times the factor's share of the output).

use super::arch::Act;
use super::exec::Exec;
use super::layers::ActRange;
use super::rescale::{clamp_centred, derive_all, rescale_i64};
use crate::model::QParams;
use crate::quant::{self, AddRequant, Dyadic, Requant, Rescale, Rounding};
use anyhow::{Context, Result, bail};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, Var};

pub struct QuantAdd {
    pub name: String,
    pub act: Act,
    pub range: Option<ActRange>,
    /// Learned `log2 M` of the three rescalers `[M_1, M_2, M_out]`.
    pub learned: Option<Var>,
    /// Output (S, Z) fixed by an imported model.
    pub fixed: Option<QParams>,
    pub rounding: Option<Rounding>,
}

impl QuantAdd {
    pub fn new(name: &str, act: Act) -> QuantAdd {
        QuantAdd {
            name: name.to_string(),
            act,
            range: None,
            learned: None,
            fixed: None,
            rounding: None,
        }
    }

    pub fn forward_float(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.act.real(&(a + b)?)
    }

    pub fn output_qparams(&self) -> Result<QParams> {
        match (&self.fixed, &self.range) {
            (Some(q), _) => Ok(*q),
            (None, Some(r)) => Ok(r.qparams()),
            (None, None) => bail!(
                "{}: no activation range yet (calibrate from a float model first)",
                self.name
            ),
        }
    }

    pub fn has_range(&self) -> bool {
        self.range.is_some() || self.fixed.is_some()
    }

    /// Folds a batch of real outputs (after the activation) into the EMA range.
    pub fn observe(&mut self, real: &Tensor, momentum: f64) -> Result<()> {
        ActRange::update(&mut self.range, ActRange::of_tensor(real)?, momentum);
        Ok(())
    }

    /// The real factors `[M_1, M_2, M_out]`: learned, or TFLite's from the scales
    /// ([`quant::add_factors`]).
    pub fn real_factors(&self, qa: QParams, qb: QParams) -> Result<Vec<f64>> {
        Ok(match &self.learned {
            Some(t) => t
                .to_vec1::<f32>()?
                .iter()
                .map(|&t| (t as f64).exp2())
                .collect(),
            None => quant::add_factors(
                qa.scale,
                qb.scale,
                self.output_qparams()?.scale,
                quant::ADD_LEFT_SHIFT,
            )
            .to_vec(),
        })
    }

    /// The integer ADD of this step (what export writes) and its output quantization.
    pub fn ints(&self, qa: QParams, qb: QParams, spec: Rescale) -> Result<(AddRequant, QParams)> {
        let out = self.output_qparams()?;
        let real = self.real_factors(qa, qb)?;
        let d = derive_all(&real, spec, &self.name)?;
        let rounding = self.rounding.unwrap_or(spec.rounding);
        Ok((
            AddRequant {
                input_zero_points: [qa.zero_point, qb.zero_point],
                left_shift: quant::ADD_LEFT_SHIFT,
                inputs: [d[0], d[1]],
                output: Requant {
                    mult: d[2],
                    k: spec.k_bits,
                    rounding,
                    zero_point: out.zero_point,
                    clamp: self.act.clamp(out),
                },
            },
            out,
        ))
    }

    /// Centred codes in (same shapes), centred output codes out.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_int(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        qa: QParams,
        qb: QParams,
        spec: Rescale,
        momentum: Option<f64>,
        exec: &Exec,
    ) -> Result<(Tensor, QParams)> {
        if let (Some(m), None, None) = (momentum, &self.learned, &self.fixed) {
            let real = (a.detach().to_dtype(DType::F64)?.affine(qa.scale, 0.0)?
                + b.detach().to_dtype(DType::F64)?.affine(qb.scale, 0.0)?)?
            .to_dtype(DType::F32)?;
            self.observe(&self.act.real(&real)?, m)?;
        }
        let (aq, out) = self
            .ints(qa, qb, spec)
            .with_context(|| format!("rescalers of {}", self.name))?;
        let dims = a.dims().to_vec();
        let (fa, fb) = (a.flatten_all()?, b.flatten_all()?);
        let r = if exec.portable {
            portable_sum(&fa.detach(), &fb.detach(), &aq)?.to_dtype(DType::F32)?
        } else {
            fa.detach().apply_op2(&fb.detach(), AddKernel(aq))?
        };
        let (y, pass) = clamp_centred(&r, out.zero_point, aq.output.clamp)?;
        // Straight through: y ~ M_out 2^20 (M_1 c_1 + M_2 c_2), with the k-bit factors.
        let lift = (1u64 << quant::ADD_LEFT_SHIFT) as f64;
        let mq = |d: Dyadic| d.value();
        let lin = (fa.affine(mq(aq.inputs[0]) * mq(aq.output.mult) * lift, 0.0)?
            + fb.affine(mq(aq.inputs[1]) * mq(aq.output.mult) * lift, 0.0)?)?
        .mul(&pass)?;
        let mut out_t = (y + (&lin - lin.detach())?)?;
        if let Some(t) = &self.learned {
            let m = t
                .affine(std::f64::consts::LN_2, 0.0)?
                .exp()?
                .affine(lift, 0.0)?;
            let (m1, m2, mo) = (m.get(0)?, m.get(1)?, t.get(2)?);
            let mo = mo.affine(std::f64::consts::LN_2, 0.0)?.exp()?;
            let sum = (fa.detach().broadcast_mul(&m1)? + fb.detach().broadcast_mul(&m2)?)?;
            let z = sum.broadcast_mul(&mo)?.mul(&pass)?;
            out_t = (out_t + (&z - z.detach())?)?;
        }
        Ok((out_t.reshape(dims)?, out))
    }

    /// Starts learned-rescale training at the factors today's scales imply; the output range
    /// freezes.
    pub fn start_learned(
        &mut self,
        qa: QParams,
        qb: QParams,
        dev: &candle_core::Device,
    ) -> Result<()> {
        let theta: Vec<f32> = self
            .real_factors(qa, qb)?
            .iter()
            .map(|m| m.log2() as f32)
            .collect();
        self.learned = Some(Var::from_vec(theta, 3, dev)?);
        Ok(())
    }
}

/// `rescale(a_1 + a_2, m_out, s_out)` (before the output zero point and clamp) in i64 tensor
/// arithmetic, from flat centred codes.
fn portable_sum(a: &Tensor, b: &Tensor, aq: &AddRequant) -> Result<Tensor> {
    let n = a.dims()[0];
    let lift = (1i64 << aq.left_shift) as f64;
    let one = |c: &Tensor, d: Dyadic| -> Result<Tensor> {
        // (q - Z) 2^20 is exact in f32 (8 significant bits).
        let widened = c.affine(lift, 0.0)?.reshape((n, 1))?;
        Ok(rescale_i64(
            &widened,
            &[d],
            aq.output.k,
            aq.output.rounding,
        )?)
    };
    let sum = (one(a, aq.inputs[0])? + one(b, aq.inputs[1])?)?;
    // The sum fits i32 (the model's validation) and so f64 exactly.
    let r = rescale_i64(
        &sum.to_dtype(DType::F64)?,
        &[aq.output.mult],
        aq.output.k,
        aq.output.rounding,
    )?;
    Ok(r.reshape(n)?)
}

/// The golden model's ADD arithmetic on flat centred codes, forward only (its output is
/// detached; the gradient is the straight-through expression above).
struct AddKernel(AddRequant);

impl CustomOp2 for AddKernel {
    fn name(&self) -> &'static str {
        "ratflow-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("add: inputs must be contiguous")
        };
        let a = &s1.as_slice::<f32>()?[a0..a1];
        let b = &s2.as_slice::<f32>()?[b0..b1];
        let aq = &self.0;
        let [za, zb] = aq.input_zero_points.map(|z| z as i32);
        let table =
            |i: usize| -> Vec<i64> { (-128..=127).map(|q| aq.scaled_input(i, q as i8)).collect() };
        let (ta, tb) = (table(0), table(1));
        let o = &aq.output;
        let out: Vec<f32> = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                let qa = (x as i32 + za).clamp(-128, 127);
                let qb = (y as i32 + zb).clamp(-128, 127);
                let sum = ta[(qa + 128) as usize] + tb[(qb + 128) as usize];
                quant::rescale(sum as i32, o.mult, o.k, o.rounding) as f32
            })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Both op paths give `AddRequant::apply`'s code for every pair of input codes, at
    /// several k and both roundings; their gradients agree.
    #[test]
    fn integer_add_is_the_golden_rule() -> Result<()> {
        let dev = Device::Cpu;
        let (qa, qb) = (
            QParams {
                scale: 0.031,
                zero_point: -128,
            },
            QParams {
                scale: 0.0117,
                zero_point: 5,
            },
        );
        // Every pair of codes, as two flat tensors.
        let codes: Vec<(i8, i8)> = (-128..=127)
            .flat_map(|x| (-128..=127).map(move |y| (x as i8, y as i8)))
            .collect();
        let ca: Vec<f32> = codes
            .iter()
            .map(|&(x, _)| (x as i32 + 128) as f32)
            .collect();
        let cb: Vec<f32> = codes.iter().map(|&(_, y)| (y as i32 - 5) as f32).collect();
        for k in [31, 8, 4, 2, 1] {
            for rounding in [Rounding::Single, Rounding::Double] {
                for act in [Act::None, Act::Relu] {
                    let mut add = QuantAdd::new("add1", act);
                    add.range = Some(ActRange { lo: -1.0, hi: 6.0 });
                    let spec = Rescale::plain(k, rounding);
                    let (aq, out) = add.ints(qa, qb, spec)?;
                    let mut got = Vec::new();
                    for exec in [Exec::cpu(), Exec::cpu_portable()] {
                        let a = Var::from_vec(ca.clone(), ca.len(), &dev)?;
                        let b = Var::from_vec(cb.clone(), cb.len(), &dev)?;
                        let (y, _) = add.forward_int(&a, &b, qa, qb, spec, None, &exec)?;
                        let g = y.sum_all()?.backward()?;
                        got.push((y.to_vec1::<f32>()?, g.get(&a).unwrap().to_vec1::<f32>()?));
                    }
                    assert_eq!(got[0], got[1], "k {k} {rounding}");
                    for (i, &(x, y)) in codes.iter().enumerate() {
                        let want = aq.apply(x, y) as i32 - out.zero_point as i32;
                        assert_eq!(got[0].0[i], want as f32, "k {k} {rounding} ({x}, {y})");
                    }
                }
            }
        }
        Ok(())
    }
}
