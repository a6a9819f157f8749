//! The k-bit rescaler in the training graph.
//!
//! RAT's point is that the network is trained *through* the narrow rescaler it will run on,
//! so this op does not approximate it: each accumulator (an exact integer held in f32) goes
//! through [`quant::Requant::apply`], the very function the golden model and the RTL
//! implement, with `(m, s)` from [`quant::derive_multiplier`] at `k` bits. Forward values are
//! therefore the integer pipeline's, bit for bit, as long as the accumulator is exact in f32
//! (|a| < 2^24; MNIST layers stay far below).
//!
//! Backward is the straight-through estimator of `y = clamp(round(a * M_q) + Z, lo, 127)`:
//! `dy/da = M_q` where the clamp does not bind (for a ReLU layer `lo = Z`, which makes this
//! the ReLU gradient), zero where it does. For learned-rescale RAT the op also takes the
//! per-channel `log2 M` parameter and passes `dy/d(log2 M) = a * M * ln 2` through the
//! k-bit quantization of `M` (straight through again).
//!
//! Off the CPU ([`Exec::portable`]) the same integers come from i64 tensor arithmetic
//! ([`rescale_i64`]: products below 2^62, floor division by powers of two), and the same
//! straight-through gradients from `detach`: `y = codes + (a M_q mask - detach(a M_q mask))`.

use super::dense::with_f32;
use super::exec::Exec;
use crate::quant::Rescale;
use crate::quant::{self, Clamp, Dyadic, Requant, Rounding};
use anyhow::Context;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};
use std::sync::Mutex;

/// Per-channel `(m, s)` from real rescale factors under `spec` (k bits, and the CSD digit
/// budget if any); underflow gives `m = 0` (output stuck at the zero point, as DESIGN
/// specifies).
pub fn derive_all(real_m: &[f64], spec: Rescale, what: &str) -> anyhow::Result<Vec<Dyadic>> {
    real_m
        .iter()
        .enumerate()
        .map(|(c, &m)| {
            spec.derive(m)
                .map(|d| d.mult)
                .map_err(anyhow::Error::new)
                .with_context(|| {
                    format!(
                        "{what} channel {c}: cannot derive (m, s) at {}",
                        spec.describe()
                    )
                })
        })
        .collect()
}

/// The requantizer of one layer, applied to a `[R, C]` accumulator tensor (rows: batch, or
/// batch x pixels for convolutions; channels last); the result is the centred output code
/// `y - Z` (the next layer's `x - Z_x`, and `logit / S_y` at the end).
#[derive(Clone, Debug)]
pub struct Requantize {
    pub mults: Vec<Dyadic>,
    pub k: u32,
    pub rounding: Rounding,
    pub zero_point: i8,
    /// The fused activation as output bounds (NONE, ReLU, ReLU6).
    pub clamp: Clamp,
}

impl Requantize {
    /// Rescale factors fixed for this step (QAT and paper RAT: derived from the scales).
    pub fn apply(self, acc: &Tensor, exec: &Exec) -> Result<Tensor> {
        if exec.portable {
            self.portable(acc, None)
        } else {
            acc.contiguous()?.apply_op1(RequantOp::new(self))
        }
    }

    /// Learned rescale: gradient also flows into `log2_m` (`[C]`). `self.mults` must be the
    /// k-bit quantization of `2^log2_m`.
    pub fn apply_learned(self, acc: &Tensor, log2_m: &Tensor, exec: &Exec) -> Result<Tensor> {
        if exec.portable {
            self.portable(acc, Some(log2_m))
        } else {
            acc.contiguous()?.apply_op2(log2_m, RequantOp::new(self))
        }
    }

