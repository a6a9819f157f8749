//! The sliding window as a gather ("im2col"): every output pixel's window of input pixels laid
//! out as one row of `taps * C` values, taps in `(ky, kx)` order and channels fastest, which is
//! the OHWI filter order of the int-model (DESIGN section 5). A convolution is then one dense
//! product of these rows with the `[O, KH*KW*C]` filter matrix, a depthwise convolution a
//! per-channel weighted sum over the taps, a pool a max or sum over the taps.
//!
//! Taps that fall in the padding read a constant: 0 for convolutions and average pools (a
//! centred code of 0 is the code `Z_x`, which is DESIGN's "taps in the padding are skipped"),
//! the lowest f32 for max pools (a padded tap never wins). Geometry (stride, dilation,
//! asymmetric padding) is [`Window`]'s, the golden engine's.
//!
//! Fast path: a custom op whose forward copies `C` contiguous values per tap and whose
//! backward scatter-adds the rows back (`col2im`). Portable path: the input with one pad row
//! appended, then candle's `index_select`, whose backward candle provides on every device.

use super::dense::with_f32;
use super::exec::Exec;
use crate::model::Window;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use std::sync::Arc;

/// The window of one layer over an `[H, W, C]` input.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub window: Window,
    pub oh: usize,
    pub ow: usize,
    /// Per `(output pixel, tap)`: the source pixel `iy * W + ix`, or `H * W` in the padding.
    sources: Arc<Vec<u32>>,
}

impl Geometry {
    /// The geometry, or the reason the window does not fit the input (the model's message).
    pub fn new(
        h: usize,
        w: usize,
        c: usize,
        window: Window,
    ) -> std::result::Result<Geometry, String> {
        let (oh, ow) = window.out_hw(h, w)?;
        let [kh, kw] = window.kernel;
        let [sh, sw] = window.stride;
        let [dh, dw] = window.dilation;
        let (pt, pl) = (window.padding[0] as isize, window.padding[2] as isize);
        let pad = (h * w) as u32;
        let mut sources = Vec::with_capacity(oh * ow * kh * kw);
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..kh {
                    let iy = (oy * sh + ky * dh) as isize - pt;
                    for kx in 0..kw {
                        let ix = (ox * sw + kx * dw) as isize - pl;
                        let inside = iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w;
                        sources.push(if inside {
                            (iy as usize * w + ix as usize) as u32
                        } else {
                            pad
                        });
                    }
                }
            }
        }
        Ok(Geometry {
            h,
            w,
            c,
            window,
            oh,
            ow,
            sources: Arc::new(sources),
        })
    }

    pub fn taps(&self) -> usize {
        self.window.taps()
    }

    /// Per `(output pixel, tap)`: the source pixel, or `H * W` for a tap in the padding.
    pub(crate) fn sources(&self) -> &[u32] {
        &self.sources
    }

    /// Output pixels `OH * OW`.
    pub fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Taps inside the input, per output pixel (the divisor of an average pool).
    pub fn valid_counts(&self) -> Vec<u32> {
        let pad = (self.h * self.w) as u32;
        self.sources
            .chunks_exact(self.taps())
            .map(|t| t.iter().filter(|&&s| s != pad).count() as u32)
            .collect()
    }

    /// The rows of contiguous images `x` (`B` of them, `[H, W, C]` each).
    pub(crate) fn gather(&self, x: &[f32], pad: f32) -> Vec<f32> {
        let (hw, c, taps, p) = (self.h * self.w, self.c, self.taps(), self.pixels());
        let b = x.len() / (hw * c);
        let mut out = vec![0f32; b * p * taps * c];
        for (img, dst) in x
            .chunks_exact(hw * c)
            .zip(out.chunks_exact_mut(p * taps * c))
        {
            for (&src, d) in self.sources.iter().zip(dst.chunks_exact_mut(c)) {
                if src as usize == hw {
                    d.fill(pad);
                } else {
                    let s = src as usize * c;
                    d.copy_from_slice(&img[s..s + c]);
                }
            }
        }
        out
    }

    /// `col2im`: rows `[B * OH * OW, taps * C]` added back to the `B` images they came from.
    pub(crate) fn scatter(&self, rows: &[f32], b: usize) -> Vec<f32> {
        let (hw, c, taps, p) = (self.h * self.w, self.c, self.taps(), self.pixels());
        let mut dx = vec![0f32; b * hw * c];
        for (img, src_rows) in dx
            .chunks_exact_mut(hw * c)
            .zip(rows.chunks_exact(p * taps * c))
        {
            for (&src, gr) in self.sources.iter().zip(src_rows.chunks_exact(c)) {
                if (src as usize) < hw {
                    let s = src as usize * c;
                    for (d, &v) in img[s..s + c].iter_mut().zip(gr) {
                        *d += v;
                    }
                }
            }
        }
        dx
    }

    /// `x [B, H, W, C]` -> `[B * OH * OW, taps * C]`, padding taps reading `pad`.
    pub fn patches(&self, x: &Tensor, pad: f32, exec: &Exec) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        if (h, w, c) != (self.h, self.w, self.c) {
            bail!(
                "im2col: input [{h}, {w}, {c}] but the layer expects [{}, {}, {}]",
                self.h,
                self.w,
                self.c
            );
        }
        if exec.portable {
            let dev = x.device();
            let flat = x.reshape((b, h * w, c))?;
            let pad_row = Tensor::full(pad, (b, 1, c), dev)?.to_dtype(x.dtype())?;
            let padded = Tensor::cat(&[&flat, &pad_row], 1)?;
            let idx = Tensor::from_slice(&self.sources[..], self.sources.len(), dev)?;
            padded
                .index_select(&idx, 1)?
                .reshape((b * self.pixels(), self.taps() * c))
        } else {
            x.contiguous()?.apply_op1(Gather {
                geometry: self.clone(),
                pad,
            })
        }
    }
}

