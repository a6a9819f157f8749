//! Folding: how much hardware each op gets, in FINN's terms.
//!
//! - `simd`: input elements per cycle (conv2d and dense: of the dot product, dividing the input
//!   channels C of a convolution or the input length N of a dense op; depthwise and pools:
//!   channels per beat, dividing C; add: elements per beat, dividing C);
//! - `pe`: output channels computed in parallel (conv2d and dense, dividing O);
//! - `rq`: requantizer lanes of an accumulating op (dividing its MAC lanes), sized by default
//!   to the MAC's output rate, since rescalers are the costly part in gates and in simulation.
//!
//! An op's busy cycles per inference follow from its folding (`op_cycles`, the figures of
//! `rtl/lib/README.md`); the design's interval is the largest busy count of any unit. A
//! folding comes from a `--folding FILE.json` (format below), from `--target-cycles N` (every
//! op gets the cheapest folding that keeps it within N cycles), from `--parallel P` (version 1
//! style: P output channels per accumulating op), or from the default rule: N is the smallest
//! interval every op can reach with at most [`MAX_MACS`] multipliers per op (the input and
//! output streams' beats included), then as for `--target-cycles`.
//!
//! Folding file (`ratflow.folding`, version 1; `ratflow rtl` writes the resolved one as
//! `folding.json`, which reads back unchanged):
//! ```json
//! { "format": "ratflow.folding", "version": 1, "target_cycles": 5000,
//!   "ops": { "conv1": { "simd": 1, "pe": 64, "rq": 2 }, "#4": { "simd": 16 } } }
//! ```
//! Keys of `ops` are op names or `#<index>`; fields missing from an entry and ops missing
//! from the file are chosen by the rule at `target_cycles` (or the default rule). `PE` and
//! `SIMD` (FINN's spelling) are accepted too; `kind` and `cycles` are informational.

use super::Parallel;
use crate::error::input;
use crate::model::{Model, Op, OpKind, Window};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::path::Path;

/// Multipliers per op (PE x SIMD, or SIMD x DM) under the default rule.
pub const MAX_MACS: usize = 128;
/// Pool channels per beat under the default rule.
pub const MAX_POOL_SIMD: usize = 64;
/// Add lanes (three rescalers each) under the default rule.
pub const MAX_ADD_LANES: usize = 16;

/// The folding of one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fold {
    pub simd: usize,
    pub pe: usize,
    /// Requantizer lanes (accumulating ops; 0 otherwise).
    pub rq: usize,
}

/// What folding needs to know of an op: its kind and sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Geom {
    /// `needs_window`: false for a 1x1, stride-1, unpadded convolution, which reads the pixel
    /// stream directly.
    Conv {
        h: usize,
        w: usize,
        c: usize,
        oh: usize,
        ow: usize,
        o: usize,
        win: Window,
        needs_window: bool,
    },
    Dense {
        n: usize,
        o: usize,
    },
    Depthwise {
        h: usize,
        w: usize,
        c: usize,
        dm: usize,
        oh: usize,
        ow: usize,
        win: Window,
    },
    Pool {
        h: usize,
        w: usize,
        c: usize,
        oh: usize,
        ow: usize,
        win: Window,
        avg: bool,
    },
    /// `c`: elements per pixel (a rank-1 tensor is one pixel).
    Add {
        elems: usize,
        c: usize,
    },
    Reshape,
}

/// `[H, W, C]` of a tensor; a rank-1 `[N]` is one pixel of N channels.
pub fn hwc(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [h, w, c] => (*h, *w, *c),
        [n] => (1, 1, *n),
        _ => (1, 1, shape.iter().product()),
    }
}