    /// The standard-op requantizer: exact codes from [`rescale_i64`], gradient `M_q` inside
    /// the clamp (and `a 2^t ln 2` into `t = log2 M` when learned).
    fn portable(&self, acc: &Tensor, log2_m: Option<&Tensor>) -> Result<Tensor> {
        let (_, c) = acc.dims2()?;
        if c != self.mults.len() {
            bail!(
                "requantize: {c} channels but {} multipliers",
                self.mults.len()
            );
        }
        let dev = acc.device();
        let r = rescale_i64(&acc.detach(), &self.mults, self.k, self.rounding)?;
        let (y, pass) = clamp_centred(&r.to_dtype(DType::F32)?, self.zero_point, self.clamp)?;
        let mq: Vec<f32> = self.mults.iter().map(|m| m.value() as f32).collect();
        let lin = acc
            .broadcast_mul(&Tensor::from_vec(mq, c, dev)?)?
            .mul(&pass)?;
        let mut out = (y + (&lin - lin.detach())?)?;
        if let Some(t) = log2_m {
            let m = t.affine(std::f64::consts::LN_2, 0.0)?.exp()?;
            let z = acc.detach().broadcast_mul(&m)?.mul(&pass)?;
            out = (out + (&z - z.detach())?)?;
        }
        Ok(out)
    }

    fn requant(&self, c: usize) -> Requant {
        Requant {
            mult: self.mults[c],
            k: self.k,
            rounding: self.rounding,
            zero_point: self.zero_point,
            clamp: self.clamp,
        }
    }

    /// The accumulator as the integer it stands for (saturating; exact below 2^24).
    #[inline]
    fn int(a: f32) -> i32 {
        a.round() as i32
    }
}

/// The requantizer as a CPU kernel: forward runs [`Requant::apply`] per element and keeps
/// which elements passed the clamp, so the backward (`dL/da = M_q g` there, and for learned
/// rescale `sum a g` per channel) needs no second pass through the rescale.
struct RequantOp {
    rq: Requantize,
    pass: Mutex<Option<Vec<bool>>>,
}

impl RequantOp {
    fn new(rq: Requantize) -> RequantOp {
        RequantOp {
            rq,
            pass: Mutex::new(None),
        }
    }

