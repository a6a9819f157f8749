//! The static schedule of a streaming graph: which input elements a unit needs before it can
//! emit an element, and from that the depth of every residual-branch FIFO.
//!
//! Every unit consumes and produces its tensor in raster order (NHWC, channels fastest). For a
//! tensor `t` that descends from a branch point `F` (a tensor read by two paths that meet
//! again at an `add`):
//! - `need_t(e)`: elements of `F` that must have entered `t`'s path before element `e` of `t`
//!   can be emitted. `F` itself: `e + 1`. A sliding window (conv2d, depthwise, pools, also a
//!   1x1 convolution read directly) needs its input up to the last row and column its window
//!   at output pixel `p` covers inside the input, `min(H-1, oy*SH - PT + (KH-1)*DH) * W +
//!   min(W-1, ox*SW - PL + (KW-1)*DW) + 1` pixels (exactly `rf_window`'s `f_need`); a dense op
//!   needs all of its input; element-wise ops need what they emit (add: the larger of its two).
//! - `released_t(k)`: elements of `F` that `t`'s path has certainly taken from the branch
//!   point while element `k` of `t` waits: `k` for `F`; through a window, everything before
//!   the first word any later pixel reads (`rf_window`'s `f_base`) plus its buffer, capped at
//!   the whole tensor; through a dense op, the whole input.
//!
//! An `add` fires only when both operands are present, so while the longer path A works
//! towards its element `e`, the shorter path B must hold everything the branch point handed
//! it beyond what B has released. The FIFO placed on B right after the branch point's
//! `rf_fork` therefore needs
//!
//! ```text
//! D = max over elements e of ceil((need_A(e) - released_B(e)) / L) - 1     beats
//! ```
//!
//! of `L` elements (the fork's lanes); the `- 1` is the beat the fork itself holds. With an
//! identity skip (B is the branch point itself) this is exact: one beat less deadlocks
//! (`rtl/lib/README.md`: 8x8x4 with two 3x3 convolutions, D = 37 passes, 36 deadlocks). With
//! windows on B, `released_B` is a lower bound and D is sufficient.
//!
//! The minimum depth is not the full-rate depth: A's windows take input up to their buffers
//! ahead of what they need, and a fork that B's full FIFO stalls also stalls A. The generated
//! FIFO is `max(D, R) + C/L + 2` beats with `R = max_e ceil((released_A(e) - released_B(e)) /
//! L)`, the lead A's buffers allow, plus about one pixel; the manifest gives D and the depth.

use crate::model::{Model, OpKind, TensorId, Window};
use std::collections::HashMap;

/// Sizes of an `rf_window` instance, computed exactly as the module computes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowGeom {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub simd: usize,
    pub win: Window,
    /// `BUF_EXTRA`, or -1 for the module's default (SH rows).
    pub buf_extra: i64,
}

fn ubits(v: u64) -> u32 {
    64 - v.leading_zeros()
}

impl WindowGeom {
    pub fn cf(&self) -> usize {
        self.c / self.simd
    }

    /// Words per frame.
    pub fn n(&self) -> u64 {
        (self.h * self.w * self.cf()) as u64
    }

    /// The least buffer that can never deadlock (the module's `MIN_WORDS`).
    pub fn min_words(&self) -> u64 {
        let Window {
            kernel: [kh, kw],
            stride: [sh, _],
            dilation: [dh, dw],
            padding: [pt, ..],
        } = self.win;
        let cf = self.cf() as u64;
        let span = (((kh - 1) * dh * self.w + (kw - 1) * dw + 1) as u64) * cf;
        let rows = (((kh - 1) * dh + 1) * self.w) as u64 * cf;
        if pt >= sh { span.max(rows) } else { span }
    }

    /// `BUF_WORDS`: the next power of two at least `MIN_WORDS + EXTRA`.
    pub fn buf_words(&self) -> u64 {
        let extra = if self.buf_extra < 0 {
            (self.win.stride[0] * self.w * self.cf()) as u64
        } else {
            self.buf_extra as u64
        };
        let aw = ubits((self.min_words() + extra).saturating_sub(1)).max(1);
        1u64 << aw
    }

    /// Buffer bits (SIMD bytes per word).
    pub fn buf_bits(&self) -> u64 {
        self.buf_words() * self.simd as u64 * 8
    }

