//! Verilog generation for int8 graphs (DESIGN sections 3 and 5, "RTL for graphs").
//!
//! [`Plan::build`] resolves a validated model (any version 2 graph; version 1 dense chains are
//! graphs of dense ops) and the user's choices (folding, multiplier form, accumulator widths,
//! top name) into a checked netlist of hand-written library modules (`rtl/lib/`: sliding
//! window, MAC engines, requantizer lanes, pools, add, FIFO, fork, width converter, argmax)
//! joined by AXI4-Stream bundles. [`generate`] renders only the top (the Askama template
//! `templates/rtl/top.v`), the `$readmemh` ROM images and the parameter lists; the library
//! modules the design uses are copied unchanged next to it, with `files.f`, `folding.json` and
//! `manifest.json`. No Verilog is assembled from strings here and no library logic is copied
//! per op: an op is a handful of instances with parameters.
//!
//! The requantizer constants come from the model's integer `(m, s)` and the datapath form from
//! [`crate::quant::Rounding`]: nothing about the semantics is re-derived here.

mod emit;
pub mod folding;
pub mod fusesoc;
pub mod lib;
pub mod names;
mod plan;
pub mod rom;
pub mod schedule;
pub mod verilog;

pub use folding::{Fold, Folding, FoldingFile, Spec};
pub use lib::LibModule;
pub use plan::{
    ACC_BITS, Conn, NARROW_MAX_WINDOW, OpPlan, Param, Plan, RequantInfo, SkipPlan, Stream, Tap,
    TapKind, Unit, Val, max_rom_digits, narrow_constant,
};

use crate::fsio;
use crate::model::Model;
use anyhow::{Context, Result};
use askama::Template;
use serde_json::{Value, json};
use std::fmt;
use std::fmt::Write as _;
use std::path::Path;

/// How a requantizer multiplies its accumulator by the multiplicand m.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MulForm {
    /// `acc * m`: a constant multiply (per-tensor), or one k-bit multiplier per lane fed by the
    /// channel ROM (per-channel).
    #[default]
    Mul,
    /// Canonical signed digits, no `*`: a per-tensor m becomes shift-adds of its CSD digits; a
    /// per-channel lane adds the channel's digits read from the ROM, while the model needs at
    /// most [`max_rom_digits`]`(k)` digits (else it keeps the multiplier).
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

/// Width of the accumulators (MAC engines, requantizer inputs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccWidth {
    /// Per op, the narrowest two's complement width that holds its exact accumulator range
    /// over every int8 input (`OpKind::acc_ranges`). The MAC engines compute modulo that width,
    /// which is exact because the final value fits.
    #[default]
    Minimal,
    /// 32 bits in every op (DESIGN's i32 accumulator).
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

/// `--parallel` (version 1 style folding): output channels computed at once per dense/conv2d
/// op, as the largest divisor of its output channels not above P.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parallel {
    /// `P` for every op.
    Each(usize),
    /// Every op fully parallel (`PE = O`).
    Full,
    /// One `P` per dense/conv2d op, each at most its output channels.
    PerLayer(Vec<usize>),
}

impl Parallel {
    /// `4`, `full`, or a per-op list `16,8,10`.
    pub fn parse(s: &str) -> std::result::Result<Parallel, String> {
        let s = s.trim();
        if s == "full" {
            return Ok(Parallel::Full);
        }
        let parts: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("--parallel {s:?}: expected P, `full` or P1,P2,... per op"))?;
        if parts.contains(&0) {
            return Err(format!("--parallel {s:?}: P must be at least 1"));
        }
        Ok(match parts.as_slice() {
            [p] => Parallel::Each(*p),
            _ => Parallel::PerLayer(parts),
        })
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

/// What `ratflow rtl` was asked for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub top: Option<String>,
    pub folding: Spec,
    /// Form of the requantizers' acc * m (`--multiplier`, default `mul`).
    pub multiplier: MulForm,
    /// Accumulator widths (`--acc`, default `minimal`).
    pub acc: AccWidth,
    /// Fault injection for tests: `(op index, bits)` forces an op's accumulator width, even
    /// below what its range needs (the only way to get such a design: co-simulation must then
    /// fail, which is what the tests show). Empty in every normal use.
    pub force_acc_bits: Vec<(usize, u32)>,
}

/// One generated file.
#[derive(Clone, Debug)]
pub struct GenFile {
    pub name: String,
    pub text: String,
}