    fn forward(&self, acc: &[f32], dims: &[usize]) -> Result<(CpuStorage, Shape)> {
        let rq = &self.rq;
        let &[_, c] = dims else {
            bail!("requantize: expected [B, C] accumulators, got {dims:?}")
        };
        if c != rq.mults.len() {
            bail!(
                "requantize: {c} channels but {} multipliers",
                rq.mults.len()
            );
        }
        let z = rq.zero_point as i64;
        let (lo, hi) = (rq.clamp.lo as i64, rq.clamp.hi as i64);
        let mut out = Vec::with_capacity(acc.len());
        let mut pass = Vec::with_capacity(acc.len());
        let mut emit = |pre: i64| {
            pass.push((lo..=hi).contains(&pre));
            out.push((pre.clamp(lo, hi) - z) as f32);
        };
        // Accumulators are integer-valued f32 (exact below 2^24, and every larger f32 is an
        // integer too), so the cast is exact.
        match rq.rounding {
            Rounding::Single => {
                // quant::rescale's single rounding, branch-free per channel: with
                // half = 2^(s-1) (0 for s = 0), (a m + half) >> s; m = 0 gives 0.
                let m: Vec<i64> = rq.mults.iter().map(|d| d.m as i64).collect();
                let half: Vec<i64> = rq
                    .mults
                    .iter()
                    .map(|d| if d.s == 0 { 0 } else { 1i64 << (d.s - 1) })
                    .collect();
                let sh: Vec<u32> = rq.mults.iter().map(|d| d.s).collect();
                for row in acc.chunks_exact(c) {
                    for (&a, ((&m, &h), &s)) in row.iter().zip(m.iter().zip(&half).zip(&sh)) {
                        emit(((a as i32 as i64 * m + h) >> s) + z);
                    }
                }
            }
            Rounding::Double => {
                let reqs: Vec<Requant> = (0..c).map(|ch| rq.requant(ch)).collect();
                for row in acc.chunks_exact(c) {
                    for (&a, r) in row.iter().zip(&reqs) {
                        emit(quant::rescale(Requantize::int(a), r.mult, r.k, r.rounding) + z);
                    }
                }
            }
        }
        *self.pass.lock().expect("pass lock") = Some(pass);
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    /// `dL/da`, and with `sums` the per-channel sum of `dL/dy * a` over the passing elements.
    fn backward(&self, acc: &Tensor, grad: &Tensor, sums: bool) -> Result<(Tensor, Vec<f64>)> {
        let c = self.rq.mults.len();
        let pass = match self.pass.lock().expect("pass lock").take() {
            Some(p) => p,
            None => bail!("requantize: backward without a forward"),
        };
        let mq: Vec<f32> = self.rq.mults.iter().map(|m| m.value() as f32).collect();
        let g = with_f32(grad, |g| g.to_vec())?;
        let mut ga = vec![0f32; g.len()];
        for (i, (d, (&gv, &p))) in ga.iter_mut().zip(g.iter().zip(&pass)).enumerate() {
            if p {
                *d = gv * mq[i % c];
            }
        }
        let mut ga_m = vec![0f64; c];
        if sums {
            with_f32(acc, |a| {
                for (i, ((&av, &gv), &p)) in a.iter().zip(&g).zip(&pass).enumerate() {
                    if p {
                        ga_m[i % c] += gv as f64 * av as f64;
                    }
                }
            })?;
        }
        Ok((Tensor::from_vec(ga, acc.dims(), acc.device())?, ga_m))
    }
}

/// `floor(x / 2^s[c])` of an i64 `[R, C]` tensor, per channel, for `|x| < 2^62`: truncating
/// integer division (what candle's i64 `div` does on every backend) corrected below zero.
fn floor_div_pow2(x: &Tensor, shifts: &[u32]) -> Result<Tensor> {
    let dev = x.device();
    let c = shifts.len();
    let d: Vec<i64> = shifts.iter().map(|&s| 1i64 << s).collect();
    let dm1: Vec<i64> = d.iter().map(|&d| d - 1).collect();
    let d = Tensor::from_vec(d, c, dev)?;
    let dm1 = Tensor::from_vec(dm1, c, dev)?;
    let pos = x.broadcast_div(&d)?;
    let neg = x.broadcast_sub(&dm1)?.broadcast_div(&d)?;
    x.ge(0i64)?.where_cond(&pos, &neg)
}

/// `rescale(a, m[c], s[c])` of DESIGN section 1 (both rounding modes) on an `[R, C]` tensor
/// of exact integer accumulators held in f32, computed in i64 tensor arithmetic so that it
/// runs on any device: `a m` stays below 2^62 for |a| < 2^31 and m < 2^31.
pub fn rescale_i64(acc: &Tensor, mults: &[Dyadic], k: u32, rounding: Rounding) -> Result<Tensor> {
    let dev = acc.device();
    let c = mults.len();
    let a = acc.to_dtype(DType::I64)?;
    let col = |v: Vec<i64>| Tensor::from_vec(v, c, dev);
    match rounding {
        Rounding::Single => {
            let m = col(mults.iter().map(|d| d.m as i64).collect())?;
            let half = col(mults
                .iter()
                .map(|d| if d.s == 0 { 0 } else { 1i64 << (d.s - 1) })
                .collect())?;
            let shifts: Vec<u32> = mults.iter().map(|d| d.s).collect();
            floor_div_pow2(&a.broadcast_mul(&m)?.broadcast_add(&half)?, &shifts)
        }
        Rounding::Double => {
            // SRDHM(a, m << (31 - k)) = floor((a m31 + 2^30) / 2^31) ...
            let m31 = col(mults
                .iter()
                .map(|d| (d.m as i64) << (quant::MAX_K_BITS - k))
                .collect())?;
            let x = floor_div_pow2(&a.broadcast_mul(&m31)?.affine_i64(1 << 30)?, &vec![31; c])?;
            // ... then RoundingDivideByPOT(x, s - k): half away from zero, as
            // sign(x) floor((|x| + 2^(n-1)) / 2^n). A zero multiplier (any s) gives 0.
            let n: Vec<u32> = mults
                .iter()
                .map(|d| if d.m == 0 { 0 } else { d.s.saturating_sub(k) })
                .collect();
            let half = col(n
                .iter()
                .map(|&n| if n == 0 { 0 } else { 1i64 << (n - 1) })
                .collect())?;
            let neg = x.lt(0i64)?;
            let abs = neg.where_cond(&x.zeros_like()?.sub(&x)?, &x)?;
            let q = floor_div_pow2(&abs.broadcast_add(&half)?, &n)?;
            neg.where_cond(&q.zeros_like()?.sub(&q)?, &q)
        }
    }
}

/// Adds a scalar to an i64 tensor (candle's `affine` is float-only).
trait AffineI64 {
    fn affine_i64(&self, add: i64) -> Result<Tensor>;
}

impl AffineI64 for Tensor {
    fn affine_i64(&self, add: i64) -> Result<Tensor> {
        self.broadcast_add(&Tensor::new(add, self.device())?)
    }
}

/// `y - Z` and the straight-through mask from the rescaled value `r` (f32; integers, exact
/// below 2^24, and any larger value lies far outside the clamp, where rounding cannot move it
/// across a bound): the output code is `clamp(r + Z, lo, hi)`, and gradient passes where the
/// clamp does not bind.
pub fn clamp_centred(r: &Tensor, zero_point: i8, clamp: Clamp) -> Result<(Tensor, Tensor)> {
    let z = zero_point as f64;
    let pre = r.affine(1.0, z)?;
    let (lo, hi) = (clamp.lo as f32, clamp.hi as f32);
    let pass = pre
        .ge(lo)?
        .to_dtype(DType::F32)?
        .mul(&pre.le(hi)?.to_dtype(DType::F32)?)?;
    let y = pre.clamp(lo, hi)?.affine(1.0, -z)?;
    Ok((y, pass))
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("requantize: accumulators must be contiguous")
    };
    Ok(&s.as_slice::<f32>()?[start..end])
}

