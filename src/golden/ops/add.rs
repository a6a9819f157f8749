//! `add` (TFLite `reference_integer_ops::Add`): each input's rescaled contribution depends on
//! its code alone, so it is tabulated once for all 256 codes; the output rescale runs per
//! element through [`crate::quant::AddRequant`].

use crate::model::{Model, Op};
use crate::quant::RequantLanes;

pub struct Add {
    /// `rescale((q - Z_i) * 2^left_shift, m_i, s_i)` for `q = -128..=127`.
    tables: [Vec<i32>; 2],
    output: RequantLanes,
}

/// Lanes of the output requantizer: one vector's worth, repeated over the tensor.
const LANES: usize = 16;

impl Add {
    pub fn prepare(model: &Model, op: &Op) -> Add {
        let aq = model.add_requant(op).expect("add op");
        // Each |a_i| is at most the validated bound of their sum, so it fits i32.
        let table = |i: usize| {
            (-128..=127)
                .map(|q| aq.scaled_input(i, q as i8) as i32)
                .collect()
        };
        Add {
            tables: [table(0), table(1)],
            output: RequantLanes::uniform(aq.output, LANES),
        }
    }

    pub fn run(&self, a: &[i8], b: &[i8], y: &mut [i8], sums: &mut Vec<i32>) {
        sums.clear();
        // Validation proved |a_1 + a_2| fits i32.
        sums.extend(a.iter().zip(b).map(|(&qa, &qb)| {
            self.tables[0][(qa as i16 + 128) as usize] + self.tables[1][(qb as i16 + 128) as usize]
        }));
        self.output.apply(sums, y);
    }
}
