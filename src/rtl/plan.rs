//! The hardware plan: a validated model plus the user's choices (top name, parallelism),
//! resolved into everything the templates print — module names, widths, per-lane constants.
//!
//! Emission is a pure function of a [`Plan`]: all checks happen while building it.

use super::Options;
use super::verilog::{is_identifier, sanitize, sbits, ubits};
use crate::error::input;
use crate::model::Model;
use crate::quant::{Dyadic, Rounding, csd};
use anyhow::Result;
use std::fmt;

/// DESIGN's accumulator width (i32), used everywhere under `--acc 32`.
pub const ACC_BITS: u32 = 32;

/// How a requantizer multiplies its accumulator by the multiplicand m.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MulForm {
    /// `acc * m`: a `*` by the baked constant (parallel lanes), or one k-bit multiplier fed by
    /// the case ROM (time-shared lanes).
    #[default]
    Mul,
    /// Canonical signed digits, no `*`: a baked lane adds `±(acc << shift)` for each non-zero
    /// CSD digit of its m; a time-shared lane's case ROM holds each channel's digit positions
    /// and signs, and the lane adds that many barrel-shifted copies of acc.
    Csd,
}

impl MulForm {
    pub fn parse(s: &str) -> std::result::Result<MulForm, String> {
        match s.trim() {
            "mul" => Ok(MulForm::Mul),
            "csd" => Ok(MulForm::Csd),
            _ => Err(format!("--multiplier {s:?}: expected mul or csd")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MulForm::Mul => "mul",
            MulForm::Csd => "csd",
        }
    }
}

impl fmt::Display for MulForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Width of the dense accumulators (and so of the requantizer input and product).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccWidth {
    /// Per layer, the narrowest two's complement width that holds every value the layer's
    /// accumulator registers can take for any int8 input (see [`LayerPlan::acc_range`]).
    #[default]
    Minimal,
    /// 32 bits in every layer (DESIGN's i32 accumulator).
    Bits32,
}

impl AccWidth {
    pub fn parse(s: &str) -> std::result::Result<AccWidth, String> {
        match s.trim() {
            "minimal" => Ok(AccWidth::Minimal),
            "32" => Ok(AccWidth::Bits32),
            _ => Err(format!("--acc {s:?}: expected minimal or 32")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccWidth::Minimal => "minimal",
            AccWidth::Bits32 => "32",
        }
    }
}

impl fmt::Display for AccWidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many output channels each layer computes at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parallel {
    /// `P` for every layer, capped at the layer's `out_features`.
    Each(usize),
    /// Every layer fully parallel (`P = out_features`).
    Full,
    /// One `P` per layer, each in `1..=out_features`.
    PerLayer(Vec<usize>),
}

impl Parallel {
    /// `4`, `full`, or a per-layer list `16,8,10`.
    pub fn parse(s: &str) -> std::result::Result<Parallel, String> {
        let s = s.trim();
        if s == "full" {
            return Ok(Parallel::Full);
        }
        let parts: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("--parallel {s:?}: expected P, `full` or P1,P2,... per layer"))?;
        if parts.contains(&0) {
            return Err(format!("--parallel {s:?}: P must be at least 1"));
        }
        Ok(match parts.as_slice() {
            [p] => Parallel::Each(*p),
            _ => Parallel::PerLayer(parts),
        })
    }

    /// The P of every layer of `model`.
    pub fn resolve(&self, model: &Model) -> Result<Vec<usize>> {
        let outs: Vec<usize> = model.layers().iter().map(|l| l.out_features).collect();
        match self {
            Parallel::Each(p) => Ok(outs.iter().map(|&n| n.min(*p)).collect()),
            Parallel::Full => Ok(outs),
            Parallel::PerLayer(ps) => {
                if ps.len() != outs.len() {
                    return Err(input(format!(
                        "--parallel lists {} values but the model has {} layers",
                        ps.len(),
                        outs.len()
                    )));
                }
                for (i, (&p, &n)) in ps.iter().zip(&outs).enumerate() {
                    if p > n {
                        return Err(input(format!(
                            "--parallel: layer {i} has {n} outputs, so P = {p} is too large"
                        )));
                    }
                }
                Ok(ps.clone())
            }
        }
    }
}

impl fmt::Display for Parallel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parallel::Each(p) => write!(f, "{p}"),
            Parallel::Full => f.write_str("full"),
            Parallel::PerLayer(ps) => {
                let v: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                f.write_str(&v.join(","))
            }
        }
    }
}