impl CustomOp1 for RequantOp {
    fn name(&self) -> &'static str {
        "ratflow-requantize"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.forward(contiguous(s, l)?, l.dims())
    }

    fn bwd(&self, acc: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(self.backward(acc, grad, false)?.0))
    }
}

impl CustomOp2 for RequantOp {
    fn name(&self) -> &'static str {
        "ratflow-requantize-learned"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        l: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(contiguous(s, l)?, l.dims())
    }

    fn bwd(
        &self,
        acc: &Tensor,
        log2_m: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (ga, ga_m) = self.backward(acc, grad, true)?;
        let theta = log2_m.to_vec1::<f32>()?;
        let gt: Vec<f32> = theta
            .iter()
            .zip(&ga_m)
            .map(|(&t, &s)| (s * (t as f64).exp2() * std::f64::consts::LN_2) as f32)
            .collect();
        Ok((
            Some(ga),
            Some(Tensor::from_vec(gt, log2_m.dims(), log2_m.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn op(m: u32, s: u32, k: u32, zp: i8, relu: bool) -> Requantize {
        Requantize {
            mults: vec![Dyadic { m, s }],
            k,
            rounding: Rounding::Single,
            zero_point: zp,
            clamp: if relu { Clamp::relu(zp) } else { Clamp::NONE },
        }
    }

    /// Forward equals `Requant::apply` (minus the zero point) on DESIGN's worked example.
    #[test]
    fn forward_is_the_integer_requantizer() -> Result<()> {
        let dev = Device::Cpu;
        let acc = [1f32, 5., -2., -6., 1000., -1000.];
        let t = Tensor::from_vec(acc.to_vec(), (6, 1), &dev)?;
        let rq = op(8, 5, 4, 3, false);
        let out = rq
            .clone()
            .apply(&t, &Exec::cpu())?
            .flatten_all()?
            .to_vec1::<f32>()?;
        // k = 4, M = 0.25: single rounding gives 0, 1, 0, -1; then saturation at 127 / -128.
        assert_eq!(out, vec![0., 1., 0., -1., 124., -131.]);
        for (&a, &o) in acc.iter().zip(&out) {
            assert_eq!(o, rq.requant(0).apply(a as i32) as f32 - 3.0);
        }
        Ok(())
    }

    /// STE: gradient M_q inside the clamp, zero where ReLU or saturation binds.
    #[test]
    fn straight_through_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let acc = Var::from_tensor(&Tensor::new(&[[8f32], [-8.], [4000.]], &dev)?)?;
        let y = op(8, 5, 4, -128, true).apply(&acc, &Exec::cpu())?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![2., 0., 255.]);
        let g = y.sum_all()?.backward()?;
        let ga = g.get(&acc).unwrap().flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(ga, vec![0.25, 0.0, 0.0]);
        Ok(())
    }

    /// The learned log2 M gets `sum a * M * ln 2` over unclamped elements.
    #[test]
    fn learned_rescale_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let acc = Tensor::new(&[[8f32], [12.]], &dev)?;
        let theta = Var::from_tensor(&Tensor::new(&[-2f32], &dev)?)?;
        let y = op(8, 5, 4, 0, false).apply_learned(&acc, &theta, &Exec::cpu())?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![2., 3.]);
        let g = y.sum_all()?.backward()?;
        let gt = g.get(&theta).unwrap().to_vec1::<f32>()?[0];
        let expect = (20.0 * 0.25 * std::f64::consts::LN_2) as f32;
        assert!((gt - expect).abs() < 1e-6, "{gt} vs {expect}");
        Ok(())
    }

    #[test]
    fn derive_all_reports_the_channel() {
        let e = derive_all(&[0.5, 3.0], Rescale::plain(1, Rounding::Single), "fc1").unwrap_err();
        assert!(format!("{e:#}").contains("fc1 channel 1"), "{e:#}");
        let ms = derive_all(&[0.3, 0.0001], Rescale::plain(4, Rounding::Single), "fc1").unwrap();
        assert_eq!(ms[0], quant::derive_multiplier(0.3, 4).unwrap().mult);
    }

    fn csd(k: u32, d: u32) -> Rescale {
        Rescale {
            k_bits: k,
            rounding: Rounding::Single,
            csd_digits: Some(d),
        }
    }

    /// With a digit budget, every factor goes through `derive_multiplier_csd`: exact values,
    /// at most D digits, and different from the plain k-bit multiplier where the budget binds.
    #[test]
    fn derive_all_projects_onto_the_digit_budget() {
        // 0.3 at k = 8: plain m = 154 (4 digits); 2 digits give 160, 1 digit 128 (0.25).
        let real = [0.3, 0.3 * 2f64.powi(-7), 0.71, 0.999];
        for d in 1..=3 {
            let ms = derive_all(&real, csd(8, d), "fc1").unwrap();
            for (&m, &r) in ms.iter().zip(&real) {
                assert_eq!(m, quant::derive_multiplier_csd(r, 8, d).unwrap().mult);
                assert!(quant::csd::weight(m.m as u64) <= d);
            }
        }
        let two = derive_all(&real, csd(8, 2), "fc1").unwrap();
        assert_eq!(two[0], Dyadic { m: 160, s: 9 });
        assert_eq!(two[1], Dyadic { m: 160, s: 16 });
        assert_ne!(two[0], quant::derive_multiplier(0.3, 8).unwrap().mult);
        let one = derive_all(&real, csd(31, 1), "fc1").unwrap();
        assert_eq!(one[0].value(), 0.25);
        assert_eq!(one[2].value(), 0.5);
        assert_eq!(one[3].value(), 1.0);
        let e = derive_all(&[f64::NAN], csd(8, 2), "fc2").unwrap_err();
        assert!(
            format!("{e:#}")
                .contains("fc2 channel 0: cannot derive (m, s) at k = 8, at most 2 CSD digits"),
            "{e:#}"
        );
    }

    /// The CSD projection inside the learned-rescale op: the forward pass uses the projected
    /// factor (0.3 -> 160 * 2^-9 = 0.3125 at two digits, 0.25 at one), the accumulator gets
    /// the projected factor as its straight-through gradient, and `log2 M` gets the gradient
    /// of the unprojected factor (straight through the projection).
    #[test]
    fn csd_projection_is_in_the_forward_pass_with_a_straight_through_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let theta0 = 0.3f64.log2() as f32;
        let m_real = (theta0 as f64).exp2();
        for (d, m_q, y) in [(2, 0.3125f32, [31f32, -3.]), (1, 0.25, [25., -2.])] {
            let acc = Var::from_tensor(&Tensor::new(&[[100f32], [-10.]], &dev)?)?;
            let theta = Var::from_tensor(&Tensor::new(&[theta0], &dev)?)?;
            let mults = derive_all(&[m_real], csd(8, d), "t").unwrap();
            assert_eq!(mults[0].value() as f32, m_q);
            let rq = Requantize {
                mults,
                k: 8,
                rounding: Rounding::Single,
                zero_point: 0,
                clamp: Clamp::NONE,
            };
            let out = rq.apply_learned(&acc, &theta, &Exec::cpu())?;
            // round(100 * M_q) and round(-10 * M_q), ties toward +inf: the projected factor.
            assert_eq!(out.flatten_all()?.to_vec1::<f32>()?, y.to_vec(), "D = {d}");
            let g = out.sum_all()?.backward()?;
            let ga = g.get(&acc).unwrap().flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(ga, vec![m_q, m_q], "D = {d}");
            let gt = g.get(&theta).unwrap().to_vec1::<f32>()?[0] as f64;
            let expect = 90.0 * m_real * std::f64::consts::LN_2;
            assert!((gt - expect).abs() < 1e-4, "D = {d}: {gt} vs {expect}");
        }
        Ok(())
    }

    /// The i64 standard-op path computes every code of the kernel (`quant::Requant::apply`)
    /// at every k, both roundings and several clamps, and the same straight-through
    /// gradients (the learned `log2 M` gradient to f32 rounding: the kernel sums in f64).
    #[test]
    fn portable_path_matches_the_kernel() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(9);
        let (rows, c) = (300, 7);
        let mut acc: Vec<f32> = (0..rows * c)
            .map(|_| (rng.range(-(1 << 23), 1 << 23)) as f32)
            .collect();
        for (i, a) in [0f32, 1., -1., 5., -6., 8388607., -8388607.]
            .iter()
            .enumerate()
        {
            acc[i] = *a;
        }
        for k in [31, 16, 8, 4, 2, 1] {
            for rounding in [Rounding::Single, Rounding::Double] {
                let mults: Vec<Dyadic> = (0..c)
                    .map(|ch| {
                        // M from 2^-27 to 0.7 (below 1 after rounding at every k, as
                        // `double` requires), one channel underflowed to m = 0.
                        let real = 0.7 * 2f64.powf(-(ch as f64) * 4.5);
                        let d = if ch == 3 {
                            Dyadic { m: 0, s: 0 }
                        } else {
                            quant::derive_multiplier(real, k).unwrap().mult
                        };
                        quant::check_multiplier(d, k, rounding).unwrap();
                        d
                    })
                    .collect();
                for (zp, clamp) in [
                    (-3i8, Clamp::NONE),
                    (-128, Clamp::relu(-128)),
                    (10, Clamp::relu6(10, 0.05)),
                ] {
                    let rq = Requantize {
                        mults: mults.clone(),
                        k,
                        rounding,
                        zero_point: zp,
                        clamp,
                    };
                    let theta: Vec<f32> = mults
                        .iter()
                        .map(|m| (m.value().max(1e-9)).log2() as f32)
                        .collect();
                    let run = |exec: &Exec| -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
                        let a = Var::from_tensor(&Tensor::from_vec(acc.clone(), (rows, c), &dev)?)?;
                        let t = Var::from_tensor(&Tensor::from_vec(theta.clone(), c, &dev)?)?;
                        let y = rq.clone().apply_learned(&a, &t, exec)?;
                        let w = Tensor::from_vec(
                            (0..rows * c)
                                .map(|i| ((i % 5) as f32 - 2.0) * 0.1)
                                .collect(),
                            (rows, c),
                            &dev,
                        )?;
                        let g = (&y * w)?.sum_all()?.backward()?;
                        Ok((
                            y.flatten_all()?.to_vec1()?,
                            g.get(&a).unwrap().flatten_all()?.to_vec1()?,
                            g.get(&t).unwrap().to_vec1()?,
                        ))
                    };
                    let (ya, ga, ta) = run(&Exec::cpu())?;
                    let (yb, gb, tb) = run(&Exec::cpu_portable())?;
                    assert_eq!(ya, yb, "k {k} {rounding} {clamp:?}");
                    for (i, &a) in acc.iter().enumerate() {
                        let want = rq.requant(i % c).apply(a as i32) as f32 - zp as f32;
                        assert_eq!(ya[i], want, "k {k} {rounding} a {a}");
                    }
                    assert_eq!(ga, gb, "k {k} {rounding}");
                    for (p, q) in ta.iter().zip(&tb) {
                        assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{ta:?} vs {tb:?}");
                    }
                }
            }
        }
        Ok(())
    }
}
