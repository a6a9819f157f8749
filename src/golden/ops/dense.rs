//! `dense` (TFLite `reference_integer_ops::FullyConnected`): `acc[o] = b[o] + sum (x - Z_x) w`.

use super::{KernelScratch, centre, dot};
use crate::model::{self, Model, Op};
use crate::quant::Requant;

pub struct Dense {
    /// `[O][N]` widened once.
    weight: Vec<i16>,
    bias: Vec<i32>,
    requant: Vec<Requant>,
    input_zp: i8,
}

impl Dense {
    pub fn prepare(model: &Model, op: &Op, d: &model::Dense) -> Dense {
        Dense {
            weight: d.weight.iter().map(|&w| w as i16).collect(),
            bias: d.bias.clone(),
            requant: (0..d.out_features)
                .map(|c| model.requant(op, c).expect("dense has requantizers"))
                .collect(),
            input_zp: model.tensors[op.inputs[0]].q.zero_point,
        }
    }

    pub fn run(&self, x: &[i8], y: &mut [i8], s: &mut KernelScratch) {
        centre(x, self.input_zp, &mut s.centred);
        s.acc.resize(self.bias.len(), 0);
        dot::matvec(&s.centred, &self.weight, &self.bias, &mut s.acc);
        for ((y, &a), rq) in y.iter_mut().zip(&s.acc).zip(&self.requant) {
            *y = rq.apply(a);
        }
    }
}