    /// Bits of the module's signed index arithmetic (`IW`); it refuses anything above 32.
    pub fn index_bits(&self) -> u32 {
        let Window {
            kernel: [kh, kw],
            stride: [sh, sw],
            dilation: [dh, dw],
            padding: [pt, pb, pl, pr],
        } = self.win;
        let bound = ((self.h + pt + pb + kh * dh + sh) as u64)
            * ((self.w + pl + pr + kw * dw + sw) as u64)
            * self.cf() as u64
            + self.n()
            + self.buf_words();
        ubits(bound) + 1
    }
}

/// Root tensor of every tensor: reshape outputs are their input's codes in the same order, so
/// they share its stream.
pub fn roots(model: &Model) -> Vec<TensorId> {
    let mut root: Vec<TensorId> = (0..model.tensors.len()).collect();
    for op in &model.ops {
        if let OpKind::Reshape(_) = op.kind {
            root[op.output] = root[op.inputs[0]];
        }
    }
    root
}

/// The window an op slides over its input (`None` for dense, add, reshape): its own, or a
/// 1x1 stride-1 one for a convolution that reads the pixel stream directly.
fn op_window(kind: &OpKind) -> Option<Window> {
    match kind {
        OpKind::Conv2d(k) => Some(k.window),
        OpKind::DepthwiseConv2d(k) => Some(k.window),
        OpKind::AvgPool2d(k) => Some(k.window),
        OpKind::MaxPool2d(k) => Some(k.window),
        _ => None,
    }
}

/// `[H, W, C]` (rank-1: one pixel).
fn hwc(shape: &[usize]) -> (usize, usize, usize) {
    super::folding::hwc(shape)
}

/// Input pixels (raster prefix) a window needs before output pixel `(oy, ox)`.
fn need_pixels(win: &Window, h: usize, w: usize, oy: usize, ox: usize) -> u64 {
    let ly = (oy * win.stride[0]) as i64 - win.padding[0] as i64
        + ((win.kernel[0] - 1) * win.dilation[0]) as i64;
    let lx = (ox * win.stride[1]) as i64 - win.padding[2] as i64
        + ((win.kernel[1] - 1) * win.dilation[1]) as i64;
    let rm = ly.min(h as i64 - 1);
    let cm = lx.min(w as i64 - 1);
    (rm * w as i64 + cm + 1).max(0) as u64
}

/// Input pixels before the first one output pixel `(oy, ox)` or any later pixel reads
/// (`rf_window`'s `f_base`).
fn base_pixels(win: &Window, h: usize, w: usize, oy: usize, ox: usize) -> u64 {
    let y0 = (oy * win.stride[0]) as i64 - win.padding[0] as i64;
    let yn = y0 + win.stride[0] as i64;
    let x0 = (ox * win.stride[1]) as i64 - win.padding[2] as i64;
    let r0 = y0.clamp(0, h as i64);
    let r0n = yn.clamp(0, h as i64);
    let c0 = x0.clamp(0, w as i64);
    if r0 == h as i64 {
        return (h * w) as u64;
    }
    (r0 * w as i64 + if r0n != r0 { c0 } else { 0 }) as u64
}

/// `need_t` for every root tensor descending from `f` (element-indexed).
pub fn needs(model: &Model, root: &[TensorId], f: TensorId) -> HashMap<TensorId, Vec<u64>> {
    let mut m: HashMap<TensorId, Vec<u64>> = HashMap::new();
    let nf = model.tensors[f].len() as u64;
    m.insert(f, (1..=nf).collect());
    for op in &model.ops {
        if matches!(op.kind, OpKind::Reshape(_)) {
            continue;
        }
        let ins: Vec<TensorId> = op.inputs.iter().map(|&t| root[t]).collect();
        if !ins.iter().any(|t| m.contains_key(t)) || m.contains_key(&root[op.output]) {
            continue;
        }
        let io = model.io(op);
        let out_len = io.output.len();
        let v: Vec<u64> = match (&op.kind, op_window(&op.kind)) {
            (OpKind::Add(_), _) => (0..out_len)
                .map(|e| {
                    ins.iter()
                        .filter_map(|t| m.get(t).map(|n| n[e]))
                        .max()
                        .unwrap_or(0)
                })
                .collect(),
            (_, Some(win)) => {
                let x = &m[&ins[0]];
                let (h, w, c) = hwc(&io.input().shape);
                let (oh, ow, oc) = hwc(&io.output.shape);
                let mut v = Vec::with_capacity(out_len);
                let mut run = 0u64;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let px = need_pixels(&win, h, w, oy, ox);
                        let need = if px == 0 {
                            0
                        } else {
                            x[(px as usize * c).min(x.len()) - 1]
                        };
                        run = run.max(need);
                        v.extend(std::iter::repeat_n(run, oc));
                    }
                }
                v
            }
            // Dense (and anything else): the whole input first.
            _ => vec![*m[&ins[0]].last().unwrap_or(&0); out_len],
        };
        m.insert(root[op.output], v);
    }
    m
}

