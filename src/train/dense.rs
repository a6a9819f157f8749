//! The fully connected product `y = x W^T + b` as one candle op.
//!
//! Composing `x.matmul(&w.t())?.broadcast_add(&b)?` works, but candle's generic backward then
//! also computes the gradient of the network input (a full 64x128x784 product nobody reads),
//! and accumulates the weight gradient through a transposed, strided add. On 2 cores those
//! two account for about a third of a training step, so the layer is a custom op whose
//! backward computes exactly `dW = g^T x`, `db = sum_b g` and, only when the input is itself
//! the output of a differentiable op, `dx = g W`. The forward writes the bias into the
//! destination and lets gemm accumulate onto it (one pass, no broadcast temporary).
//!
//! Off the CPU the layer is candle's own composition (`matmul` + `broadcast_add`), which every
//! backend provides; on integer-valued inputs (codes) both give the exact same sums.

use super::exec::Exec;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};

/// `x [B, in]`, `w [out, in]`, `b [out]` -> `x W^T + b [B, out]`.
pub fn dense(x: &Tensor, w: &Tensor, b: &Tensor, exec: &Exec) -> Result<Tensor> {
    if exec.portable {
        x.matmul(&w.t()?)?.broadcast_add(b)
    } else {
        x.apply_op3(w, b, DenseOp)
    }
}

struct DenseOp;

/// `dst[m x n] (+)= A[m x k] B[k x n]`, `dst` row-major and contiguous, `A` and `B` given
/// by their row and column strides (so either may be a transposed view).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_into(
    dst: &mut [f32],
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (isize, isize),
    b: &[f32],
    (b_rs, b_cs): (isize, isize),
) {
    assert!(dst.len() >= m * n, "gemm: destination too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let last = |rs: isize, cs: isize, rows: usize, cols: usize| {
        (rows - 1) as isize * rs + (cols - 1) as isize * cs
    };
    assert!(
        last(a_rs, a_cs, m, k) < a.len() as isize,
        "gemm: A out of bounds"
    );
    assert!(
        last(b_rs, b_cs, k, n) < b.len() as isize,
        "gemm: B out of bounds"
    );
    // SAFETY: the asserts above keep every addressed element of A, B and dst in bounds
    // (strides are non-negative: row-major views and their transposes).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism(),
        );
    }
}

/// A contiguous f32 tensor's values on the CPU, read in place.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        bail!("expected a CPU tensor")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("expected a contiguous tensor")
    };
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

/// Thread count for gemm: the same knob candle's own matmul reads, so `--threads` governs
/// every product in the step.
fn parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

impl CustomOp3 for DenseOp {
    fn name(&self) -> &'static str {
        "ratflow-dense"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            xs.as_slice::<f32>()?,
            ws.as_slice::<f32>()?,
            bs.as_slice::<f32>()?,
        );
        let (&[rows, fan_in], &[outs, w_in], &[b_len]) = (xl.dims(), wl.dims(), bl.dims()) else {
            bail!(
                "dense: expected x [B, in], w [out, in], b [out], got {:?} {:?} {:?}",
                xl.dims(),
                wl.dims(),
                bl.dims()
            )
        };
        if w_in != fan_in || b_len != outs {
            bail!(
                "dense: shapes {:?} {:?} {:?} do not match",
                xl.dims(),
                wl.dims(),
                bl.dims()
            );
        }
        let b_stride = bl.stride()[0];
        let b = &b[bl.start_offset()..];
        let mut dst = Vec::with_capacity(rows * outs);
        for _ in 0..rows {
            dst.extend((0..outs).map(|c| b[c * b_stride]));
        }
        let (x_rs, x_cs) = (xl.stride()[0] as isize, xl.stride()[1] as isize);
        let (w_rs, w_cs) = (wl.stride()[0] as isize, wl.stride()[1] as isize);
        let x = &x[xl.start_offset()..];
        let w = &w[wl.start_offset()..];
        // SAFETY: every pointer/stride pair addresses only elements inside the slices above:
        // dst is rows x outs row-major; lhs (rows x fan_in) and rhs (fan_in x outs, the
        // transpose of w) use the layouts' own strides, which candle guarantees fit storage.
        unsafe {
            gemm::gemm(
                rows,
                outs,
                fan_in,
                dst.as_mut_ptr(),
                1,
                outs as isize,
                true,
                x.as_ptr(),
                x_cs,
                x_rs,
                w.as_ptr(),
                w_rs,
                w_cs,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism(),
            );
        }
        Ok((CpuStorage::F32(dst), Shape::from((rows, outs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = if x.track_op() {
            Some(grad.matmul(w)?)
        } else {
            None
        };
        let dw = grad.t()?.matmul(x)?;
        let db = grad.sum(0)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Forward and all three gradients against candle's own composition.
    #[test]
    fn matches_candle_composition() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::rand(-1f32, 1., (5, 7), &dev)?)?;
        let w = Var::from_tensor(&Tensor::rand(-1f32, 1., (3, 7), &dev)?)?;
        let b = Var::from_tensor(&Tensor::rand(-1f32, 1., 3, &dev)?)?;
        // A differentiable op in front of x so that the dx path runs.
        let xin = (x.as_tensor() * 1.0)?;
        let ours = dense(&xin, &w, &b, &Exec::cpu())?;
        let reference = xin.matmul(&w.t()?)?.broadcast_add(&b)?;
        close(
            &ours.flatten_all()?.to_vec1()?,
            &reference.flatten_all()?.to_vec1()?,
        );
        let weights = Tensor::rand(-1f32, 1., (5, 3), &dev)?;
        let g1 = (&ours * &weights)?.sum_all()?.backward()?;
        let g2 = (&reference * &weights)?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            close(
                &g1.get(v).unwrap().flatten_all()?.to_vec1()?,
                &g2.get(v).unwrap().flatten_all()?.to_vec1()?,
            );
        }
        Ok(())
    }

    /// A plain input tensor gets no gradient (that product is the point of the op).
    #[test]
    fn untracked_input_gets_no_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::rand(-1f32, 1., (4, 6), &dev)?;
        let w = Var::from_tensor(&Tensor::rand(-1f32, 1., (2, 6), &dev)?)?;
        let b = Var::zeros(2, candle_core::DType::F32, &dev)?;
        let grads = dense(&x, &w, &b, &Exec::cpu())?.sum_all()?.backward()?;
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&w).is_some());
        Ok(())
    }
}
