//! `add` (TFLite ADD, `reference_integer_ops::Add` / `AddElementwise`, equal shapes, no
//! broadcast): three rescalers, `multiplier` `[m_1, m_2, m_out]`, `shift` `[s_1, s_2, s_out]`,
//! and `left_shift` (TFLite: 20). `a_i = rescale((q_i - Z_i) * 2^left_shift, m_i, s_i)`,
//! `y = clamp(rescale(a_1 + a_2, m_out, s_out) + Z_out, lo, hi)` ([`crate::quant::AddRequant`]).

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::Kind;
use crate::quant::{self, Dyadic};
use anyhow::Result;
use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub struct Add {
    /// `[m_1, m_2, m_out]`.
    pub multiplier: [u32; 3],
    /// `[s_1, s_2, s_out]`.
    pub shift: [u32; 3],
    pub left_shift: u32,
}

impl Add {
    /// Rescaler `i`: 0 and 1 the inputs, 2 the output.
    pub fn mult(&self, i: usize) -> Dyadic {
        Dyadic {
            m: self.multiplier[i],
            s: self.shift[i],
        }
    }
}

impl Kind for Add {
    const NAME: &'static str = "add";
    const INPUTS: usize = 2;

    fn parse(c: &Cursor, _io: &Io) -> Result<Self> {
        let m = c
            .field("multiplier")?
            .int_tensor(&[3], 0, u32::MAX as i64)?;
        let s = c
            .field("shift")?
            .int_tensor(&[3], 0, quant::MAX_SHIFT as i64)?;
        let left_shift = c
            .field("left_shift")?
            .int_in(0, quant::MAX_ADD_LEFT_SHIFT as i64)? as u32;
        Ok(Add {
            multiplier: [m[0] as u32, m[1] as u32, m[2] as u32],
            shift: [s[0] as u32, s[1] as u32, s[2] as u32],
            left_shift,
        })
    }

    fn write_fields(&self, out: &mut String) {
        let _ = write!(
            out,
            ", \"left_shift\": {}, \"multiplier\": {:?}, \"shift\": {:?}",
            self.left_shift, self.multiplier, self.shift
        );
    }

    fn check(&self, io: &Io, _op: &Op) -> std::result::Result<(), String> {
        let (a, b) = (io.inputs[0], io.inputs[1]);
        if a.shape != b.shape || a.shape != io.output.shape {
            return Err(format!(
                "inputs {:?} {:?} and {:?} {:?} and output {:?} {:?} must have equal shapes (no broadcast)",
                a.name, a.shape, b.name, b.shape, io.output.name, io.output.shape
            ));
        }
        if self.left_shift > quant::MAX_ADD_LEFT_SHIFT {
            return Err(format!(
                "left_shift = {} exceeds {} ((q - Z) * 2^left_shift must fit i32)",
                self.left_shift,
                quant::MAX_ADD_LEFT_SHIFT
            ));
        }
        Ok(())
    }

    fn set_dyadics(&mut self, ds: &[Dyadic]) {
        for (i, d) in ds.iter().enumerate().take(3) {
            self.multiplier[i] = d.m;
            self.shift[i] = d.s;
        }
    }

    fn dyadics(&self) -> Vec<Dyadic> {
        (0..3).map(|i| self.mult(i)).collect()
    }
}