/// One requantizer channel slot of a lane. Padding slots (past the last channel of the last
/// group) carry `m = 0` and are never emitted.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelConst {
    /// Output channel, or `None` for a padding slot.
    pub channel: Option<usize>,
    /// The model's multiplier, exactly.
    pub mult: Dyadic,
    /// The shift the datapath applies after the multiply: `s` in single rounding, `s - k`
    /// (the RoundingDivideByPOT exponent) in double rounding; 0 when `m = 0` (output = Z).
    pub shift: u32,
}

impl ChannelConst {
    pub fn real(&self) -> f64 {
        self.mult.value()
    }
}

/// One requantizer lane: the channels it serves, one per group (`chans[g]` is channel
/// `g * P + lane`).
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    pub index: usize,
    pub chans: Vec<ChannelConst>,
}

impl Lane {
    pub fn max_shift(&self) -> u32 {
        self.chans.iter().map(|c| c.shift).max().unwrap_or(0)
    }

    /// The non-zero CSD digits of each channel slot's m, most significant first (none for
    /// m = 0 and padding).
    pub fn chan_digits(&self) -> Vec<Vec<csd::Digit>> {
        self.chans
            .iter()
            .map(|c| {
                let mut ds = csd::digits(c.mult.m as u64);
                ds.reverse();
                ds
            })
            .collect()
    }

    /// The digit slots of a time-shared CSD lane: slot j adds the j-th most significant digit
    /// of the selected channel's m. As many slots as the lane's largest CSD weight.
    pub fn digit_slots(&self) -> Vec<DigitSlot> {
        let all = self.chan_digits();
        let d = all.iter().map(Vec::len).max().unwrap_or(0);
        (0..d)
            .map(|j| {
                let present: Vec<csd::Digit> =
                    all.iter().filter_map(|ds| ds.get(j)).copied().collect();
                let base = present
                    .iter()
                    .map(|x| x.shift)
                    .min()
                    .expect("slot j < max weight");
                let top = present
                    .iter()
                    .map(|x| x.shift)
                    .max()
                    .expect("slot j < max weight");
                let negative = if present.iter().all(|x| x.negative == present[0].negative) {
                    Some(present[0].negative)
                } else {
                    None
                };
                DigitSlot {
                    base,
                    span: top - base,
                    negative,
                    optional: present.len() < all.len(),
                }
            })
            .collect()
    }
}

/// The most CSD digit slots for which a time-shared lane's shift-adds are smaller than one
/// k-bit multiplier: `2 + k / 4`. Measured with yosys `synth_ice40` on a 64-channel
/// time-shared requantizer with 32-bit accumulators (docs/rtl.md): the digit form needs fewer
/// LUT4s up to 3 digits at k = 4, 4 at k = 8, 6 at k = 16 and 9 at k = 31, and more from the
/// next digit on.
pub fn max_rom_digits(k: u32) -> usize {
    2 + k as usize / 4
}

/// One signed-digit slot of a time-shared CSD lane: the j-th most significant non-zero CSD
/// digit of each channel's m. What is the same for every channel of the lane is baked in;
/// only the rest takes ROM bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitSlot {
    /// Smallest shift of this digit among the lane's channels that have it.
    pub base: u32,
    /// Largest shift minus `base`: the ROM stores `shift - base` in `ubits(span)` bits, none
    /// when the span is 0.
    pub span: u32,
    /// The digit's sign when every channel that has it agrees; `None`: a ROM bit.
    pub negative: Option<bool>,
    /// Some channel lacks this digit (a smaller CSD weight, m = 0, padding): a ROM enable bit.
    pub optional: bool,
}

