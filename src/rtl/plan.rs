//! The hardware plan: a validated model plus the user's choices (top name, parallelism),
//! resolved into everything the templates print — module names, widths, per-lane constants.
//!
//! Emission is a pure function of a [`Plan`]: all checks happen while building it.

use super::verilog::{is_identifier, sanitize, ubits};
use crate::error::input;
use crate::model::Model;
use crate::quant::{Multiplier, Rounding};
use anyhow::Result;
use std::fmt;

/// Accumulator width of every dense layer (DESIGN: 32-bit accumulators). Per-layer in the plan
/// so that minimal accumulators can narrow it layer by layer.
pub const ACC_BITS: u32 = 32;

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
        let outs: Vec<usize> = model.layers.iter().map(|l| l.out_features).collect();
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
    pub mult: Multiplier,
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
    pub acc_bits: u32,
    pub k: u32,
    pub rounding: Rounding,
    pub input_zero_point: i8,
    pub zero_point: i8,
    pub relu: bool,
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

    /// Signed product width of the k-bit multiplier: `acc_bits + k`.
    pub fn prod_bits(&self) -> u32 {
        self.acc_bits + self.k
    }

    pub fn group_bits(&self) -> u32 {
        ubits(self.groups as u64 - 1)
    }

    /// Lowest output code (Z under ReLU, else -128).
    pub fn lo(&self) -> i8 {
        if self.relu { self.zero_point } else { i8::MIN }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub top: String,
    pub model_name: String,
    pub model_hash: String,
    pub k: u32,
    pub rounding: Rounding,
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

    pub fn build(model: &Model, top: Option<&str>, parallel: &Parallel) -> Result<Plan> {
        let top = match top {
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
        let ps = parallel.resolve(model)?;
        // Layer identifiers: the sanitized layer name when it is unique, else `l<i>`.
        let mut idents: Vec<String> = model.layers.iter().map(|l| sanitize(&l.name)).collect();
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
        for (i, l) in model.layers.iter().enumerate() {
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
                                    mult: Multiplier { m: 0, s: 0 },
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
                acc_bits: ACC_BITS,
                k,
                rounding,
                input_zero_point: zx as i8,
                zero_point: l.output.zero_point,
                relu: l.relu,
                lanes,
                weight_hex: format!("{top}_{ident}_weight.hex"),
                bias_hex: format!("{top}_{ident}_bias.hex"),
                weight_words,
                bias_words,
            });
        }
        // The folded bias must fit the accumulator (it does for every validated model: the
        // i32 bound covers |b| + 128 * sum|w|); checked, not assumed.
        for lp in &layers {
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
            input_len: model.input_len(),
            classes: model.num_classes(),
            layers,
        })
    }
}
