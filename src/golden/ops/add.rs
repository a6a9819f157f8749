//! `add` (TFLite `reference_integer_ops::Add`): each input's rescaled contribution depends on
//! its code alone, so it is tabulated once for all 256 codes; the output rescale runs per
//! element through [`crate::quant::AddRequant`].

use crate::model::{Model, Op};
use crate::quant::Requant;

pub struct Add {
    /// `rescale((q - Z_i) * 2^left_shift, m_i, s_i)` for `q = -128..=127`.
    tables: [Vec<i64>; 2],
    output: Requant,
}

impl Add {
    pub fn prepare(model: &Model, op: &Op) -> Add {
        let aq = model.add_requant(op).expect("add op");
        let table = |i: usize| (-128..=127).map(|q| aq.scaled_input(i, q as i8)).collect();
        Add {
            tables: [table(0), table(1)],
            output: aq.output,
        }
    }

    pub fn run(&self, a: &[i8], b: &[i8], y: &mut [i8]) {
        for ((y, &qa), &qb) in y.iter_mut().zip(a).zip(b) {
            // Validation proved |a_1 + a_2| fits i32.
            let sum = self.tables[0][(qa as i16 + 128) as usize]
                + self.tables[1][(qb as i16 + 128) as usize];
            *y = self.output.apply(sum as i32);
        }
    }
}
