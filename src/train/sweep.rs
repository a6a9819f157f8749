//! The k-sweep: from one QAT network, accuracy at every rescale width k for post-training
//! re-derivation (PTQ) and for both RAT variants with a small fixed fine-tuning budget.
//!
//! This is the paper's claim, measured: below some k, re-deriving `(m, s)` from the same
//! scales loses accuracy, and fine-tuning through the k-bit rescaler recovers it. Every
//! number in the table is the golden engine's accuracy on the exported int-model.
//!
//! Beyond the paper, the sweep also has rows for multiplierless rescalers: every `m` limited
//! to D non-zero canonical signed digits (one shift-add per extra digit) at the widths
//! `csd_ks`, for every D in `csd`. PTQ re-derives with [`crate::quant::derive_multiplier_csd`];
//! RAT trains through the same projection. A row is identified by `(k, csd_digits)`, with
//! `csd_digits` null for the plain k-bit rows; that pair is the join key for hardware reports.

use super::checkpoint::Checkpoint;
use super::exec::Exec;
use super::trainer::{self, Hyper, Mode, StageRun};
use super::{Stage, StageSetup, begin_stage, export_checkpoint, fingerprint};
use crate::data::Dataset;
use crate::error::input;
use crate::fsio;
use crate::quant::Rescale;
use crate::quant::{self, Rounding};
use crate::stats::{self, Paired, Runs};
use anyhow::Result;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The widths of the table, widest first; k = 1 is power-of-two rescaling.
pub const DEFAULT_KS: [u32; 10] = [31, 16, 12, 8, 6, 5, 4, 3, 2, 1];

/// A drop of more than this many points below the k = 31 model counts as broken (the
/// acceptance tolerance for the shipped k = 4 model).
pub const BREAK_TOLERANCE: f64 = 0.2;

/// CSD digit budgets of the default sweep: power-of-two rescaling, pairs, triples.
pub const DEFAULT_CSD: [u32; 3] = [3, 2, 1];

/// Widths of the default sweep's CSD rows: the flow's RAT width (4; there D = 3 does not bind,
/// a 4-bit m never needs more than 3 digits), 8, and 31, where the width no longer limits
/// where the digits may sit.
pub const DEFAULT_CSD_KS: [u32; 3] = [4, 8, 31];

pub struct SweepJob {
    pub qat: PathBuf,
    pub float: PathBuf,
    /// Widths of the plain (unconstrained k-bit) rows.
    pub ks: Vec<u32>,
    /// CSD digit budgets of the multiplierless rows (empty: none).
    pub csd: Vec<u32>,
    /// Widths of the CSD rows (one row per budget and width).
    pub csd_ks: Vec<u32>,
    pub out_dir: PathBuf,
    pub rat: Hyper,
    pub rounding: Rounding,
    pub seed: u64,
    pub threads: usize,
    pub progress: bool,
    /// Also write every int-model of the sweep into `out_dir/models/`.
    pub save_models: bool,
    /// RAT runs per k and variant, with seeds `seed, seed + 1, ...`; the table reports the
    /// mean (single fine-tuning runs differ by a few test images from seed to seed).
    pub repeats: usize,
    pub exec: Exec,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub k: u32,
    /// CSD digit budget of every `m` in this row (`None`: any k-bit `m`).
    pub csd: Option<u32>,
    pub ptq: f64,
    /// Mean golden accuracy over the repeats.
    pub rat_a: f64,
    pub rat_b: f64,
    /// Golden accuracy of each repeat of RAT-a and RAT-b.
    pub runs: [Vec<f64>; 2],
    /// Lowest graph-golden agreement over the repeats of RAT-a and RAT-b.
    pub agreement: [f64; 2],
    /// Content hashes of the PTQ model and of the first repeat of RAT-a and RAT-b.
    pub hashes: [String; 3],
    /// PTQ against the k = 31 QAT model, paired on the test images.
    pub ptq_vs_k31: Paired,
    /// RAT-a and RAT-b runs against the k = 31 QAT model.
    pub rat_vs_k31: [Runs; 2],
}

pub struct SweepResult {
    pub repeats: usize,
    pub float_accuracy: f64,
    pub qat_accuracy: f64,
    pub rows: Vec<Row>,
    /// Widest plain k at which PTQ breaks (CSD rows are not considered).
    pub breaks_at: Option<u32>,
    /// Widest plain k at which PTQ is significantly below the k = 31 model (the 95% interval
    /// of the paired difference lies below zero).
    pub breaks_at_significant: Option<u32>,
}