/// A rendered design: its plan, files (Verilog in dependency order first) and manifest.
#[derive(Clone, Debug)]
pub struct Design {
    pub plan: Plan,
    /// Verilog files in dependency order (what `files.f` lists): library modules, then the top.
    pub verilog: Vec<GenFile>,
    /// Include files, `$readmemh` images, `files.f`, `folding.json`, `manifest.json`.
    pub data: Vec<GenFile>,
    pub manifest: Value,
}

impl Design {
    pub fn files(&self) -> impl Iterator<Item = &GenFile> {
        self.verilog.iter().chain(&self.data)
    }

    pub fn file(&self, name: &str) -> Option<&GenFile> {
        self.files().find(|f| f.name == name)
    }

    /// The top module's file name.
    pub fn top_file(&self) -> String {
        format!("{}.v", self.plan.top)
    }
}

/// Renders a template; Askama drops the template's final newline, which POSIX text (and
/// Verilator's EOFNEWLINE lint) wants back.
pub(crate) fn render<T: Template>(t: &T, what: &str) -> Result<String> {
    let mut text = t
        .render()
        .with_context(|| format!("rendering the {what} template"))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Builds the plan and renders the whole design.
pub fn generate(model: &Model, opts: &Options) -> Result<Design> {
    let plan = Plan::build(model, opts)?;
    let folding = folding::to_json(model, &plan.folding, plan.interval);
    generate_plan(plan, folding)
}

/// Renders a plan. [`Plan::build`] is the only way to a checked plan; tests alter one (say, an
/// accumulator one bit narrower than safe) to show that co-simulation catches the damage.
pub fn generate_plan(plan: Plan, folding: Value) -> Result<Design> {
    let copied = format!(
        "// Copied unchanged from rtl/lib by ratflow {} for model `{}` (content hash {}).\n",
        crate::VERSION,
        plan.model_name,
        plan.model_hash
    );
    let mut verilog = Vec::new();
    for m in plan.modules() {
        verilog.push(GenFile {
            name: format!("{}.v", m.name()),
            text: format!("{copied}{}", m.source()),
        });
    }
    verilog.push(GenFile {
        name: format!("{}.v", plan.top),
        text: render(&emit::top(&plan), "network top")?,
    });
    let mut data: Vec<GenFile> = lib::HEADERS
        .iter()
        .map(|(n, t)| GenFile {
            name: n.to_string(),
            text: format!("{copied}{t}"),
        })
        .collect();
    let head = emit::header(&plan, "")
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("// ")
        .to_string();
    for r in &plan.roms {
        data.push(GenFile {
            name: r.file.clone(),
            text: r.text(&head),
        });
    }
    let mut filelist = format!(
        "// {head}\n// Verilog sources in dependency order; the top module is {}. Include folder: this one.\n+incdir+.\n",
        plan.top
    );
    for f in &verilog {
        let _ = writeln!(filelist, "{}", f.name);
    }
    data.push(GenFile {
        name: "files.f".into(),
        text: filelist,
    });
    data.push(GenFile {
        name: "folding.json".into(),
        text: serde_json::to_string_pretty(&folding)? + "\n",
    });
    let manifest = manifest(&plan, &verilog, &folding);
    data.push(GenFile {
        name: "manifest.json".into(),
        text: serde_json::to_string_pretty(&manifest)? + "\n",
    });
    Ok(Design {
        plan,
        verilog,
        data,
        manifest,
    })
}

/// The cycle formula the manifest states and the co-simulation checks.
pub const INTERVAL_FORMULA: &str = "interval = max(input elements, max over units of busy cycles per inference); \
     window: max(OH*OW*KH*KW*C/SIMD, H*W*C/SIMD); mac: vectors*(K/SIMD)*(O/PE); \
     dwmac and pools: OH*OW*KH*KW*C/SIMD; requant, add, fifo, fork: beats; \
     dwc: elements/min(lanes); argmax: N/lanes + 1";

fn manifest(plan: &Plan, verilog: &[GenFile], folding: &Value) -> Value {
    let ops: Vec<Value> = plan
        .ops
        .iter()
        .map(|o| {
            let mut v = json!({
                "index": o.index, "name": o.name, "kind": o.kind, "tensor": o.tensor,
                "prefix": o.prefix,
                "fold": { "simd": o.fold.simd, "pe": o.fold.pe, "rq": o.fold.rq },
                "units": o.units.iter().map(|&u| plan.units[u].instance.clone()).collect::<Vec<_>>(),
                "cycles": o.cycles, "latency": o.latency, "interval": o.cycles.max(1),
                "line_buffer_bits": o.line_buffer_bits, "fifo_bits": o.fifo_bits,
                "rom_bits": o.rom_bits, "roms": o.roms,
                "stream": plan.streams[o.out_stream].name,
            });
            if o.acc_bits > 0 {
                v["acc_bits"] = json!(o.acc_bits);
                v["acc_range"] = json!(o.acc_range.map(|(a, b)| [a, b]));
                v["acc_stream"] = json!(o.acc_stream.map(|s| plan.streams[s].name.clone()));
            }
            if !o.requant_form.is_empty() {
                v["requant_form"] = json!(o.requant_form);
            }
            if let Some(r) = plan.requants.get(&o.index)
                && let Some((k, m, s)) = r.narrowed_from
            {
                // A per-tensor constant narrowed to fewer bits, exact on the op's whole
                // accumulator range (`narrow_constant`).
                v["requant_constant"] = json!({
                    "k": r.k, "m": r.channels[0].0, "s": r.channels[0].1,
                    "model": { "k": k, "m": m, "s": s },
                });
            }
            v
        })
        .collect();
    let units: Vec<Value> = plan
        .units
        .iter()
        .map(|u| {
            json!({
                "instance": u.instance, "module": u.module.name(), "role": u.role,
                "op": u.op, "cycles": u.cycles, "latency": u.latency,
                "line_buffer_bits": u.line_buffer_bits, "fifo_bits": u.fifo_bits,
                "rom_bits": u.rom_bits,
            })
        })
        .collect();
    let fifos: Vec<Value> = plan
        .skips
        .iter()
        .map(|s| {
            let u = &plan.units[s.unit];
            json!({
                "instance": u.instance, "add": s.info.add,
                "add_name": plan.ops[s.info.add].name,
                "short_input": s.info.short_input,
                "depth": s.depth, "formula_depth": s.info.min_depth,
                "full_rate_lead": s.info.rate_depth,
                "exact": s.info.exact, "lanes": s.info.lanes, "bits": u.fifo_bits,
            })
        })
        .collect();
    let total = |f: fn(&Unit) -> u64| plan.units.iter().map(f).sum::<u64>();
    json!({
        "format": "ratflow.rtl-manifest", "version": 2,
        "ratflow": crate::VERSION,
        "model": { "name": plan.model_name, "hash": plan.model_hash, "version": plan.model_version },
        "top": plan.top,
        "k_bits": plan.k,
        "multiplier": plan.multiplier.as_str(), "acc": plan.acc.as_str(),
        "input": { "elements": plan.input_len, "shape": plan.input_shape, "lanes": 1 },
        "output": { "elements": plan.classes, "lanes": plan.out_lanes,
                    "beats": plan.classes / plan.out_lanes + 1, "class_bits": plan.class_bits() },
        "folding": folding,
        "cycles": {
            "interval": plan.interval,
            "bottleneck": plan.bottleneck,
            "formula": INTERVAL_FORMULA,
        },
        "totals": {
            "line_buffer_bits": total(|u| u.line_buffer_bits),
            "fifo_bits": total(|u| u.fifo_bits),
            "rom_bits": total(|u| u.rom_bits),
        },
        "ops": ops,
        "skip_fifos": fifos,
        "units": units,
        "modules": plan.modules().iter().map(|m| m.name()).collect::<Vec<_>>(),
        "files": verilog.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        "roms": plan.roms.iter().map(|r| r.file.as_str()).collect::<Vec<_>>(),
    })
}

/// Writes every file of the design into `dir` (created if needed), each atomically, first
/// removing the files an earlier `ratflow rtl` listed in a manifest there, so that a folder
/// never mixes two designs.
pub fn write(design: &Design, dir: &Path) -> Result<()> {
    if let Ok(text) = std::fs::read_to_string(dir.join("manifest.json"))
        && let Ok(m) = serde_json::from_str::<Value>(&text)
    {
        for key in ["files", "roms"] {
            for f in m[key].as_array().into_iter().flatten() {
                if let Some(name) = f.as_str()
                    && !name.contains(['/', '\\'])
                    && !name.starts_with('.')
                {
                    std::fs::remove_file(dir.join(name)).ok();
                }
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for f in design.files() {
        fsio::write_atomic(dir.join(&f.name), f.text.as_bytes())?;
    }
    fusesoc::write(design, dir)?;
    Ok(())
}

#[cfg(test)]
mod tests;
