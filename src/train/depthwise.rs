//! The depthwise_conv2d product (TFLite DEPTHWISE_CONV_2D,
//! `reference_integer_ops::DepthwiseConvPerChannel`): output channel `o = c * DM + d` is the
//! weighted sum of input channel `c` over the window. The window comes from
//! [`Geometry::patches`]; the per-channel sum over the taps is a broadcast product and a sum,
//! standard ops on every device (exact on integer codes, as for conv2d).
//!
//! The weight is held as `[O, KH*KW]` (one row per output channel, so that per-channel weight
//! scales are row maxima like every other layer); the int-model's `[KH][KW][O]` is its
//! transpose.

use super::exec::Exec;
use super::im2col::Geometry;
use candle_core::{Result, Tensor};

/// `x [B, H, W, C]`, `w [C*DM, KH*KW]`, `b [C*DM]` -> accumulators `[B * OH * OW, C*DM]`.
pub fn product(
    x: &Tensor,
    g: &Geometry,
    multiplier: usize,
    w: &Tensor,
    b: &Tensor,
    exec: &Exec,
) -> Result<Tensor> {
    let cols = g.patches(x, 0.0, exec)?;
    let (rows, _) = cols.dims2()?;
    let (taps, c) = (g.taps(), g.c);
    let cols = cols.reshape((rows, taps, c, 1))?;
    let wt = w.reshape((c, multiplier, taps))?.permute((2, 0, 1))?;
    cols.broadcast_mul(&wt)?
        .sum(1)?
        .reshape((rows, c * multiplier))?
        .broadcast_add(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Window;
    use candle_core::Device;

    /// Against a direct loop over DESIGN's formula (o = c * DM + d reads channel c).
    #[test]
    fn matches_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        let win = Window {
            kernel: [3, 3],
            stride: [1, 2],
            dilation: [1, 1],
            padding: [1, 1, 1, 1],
        };
        let (h, w, c, dm) = (5, 6, 3, 2);
        let g = Geometry::new(h, w, c, win).unwrap();
        let mut rng = crate::rng::Rng::new(8);
        let xv: Vec<f32> = (0..h * w * c).map(|_| rng.range(-9, 9) as f32).collect();
        let wv: Vec<f32> = (0..c * dm * 9).map(|_| rng.range(-9, 9) as f32).collect();
        let bv: Vec<f32> = (0..c * dm).map(|_| rng.range(-9, 9) as f32).collect();
        let x = Tensor::from_vec(xv.clone(), (1, h, w, c), &dev)?;
        let wt = Tensor::from_vec(wv.clone(), (c * dm, 9), &dev)?;
        let b = Tensor::from_vec(bv.clone(), c * dm, &dev)?;
        for exec in [Exec::cpu(), Exec::cpu_portable()] {
            let y = product(&x, &g, dm, &wt, &b, &exec)?.to_vec2::<f32>()?;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for o in 0..c * dm {
                        let ch = o / dm;
                        let mut acc = bv[o];
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = (oy + ky) as isize - 1;
                                let ix = (ox * 2 + kx) as isize - 1;
                                if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                                    let xi = (iy as usize * w + ix as usize) * c + ch;
                                    acc += xv[xi] * wv[o * 9 + ky * 3 + kx];
                                }
                            }
                        }
                        assert_eq!(y[oy * g.ow + ox][o], acc);
                    }
                }
            }
        }
        Ok(())
    }
}
