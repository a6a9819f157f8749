//! `dense` (TFLite `reference_integer_ops::FullyConnected`): `acc[o] = b[o] + sum (x - Z_x) w`,
//! one row of the int8 matrix product ([`gemm`]).

use super::KernelScratch;
use super::gemm::{self, Packed};
use crate::model::{self, Model, Op};
use crate::quant::Requant;

pub struct Dense {
    weight: Packed,
    requant: Vec<Requant>,
}

impl Dense {
    pub fn prepare(model: &Model, op: &Op, d: &model::Dense) -> Dense {
        let zx = model.tensors[op.inputs[0]].q.zero_point;
        Dense {
            weight: Packed::new(&d.weight, d.out_features, d.in_features, &d.bias, zx),
            requant: (0..d.out_features)
                .map(|c| model.requant(op, c).expect("dense has requantizers"))
                .collect(),
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        s.codes.clear();
        s.codes.extend(x.iter().map(|&v| gemm::code(v)));
        s.codes.resize(self.weight.kp, 0);
        s.acc.resize(self.weight.o, 0);
        gemm::gemm(&s.codes, 1, &self.weight, &mut s.acc);
        for ((y, &a), rq) in y.iter_mut().zip(&s.acc).zip(&self.requant) {
            *y = rq.apply(a);
        }
    }
}
