//! `avg_pool2d` (TFLite AVERAGE_POOL_2D, `reference_integer_ops::AveragePool`): input and
//! output share (S, Z); `sum` of the raw codes over the valid taps, `n` their count (taps in
//! the padding are not counted), `y = clamp(quant::average(sum, n), lo, hi)`.

use super::super::json::Cursor;
use super::super::{Io, Op};
use super::{Kind, Window};
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct AvgPool2d {
    pub window: Window,
}

/// The checks both pools share: the window, (S, Z) unchanged, channels unchanged, no window
/// entirely in the padding.
pub(crate) fn check_pool(window: &Window, io: &Io) -> std::result::Result<(), String> {
    window.check(false)?;
    let (h, w, c) = super::input_hwc(io, 0)?;
    let (oh, ow) = window.out_hw(h, w)?;
    super::check_output_shape(io, &[oh, ow, c])?;
    super::check_same_qparams(io)?;
    window.check_every_window_valid(h, w)
}

impl Kind for AvgPool2d {
    const NAME: &'static str = "avg_pool2d";
    const INPUTS: usize = 1;

    fn parse(c: &Cursor, _io: &Io) -> Result<Self> {
        Ok(AvgPool2d {
            window: Window::parse(c, false)?,
        })
    }

    fn write_fields(&self, out: &mut String) {
        self.window.write_fields(out, false);
    }

    fn check(&self, io: &Io, _op: &Op) -> std::result::Result<(), String> {
        check_pool(&self.window, io)
    }
}
