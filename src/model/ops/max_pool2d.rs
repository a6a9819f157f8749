//! `max_pool2d` (TFLite MAX_POOL_2D, `reference_integer_ops::MaxPool`): input and output share
//! (S, Z); `y = clamp(max of the raw codes over the valid taps, lo, hi)`.

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::{Kind, Window};
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct MaxPool2d {
    pub window: Window,
}

impl Kind for MaxPool2d {
    const NAME: &'static str = "max_pool2d";
    const INPUTS: usize = 1;

    fn parse(c: &Cursor, _io: &Io) -> Result<Self> {
        Ok(MaxPool2d {
            window: Window::parse(c, false)?,
        })
    }

    fn write_fields(&self, out: &mut String) {
        self.window.write_fields(out, false);
    }

    fn check(&self, io: &Io, _op: &Op) -> std::result::Result<(), String> {
        super::avg_pool2d::check_pool(&self.window, io)
    }
}
