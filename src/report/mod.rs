//! `REPORT.md` and its figures, rendered from the files the flow's stages wrote.
//!
//! The stages write typed JSON ([`artifacts`]); this module reads them back, turns them into
//! table rows and renders `templates/report/REPORT.md` (Askama). Nothing is typed in by hand:
//! a number in the report is a field of a stage's file, or a property of the final model or
//! the generated plan.

pub mod artifacts;
mod figures;

use crate::fsio::{self, read_json as read};
use crate::model::Model;
use crate::rtl::Design;
use anyhow::Result;
use artifacts::{AccuracySweep, Cosim, DesignRow, Fmax, RescalerRow, SourceInfo};
use askama::Template;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A progress bar in ratflow's style (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// One stage's bookkeeping, for the summary and the report.
#[derive(Clone, Debug, Serialize)]
pub struct StageLog {
    pub name: &'static str,
    pub seconds: f64,
    pub cached: bool,
    pub summary: String,
}

/// What the report is written from besides the run folder's files.
pub struct Inputs<'a> {
    pub out: PathBuf,
    pub quick: bool,
    /// The final model's rescale width.
    pub k: u32,
    pub final_model: &'a Model,
    pub final_path: PathBuf,
    pub k31_path: PathBuf,
    pub design: &'a Design,
    pub full_designs: bool,
    /// Whether the Fmax stage ran.
    pub fmax: bool,
    /// The command line that reproduces the run (for the header and the last section).
    pub command: String,
}

fn rel(out: &Path, p: &Path) -> String {
    p.strip_prefix(out).unwrap_or(p).display().to_string()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn pct(v: f64) -> String {
    format!("{v:.2}")
}

fn interval((a, b): (f64, f64)) -> String {
    format!("[{a:.2}, {b:.2}]")
}

/// Mermaid-safe node id and label text.
fn mm_id(i: usize) -> String {
    format!("op{i}")
}

fn mm_text(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "_-.:/ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.chars().count() > 40 {
        format!("{}...", t.chars().take(37).collect::<String>())
    } else {
        t
    }
}

/// The model as a Mermaid flowchart: one node per op, one edge per tensor read, so a
/// residual branch shows as two paths into its `add`.
pub fn mermaid(model: &Model) -> String {
    let mut s = String::from("flowchart LR\n");
    let input = model.input();
    s.push_str(&format!(
        "  in([\"s_axis: {} {:?}\"])\n",
        mm_text(&input.name),
        input.shape
    ));
    let producer = |t: usize| model.ops.iter().position(|o| o.output == t);
    for (i, op) in model.ops.iter().enumerate() {
        let io = model.io(op);
        s.push_str(&format!(
            "  {}[\"{}<br/>{}\"]\n",
            mm_id(i),
            mm_text(&op.name),
            op.kind.name()
        ));
        for (&t, tensor) in op.inputs.iter().zip(&io.inputs) {
            let from = producer(t).map_or("in".to_string(), mm_id);
            s.push_str(&format!(
                "  {from} -->|\"{:?}\"| {}\n",
                tensor.shape,
                mm_id(i)
            ));
        }
    }
    let out = model.outputs[0];
    let last = producer(out).map_or("in".to_string(), mm_id);
    s.push_str(&format!(
        "  out([\"m_axis: {} x int8, then the class\"])\n  {last} --> out\n",
        model.output().len()
    ));
    s
}

struct AccRow {
    k: u32,
    csd: String,
    ptq: String,
    ptq_ci: String,
    p: String,
    rat: String,
    rat_ci: String,
}

struct OpRow {
    name: String,
    kind: &'static str,
    k: u32,
    rounding: &'static str,
    m: String,
    s: String,
    per: &'static str,
    form: String,
    luts: String,
    fmax: String,
}

struct HwRow {
    k: u32,
    csd: String,
    rq_luts: u64,
    rq_ffs: u64,
    add_luts: u64,
    add_ffs: u64,
    pct: String,
    est: String,
}

struct DRow {
    label: String,
    target: String,
    luts: u64,
    ffs: u64,
    carries: u64,
    brams: u64,
    dsps: u64,
    rq: String,
    add: String,
    fit: String,
}

