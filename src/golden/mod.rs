//! The golden integer model: executes a validated int-model exactly as README's integer
//! semantics define it. Every accuracy ratflow reports and every vector a testbench checks
//! comes from here.
//!
//! Speed matters (the sweep evaluates many models, tests stream hundreds of thousands of
//! vectors), so weights are widened to i16 once and the zero point is folded into the bias:
//! `sum (x - Z) w + b = sum x w + (b - Z sum w)`. Every partial sum stays below
//! `128 * sum|w| + |b|`, which the model's i32 bound already covers, so the i32 arithmetic is
//! exact. Requantization calls [`crate::quant::Requant::apply`], the single definition.

pub mod vectors;

use crate::data::Dataset;
use crate::model::Model;
use crate::quant::Requant;

struct Prepared {
    in_features: usize,
    out_features: usize,
    /// Row-major i16 weights.
    weight: Vec<i16>,
    folded_bias: Vec<i32>,
    requant: Vec<Requant>,
}

/// A model prepared for fast exact execution.
pub struct Engine {
    layers: Vec<Prepared>,
}

/// Everything one inference computes: per-layer accumulators and int8 outputs, and the class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub acc: Vec<Vec<i32>>,
    pub out: Vec<Vec<i8>>,
    pub class: usize,
}

/// Reusable buffers for allocation-free classification.
#[derive(Default)]
pub struct Scratch {
    x: Vec<i16>,
    acc: Vec<i32>,
}

impl Engine {
    pub fn new(model: &Model) -> Engine {
        let layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let zx = model.layer_input(i).zero_point as i64;
                let folded_bias = (0..l.out_features)
                    .map(|c| {
                        let sum: i64 = l.row(c).iter().map(|&w| w as i64).sum();
                        // |b| + 128 sum|w| < 2^31 by the validated bound.
                        (l.bias[c] as i64 - zx * sum) as i32
                    })
                    .collect();
                Prepared {
                    in_features: l.in_features,
                    out_features: l.out_features,
                    weight: l.weight.iter().map(|&w| w as i16).collect(),
                    folded_bias,
                    requant: (0..l.out_features).map(|c| model.requant(i, c)).collect(),
                }
            })
            .collect();
        Engine { layers }
    }

    pub fn input_len(&self) -> usize {
        self.layers[0].in_features
    }

    /// Runs one input and records every intermediate value.
    pub fn run(&self, input: &[i8]) -> Trace {
        assert_eq!(input.len(), self.input_len(), "input length");
        let mut acc = Vec::with_capacity(self.layers.len());
        let mut out: Vec<Vec<i8>> = Vec::with_capacity(self.layers.len());
        let mut x: Vec<i16> = input.iter().map(|&v| v as i16).collect();
        for layer in &self.layers {
            let mut a = vec![0i32; layer.out_features];
            layer.accumulate(&x, &mut a);
            let y: Vec<i8> = a
                .iter()
                .zip(&layer.requant)
                .map(|(&v, rq)| rq.apply(v))
                .collect();
            x = y.iter().map(|&v| v as i16).collect();
            acc.push(a);
            out.push(y);
        }
        let class = argmax(out.last().expect("at least one layer"));
        Trace { acc, out, class }
    }

    /// The predicted class only, without allocating.
    pub fn classify(&self, input: &[i8], scratch: &mut Scratch) -> usize {
        scratch.x.clear();
        scratch.x.extend(input.iter().map(|&v| v as i16));
        let mut best = 0;
        for (i, layer) in self.layers.iter().enumerate() {
            scratch.acc.resize(layer.out_features, 0);
            layer.accumulate(&scratch.x, &mut scratch.acc);
            scratch.x.clear();
            scratch.x.extend(
                scratch
                    .acc
                    .iter()
                    .zip(&layer.requant)
                    .map(|(&a, rq)| rq.apply(a) as i16),
            );
            if i + 1 == self.layers.len() {
                best = argmax_i16(&scratch.x);
            }
        }
        best
    }

    /// Correct predictions on the first `limit` images of a dataset.
    pub fn correct(&self, data: &Dataset, limit: usize) -> usize {
        let mut scratch = Scratch::default();
        let mut input = vec![0i8; data.pixels_per_image()];
        (0..limit.min(data.len()))
            .filter(|&i| {
                for (d, &p) in input.iter_mut().zip(data.image(i)) {
                    *d = crate::data::pixel_to_i8(p);
                }
                self.classify(&input, &mut scratch) == data.labels[i] as usize
            })
            .count()
    }
}

impl Prepared {
    fn accumulate(&self, x: &[i16], acc: &mut [i32]) {
        debug_assert_eq!(x.len(), self.in_features);
        for ((a, row), &b) in acc
            .iter_mut()
            .zip(self.weight.chunks_exact(self.in_features))
            .zip(&self.folded_bias)
        {
            *a = dot(x, row).wrapping_add(b);
        }
    }
}

/// `sum x[i] * w[i]` in i32; written as independent lanes so LLVM emits packed
/// multiply-adds (`pmaddwd` on x86).
#[inline]
fn dot(x: &[i16], w: &[i16]) -> i32 {
    const LANES: usize = 16;
    let mut lanes = [0i32; LANES];
    let xc = x.chunks_exact(LANES);
    let wc = w.chunks_exact(LANES);
    let (xr, wr) = (xc.remainder(), wc.remainder());
    for (xs, ws) in xc.zip(wc) {
        for j in 0..LANES {
            lanes[j] = lanes[j].wrapping_add(xs[j] as i32 * ws[j] as i32);
        }
    }
    let mut sum = lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v));
    for (&a, &b) in xr.iter().zip(wr) {
        sum = sum.wrapping_add(a as i32 * b as i32);
    }
    sum
}

/// Index of the largest value, ties to the lowest index (README "Classification").
pub fn argmax(v: &[i8]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn argmax_i16(v: &[i16]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests;