impl Geom {
    pub fn of(model: &Model, op: &Op) -> Geom {
        let io = model.io(op);
        let (h, w, c) = hwc(&io.input().shape);
        let (oh, ow, oc) = hwc(&io.output.shape);
        match &op.kind {
            OpKind::Conv2d(k) => Geom::Conv {
                h,
                w,
                c,
                oh,
                ow,
                o: k.out_channels,
                win: k.window,
                needs_window: k.window.kernel != [1, 1]
                    || k.window.stride != [1, 1]
                    || k.window.padding != [0; 4],
            },
            OpKind::Dense(d) => Geom::Dense {
                n: d.in_features,
                o: d.out_features,
            },
            OpKind::DepthwiseConv2d(d) => Geom::Depthwise {
                h,
                w,
                c,
                dm: d.depth_multiplier,
                oh,
                ow,
                win: d.window,
            },
            OpKind::AvgPool2d(p) => Geom::Pool {
                h,
                w,
                c,
                oh,
                ow,
                win: p.window,
                avg: true,
            },
            OpKind::MaxPool2d(p) => Geom::Pool {
                h,
                w,
                c,
                oh,
                ow,
                win: p.window,
                avg: false,
            },
            OpKind::Add(_) => Geom::Add {
                elems: io.output.len(),
                c: oc,
            },
            OpKind::Reshape(_) => Geom::Reshape,
        }
    }

    /// The sizes `simd` must divide and `pe` must divide (0: no such knob).
    fn dims(&self) -> (usize, usize) {
        match *self {
            Geom::Conv { c, o, .. } => (c, o),
            Geom::Dense { n, o } => (n, o),
            Geom::Depthwise { c, .. } | Geom::Pool { c, .. } | Geom::Add { c, .. } => (c, 0),
            Geom::Reshape => (0, 0),
        }
    }

    /// Busy cycles per inference at `simd` x `pe` (README.md of the library: windows read
    /// `H*W*C/SIMD` beats and emit `OH*OW*KH*KW*C/SIMD`; a MAC takes `SF*NF` cycles per
    /// vector; pools and the depthwise engine `KH*KW` per channel group; add one per beat).
    pub fn cycles(&self, simd: usize, pe: usize) -> u64 {
        let u = |x: usize| x as u64;
        match *self {
            Geom::Conv {
                h,
                w,
                c,
                oh,
                ow,
                o,
                win,
                ..
            } => {
                let k = win.taps() * c;
                u(h * w * c / simd).max(u(oh * ow) * u(k / simd) * u(o / pe))
            }
            Geom::Dense { n, o } => u(n / simd) * u(o / pe),
            Geom::Depthwise {
                h,
                w,
                c,
                oh,
                ow,
                win,
                ..
            }
            | Geom::Pool {
                h,
                w,
                c,
                oh,
                ow,
                win,
                ..
            } => u(h * w * c / simd).max(u(oh * ow * win.taps()) * u(c / simd)),
            Geom::Add { elems, .. } => u(elems / simd),
            Geom::Reshape => 0,
        }
    }

    /// Multipliers (or lanes) a folding costs, the quantity the rules minimize.
    fn cost(&self, simd: usize, pe: usize) -> usize {
        match *self {
            Geom::Conv { .. } | Geom::Dense { .. } => simd * pe,
            Geom::Depthwise { dm, .. } => simd * dm,
            Geom::Pool { .. } => simd,
            Geom::Add { .. } => 3 * simd,
            Geom::Reshape => 0,
        }
    }

    fn cap(&self, simd: usize, pe: usize) -> bool {
        match *self {
            Geom::Pool { .. } => simd <= MAX_POOL_SIMD,
            Geom::Add { .. } => simd <= MAX_ADD_LANES,
            _ => self.cost(simd, pe) <= MAX_MACS,
        }
    }

    /// Every legal `(simd, pe)` (pe = 1 for kinds without the knob).
    fn choices(&self) -> Vec<(usize, usize)> {
        let (s, p) = self.dims();
        if s == 0 {
            return vec![(1, 1)];
        }
        let pes = if p == 0 { vec![1] } else { divisors(p) };
        divisors(s)
            .into_iter()
            .flat_map(|a| pes.iter().map(move |&b| (a, b)))
            .collect()
    }

    /// MAC output lanes and cycles between their beats (accumulating ops).
    fn mac_rate(&self, simd: usize, pe: usize) -> Option<(usize, usize)> {
        match *self {
            Geom::Conv { c, win, .. } => Some((pe, win.taps() * c / simd)),
            Geom::Dense { n, .. } => Some((pe, n / simd)),
            Geom::Depthwise { dm, win, .. } => Some((simd * dm, win.taps())),
            _ => None,
        }
    }

