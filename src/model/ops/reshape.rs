//! `reshape` (TFLite RESHAPE, and the shape-only ops an importer folds into it): the same codes
//! in the same order under a new shape, same (S, Z), no activation.

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::Kind;
use crate::quant::Clamp;
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct Reshape;

impl Kind for Reshape {
    const NAME: &'static str = "reshape";
    const INPUTS: usize = 1;

    fn parse(_c: &Cursor, _io: &Io) -> Result<Self> {
        Ok(Reshape)
    }

    fn write_fields(&self, _out: &mut String) {}

    fn check(&self, io: &Io, op: &Op) -> std::result::Result<(), String> {
        if io.input().len() != io.output.len() {
            return Err(format!(
                "output {:?} {:?} has {} elements but input {:?} {:?} has {}",
                io.output.name,
                io.output.shape,
                io.output.len(),
                io.input().name,
                io.input().shape,
                io.input().len()
            ));
        }
        super::check_same_qparams(io)?;
        if op.clamp != Clamp::NONE {
            return Err(format!(
                "clamp = [{}, {}]: a reshape carries no activation",
                op.clamp.lo, op.clamp.hi
            ));
        }
        Ok(())
    }
}
