//! `add` (TFLite `reference_integer_ops::Add`): each input centred and widened by
//! `2^left_shift`, rescaled onto the common scale, summed, and the sum requantized
//! ([`crate::quant::AddRequant`]), every step on whole tensors in vector lanes.

use crate::model::{Model, Op};
use crate::quant::{Requant, RequantLanes};

pub struct Add {
    zero_points: [i32; 2],
    left_shift: u32,
    /// The two input rescalers (only their rescale is used) and the output requantizer.
    inputs: [RequantLanes; 2],
    output: RequantLanes,
}

/// Lanes per requantizer: one vector's worth, repeated over the tensor.
const LANES: usize = 16;

impl Add {
    pub fn prepare(model: &Model, op: &Op) -> Add {
        let aq = model.add_requant(op).expect("add op");
        let input = |i: usize| {
            RequantLanes::uniform(
                Requant {
                    mult: aq.inputs[i],
                    ..aq.output
                },
                LANES,
            )
        };
        Add {
            zero_points: aq.input_zero_points.map(i32::from),
            left_shift: aq.left_shift,
            inputs: [input(0), input(1)],
            output: RequantLanes::uniform(aq.output, LANES),
        }
    }

    /// `sums` holds `a_1 + a_2`; validation proved it fits i32 (and so does each `a_i`, whose
    /// magnitude is at most the sum's bound).
    pub fn run(&self, a: &[i8], b: &[i8], y: &mut [i8], sums: &mut Vec<i32>, tmp: &mut Vec<i32>) {
        let n = a.len();
        let mut scaled = |x: &[i8], i: usize, out: &mut Vec<i32>| {
            tmp.clear();
            tmp.extend(
                x.iter()
                    .map(|&q| (q as i32 - self.zero_points[i]) << self.left_shift),
            );
            out.resize(n, 0);
            self.inputs[i].rescale(tmp, out);
        };
        let mut second = Vec::new();
        scaled(a, 0, sums);
        scaled(b, 1, &mut second);
        for (s, &v) in sums.iter_mut().zip(&second) {
            *s += v;
        }
        self.output.apply(sums, y);
    }
}