    /// The requantizer lanes that keep up with the MAC: the smallest divisor of its lanes that
    /// is at least lanes / (cycles between beats).
    pub fn default_rq(&self, simd: usize, pe: usize) -> usize {
        match self.mac_rate(simd, pe) {
            Some((lanes, gap)) => {
                let need = lanes.div_ceil(gap.max(1));
                divisors(lanes)
                    .into_iter()
                    .find(|&d| d >= need)
                    .unwrap_or(lanes)
            }
            None => 0,
        }
    }

    pub fn is_accumulating(&self) -> bool {
        matches!(
            self,
            Geom::Conv { .. } | Geom::Dense { .. } | Geom::Depthwise { .. }
        )
    }

    /// The fewest cycles this op can reach, within the default caps or without them.
    fn min_cycles(&self, capped: bool) -> u64 {
        self.choices()
            .into_iter()
            .filter(|&(s, p)| !capped || self.cap(s, p))
            .map(|(s, p)| self.cycles(s, p))
            .min()
            .unwrap_or(0)
    }

    /// The cheapest folding within `target` cycles, with `simd`/`pe` pinned where given. Ties
    /// go to the most balanced split (the smaller of `simd / pe` and `pe / simd` largest), then
    /// more SIMD, then fewer cycles: at equal multipliers a balanced MAC has narrower input
    /// streams and fewer accumulators than a wide-SIMD one (which also simulates about 15%
    /// slower: DS-CNN's pointwise layers at 16 x 8 against 64 x 2).
    fn cheapest(
        &self,
        target: u64,
        simd: Option<usize>,
        pe: Option<usize>,
    ) -> Option<(usize, usize)> {
        self.choices()
            .into_iter()
            .filter(|&(s, p)| simd.is_none_or(|x| x == s) && pe.is_none_or(|x| x == p))
            .filter(|&(s, p)| self.cycles(s, p) <= target)
            .min_by_key(|&(s, p)| {
                let imbalance = (s.max(p) as u64 * 1024) / s.min(p).max(1) as u64;
                (
                    self.cost(s, p),
                    imbalance,
                    usize::MAX - s,
                    self.cycles(s, p),
                )
            })
    }
}

/// Divisors of `n` in increasing order.
pub fn divisors(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=n.isqrt()).filter(|d| n.is_multiple_of(*d)).collect();
    let big: Vec<usize> = v
        .iter()
        .rev()
        .map(|d| n / d)
        .filter(|&q| q * q != n)
        .collect();
    v.extend(big);
    v
}

/// One entry of a folding file: any of the knobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub simd: Option<usize>,
    pub pe: Option<usize>,
    pub rq: Option<usize>,
}

/// A folding file: per-op entries by op index, and the cycle target for the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoldingFile {
    pub target_cycles: Option<u64>,
    /// `(key as written, entry)`; keys resolve against a model in [`resolve`].
    pub ops: Vec<(String, Entry)>,
    /// Where it came from, for messages.
    pub source: String,
}

