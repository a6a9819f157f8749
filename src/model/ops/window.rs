//! Sliding-window geometry shared by conv2d, depthwise_conv2d and the pools (TFLite's
//! `ComputeOutSize` with padding resolved to integers).

use super::super::json::Cursor;
use anyhow::Result;
use std::fmt::Write as _;

/// Largest kernel size, stride, dilation or padding a file may declare: far beyond any real
/// model, small enough that every product below stays exact.
pub const MAX_WINDOW_DIM: usize = 1 << 16;

/// Kernel, stride, dilation and explicit padding of a 2-D window over `[H, W, C]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// `[KH, KW]`.
    pub kernel: [usize; 2],
    /// `[SH, SW]`.
    pub stride: [usize; 2],
    /// `[DH, DW]`; pools always have `[1, 1]`.
    pub dilation: [usize; 2],
    /// `[top, bottom, left, right]`; taps there are skipped (the same as the code Z_x).
    pub padding: [usize; 4],
}

impl Window {
    /// Reads `kernel`, `stride`, `padding` and (when `dilated`) the optional `dilation`.
    pub fn parse(c: &Cursor, dilated: bool) -> Result<Window> {
        let pair = |field: &str, lo: i64| -> Result<[usize; 2]> {
            let v = c
                .field(field)?
                .int_tensor(&[2], lo, MAX_WINDOW_DIM as i64)?;
            Ok([v[0] as usize, v[1] as usize])
        };
        let kernel = pair("kernel", 1)?;
        let stride = pair("stride", 1)?;
        let dilation = match c.opt_field("dilation") {
            Some(d) if dilated => {
                let v = d.int_tensor(&[2], 1, MAX_WINDOW_DIM as i64)?;
                [v[0] as usize, v[1] as usize]
            }
            Some(d) => {
                let v = d.int_tensor(&[2], 1, 1)?;
                [v[0] as usize, v[1] as usize]
            }
            None => [1, 1],
        };
        let p = c
            .field("padding")?
            .int_tensor(&[4], 0, MAX_WINDOW_DIM as i64)?;
        Ok(Window {
            kernel,
            stride,
            dilation,
            padding: [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize],
        })
    }

    pub fn write_fields(&self, out: &mut String, dilated: bool) {
        let _ = write!(
            out,
            ", \"kernel\": [{}, {}], \"stride\": [{}, {}]",
            self.kernel[0], self.kernel[1], self.stride[0], self.stride[1]
        );
        if dilated {
            let _ = write!(
                out,
                ", \"dilation\": [{}, {}]",
                self.dilation[0], self.dilation[1]
            );
        }
        let p = self.padding;
        let _ = write!(
            out,
            ", \"padding\": [{}, {}, {}, {}]",
            p[0], p[1], p[2], p[3]
        );
    }

    /// Taps of one window: `KH * KW`.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Output size along one axis (0 = rows, 1 = columns):
    /// `(n + pad_lo + pad_hi - (K - 1) * D - 1) / S + 1`, or an error when the dilated kernel
    /// does not fit the padded input.
    pub fn out_len(&self, axis: usize, n: usize) -> std::result::Result<usize, String> {
        let (k, s, d) = (self.kernel[axis], self.stride[axis], self.dilation[axis]);
        let padded = n + self.padding[2 * axis] + self.padding[2 * axis + 1];
        let span = (k - 1) * d + 1;
        if padded < span {
            let what = if axis == 0 { "rows" } else { "columns" };
            return Err(format!(
                "kernel: the window spans {span} {what} but the padded input has {padded}"
            ));
        }
        Ok((padded - span) / s + 1)
    }

    /// `(OH, OW)` for an `H x W` input.
    pub fn out_hw(&self, h: usize, w: usize) -> std::result::Result<(usize, usize), String> {
        Ok((self.out_len(0, h)?, self.out_len(1, w)?))
    }

    /// Validity check of the fields themselves (for models built in code).
    pub fn check(&self, dilated: bool) -> std::result::Result<(), String> {
        let all = self
            .kernel
            .iter()
            .chain(&self.stride)
            .chain(&self.dilation)
            .chain(&self.padding);
        if all.clone().any(|&v| v > MAX_WINDOW_DIM) {
            return Err(format!(
                "kernel/stride/dilation/padding: a value exceeds {MAX_WINDOW_DIM}"
            ));
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err("kernel/stride/dilation: sizes must be positive".into());
        }
        if !dilated && self.dilation != [1, 1] {
            return Err(format!(
                "dilation = {:?}: this op has no dilation",
                self.dilation
            ));
        }
        Ok(())
    }

    /// The input rows (or columns) `[first, last)` of kernel taps that land inside the input
    /// for output position `o` along `axis`, as kernel indices `ky` with `iy = o*S - pad + ky*D`.
    pub fn valid_taps(&self, axis: usize, o: usize, n: usize) -> (usize, usize) {
        let (k, s, d) = (self.kernel[axis], self.stride[axis], self.dilation[axis]);
        let pad = self.padding[2 * axis];
        let start = (o * s) as isize - pad as isize;
        let mut first = k;
        let mut last = 0;
        for t in 0..k {
            let i = start + (t * d) as isize;
            if i >= 0 && (i as usize) < n {
                first = first.min(t);
                last = t + 1;
            }
        }
        if first >= last { (0, 0) } else { (first, last) }
    }

    /// Pools need at least one valid tap in every window (the average divides by the count).
    pub fn check_every_window_valid(&self, h: usize, w: usize) -> std::result::Result<(), String> {
        let (oh, ow) = self.out_hw(h, w)?;
        for (axis, (on, n)) in [(oh, h), (ow, w)].into_iter().enumerate() {
            for o in 0..on {
                let (a, b) = self.valid_taps(axis, o, n);
                if a >= b {
                    return Err(format!(
                        "padding: output {} {o} has a window entirely in the padding",
                        if axis == 0 { "row" } else { "column" }
                    ));
                }
            }
        }
        Ok(())
    }
}