/// `released_t(k)` for `k` in `0..=len(t)` for every root tensor descending from `f`;
/// `buf_elems(op)` is the input elements op's window buffers (0 without a window).
pub fn released(
    model: &Model,
    root: &[TensorId],
    f: TensorId,
    buf_elems: &dyn Fn(usize) -> u64,
) -> HashMap<TensorId, Vec<u64>> {
    let mut m: HashMap<TensorId, Vec<u64>> = HashMap::new();
    let nf = model.tensors[f].len() as u64;
    m.insert(f, (0..=nf).collect());
    for (i, op) in model.ops.iter().enumerate() {
        if matches!(op.kind, OpKind::Reshape(_)) {
            continue;
        }
        let ins: Vec<TensorId> = op.inputs.iter().map(|&t| root[t]).collect();
        if !ins.iter().any(|t| m.contains_key(t)) || m.contains_key(&root[op.output]) {
            continue;
        }
        let io = model.io(op);
        let out_len = io.output.len();
        let v: Vec<u64> = match (&op.kind, op_window(&op.kind)) {
            (OpKind::Add(_), _) => (0..=out_len)
                .map(|k| {
                    ins.iter()
                        .filter_map(|t| m.get(t).map(|r| r[k]))
                        .min()
                        .unwrap_or(0)
                })
                .collect(),
            (_, Some(win)) => {
                let x = &m[&ins[0]];
                let nx = (x.len() - 1) as u64;
                let (h, w, c) = hwc(&io.input().shape);
                let (_, ow, oc) = hwc(&io.output.shape);
                let buf = buf_elems(i);
                (0..=out_len)
                    .map(|k| {
                        if k == out_len {
                            return x[nx as usize];
                        }
                        let p = k / oc;
                        let (oy, ox) = (p / ow, p % ow);
                        let taken = (base_pixels(&win, h, w, oy, ox) * c as u64 + buf).min(nx);
                        x[taken as usize]
                    })
                    .collect()
            }
            _ => {
                let x = &m[&ins[0]];
                vec![x[x.len() - 1]; out_len + 1]
            }
        };
        m.insert(root[op.output], v);
    }
    m
}

/// The skip FIFO of one `add`: where it goes and how deep it must be.
#[derive(Clone, Debug, PartialEq)]
pub struct SkipFifo {
    /// The add op.
    pub add: usize,
    /// The branch point (root tensor).
    pub fork: TensorId,
    /// Which input of the add is the short path B (0 or 1).
    pub short_input: usize,
    /// The op and input slot on B that reads the branch point (the add itself for an
    /// identity skip); `None`: B is not a single chain from the branch point, the FIFO then
    /// sits at the add's input and holds a whole tensor.
    pub consumer: Option<(usize, usize)>,
    /// The formula's minimum D, in beats of `lanes` elements.
    pub min_depth: u64,
    /// The depth at which the fork never stalls the long path A: the lead A's window buffers
    /// allow over B (beats).
    pub rate_depth: u64,
    /// Lanes of the FIFO's stream.
    pub lanes: usize,
    /// Whether D is exact (identity skip: nothing but the FIFO holds B's elements).
    pub exact: bool,
}

/// Nearest common ancestor (root tensor) of two tensors: the latest-produced tensor both
/// descend from.
fn common_ancestor(model: &Model, root: &[TensorId], a: TensorId, b: TensorId) -> TensorId {
    let producer = |t: TensorId| model.ops.iter().position(|op| root[op.output] == t);
    let ancestors = |t: TensorId| {
        let mut seen = vec![false; model.tensors.len()];
        let mut stack = vec![root[t]];
        while let Some(x) = stack.pop() {
            if seen[x] {
                continue;
            }
            seen[x] = true;
            if let Some(p) = producer(x) {
                stack.extend(model.ops[p].inputs.iter().map(|&i| root[i]));
            }
        }
        seen
    };
    let (sa, sb) = (ancestors(a), ancestors(b));
    // Latest in topological order: the graph input first (-1), then by producer index.
    (0..model.tensors.len())
        .filter(|&t| sa[t] && sb[t] && root[t] == t)
        .max_by_key(|&t| producer(t).map_or(-1, |p| p as i64))
        .unwrap_or(root[model.inputs[0]])
}