impl FoldingFile {
    pub fn load(path: &Path) -> Result<FoldingFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| input(format!("cannot read folding {}: {e}", path.display())))?;
        FoldingFile::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<FoldingFile> {
        let bad = |msg: String| input(format!("{source}: {msg}"));
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let o = v
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        if o.get("format").and_then(Value::as_str) != Some("ratflow.folding") {
            return Err(bad("format must be \"ratflow.folding\"".into()));
        }
        if o.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(bad("version must be 1".into()));
        }
        for k in o.keys() {
            if ![
                "format",
                "version",
                "target_cycles",
                "ops",
                "model",
                "interval",
            ]
            .contains(&k.as_str())
            {
                return Err(bad(format!("unknown field {k:?}")));
            }
        }
        let target_cycles = match o.get("target_cycles") {
            None | Some(Value::Null) => None,
            Some(t) => Some(
                t.as_u64()
                    .filter(|&t| t > 0)
                    .ok_or_else(|| bad("target_cycles must be a positive integer".into()))?,
            ),
        };
        let mut ops = Vec::new();
        if let Some(map) = o.get("ops") {
            let map = map
                .as_object()
                .ok_or_else(|| bad("ops must be an object keyed by op name".into()))?;
            for (key, e) in map {
                let e = e
                    .as_object()
                    .ok_or_else(|| bad(format!("ops[{key:?}] must be an object")))?;
                let mut entry = Entry::default();
                for (f, v) in e {
                    let slot = match f.as_str() {
                        "simd" | "SIMD" => &mut entry.simd,
                        "pe" | "PE" => &mut entry.pe,
                        "rq" | "RQ" => &mut entry.rq,
                        "kind" | "cycles" => continue,
                        _ => return Err(bad(format!("ops[{key:?}].{f}: unknown field"))),
                    };
                    let n = v
                        .as_u64()
                        .filter(|n| (1..=1 << 20).contains(n))
                        .ok_or_else(|| {
                            bad(format!("ops[{key:?}].{f} must be a positive integer"))
                        })?;
                    *slot = Some(n as usize);
                }
                ops.push((key.clone(), entry));
            }
        }
        Ok(FoldingFile {
            target_cycles,
            ops,
            source: source.to_string(),
        })
    }
}

/// Where a design's folding comes from (`ratflow rtl` options).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Spec {
    /// The default rule.
    #[default]
    Default,
    TargetCycles(u64),
    Parallel(Parallel),
    File(FoldingFile),
}

/// A resolved folding: one per op (reshape ops have `simd = pe = 1`, `rq = 0`), and the cycle
/// target the rule used.
#[derive(Clone, Debug, PartialEq)]
pub struct Folding {
    pub folds: Vec<Fold>,
    pub target: u64,
    /// How it was chosen, for the manifest: `default`, `target-cycles`, `parallel`, `file`.
    pub rule: &'static str,
}

fn op_label(i: usize, op: &Op) -> String {
    format!("ops[{i}] {:?} ({})", op.name, op.kind.name())
}