impl SweepResult {
    /// The plain k-bit rows.
    pub fn plain(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.csd.is_none())
    }

    /// The CSD-constrained rows.
    pub fn constrained(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.csd.is_some())
    }
}

fn load(path: &Path, want: Stage) -> Result<Checkpoint> {
    let ck = Checkpoint::load(path)?;
    if ck.stage != want {
        return Err(input(format!(
            "{}: a {} checkpoint is needed, this one is from stage {}",
            path.display(),
            want.as_str(),
            ck.stage.as_str()
        )));
    }
    Ok(ck)
}

pub fn run(job: &SweepJob, train: &Dataset, test: &Dataset) -> Result<SweepResult> {
    if job.repeats == 0 {
        return Err(input("--repeats must be at least 1"));
    }
    if job.ks.is_empty() && job.csd.is_empty() {
        return Err(input("--ks: no widths given"));
    }
    for (flag, ks) in [("--ks", &job.ks), ("--csd-ks", &job.csd_ks)] {
        if let Some(&k) = ks.iter().find(|k| !(1..=quant::MAX_K_BITS).contains(*k)) {
            return Err(input(format!(
                "{flag}: k = {k} is outside 1..={}",
                quant::MAX_K_BITS
            )));
        }
    }
    if let Some(&d) = job
        .csd
        .iter()
        .find(|d| !(1..=quant::MAX_CSD_DIGITS).contains(*d))
    {
        return Err(input(format!(
            "--csd: {d} digits is outside 1..={}",
            quant::MAX_CSD_DIGITS
        )));
    }
    if !job.csd.is_empty() && job.csd_ks.is_empty() {
        return Err(input("--csd-ks: no widths given for the CSD rows"));
    }
    let mut qat = load(&job.qat, Stage::Qat)?;
    let mut float = load(&job.float, Stage::Float)?;
    qat.net.set_exec(job.exec.clone())?;
    float.net.set_exec(job.exec.clone())?;
    super::check_data(&qat, train, "training data")?;
    super::check_data(&qat, test, "test data")?;
    super::check_data(&float, test, "test data")?;
    let qat_bytes = qat.to_bytes()?;
    let prefix = format!("{}_", qat.net.model_name());
    let float_preds = trainer::graph_predictions(&mut float.net, test, Mode::Float)?;
    let float_accuracy = trainer::accuracy_of(&float_preds, test);
    let copy = || -> Result<Checkpoint> {
        let mut c = Checkpoint::from_bytes(&qat_bytes)?;
        c.net.set_exec(job.exec.clone())?;
        Ok(c)
    };
    let mut qat_ref = copy()?;
    let reference = export_checkpoint(
        &mut qat_ref,
        Rescale::plain(quant::MAX_K_BITS, job.rounding),
        "qat_k31",
        test,
    )?;
    let qat_accuracy = reference.golden_accuracy;
    let mut rows = Vec::new();
    let mut models = Vec::new();
    let plain = job.ks.iter().map(|&k| Rescale::plain(k, job.rounding));
    let constrained = job.csd.iter().flat_map(|&d| {
        job.csd_ks.iter().map(move |&k| Rescale {
            k_bits: k,
            rounding: job.rounding,
            csd_digits: Some(d),
        })
    });
    for spec in plain.chain(constrained) {
        let mut ptq_ck = copy()?;
        let ptq = export_checkpoint(&mut ptq_ck, spec, &format!("ptq_{}", spec.tag()), test)?;
        let mut runs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut correct: [Vec<Vec<bool>>; 2] = [Vec::new(), Vec::new()];
        let mut agreement = [100f64; 2];
        let mut firsts = Vec::new();
        for (v, stage) in [Stage::RatPaper, Stage::RatLearned].into_iter().enumerate() {
            for r in 0..job.repeats {
                let seed = job.seed + r as u64;
                let mut ck = copy()?;
                let setup = StageSetup {
                    stage,
                    spec,
                    seed,
                    threads: job.threads,
                };
                begin_stage(&mut ck, &setup, &job.rat, train)?;
                trainer::train_stage(
                    &mut ck,
                    &StageRun {
                        stage,
                        hyper: &job.rat,
                        spec,
                        seed,
                        train,
                        test,
                        checkpoint: None,
                        progress: job.progress,
                        targets: None,
                    },
                )?;
                let ex = export_checkpoint(&mut ck, spec, &stage.file_stem(spec), test)?;
                runs[v].push(ex.golden_accuracy);
                correct[v].push(ex.golden_correct.clone());
                agreement[v] = agreement[v].min(ex.agreement);
                if r == 0 {
                    firsts.push(ex.model);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let row = Row {
            k: spec.k_bits,
            csd: spec.csd_digits,
            ptq: ptq.golden_accuracy,
            rat_a: mean(&runs[0]),
            rat_b: mean(&runs[1]),
            agreement,
            hashes: [
                ptq.model.content_hash(),
                firsts[0].content_hash(),
                firsts[1].content_hash(),
            ],
            runs,
            ptq_vs_k31: stats::paired(&reference.golden_correct, &ptq.golden_correct),
            rat_vs_k31: [
                stats::runs(&reference.golden_correct, &correct[0]),
                stats::runs(&reference.golden_correct, &correct[1]),
            ],
        };
        if job.progress {
            eprintln!(
                "{:<7}: PTQ {:.2}%  RAT-a {:.2}% {:?}  RAT-b {:.2}% {:?}",
                spec.tag(),
                row.ptq,
                row.rat_a,
                row.runs[0],
                row.rat_b,
                row.runs[1]
            );
        }
        rows.push(row);
        if job.save_models {
            models.push(ptq.model);
            models.extend(firsts);
        }
    }
    let breaks_at = rows
        .iter()
        .filter(|r| r.csd.is_none() && r.ptq < qat_accuracy - BREAK_TOLERANCE)
        .map(|r| r.k)
        .max();
    let breaks_at_significant = rows
        .iter()
        .filter(|r| r.csd.is_none() && r.ptq_vs_k31.ci95.1 < 0.0)
        .map(|r| r.k)
        .max();
    let result = SweepResult {
        repeats: job.repeats,
        float_accuracy,
        qat_accuracy,
        rows,
        breaks_at,
        breaks_at_significant,
    };
    let summary = to_json(&result, job, train, test);
    // Build every output first, then write: a failure leaves no half-written set behind.
    let svg = super::plot::svg(&result)?;
    let svg_csd = match result.constrained().next() {
        Some(_) => Some(super::plot::svg_csd(&result)?),
        None => None,
    };
    let md = markdown(&result);
    fsio::write_atomic(
        job.out_dir.join("sweep.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    fsio::write_atomic(job.out_dir.join("sweep.md"), md.as_bytes())?;
    fsio::write_atomic(job.out_dir.join("sweep.svg"), svg.as_bytes())?;
    let csd_plot = job.out_dir.join("sweep_csd.svg");
    match svg_csd {
        Some(svg) => fsio::write_atomic(&csd_plot, svg.as_bytes())?,
        // A plot left from an earlier sweep into the same folder would not match this one.
        None if csd_plot.is_file() => std::fs::remove_file(&csd_plot)?,
        None => {}
    }
    for m in &models {
        m.save(
            &job.out_dir
                .join("models")
                .join(format!("{}.json", m.name.trim_start_matches(&prefix))),
        )?;
    }
    Ok(result)
}

fn to_json(r: &SweepResult, job: &SweepJob, train: &Dataset, test: &Dataset) -> Value {
    json!({
        "tool": format!("ratflow {}", crate::VERSION),
        "rounding": job.rounding.as_str(), "seed": job.seed, "threads": job.threads,
        "rat_budget": job.rat.to_json(), "repeats": job.repeats,
        "train_data": fingerprint(train), "test_data": fingerprint(test),
        "float_accuracy": r.float_accuracy, "qat_k31_accuracy": r.qat_accuracy,
        "break_tolerance_points": BREAK_TOLERANCE, "ptq_breaks_at_k": r.breaks_at,
        "ks": job.ks, "csd": job.csd, "csd_ks": job.csd_ks,
        "rows": r.rows.iter().map(|row| json!({
            "k": row.k, "csd_digits": row.csd, "tag": tag(row),
            "ptq": row.ptq, "rat_a": row.rat_a, "rat_b": row.rat_b,
            "float": r.float_accuracy,
            "rat_a_runs": row.runs[0], "rat_b_runs": row.runs[1],
            "rat_a_min_agreement": row.agreement[0], "rat_b_min_agreement": row.agreement[1],
            "hash": { "ptq": row.hashes[0], "rat_a": row.hashes[1], "rat_b": row.hashes[2] },
            "ptq_vs_k31": row.ptq_vs_k31.to_json(),
            "rat_a_vs_k31": row.rat_vs_k31[0].to_json(),
            "rat_b_vs_k31": row.rat_vs_k31[1].to_json(),
        })).collect::<Vec<_>>(),
        "reference": "qat_k31",
        "ptq_breaks_at_k_significant": r.breaks_at_significant,
    })
}

/// A row's file-name tag: `k8`, or `k8_csd2` (also its models' name suffix).
pub fn tag(row: &Row) -> String {
    Rescale {
        k_bits: row.k,
        rounding: Rounding::Single,
        csd_digits: row.csd,
    }
    .tag()
}

/// The table of the issue: k, CSD digit budget (`-`: any k-bit m), PTQ, RAT-a, RAT-b, float
/// (golden accuracy, percent).
pub fn markdown(r: &SweepResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| k | CSD digits | PTQ acc | RAT-a acc | RAT-b acc | float acc |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
    for row in &r.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            row.k,
            row.csd.map_or("-".to_string(), |d| d.to_string()),
            row.ptq,
            row.rat_a,
            row.rat_b,
            r.float_accuracy
        );
    }
    let _ = writeln!(
        s,
        "\nGolden-model accuracy (%) on the test split. PTQ re-derives (m, s) at k bits from the \
         k = 31 QAT network (no training); RAT columns are the mean of {} fine-tuning run(s) \
         from it. The k = 31 QAT model itself: {:.2}%.",
        r.repeats, r.qat_accuracy
    );
    if r.constrained().next().is_some() {
        let _ = writeln!(
            s,
            "Rows with CSD digits D limit every m to at most D non-zero canonical signed digits \
             (D = 1: power-of-two rescaling; a baked constant then costs D - 1 adders); PTQ \
             projects onto the nearest such m, RAT trains through that projection."
        );
    }
    let _ = writeln!(
        s,
        "\nDifference against the k = 31 QAT model, in points, paired on the same test images \
         (95% interval over the images; PTQ: exact McNemar p; RAT: mean of {} run(s) +- the \
         standard deviation between runs). `*`: the interval excludes 0.\n",
        r.repeats
    );
    let _ = writeln!(
        s,
        "| k | CSD digits | PTQ diff [95% CI] | McNemar p | RAT-a diff +- sd [95% CI] | RAT-b diff +- sd [95% CI] |"
    );
    let _ = writeln!(s, "|---:|---:|---|---:|---|---|");
    let star = |b: bool| if b { "*" } else { "" };
    for row in &r.rows {
        let p = &row.ptq_vs_k31;
        let runs = |x: &Runs| {
            format!(
                "{:+.2} +- {:.2} [{:+.2}, {:+.2}]{}",
                x.diff,
                x.spread,
                x.ci95.0,
                x.ci95.1,
                star(x.significant())
            )
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:+.2} [{:+.2}, {:+.2}]{} | {:.3} | {} | {} |",
            row.k,
            row.csd.map_or("-".to_string(), |d| d.to_string()),
            p.diff,
            p.ci95.0,
            p.ci95.1,
            star(p.significant()),
            p.p,
            runs(&row.rat_vs_k31[0]),
            runs(&row.rat_vs_k31[1]),
        );
    }
    let _ = writeln!(s);
    match r.breaks_at_significant {
        Some(k) => {
            let _ = writeln!(
                s,
                "Widest k at which PTQ is significantly below the k = 31 model (95% interval below 0): k = {k}."
            );
        }
        None => {
            let _ = writeln!(
                s,
                "PTQ is not significantly below the k = 31 model at any k swept (95% intervals)."
            );
        }
    }
    match r.breaks_at {
        Some(k) => {
            let _ = writeln!(
                s,
                "Widest k at which PTQ falls more than {BREAK_TOLERANCE} points below the k = 31 model: k = {k}."
            );
        }
        None => {
            let _ = writeln!(
                s,
                "PTQ stays within {BREAK_TOLERANCE} points of the k = 31 model at every k swept."
            );
        }
    }
    s
}
