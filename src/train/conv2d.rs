//! The conv2d product (TFLite CONV_2D, `reference_integer_ops::ConvPerChannel`): the window
//! gathered by [`Geometry::patches`] times the `[O, KH*KW*C]` filter matrix (OHWI rows), one
//! dense product. On centred int8 codes and integer weight and bias codes every partial sum
//! is an exact integer in f32 (below 2^24), so the accumulator is the golden model's; on real
//! values it is the float convolution.
//!
//! On the CPU the whole product is one custom op: the gathered rows live only inside it (kept
//! from the forward for the backward), so the autograd graph never allocates, zeroes and adds
//! a gradient the size of the rows; the backward is `dW = g^T rows`, `db = sum g` and, only
//! when the input needs it, `dx = col2im(g W)`. Elsewhere it is the gather and a dense
//! product from standard ops. Both compute the same gemm on the same rows.

use super::dense::{dense, gemm_into, with_f32};
use super::exec::Exec;
use super::im2col::Geometry;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use std::sync::Mutex;

/// `x [B, H, W, C]`, `w [O, KH*KW*C]`, `b [O]` -> accumulators `[B * OH * OW, O]` (channels
/// last, pixels in raster order: NHWC once reshaped to `[B, OH, OW, O]`).
pub fn product(x: &Tensor, g: &Geometry, w: &Tensor, b: &Tensor, exec: &Exec) -> Result<Tensor> {
    if exec.portable {
        let cols = g.patches(x, 0.0, exec)?;
        dense(&cols, w, b, exec)
    } else {
        x.contiguous()?.apply_op3(
            w,
            b,
            ConvOp {
                geometry: g.clone(),
                rows: Mutex::new(None),
            },
        )
    }
}

struct ConvOp {
    geometry: Geometry,
    /// The gathered rows of the forward pass, for the backward.
    rows: Mutex<Option<Vec<f32>>>,
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "ratflow-conv2d"
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
        let g = &self.geometry;
        let (Some((x0, x1)), Some((w0, w1)), Some((b0, b1))) = (
            xl.contiguous_offsets(),
            wl.contiguous_offsets(),
            bl.contiguous_offsets(),
        ) else {
            bail!("conv2d: operands must be contiguous")
        };
        let (x, w, b) = (
            &xs.as_slice::<f32>()?[x0..x1],
            &ws.as_slice::<f32>()?[w0..w1],
            &bs.as_slice::<f32>()?[b0..b1],
        );
        let k = g.taps() * g.c;
        let o = b.len();
        if wl.dims() != [o, k] || xl.dims()[1..] != [g.h, g.w, g.c] {
            bail!(
                "conv2d: x {:?}, w {:?}, b [{o}] do not fit the layer",
                xl.dims(),
                wl.dims()
            );
        }
        let rows_n = xl.dims()[0] * g.pixels();
        let rows = g.gather(x, 0.0);
        let mut dst = Vec::with_capacity(rows_n * o);
        for _ in 0..rows_n {
            dst.extend_from_slice(b);
        }
        gemm_into(
            &mut dst,
            true,
            (rows_n, o, k),
            &rows,
            (k as isize, 1),
            w,
            (1, k as isize),
        );
        *self.rows.lock().expect("rows lock") = Some(rows);
        Ok((CpuStorage::F32(dst), Shape::from((rows_n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = &self.geometry;
        let k = g.taps() * g.c;
        let (rows_n, o) = grad.dims2()?;
        let rows = match self.rows.lock().expect("rows lock").take() {
            Some(r) => r,
            None => with_f32(x, |xv| g.gather(xv, 0.0))?,
        };
        let mut dw = vec![0f32; o * k];
        let mut db = vec![0f32; o];
        let mut drows = if x.track_op() {
            vec![0f32; rows_n * k]
        } else {
            Vec::new()
        };
        with_f32(grad, |gv| -> Result<()> {
            // dW [O, K] = g^T [O, R] rows [R, K].
            gemm_into(
                &mut dw,
                false,
                (o, k, rows_n),
                gv,
                (1, o as isize),
                &rows,
                (k as isize, 1),
            );
            for r in gv.chunks_exact(o) {
                for (d, &v) in db.iter_mut().zip(r) {
                    *d += v;
                }
            }
            if !drows.is_empty() {
                // d rows [R, K] = g [R, O] W [O, K], scattered back below.
                with_f32(w, |wv| {
                    gemm_into(
                        &mut drows,
                        false,
                        (rows_n, k, o),
                        gv,
                        (o as isize, 1),
                        wv,
                        (k as isize, 1),
                    )
                })?;
            }
            Ok(())
        })??;
        let dx = if drows.is_empty() {
            None
        } else {
            let b = x.dims()[0];
            Some(Tensor::from_vec(
                g.scatter(&drows, b),
                x.dims(),
                x.device(),
            )?)
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, (o, k), w.device())?),
            Some(Tensor::from_vec(db, o, w.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Window;
    use candle_core::{Device, Var};

    /// Fast and portable paths give the same exact integer accumulators on codes, and the
    /// same gradients to f32 rounding.
    #[test]
    fn paths_agree_on_codes() -> Result<()> {
        let dev = Device::Cpu;
        let win = Window {
            kernel: [3, 2],
            stride: [2, 1],
            dilation: [1, 2],
            padding: [1, 0, 2, 1],
        };
        let g = Geometry::new(9, 8, 5, win).unwrap();
        let mut rng = crate::rng::Rng::new(4);
        let x: Vec<f32> = (0..3 * 9 * 8 * 5)
            .map(|_| rng.range(-255, 255) as f32)
            .collect();
        let w: Vec<f32> = (0..6 * g.taps() * 5)
            .map(|_| rng.range(-127, 127) as f32)
            .collect();
        let b: Vec<f32> = (0..6).map(|_| rng.range(-5000, 5000) as f32).collect();
        let x = Var::from_tensor(&Tensor::from_vec(x, (3, 9, 8, 5), &dev)?)?;
        let w = Var::from_tensor(&Tensor::from_vec(w, (6, g.taps() * 5), &dev)?)?;
        let b = Var::from_tensor(&Tensor::from_vec(b, 6, &dev)?)?;
        let run = |exec: &Exec| -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
            let xin = (x.as_tensor() * 1.0)?;
            let y = product(&xin, &g, &w, &b, exec)?;
            let wts = Tensor::ones(y.dims(), candle_core::DType::F32, &dev)?.affine(0.5, 0.0)?;
            let gr = (&y * wts)?.sum_all()?.backward()?;
            Ok((
                y.flatten_all()?.to_vec1()?,
                [x.as_tensor(), w.as_tensor(), b.as_tensor()]
                    .iter()
                    .map(|v| gr.get(v).unwrap().flatten_all().unwrap().to_vec1().unwrap())
                    .collect(),
            ))
        };
        let (ya, ga) = run(&Exec::cpu())?;
        let (yb, gb) = run(&Exec::cpu_portable())?;
        assert_eq!(ya, yb);
        assert_eq!(ya.len(), 3 * g.pixels() * 6);
        assert!(ya.iter().all(|v| v.fract() == 0.0));
        for (a, b) in ga.iter().zip(&gb) {
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() <= 1e-3 * (1.0 + q.abs()), "{p} vs {q}");
            }
        }
        Ok(())
    }
}