/// Resolves `spec` for `model`; errors name the op and the knob.
pub fn resolve(model: &Model, spec: &Spec) -> Result<Folding> {
    let geoms: Vec<Geom> = model.ops.iter().map(|op| Geom::of(model, op)).collect();
    let io_beats = model.input_len().max(model.num_classes()) as u64;
    let default_target = || {
        geoms
            .iter()
            .map(|g| g.min_cycles(true))
            .max()
            .unwrap_or(0)
            .max(io_beats)
    };
    let mut entries: Vec<Entry> = vec![Entry::default(); model.ops.len()];
    let (target, rule) = match spec {
        Spec::Default => (default_target(), "default"),
        Spec::TargetCycles(t) => (*t, "target-cycles"),
        Spec::Parallel(p) => {
            let acc: Vec<usize> = (0..model.ops.len())
                .filter(|&i| matches!(geoms[i], Geom::Conv { .. } | Geom::Dense { .. }))
                .collect();
            let ps: Vec<usize> = match p {
                Parallel::Each(n) => vec![*n; acc.len()],
                Parallel::Full => acc.iter().map(|&i| geoms[i].dims().1).collect(),
                Parallel::PerLayer(v) => {
                    if v.len() != acc.len() {
                        return Err(input(format!(
                            "--parallel lists {} values but the model has {} dense/conv2d ops",
                            v.len(),
                            acc.len()
                        )));
                    }
                    v.clone()
                }
            };
            let strict = matches!(p, Parallel::PerLayer(_));
            let mut t = io_beats;
            for (&i, &p) in acc.iter().zip(&ps) {
                let o = geoms[i].dims().1;
                if strict && p > o {
                    return Err(input(format!(
                        "--parallel: {} has {o} output channels, so P = {p} is too large",
                        op_label(i, &model.ops[i])
                    )));
                }
                // The largest divisor of O not above P (the MAC engine needs PE | O).
                let pe = divisors(o)
                    .into_iter()
                    .filter(|&d| d <= p)
                    .max()
                    .unwrap_or(1);
                entries[i] = Entry {
                    simd: Some(1),
                    pe: Some(pe),
                    rq: None,
                };
                t = t.max(geoms[i].cycles(1, pe));
            }
            (t, "parallel")
        }
        Spec::File(f) => {
            for (key, e) in &f.ops {
                let i = op_index(model, key).ok_or_else(|| {
                    input(format!(
                        "{}: ops[{key:?}] names no op of model {} (use an op name or #<index>)",
                        f.source, model.name
                    ))
                })?;
                entries[i] = e.clone();
            }
            (f.target_cycles.unwrap_or_else(default_target), "file")
        }
    };
    let mut folds = Vec::with_capacity(model.ops.len());
    for (i, (g, e)) in geoms.iter().zip(&entries).enumerate() {
        let op = &model.ops[i];
        let here = || op_label(i, op);
        let (sdim, pdim) = g.dims();
        if let Some(s) = e.simd
            && (sdim == 0 || sdim % s != 0)
        {
            return Err(input(format!(
                "folding: {}: simd = {s} must divide {sdim} ({})",
                here(),
                match g {
                    Geom::Dense { .. } => "the input length",
                    Geom::Reshape => "a reshape has no folding",
                    _ => "the input channels",
                }
            )));
        }
        if let Some(p) = e.pe {
            let ok = match g {
                Geom::Depthwise { dm, .. } => p == *dm,
                _ => pdim != 0 && pdim % p == 0,
            };
            if !ok {
                return Err(input(format!(
                    "folding: {}: pe = {p} must divide the {} output channels{}",
                    here(),
                    pdim,
                    if matches!(g, Geom::Depthwise { .. }) {
                        " (depthwise: pe is the depth multiplier)"
                    } else {
                        ""
                    }
                )));
            }
        }
        let (simd, pe) = match g.cheapest(target, e.simd, e.pe.filter(|_| pdim != 0)) {
            Some(sp) => sp,
            None if e.simd.is_some() || e.pe.is_some() => {
                // Pinned knobs win over the target: the user asked for them.
                let s = e.simd.unwrap_or(1);
                let p = if pdim == 0 { 1 } else { e.pe.unwrap_or(pdim) };
                (s, p)
            }
            None => {
                return Err(input(format!(
                    "folding: {} cannot reach {target} cycles per inference: its fastest folding takes {}",
                    here(),
                    g.min_cycles(false)
                )));
            }
        };
        let rq = match (g.is_accumulating(), e.rq) {
            (false, Some(r)) => {
                return Err(input(format!(
                    "folding: {}: rq applies to dense, conv2d and depthwise_conv2d only (got {r})",
                    here()
                )));
            }
            (false, None) => 0,
            (true, None) => g.default_rq(simd, pe),
            (true, Some(r)) => {
                let (lanes, _) = g.mac_rate(simd, pe).expect("accumulating");
                if lanes % r != 0 {
                    return Err(input(format!(
                        "folding: {}: rq = {r} must divide the MAC's {lanes} output lanes",
                        here()
                    )));
                }
                r
            }
        };
        folds.push(Fold { simd, pe, rq });
    }
    Ok(Folding {
        folds,
        target,
        rule,
    })
}

/// The op a folding-file key names: `#<index>` or a name.
fn op_index(model: &Model, key: &str) -> Option<usize> {
    if let Some(i) = key.strip_prefix('#').and_then(|s| s.parse::<usize>().ok()) {
        return (i < model.ops.len()).then_some(i);
    }
    model.ops.iter().position(|op| op.name == key)
}

/// The folding as a `ratflow.folding` document (what `folding.json` holds).
pub fn to_json(model: &Model, f: &Folding, interval: u64) -> Value {
    let mut ops = Map::new();
    for (i, (op, fold)) in model.ops.iter().zip(&f.folds).enumerate() {
        let g = Geom::of(model, op);
        if matches!(g, Geom::Reshape) {
            continue;
        }
        // Names repeat only in version 1 files; index keys keep those unambiguous.
        let unique = model.ops.iter().filter(|o| o.name == op.name).count() == 1;
        let key = if unique {
            op.name.clone()
        } else {
            format!("#{i}")
        };
        let mut e = json!({ "kind": op.kind.name(), "simd": fold.simd });
        if matches!(g, Geom::Conv { .. } | Geom::Dense { .. }) {
            e["pe"] = json!(fold.pe);
        }
        if fold.rq > 0 {
            e["rq"] = json!(fold.rq);
        }
        e["cycles"] = json!(g.cycles(fold.simd, fold.pe));
        ops.insert(key, e);
    }
    json!({
        "format": "ratflow.folding", "version": 1, "model": model.name,
        "target_cycles": f.target, "interval": interval, "ops": ops,
    })
}