struct Gather {
    geometry: Geometry,
    pad: f32,
}

impl CustomOp1 for Gather {
    fn name(&self) -> &'static str {
        "ratflow-im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            bail!("im2col: input must be contiguous")
        };
        let g = &self.geometry;
        let out = g.gather(&s.as_slice::<f32>()?[start..end], self.pad);
        let rows = l.dims()[0] * g.pixels();
        Ok((CpuStorage::F32(out), Shape::from((rows, g.taps() * g.c))))
    }

    /// `col2im`: every row's values added back to the pixels they were read from.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let b = arg.dims()[0];
        let dx = with_f32(grad, |g| self.geometry.scatter(g, b))?;
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn window(k: [usize; 2], s: [usize; 2], d: [usize; 2], p: [usize; 4]) -> Window {
        Window {
            kernel: k,
            stride: s,
            dilation: d,
            padding: p,
        }
    }

    /// A convolution as im2col + product equals candle's conv2d (NCHW, symmetric padding),
    /// and both paths agree exactly on values and on the scattered gradient.
    #[test]
    fn conv_by_patches_equals_candle_conv2d() -> Result<()> {
        let dev = Device::Cpu;
        let (b, h, w, c, o) = (2, 7, 6, 3, 4);
        for (win, pad) in [
            (window([3, 3], [1, 1], [1, 1], [1, 1, 1, 1]), 1),
            (window([3, 3], [2, 2], [1, 1], [0, 0, 0, 0]), 0),
            (window([2, 2], [1, 1], [2, 2], [1, 1, 1, 1]), 1),
        ] {
            let g = Geometry::new(h, w, c, win).unwrap();
            let x = Var::from_tensor(&Tensor::rand(-1f32, 1., (b, h, w, c), &dev)?)?;
            let k = Tensor::rand(-1f32, 1., (o, win.kernel[0], win.kernel[1], c), &dev)?;
            let kmat = k.reshape((o, g.taps() * c))?;
            let ours = g
                .patches(&x, 0.0, &Exec::cpu())?
                .matmul(&kmat.t()?)?
                .reshape((b, g.oh, g.ow, o))?;
            let theirs = x
                .permute((0, 3, 1, 2))?
                .conv2d(
                    &k.permute((0, 3, 1, 2))?.contiguous()?,
                    pad,
                    win.stride[0],
                    win.dilation[0],
                    1,
                )?
                .permute((0, 2, 3, 1))?;
            let (a, t) = (
                ours.flatten_all()?.to_vec1::<f32>()?,
                theirs.flatten_all()?.to_vec1::<f32>()?,
            );
            for (p, q) in a.iter().zip(&t) {
                assert!((p - q).abs() < 1e-5, "{win:?}");
            }
            let fast = g.patches(&x, 0.0, &Exec::cpu())?;
            let port = g.patches(&x, 0.0, &Exec::cpu_portable())?;
            assert_eq!(
                fast.flatten_all()?.to_vec1::<f32>()?,
                port.flatten_all()?.to_vec1::<f32>()?
            );
            let wts = Tensor::rand(-1f32, 1., fast.dims(), &dev)?;
            let ga = (fast * &wts)?.sum_all()?.backward()?;
            let gb = (port * &wts)?.sum_all()?.backward()?;
            let (ga, gb) = (
                ga.get(&x).unwrap().flatten_all()?.to_vec1::<f32>()?,
                gb.get(&x).unwrap().flatten_all()?.to_vec1::<f32>()?,
            );
            for (p, q) in ga.iter().zip(&gb) {
                assert!((p - q).abs() < 1e-5, "{win:?}: {p} vs {q}");
            }
        }
        Ok(())
    }

    /// Asymmetric (TFLite SAME) padding: the odd extra row and column at the bottom/right
    /// read the pad value; valid counts per pixel exclude them.
    #[test]
    fn asymmetric_padding_and_counts() -> Result<()> {
        let g = Geometry::new(2, 2, 1, window([2, 2], [1, 1], [1, 1], [0, 1, 0, 1])).unwrap();
        assert_eq!((g.oh, g.ow), (2, 2));
        assert_eq!(g.valid_counts(), vec![4, 2, 2, 1]);
        let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?.reshape((1, 2, 2, 1))?;
        let p = g.patches(&x, -9.0, &Exec::cpu())?.to_vec2::<f32>()?;
        assert_eq!(
            p,
            vec![
                vec![1., 2., 3., 4.],
                vec![2., -9., 4., -9.],
                vec![3., 4., -9., -9.],
                vec![4., -9., -9., -9.]
            ]
        );
        assert!(Geometry::new(2, 2, 1, window([3, 3], [1, 1], [1, 1], [0, 0, 0, 0])).is_err());
        Ok(())
    }
}
