//! `dense` (TFLite `reference_integer_ops::FullyConnected`): `acc[o] = b[o] + sum (x - Z_x) w`,
//! one row of the int8 matrix product ([`gemm`]).

use super::KernelScratch;
use super::gemm::{self, Offsets, Packed};
use crate::model::{self, Model, Op};
use crate::quant::RequantLanes;

pub struct Dense {
    weight: Packed,
    at: Offsets,
    requant: RequantLanes,
}

impl Dense {
    pub fn prepare(model: &Model, op: &Op, d: &model::Dense) -> Dense {
        let zx = model.tensors[op.inputs[0]].q.zero_point;
        let weight = Packed::new(&d.weight, d.out_features, d.in_features, &d.bias, zx);
        Dense {
            at: Offsets::rows(1, weight.kp),
            weight,
            requant: RequantLanes::new(
                &(0..d.out_features)
                    .map(|c| model.requant(op, c).expect("dense has requantizers"))
                    .collect::<Vec<_>>(),
            ),
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        s.codes.clear();
        s.codes.extend(x.iter().map(|&v| gemm::code(v)));
        // The weights past N are zero: any code multiplies them to nothing.
        s.codes.resize(self.weight.kp, 0);
        s.acc.resize(self.weight.o, 0);
        gemm::gemm(&s.codes, &self.at, &self.weight, &mut s.acc);
        self.requant.apply(&s.acc, y);
    }
}
