//! Shared helpers: tool checks (these tests fail, never skip, without the tools), the build
//! cache, test models with planted corner constants, and running the CLI.

use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::{self, Dyadic, Rounding, csd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Panics with an actionable message when an external tool is missing: CI must not pass by
/// skipping the co-simulation.
pub fn require_tools() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let missing: Vec<&str> = ["verilator", "yosys", "iverilog"]
            .into_iter()
            .filter(|t| ratflow::tools::find(t).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "the RTL tests need {} on PATH: run `make tools` (scripts/install-tools.sh) or \
             `apt-get install verilator yosys iverilog`",
            missing.join(", ")
        );
    });
}

/// Verilator builds shared by all tests of this run (and reused by later runs: keys are
/// content hashes, so a stale build is never picked).
pub fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtl-cache")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ratflow")
}

pub fn ratflow(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RATFLOW_CACHE", cache())
        .output()
        .expect("ratflow runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A small random model with the corner constants that break RTL planted in every layer:
/// m = 2^k - 1 with s = 62, m = 0 (the underflow encoding (0, 0)), m = 2^(k-1) with s = k
/// (double: n = 0), s = 0 with the largest m (single) or n = 31 (double), and m = 1; zero
/// points at -128 and 127 under ReLU.
pub fn corner_model(
    seed: u64,
    k: u32,
    rounding: Rounding,
    sizes: &[usize],
    inputs: usize,
) -> Model {
    let mut m = random_model(&RandomSpec {
        seed,
        inputs: Some(inputs),
        layers: Some(sizes.to_vec()),
        k_bits: Some(k),
        rounding: Some(rounding),
    });
    let top = ((1u64 << k) - 1) as u32;
    let half = 1u32 << (k - 1);
    let planted: Vec<(u32, u32)> = match rounding {
        Rounding::Single => vec![(top, 62), (0, 0), (half, k), (top, 0), (1, 1), (top, k)],
        Rounding::Double => vec![(top, 62), (0, 0), (half, k), (1, k + 31), (top, k), (1, 62)],
    };
    let nl = m.ops.len();
    for li in 0..nl {
        let layer = m.dense_mut(li);
        for (c, &(mm, ss)) in planted.iter().enumerate() {
            // Rotate so each layer has the corners on different lanes.
            let ch = (c + li) % layer.out_features;
            if c < layer.out_features {
                layer.multiplier[ch] = mm;
                layer.shift[ch] = ss;
            }
        }
        if li + 1 < nl {
            let zp = if (li + seed as usize).is_multiple_of(2) {
                -128
            } else {
                127
            };
            let out = m.ops[li].output;
            m.tensors[out].q.zero_point = zp;
            m.ops[li].clamp = ratflow::quant::Clamp::relu(zp);
        }
    }
    m.validate().expect("planted corners keep the model valid");
    m
}

/// `model` with biases reduced modulo 1000 and the last layer's weights divided by 32, so that
/// minimal accumulators are narrow (below 16 bits in the last layer of a small model).
pub fn small_biases(model: &Model) -> Model {
    let mut m = model.clone();
    let last = m.ops.len() - 1;
    for li in 0..=last {
        let l = m.dense_mut(li);
        for b in &mut l.bias {
            *b %= 1000;
        }
        if li == last {
            for w in &mut l.weight {
                *w /= 32;
            }
        }
    }
    m.validate()
        .expect("smaller biases and weights keep the model valid");
    m
}

/// `model` with every multiplicand limited to `d` non-zero CSD digits (`rescale.csd_digits`):
/// a channel keeps its (m, s) when m already qualifies (so planted corners survive), else takes
/// `quant::derive_multiplier_csd` of its real factor, or 2^(k-1) when that is not legal here.
pub fn csd_limited(model: &Model, d: u32) -> Model {
    let mut m = model.clone();
    let (k, rounding) = (m.rescale.k_bits, m.rescale.rounding);
    for i in 0..m.ops.len() {
        let l = m.dense_mut(i);
        for c in 0..l.out_features {
            let old = l.mult(c);
            if csd::weight(old.m as u64) <= d {
                continue;
            }
            let new = match quant::derive_multiplier_csd(old.value(), k, d) {
                Ok(x) if !x.underflow && quant::check_multiplier(x.mult, k, rounding).is_ok() => {
                    x.mult
                }
                _ => Dyadic {
                    m: 1 << (k - 1),
                    s: old.s,
                },
            };
            l.multiplier[c] = new.m;
            l.shift[c] = new.s;
        }
    }
    m.rescale.csd_digits = Some(d);
    m.validate()
        .expect("CSD-limited multiplicands keep the model valid");
    m
}

/// Writes `model` into `dir` and returns its path.
pub fn save(model: &Model, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    model.save(&path).expect("model saves");
    path
}

/// The `N passed, M failed` summary (last such line of the output).
pub fn summary(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let (p, f) = line
        .strip_suffix(" failed")
        .unwrap()
        .split_once(" passed, ")
        .unwrap();
    (p.parse().unwrap(), f.parse().unwrap())
}
