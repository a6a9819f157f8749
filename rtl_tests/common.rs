//! Shared helpers: tool checks (these tests fail, never skip, without the tools), the build
//! cache, test models with planted corner constants, and running the CLI.

use ratflow::model::random::{RandomSpec, random_model};
use ratflow::model::{Add, Conv2d, Model, OpKind, QParams, Tensor, Window};
use ratflow::quant::{self, Clamp, Dyadic, Rescale, Rounding, csd};
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

/// A file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A shipped model under `models/`.
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

/// A residual block small enough for Icarus and for quick planted-bug builds: input 8x8x1 ->
/// 1x1 conv to 4 channels (the branch point) -> two 3x3 pad-1 convs -> add with the branch
/// point (rtl/lib's `resblock_s1` geometry). With [`RESBLOCK_FOLDING`] the skip FIFO's formula
/// depth is exact: 37 beats of 2 lanes.
pub fn resblock() -> Model {
    let t = |name: &str, shape: Vec<usize>, s: f64, z: i8| Tensor {
        name: name.into(),
        shape,
        q: QParams {
            scale: s,
            zero_point: z,
        },
    };
    let mut m = Model::new_graph(
        "resblock",
        Rescale::plain(8, Rounding::Double),
        t("x", vec![8, 8, 1], 0.05, 3),
    );
    let conv = |c: usize, o: usize, k: usize, seed: usize, shift: u32| {
        let p = (k - 1) / 2;
        OpKind::Conv2d(Conv2d {
            window: Window {
                kernel: [k, k],
                stride: [1, 1],
                dilation: [1, 1],
                padding: [p, p, p, p],
            },
            in_channels: c,
            out_channels: o,
            weight: (0..o * k * k * c)
                .map(|i| (((i + seed) * 37) % 61) as i8 - 30)
                .collect(),
            bias: (0..o).map(|i| (i as i32 * 97) % 400 - 200).collect(),
            multiplier: vec![201; o],
            shift: vec![shift; o],
        })
    };
    let f = m.push_op(
        "c0",
        vec![0],
        t("f", vec![8, 8, 4], 0.05, -10),
        Clamp::relu(-10),
        conv(1, 4, 1, 1, 12),
    );
    let a = m.push_op(
        "c1",
        vec![f],
        t("a", vec![8, 8, 4], 0.05, 5),
        Clamp::NONE,
        conv(4, 4, 3, 2, 14),
    );
    let b = m.push_op(
        "c2",
        vec![a],
        t("b", vec![8, 8, 4], 0.05, -3),
        Clamp::NONE,
        conv(4, 4, 3, 3, 14),
    );
    let fs = quant::add_factors(0.05, 0.05, 0.1, 20);
    let ds = fs.map(|r| {
        let d = quant::derive_multiplier(r, 8).unwrap().mult;
        assert!(d.s >= 8, "double rounding needs s >= k");
        d
    });
    let y = m.push_op(
        "add",
        vec![f, b],
        t("y", vec![8, 8, 4], 0.1, 1),
        Clamp::NONE,
        OpKind::Add(Add {
            multiplier: ds.map(|d| d.m),
            shift: ds.map(|d| d.s),
            left_shift: 20,
        }),
    );
    m.outputs = vec![y];
    m.validate().expect("the residual block is valid");
    m
}

/// The folding that makes [`resblock`]'s skip FIFO exact (the fork and the add at 2 lanes).
pub const RESBLOCK_FOLDING: &str = r#"{"format":"ratflow.folding","version":1,"ops":{
    "c0":{"simd":1,"pe":4,"rq":2},"c1":{"simd":2,"pe":4},"c2":{"simd":2,"pe":4},
    "add":{"simd":2}}}"#;

/// Runs `ratflow rtl` for `model` into `dir/rtl` (with `extra` options) and returns the folder.
pub fn rtl_dir(model: &Path, dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("rtl");
    let mut args = vec!["rtl", "--model", p(model), "--out", p(&out)];
    args.extend_from_slice(extra);
    let o = ratflow(&args);
    assert!(o.status.success(), "{}", text(&o));
    out
}

/// The manifest of a generated folder.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The first `mismatch:`/`error:` line of a run.
pub fn first_failure(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("mismatch:") || l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no failure line in:\n{out}"))
}

/// The measured interval of a `ratflow sim` run (`interval X cycles/inference (manifest: Y)`).
pub fn intervals(out: &str) -> (f64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("run:"))
        .unwrap_or_else(|| panic!("no run line in:\n{out}"));
    let after = line.split("interval ").nth(1).unwrap();
    let measured: f64 = after.split_whitespace().next().unwrap().parse().unwrap();
    let manifest: u64 = after
        .split("(manifest: ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap();
    (measured, manifest)
}