impl DigitSlot {
    /// ROM bits of the shift field (0: the shift is the constant `base`).
    pub fn sh_bits(&self) -> u32 {
        if self.span == 0 {
            0
        } else {
            ubits(self.span as u64)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    pub index: usize,
    /// The model's layer name.
    pub name: String,
    /// Module of the dense datapath, `<top>_<layer>`.
    pub module: String,
    /// Module of the requantizer, `<top>_<layer>_requant`.
    pub requant_module: String,
    /// Instance name inside the top, `u_<layer>`.
    pub instance: String,
    pub in_features: usize,
    pub out_features: usize,
    /// Output channels computed at once.
    pub p: usize,
    /// Passes over the input per inference: `ceil(out_features / p)`.
    pub groups: usize,
    /// Every value the accumulator registers of this layer can hold, for any int8 input: the
    /// union over channels of `b' + sum_i min/max(-128 w, 127 w)`, and 0 (padding lanes).
    pub acc_range: (i64, i64),
    /// Accumulator width: `sbits(acc_range)` under `--acc minimal`, else 32.
    pub acc_bits: u32,
    pub k: u32,
    pub rounding: Rounding,
    pub multiplier: MulForm,
    pub input_zero_point: i8,
    pub zero_point: i8,
    /// A fused ReLU, for comments; the arithmetic follows `lo`.
    pub relu: bool,
    /// The clamp's lower bound (the upper is 127: checked when planning).
    pub lo: i8,
    pub lanes: Vec<Lane>,
    /// ROM files (`$readmemh`), names only.
    pub weight_hex: String,
    pub bias_hex: String,
    /// Weights, `[group][input][lane]` order flattened, padding lanes zero.
    pub weight_words: Vec<Vec<i8>>,
    /// Bias with the input zero point folded in, per `[group][lane]`.
    pub bias_words: Vec<Vec<i64>>,
}

impl LayerPlan {
    /// Pipeline registers in the requantizer: 3 for single rounding (operands, product,
    /// round/shift/saturate), 4 for double (SRDHM gets its own stage).
    pub fn requant_latency(&self) -> u32 {
        match self.rounding {
            Rounding::Single => 3,
            Rounding::Double => 4,
        }
    }

    /// Multiply-accumulate cycles per inference: `groups * in_features`.
    pub fn mac_cycles(&self) -> u64 {
        (self.groups * self.in_features) as u64
    }

    /// Channels in the last group.
    pub fn last_group_len(&self) -> usize {
        self.out_features - (self.groups - 1) * self.p
    }

    /// Signed product width of acc * m: `acc_bits + k` holds it exactly for every
    /// `acc_bits`-bit accumulator and every k-bit m (also every partial sum of a CSD form,
    /// taken modulo 2^prod_bits).
    pub fn prod_bits(&self) -> u32 {
        self.acc_bits + self.k
    }

    /// Whether lanes are time-shared (a case ROM selects the channel's constants).
    pub fn time_shared(&self) -> bool {
        self.groups > 1
    }

    /// Largest number of CSD digit slots of any lane (what a time-shared CSD lane adds).
    pub fn csd_slots(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.digit_slots().len())
            .max()
            .unwrap_or(0)
    }

    /// Whether the time-shared lanes of a `--multiplier csd` layer add CSD digits from the case
    /// ROM: only while that is smaller than one k-bit multiplier, i.e. while the layer needs at
    /// most [`max_rom_digits`]`(k)` digit slots; otherwise they keep the multiplier.
    pub fn csd_rom(&self) -> bool {
        self.multiplier == MulForm::Csd
            && self.time_shared()
            && self.csd_slots() <= max_rom_digits(self.k)
    }

    /// How this layer's requantizer multiplies, for people and reports: `mul-const` (baked
    /// `*`), `mul-rom` (case ROM and a k-bit multiplier), `csd-const` (baked shift-adds) or
    /// `csd-rom` (case ROM of CSD digits, shift-adds).
    pub fn requant_form(&self) -> &'static str {
        match (self.multiplier, self.time_shared()) {
            (MulForm::Mul, false) => "mul-const",
            (MulForm::Csd, false) => "csd-const",
            (_, true) if self.csd_rom() => "csd-rom",
            (_, true) => "mul-rom",
        }
    }