struct ShareRow {
    module: String,
    role: String,
    instances: u64,
    luts: u64,
    share: String,
    ffs: u64,
    brams: u64,
}

struct FoldRow {
    name: String,
    kind: &'static str,
    simd: usize,
    pe: usize,
    rq: usize,
    cycles: u64,
    latency: u64,
    lb: u64,
    fifo: u64,
    rom: u64,
}

#[derive(Template)]
#[template(path = "report/REPORT.md", escape = "none")]
struct Page {
    name: String,
    flags: String,
    version: &'static str,
    source: String,
    headline: Vec<(String, String)>,
    metric_title: &'static str,
    metric_note: String,
    rat_label: String,
    acc_rows: Vec<AccRow>,
    breaks: String,
    sweep_table: String,
    k: u32,
    op_rows: Vec<OpRow>,
    hw_rows: Vec<HwRow>,
    design_rows: Vec<DRow>,
    share_rows: Vec<ShareRow>,
    mermaid: String,
    fold_rows: Vec<FoldRow>,
    throughput: String,
    cosim: String,
    stages: Vec<(String, String, String)>,
    total: String,
    reproduce: Vec<String>,
}

/// Writes `REPORT.md` and `figures/` into the run folder.
pub fn write(inp: &Inputs, logs: &[StageLog], total_seconds: f64) -> Result<()> {
    let out = &inp.out;
    let k = inp.k;
    let model = inp.final_model;
    let source: SourceInfo = read(&out.join("source.json"))?;
    let acc: AccuracySweep = read(&out.join("sweep").join("accuracy.json"))?;
    let hw: Vec<RescalerRow> = read(&out.join("synth").join("rescalers_by_k.json"))?;
    let cosim: Cosim = read(&out.join("cosim.json"))?;
    let designs: Vec<DesignRow> = if inp.full_designs {
        read(&out.join("synth").join("designs.json"))?
    } else {
        Vec::new()
    };
    let plan = &inp.design.plan;

    let fig_dir = out.join("figures");
    fsio::write_atomic(
        fig_dir.join("accuracy_vs_k.svg"),
        figures::accuracy_vs_k(&acc)?.as_bytes(),
    )?;
    fsio::write_atomic(
        fig_dir.join("rescaler_vs_k.svg"),
        figures::rescaler_vs_k(&hw)?.as_bytes(),
    )?;
    fsio::write_atomic(
        fig_dir.join("datapath.svg"),
        figures::datapath(plan)?.as_bytes(),
    )?;

    let labels = acc.metric == "accuracy";
    let row_at = |kk: u32| acc.rows.iter().find(|r| r.k == kk && r.csd.is_none());
    let hw_at = |kk: u32| hw.iter().find(|r| r.k == kk && r.csd.is_none());
    let rescaler_luts = |r: &RescalerRow| r.requant.luts + r.add.luts;
    let fmaxes: Vec<Fmax> = if inp.fmax {
        read(&out.join("synth").join("fmax.json"))?
    } else {
        Vec::new()
    };
    let fmax_at = |kk: u32| fmaxes.iter().find(|f| f.k == kk);
    let fmax = fmax_at(k).and_then(|f| f.fmax_mhz);

    // Headline.
    let mut headline = Vec::new();
    if let Some(f) = source.float_accuracy {
        headline.push(("float network (training graph)".into(), format!("{f:.2}%")));
    }
    let what = if labels {
        "accuracy"
    } else {
        "top-1 agreement with k = 31"
    };
    headline.push((
        format!("int8, k = 31 rescalers ({what})"),
        format!("{}%", pct(acc.k31)),
    ));
    if let Some(r) = row_at(k) {
        headline.push((
            format!("int8, k = {k}, PTQ ({what})"),
            format!("{}% {}", pct(r.ptq), interval(r.ptq_ci)),
        ));
        if let (Some(v), Some(var)) = (r.rat, &acc.rat_variant) {
            headline.push((
                format!("int8, k = {k}, RAT {var} ({what}; the sweep's runs at k)"),
                format!(
                    "{}%{}",
                    pct(v),
                    r.rat_ci
                        .map(|c| format!(" {}", interval(c)))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    if let (Some(a), Some(b)) = (hw_at(k), hw_at(31)) {
        headline.push((
            format!("rescaler LUT4s (iCE40), k = {k} vs k = 31"),
            format!(
                "{} vs {}: {:.1}% (ADD's: {} vs {})",
                rescaler_luts(a),
                rescaler_luts(b),
                100.0 * rescaler_luts(a) as f64 / rescaler_luts(b).max(1) as f64,
                a.add.luts,
                b.add.luts
            ),
        ));
    }
    for target in ["ice40", "xilinx"] {
        let d = |l: &str| designs.iter().find(|r| r.label == l && r.target == target);
        if let (Some(a), Some(b)) = (d("final"), d("k31")) {
            headline.push((
                format!("whole design LUTs ({target}), k = {k} vs k = 31"),
                format!(
                    "{} vs {}: {:.1}%",
                    a.total.luts,
                    b.total.luts,
                    100.0 * a.total.luts as f64 / b.total.luts.max(1) as f64
                ),
            ));
        }
    }
    headline.push((
        "cycles per inference (manifest; measured without and with bubbles/stalls)".into(),
        format!(
            "{}; {:.0}, {:.0}",
            cosim.manifest_interval, cosim.clean_interval, cosim.measured_interval
        ),
    ));
    if let Some(f) = fmax {
        headline.push((
            "images/s at the largest rescaler's iCE40 Fmax".into(),
            format!(
                "{:.0} ({f:.1} MHz / {} cycles)",
                f * 1e6 / cosim.manifest_interval.max(1) as f64,
                cosim.manifest_interval
            ),
        ));
    }
    headline.push((
        "co-simulation (Verilator, bit-exact)".into(),
        format!("{} passed, {} failed", cosim.passed, cosim.failed),
    ));

    let acc_rows = acc
        .rows
        .iter()
        .map(|r| AccRow {
            k: r.k,
            csd: opt(r.csd),
            ptq: pct(r.ptq),
            ptq_ci: interval(r.ptq_ci),
            p: opt(r.ptq_p.map(|p| format!("{p:.3}"))),
            rat: opt(r.rat.map(pct)),
            rat_ci: opt(r.rat_ci.map(interval)),
        })
        .collect();
    let metric_note = if labels {
        format!(
            "Top-1 accuracy (%) on {} inputs ({}). PTQ re-derives every (m, s) at k from the \
             k = 31 network; the 95% interval is that of the paired difference to the k = 31 \
             network ({}%), shifted to the value; p is the exact McNemar test of the same pair.",
            acc.count,
            acc.data,
            pct(acc.k31)
        )
    } else {
        format!(
            "No labels: top-1 agreement (%) with the k = 31 network on {} inputs ({}), with \
             its Wilson 95% interval. PTQ re-derives every (m, s) at k from the k = 31 network.",
            acc.count, acc.data
        )
    };
    let breaks = match acc.ptq_breaks_at {
        Some(b) if labels => format!(
            "PTQ is significantly below k = 31 (interval below 0 and McNemar p < 0.05) from k = {b} down."
        ),
        Some(b) => {
            format!("PTQ agreement with k = 31 is significantly below 100% from k = {b} down.")
        }
        None => "PTQ stays within the noise of these inputs at every k of the sweep.".into(),
    };

    // Per-op rescalers.
    let units_at_k = hw_at(k).map(|r| r.units.clone()).unwrap_or_default();
    let mut op_rows = Vec::new();
    for (i, op) in model.ops.iter().enumerate() {
        let ds = op.kind.dyadics();
        if ds.is_empty() {
            continue;
        }
        let r = model.op_rescale(op);
        let nz: Vec<_> = ds.iter().filter(|d| d.m != 0).collect();
        let range = |f: &dyn Fn(&crate::quant::Dyadic) -> u32| -> String {
            match (nz.iter().map(|d| f(d)).min(), nz.iter().map(|d| f(d)).max()) {
                (Some(a), Some(b)) if a == b => a.to_string(),
                (Some(a), Some(b)) => format!("{a}..{b}"),
                _ => "-".into(),
            }
        };
        let per = match op.kind.channels().map(|c| c.per_tensor()) {
            Some(true) => "tensor",
            Some(false) => "channel",
            None => "add (3)",
        };
        let units: Vec<_> = units_at_k.iter().filter(|u| u.op == Some(i)).collect();
        let plan_form = plan
            .ops
            .iter()
            .find(|o| o.index == i)
            .map(|o| o.requant_form.to_string());
        op_rows.push(OpRow {
            name: mm_text(&op.name),
            kind: op.kind.name(),
            k: r.k_bits,
            rounding: r.rounding.as_str(),
            m: range(&|d| d.m),
            s: range(&|d| d.s),
            per,
            form: units
                .iter()
                .find_map(|u| u.form.clone())
                .or(plan_form)
                .unwrap_or_else(|| "-".into()),
            luts: if units.is_empty() {
                "-".into()
            } else {
                units.iter().map(|u| u.luts).sum::<u64>().to_string()
            },
            fmax: opt(fmax_at(k)
                .filter(|f| units.iter().any(|u| u.instance == f.unit))
                .and_then(|f| f.fmax_mhz)
                .map(|f| format!("{f:.1}"))),
        });
    }

    let base = hw_at(31).map(rescaler_luts);
    let hw_rows = hw
        .iter()
        .map(|r| HwRow {
            k: r.k,
            csd: opt(r.csd),
            rq_luts: r.requant.luts,
            rq_ffs: r.requant.ffs,
            add_luts: r.add.luts,
            add_ffs: r.add.ffs,
            pct: match base {
                Some(b) if b > 0 => format!("{:.1}%", 100.0 * rescaler_luts(r) as f64 / b as f64),
                _ => "-".into(),
            },
            est: {
                let e: f64 = r.units.iter().filter_map(|u| u.estimate_luts).sum();
                if e > 0.0 {
                    format!("{e:.0}")
                } else {
                    "-".into()
                }
            },
        })
        .collect();

    let design_rows = designs
        .iter()
        .map(|d| DRow {
            label: if d.label == "final" {
                format!("final, k = {}", d.k)
            } else {
                "k = 31".into()
            },
            target: d.target.clone(),
            luts: d.total.luts,
            ffs: d.total.ffs,
            carries: d.total.carries,
            brams: d.total.brams,
            dsps: d.total.dsps,
            rq: format!(
                "{} ({:.1}%)",
                d.requant.luts,
                100.0 * d.requant.luts as f64 / d.total.luts.max(1) as f64
            ),
            add: format!(
                "{} ({:.1}%)",
                d.add.luts,
                100.0 * d.add.luts as f64 / d.total.luts.max(1) as f64
            ),
            fit: d.fit.clone().unwrap_or_else(|| "-".into()),
        })
        .collect();
    let share_rows = designs
        .iter()
        .find(|d| d.label == "final" && d.target == "ice40")
        .map(|d| {
            d.shares
                .iter()
                .map(|s| ShareRow {
                    module: s.module.clone(),
                    role: s.role.clone(),
                    instances: s.instances,
                    luts: s.luts,
                    share: format!("{:.1}%", 100.0 * s.luts as f64 / d.total.luts.max(1) as f64),
                    ffs: s.ffs,
                    brams: s.brams,
                })
                .collect()
        })
        .unwrap_or_default();

    let fold_rows = plan
        .ops
        .iter()
        .map(|o| FoldRow {
            name: mm_text(&o.name),
            kind: o.kind,
            simd: o.fold.simd,
            pe: o.fold.pe,
            rq: o.fold.rq,
            cycles: o.cycles,
            latency: o.latency,
            lb: o.line_buffer_bits,
            fifo: o.fifo_bits,
            rom: o.rom_bits,
        })
        .collect();

    let throughput = format!(
        "The static schedule gives **{} cycles per inference** (`rtl/manifest.json`, folding \
         {}); the co-simulation measured {:.1} cycles between outputs with every beat offered \
         and taken at once ({:.1} under the random bubbles and stalls) and a latency of {} \
         cycles.{}",
        cosim.manifest_interval,
        cosim.folding,
        cosim.clean_interval,
        cosim.measured_interval,
        cosim.latency,
        match fmax {
            Some(f) => format!(
                " At {f:.1} MHz, the Fmax nextpnr-ice40 (HX8K) reached for the final model's \
                 largest rescaler unit on its own (`synth/fmax.json`: the widest arithmetic of \
                 the datapath; an upper bound for the whole design, which this flow does not \
                 place and route), that is **{:.0} images/s**.{}",
                f * 1e6 / cosim.manifest_interval.max(1) as f64,
                match fmax_at(31).and_then(|f| f.fmax_mhz) {
                    Some(f31) if k != 31 => format!(
                        " The same unit at k = 31 reaches {f31:.1} MHz ({:.0} images/s).",
                        f31 * 1e6 / cosim.manifest_interval.max(1) as f64
                    ),
                    _ => String::new(),
                }
            ),
            None if inp.fmax => " (no Fmax: nextpnr-ice40 is not installed).".into(),
            None => " (no Fmax: `--quick` does not place and route).".into(),
        }
    );
    let sim_rate = if cosim.cpu_seconds > 0.0 {
        format!(
            ", {:.0} images/s simulated ({:.2} M cycles/s of CPU time)",
            cosim.vectors as f64 / cosim.cpu_seconds,
            cosim.cycles as f64 / cosim.cpu_seconds / 1e6
        )
    } else {
        String::new()
    };
    let cosim_text = format!(
        "Verilator, {} golden vectors (`vectors.jsonl`) streamed through the top with random \
         input bubbles (p = {}) and output stalls (p = {}): **{} passed, {} failed**, every \
         element of the output tensor and the class compared{sim_rate}. Build {:.1} s{}.",
        cosim.vectors,
        cosim.bubble,
        cosim.stall,
        cosim.passed,
        cosim.failed,
        cosim.build_seconds,
        if cosim.build_cached { " (cached)" } else { "" }
    );

    let stages = logs
        .iter()
        .map(|l| {
            (
                l.name.to_string(),
                if l.cached {
                    "cached".into()
                } else {
                    format!("{:.1} s", l.seconds)
                },
                l.summary.replace('|', "/"),
            )
        })
        .collect();
    let final_rel = rel(out, &inp.final_path);
    let k31_rel = rel(out, &inp.k31_path);
    let page = Page {
        name: model.name.clone(),
        flags: if inp.quick {
            " --quick".into()
        } else {
            String::new()
        },
        version: crate::VERSION,
        source: match source.kind.as_str() {
            "trained" => format!(
                "a network trained here on the MNIST data in `{}` (`--arch {}`)",
                source.path,
                source.arch.as_deref().unwrap_or("-")
            ),
            "tflite" => format!("the int8 TFLite file `{}` (imported)", source.path),
            _ => format!("the int-model `{}`", source.path),
        },
        headline,
        metric_title: if labels {
            "Accuracy"
        } else {
            "Agreement with k = 31"
        },
        metric_note,
        rat_label: acc
            .rat_variant
            .as_ref()
            .map(|v| format!(" ({v})"))
            .unwrap_or_default(),
        acc_rows,
        breaks,
        sweep_table: acc.table.clone(),
        k,
        op_rows,
        hw_rows,
        design_rows,
        share_rows,
        mermaid: mermaid(model),
        fold_rows,
        throughput,
        cosim: cosim_text,
        stages,
        total: format!("{total_seconds:.0} s"),
        reproduce: vec![
            inp.command.clone(),
            format!("ratflow eval --model {final_rel}   # in the run folder"),
            format!("ratflow eval --model {k31_rel}"),
            format!("ratflow sim --model {final_rel} --vectors vectors.jsonl --rtl rtl"),
            format!("ratflow synth --model {final_rel} --target ice40"),
        ],
    };
    let text = crate::rtl::render(&page, "report")?;
    fsio::write_atomic(out.join("REPORT.md"), text.as_bytes())?;
    Ok(())
}
