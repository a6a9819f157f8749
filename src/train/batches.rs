//! Mini-batches: a seeded shuffle per epoch and light augmentation (random shifts).
//!
//! 8,000 training images are few for a 109k-parameter MLP; shifting each image by up to
//! two pixels per epoch is the cheapest regulariser that helps (it is what a convolution's
//! translation tolerance would give for free). Shifts and order come from the project's own
//! SplitMix64 stream keyed by (seed, stage, epoch), so a run is a function of its flags.

use crate::data::Dataset;
use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

/// One epoch's visiting order and per-image shift.
pub struct EpochPlan {
    pub order: Vec<usize>,
    pub shifts: Vec<(i32, i32)>,
}

impl EpochPlan {
    pub fn new(n: usize, seed: u64, max_shift: u32) -> EpochPlan {
        let mut rng = Rng::new(seed);
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let m = max_shift as i64;
        let shifts = (0..n)
            .map(|_| {
                if m == 0 {
                    (0, 0)
                } else {
                    (rng.range(-m, m) as i32, rng.range(-m, m) as i32)
                }
            })
            .collect();
        EpochPlan { order, shifts }
    }
}

/// Writes image `i` shifted by `(dx, dy)` (zero fill) into `dst` as pixel values `p`.
fn shifted(data: &Dataset, i: usize, (dx, dy): (i32, i32), dst: &mut [f32]) {
    let (rows, cols) = (data.rows as i32, data.cols as i32);
    let img = data.image(i);
    for r in 0..rows {
        for c in 0..cols {
            let (sr, sc) = (r - dy, c - dx);
            dst[(r * cols + c) as usize] = if (0..rows).contains(&sr) && (0..cols).contains(&sc) {
                img[(sr * cols + sc) as usize] as f32
            } else {
                0.0
            };
        }
    }
}

/// Pixel values `p` (0..=255, as f32, i.e. `x - Z_x`) and labels of the given images.
pub fn batch(
    data: &Dataset,
    idx: &[usize],
    shifts: Option<&[(i32, i32)]>,
) -> Result<(Tensor, Tensor)> {
    let n = data.pixels_per_image();
    let mut px = vec![0f32; idx.len() * n];
    for (k, (&i, dst)) in idx.iter().zip(px.chunks_exact_mut(n)).enumerate() {
        match shifts {
            Some(s) if s[k] != (0, 0) => shifted(data, i, s[k], dst),
            _ => {
                for (d, &p) in dst.iter_mut().zip(data.image(i)) {
                    *d = p as f32;
                }
            }
        }
    }
    let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
    Ok((
        Tensor::from_vec(px, (idx.len(), n), &Device::Cpu)?,
        Tensor::from_vec(labels, idx.len(), &Device::Cpu)?,
    ))
}

/// Row-wise argmax, ties to the lowest index (DESIGN's classification rule).
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<usize>> {
    Ok(logits
        .to_vec2::<f32>()?
        .iter()
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            rows: 3,
            cols: 3,
            pixels: (1..=9).collect(),
            labels: vec![4],
        }
    }

    #[test]
    fn shift_moves_content_and_fills_zero() {
        let d = tiny();
        let mut out = [0f32; 9];
        shifted(&d, 0, (1, 0), &mut out);
        assert_eq!(out, [0., 1., 2., 0., 4., 5., 0., 7., 8.]);
        shifted(&d, 0, (0, -1), &mut out);
        assert_eq!(out, [4., 5., 6., 7., 8., 9., 0., 0., 0.]);
    }

    #[test]
    fn plan_is_a_seeded_permutation() {
        let a = EpochPlan::new(100, 3, 2);
        let b = EpochPlan::new(100, 3, 2);
        assert_eq!(a.order, b.order);
        assert_eq!(a.shifts, b.shifts);
        let mut sorted = a.order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a.order, EpochPlan::new(100, 4, 2).order);
        assert!(a.shifts.iter().all(|&(x, y)| x.abs() <= 2 && y.abs() <= 2));
        assert!(EpochPlan::new(10, 3, 0).shifts.iter().all(|&s| s == (0, 0)));
    }

    #[test]
    fn argmax_ties_to_lowest() -> Result<()> {
        let t = Tensor::new(&[[1f32, 3., 3.], [5., 5., 0.]], &Device::Cpu)?;
        assert_eq!(argmax_rows(&t)?, vec![1, 0]);
        Ok(())
    }
}