/// The skip FIFO of every add. `lanes_of(t)` gives the lanes of root tensor `t`'s stream,
/// `buf_elems(op)` the input elements op's window buffers.
pub fn skip_fifos(
    model: &Model,
    root: &[TensorId],
    lanes_of: &dyn Fn(TensorId) -> usize,
    buf_elems: &dyn Fn(usize) -> u64,
) -> Vec<SkipFifo> {
    let mut out = Vec::new();
    for (i, op) in model.ops.iter().enumerate() {
        if !matches!(op.kind, OpKind::Add(_)) {
            continue;
        }
        let (a0, a1) = (root[op.inputs[0]], root[op.inputs[1]]);
        let f = common_ancestor(model, root, a0, a1);
        let need = needs(model, root, f);
        let rel = released(model, root, f, buf_elems);
        let lanes = lanes_of(f);
        let depth = |b: usize| -> u64 {
            let (long, short) = if b == 0 { (a1, a0) } else { (a0, a1) };
            let (Some(n), Some(r)) = (need.get(&long), rel.get(&short)) else {
                return u64::MAX;
            };
            let worst = n
                .iter()
                .enumerate()
                .map(|(e, &x)| x.saturating_sub(r[e]))
                .max()
                .unwrap_or(0);
            worst.div_ceil(lanes as u64).saturating_sub(1)
        };
        // B is the path that needs less of the branch point to produce its elements: it is the
        // one whose elements wait at the add for A's.
        let lag = |t: TensorId| -> u128 {
            need.get(&t)
                .map_or(u128::MAX, |v| v.iter().map(|&x| x as u128).sum())
        };
        let short_input = if lag(a0) <= lag(a1) { 0 } else { 1 };
        let short = if short_input == 0 { a0 } else { a1 };
        let min_depth = depth(short_input);
        // Full rate: A's windows may run ahead of their needs by their buffers (A's released
        // elements), and the fork must not stall them, so B also holds that lead.
        let long = if short_input == 0 { a1 } else { a0 };
        let rate_depth = match (rel.get(&long), rel.get(&short)) {
            (Some(ra), Some(rb)) => ra
                .iter()
                .zip(rb)
                .map(|(&x, &y)| x.saturating_sub(y))
                .max()
                .unwrap_or(0)
                .div_ceil(lanes as u64),
            _ => 0,
        };
        // Walk B back to the op that reads the branch point.
        let mut consumer = None;
        if short == f {
            consumer = Some((i, short_input));
        } else {
            let mut t = short;
            while let Some(p) = model.ops.iter().position(|o| root[o.output] == t) {
                let pins: Vec<TensorId> = model.ops[p].inputs.iter().map(|&x| root[x]).collect();
                if let Some(slot) = pins.iter().position(|&x| x == f) {
                    consumer = Some((p, slot));
                    break;
                }
                if pins.len() != 1 {
                    break;
                }
                t = pins[0];
            }
        }
        out.push(SkipFifo {
            add: i,
            fork: f,
            short_input,
            consumer,
            min_depth: if min_depth == u64::MAX { 0 } else { min_depth },
            rate_depth,
            lanes,
            exact: short == f,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_needs_match_the_library() {
        // 3x3 pad 1 over 8x8: pixel (0, 0) needs rows 0-1, columns 0-1: 8 + 1 + 1 pixels.
        let win = Window {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: [1, 1, 1, 1],
        };
        assert_eq!(need_pixels(&win, 8, 8, 0, 0), 10);
        assert_eq!(need_pixels(&win, 8, 8, 7, 7), 64);
        assert_eq!(base_pixels(&win, 8, 8, 0, 0), 0);
        assert_eq!(base_pixels(&win, 8, 8, 3, 2), 2 * 8 + 1);
        // The library's buffer for ResNet's 32x32x16 3x3 window at SIMD 16: with PT >= SH the
        // first row is re-read, so 3 whole rows (96 words), plus one row, next power of two.
        let g = WindowGeom {
            h: 32,
            w: 32,
            c: 16,
            simd: 16,
            win,
            buf_extra: -1,
        };
        assert_eq!(g.min_words(), 96);
        assert_eq!(g.buf_words(), 128);
    }
}