    pub fn group_bits(&self) -> u32 {
        ubits(self.groups as u64 - 1)
    }

    /// Lowest output code: the op's clamp (Z under ReLU, else -128).
    pub fn lo(&self) -> i8 {
        self.lo
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub top: String,
    pub model_name: String,
    pub model_hash: String,
    pub k: u32,
    pub rounding: Rounding,
    pub multiplier: MulForm,
    pub acc: AccWidth,
    pub input_len: usize,
    pub classes: usize,
    pub layers: Vec<LayerPlan>,
}

impl Plan {
    /// Bits of the class index output.
    pub fn class_bits(&self) -> u32 {
        ubits(self.classes as u64 - 1)
    }

    pub fn argmax_module(&self) -> String {
        format!("{}_argmax", self.top)
    }

    pub fn parallel(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.p).collect()
    }

    pub fn build(model: &Model, opts: &Options) -> Result<Plan> {
        let top = match opts.top.as_deref() {
            Some(t) => {
                if !is_identifier(t) {
                    return Err(input(format!(
                        "--top {t:?} is not a usable Verilog identifier (a letter, then letters, digits and single _ not at the end; not a keyword)"
                    )));
                }
                t.to_string()
            }
            None => {
                let s = sanitize(&model.name);
                if s.is_empty() {
                    "ratflow_net".to_string()
                } else {
                    s
                }
            }
        };
        if model.dense_chain().is_none() {
            return Err(crate::error::input(format!(
                "model {}: this RTL generator builds chains of dense ops",
                model.name
            )));
        }
        for (i, op) in model.ops.iter().enumerate() {
            if op.clamp.hi != i8::MAX || op.k_bits.is_some() || op.rounding.is_some() {
                return Err(crate::error::input(format!(
                    "ops[{i}] {:?}: the dense datapath takes clamp [lo, 127] and the model's k and rounding",
                    op.name
                )));
            }
        }
        let ps = opts.parallel.resolve(model)?;
        // Layer identifiers: the sanitized layer name when it is unique, else `l<i>`.
        let mut idents: Vec<String> = model.layers().iter().map(|l| sanitize(l.name)).collect();
        for i in 0..idents.len() {
            let clash = idents[i].is_empty()
                || idents[i] == "argmax"
                || idents.iter().filter(|x| **x == idents[i]).count() > 1;
            if clash {
                idents[i] = format!("l{i}");
            }
        }
        // Module names must be unique across the design (a layer called `fc1_requant` would
        // collide with fc1's requantizer): fall back to `l<i>` for every layer if any clash.
        let mut names: Vec<String> = vec![format!("{top}_argmax"), top.clone()];
        for id in &idents {
            names.push(format!("{top}_{id}"));
            names.push(format!("{top}_{id}_requant"));
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != names.len() {
            idents = (0..idents.len()).map(|i| format!("l{i}")).collect();
        }
        let k = model.rescale.k_bits;
        let rounding = model.rescale.rounding;
        let mut layers = Vec::new();
        for (i, l) in model.layers().iter().enumerate() {
            let p = ps[i];
            let groups = l.out_features.div_ceil(p);
            let zx = model.layer_input(i).zero_point as i64;
            let lanes = (0..p)
                .map(|lane| Lane {
                    index: lane,
                    chans: (0..groups)
                        .map(|g| {
                            let c = g * p + lane;
                            if c >= l.out_features {
                                return ChannelConst {
                                    channel: None,
                                    mult: Dyadic { m: 0, s: 0 },
                                    shift: 0,
                                };
                            }
                            let mult = l.mult(c);
                            let shift = match (mult.m, rounding) {
                                (0, _) => 0,
                                (_, Rounding::Single) => mult.s,
                                // check_multiplier guarantees s >= k in double mode for m != 0.
                                (_, Rounding::Double) => mult.s - k,
                            };
                            ChannelConst {
                                channel: Some(c),
                                mult,
                                shift,
                            }
                        })
                        .collect(),
                })
                .collect();
            let mut weight_words = Vec::with_capacity(groups * l.in_features);
            let mut bias_words = Vec::with_capacity(groups);
            for g in 0..groups {
                for x in 0..l.in_features {
                    weight_words.push(
                        (0..p)
                            .map(|lane| {
                                let c = g * p + lane;
                                if c < l.out_features {
                                    l.weight[c * l.in_features + x]
                                } else {
                                    0
                                }
                            })
                            .collect(),
                    );
                }
                bias_words.push(
                    (0..p)
                        .map(|lane| {
                            let c = g * p + lane;
                            if c < l.out_features {
                                let sum: i64 = l.row(c).iter().map(|&w| w as i64).sum();
                                l.bias[c] as i64 - zx * sum
                            } else {
                                0
                            }
                        })
                        .collect(),
                );
            }
            // The hardware range: lane registers hold b' + sum_{i<j} x_i w_i for raw int8 x_i,
            // which acc_range(c, Z_x) bounds for every prefix j (docs/rtl.md); padding holds 0.
            let acc_range = (0..l.out_features)
                .map(|c| l.acc_range(c, zx as i8))
                .fold((0i64, 0i64), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
            let acc_bits = match opts.acc {
                AccWidth::Minimal => sbits(acc_range.0, acc_range.1),
                AccWidth::Bits32 => ACC_BITS,
            };
            let ident = &idents[i];
            layers.push(LayerPlan {
                index: i,
                name: l
                    .name
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect(),
                module: format!("{top}_{ident}"),
                requant_module: format!("{top}_{ident}_requant"),
                instance: format!("u_{ident}"),
                in_features: l.in_features,
                out_features: l.out_features,
                p,
                groups,
                acc_range,
                acc_bits,
                k,
                rounding,
                multiplier: opts.multiplier,
                input_zero_point: zx as i8,
                zero_point: l.output.zero_point,
                relu: l.relu,
                lo: l.clamp.lo,
                lanes,
                weight_hex: format!("{top}_{ident}_weight.hex"),
                bias_hex: format!("{top}_{ident}_bias.hex"),
                weight_words,
                bias_words,
            });
        }
        // Every accumulator value, and so the folded bias, must fit the accumulator (it does
        // for every validated model: the i32 bound covers |b| + 128 * sum|w|); checked, not
        // assumed.
        for lp in &layers {
            if sbits(lp.acc_range.0, lp.acc_range.1) > lp.acc_bits {
                return Err(anyhow::anyhow!(
                    "layer {}: accumulator range {}..={} does not fit {} bits",
                    lp.name,
                    lp.acc_range.0,
                    lp.acc_range.1,
                    lp.acc_bits
                ));
            }
            let half = 1i64 << (lp.acc_bits - 1);
            for (g, word) in lp.bias_words.iter().enumerate() {
                for (lane, &b) in word.iter().enumerate() {
                    if !(-half..half).contains(&b) {
                        return Err(anyhow::anyhow!(
                            "layer {}: folded bias of channel {} = {b} does not fit {} bits",
                            lp.name,
                            g * lp.p + lane,
                            lp.acc_bits
                        ));
                    }
                }
            }
        }
        Ok(Plan {
            top,
            // Printed inside `//` comments: no control characters.
            model_name: model
                .name
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
            model_hash: model.content_hash(),
            k,
            rounding,
            multiplier: opts.multiplier,
            acc: opts.acc,
            input_len: model.input_len(),
            classes: model.num_classes(),
            layers,
        })
    }
}
