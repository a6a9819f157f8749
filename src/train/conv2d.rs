//! The conv2d product (TFLite CONV_2D, `reference_integer_ops::ConvPerChannel`): the window
//! gathered by [`Geometry::patches`] times the `[O, KH*KW*C]` filter matrix (OHWI rows), one
//! dense product. On centred int8 codes and integer weight and bias codes every partial sum
//! is an exact integer in f32 (below 2^24), so the accumulator is the golden model's; on real
//! values it is the float convolution.

use super::dense::dense;
use super::exec::Exec;
use super::im2col::Geometry;
use candle_core::{Result, Tensor};

/// `x [B, H, W, C]`, `w [O, KH*KW*C]`, `b [O]` -> accumulators `[B * OH * OW, O]` (channels
/// last, pixels in raster order: NHWC once reshaped to `[B, OH, OW, O]`).
pub fn product(x: &Tensor, g: &Geometry, w: &Tensor, b: &Tensor, exec: &Exec) -> Result<Tensor> {
    let cols = g.patches(x, 0.0, exec)?;
    dense(&cols, w, b, exec)
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