/// Reads `--folding FILE` for a model (the path in messages).
pub fn load_spec(path: &Path) -> Result<Spec> {
    Ok(Spec::File(FoldingFile::load(path).with_context(|| {
        format!("--folding {}", path.display())
    })?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisors_in_order() {
        assert_eq!(divisors(1), vec![1]);
        assert_eq!(divisors(12), vec![1, 2, 3, 4, 6, 12]);
        assert_eq!(divisors(16), vec![1, 2, 4, 8, 16]);
        assert_eq!(divisors(49), vec![1, 7, 49]);
    }

    fn conv(h: usize, w: usize, c: usize, o: usize, k: usize, s: usize, p: usize) -> Geom {
        let win = Window {
            kernel: [k, k],
            stride: [s, s],
            dilation: [1, 1],
            padding: [p, p, p, p],
        };
        let (oh, ow) = win.out_hw(h, w).unwrap();
        Geom::Conv {
            h,
            w,
            c,
            oh,
            ow,
            o,
            win,
            needs_window: true,
        }
    }

    #[test]
    fn cheapest_folding_meets_the_target() {
        // ResNet-8's 3x3 convolutions at 18432 cycles: 128 multipliers, SIMD 16 x PE 8.
        let g = conv(32, 32, 16, 16, 3, 1, 1);
        assert_eq!(g.cycles(16, 8), 18432);
        assert_eq!(g.cheapest(18432, None, None), Some((16, 8)));
        assert_eq!(g.default_rq(16, 8), 1);
        // Pinned SIMD.
        assert_eq!(g.cheapest(18432, Some(8), None), Some((8, 16)));
        assert_eq!(g.cheapest(1000, None, None), None);
        assert_eq!(g.min_cycles(true), 18432);
        // A dense layer: 640 inputs, 128 outputs at 640 cycles.
        let d = Geom::Dense { n: 640, o: 128 };
        let (s, p) = d.cheapest(640, None, None).unwrap();
        assert_eq!(s * p, 128);
        assert!(d.cycles(s, p) <= 640);
        // Requantizer lanes follow the output rate: 64 accumulators every 40 cycles -> 2.
        let c1 = Geom::Conv {
            h: 49,
            w: 10,
            c: 1,
            oh: 25,
            ow: 5,
            o: 64,
            win: Window {
                kernel: [10, 4],
                stride: [2, 2],
                dilation: [1, 1],
                padding: [4, 5, 1, 1],
            },
            needs_window: true,
        };
        assert_eq!(c1.cycles(1, 64), 5000);
        assert_eq!(c1.default_rq(1, 64), 2);
    }

    #[test]
    fn folding_files_parse_and_refuse_bad_fields() {
        let f = FoldingFile::parse(
            r##"{"format":"ratflow.folding","version":1,"target_cycles":100,
                "ops":{"conv1":{"PE":4,"simd":2},"#3":{"rq":1,"cycles":7}}}"##,
            "f.json",
        )
        .unwrap();
        assert_eq!(f.target_cycles, Some(100));
        assert_eq!(f.ops.len(), 2);
        assert_eq!(f.ops[0].1.pe, Some(4));
        for bad in [
            r#"{"format":"x","version":1}"#,
            r#"{"format":"ratflow.folding","version":2}"#,
            r#"{"format":"ratflow.folding","version":1,"ops":{"a":{"pe":0}}}"#,
            r#"{"format":"ratflow.folding","version":1,"ops":{"a":{"lanes":2}}}"#,
            r#"{"format":"ratflow.folding","version":1,"extra":1}"#,
        ] {
            let e = FoldingFile::parse(bad, "f.json").unwrap_err().to_string();
            assert!(e.starts_with("f.json: "), "{e}");
        }
    }
}
