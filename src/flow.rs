//! `ratflow flow`: the whole mission in one command, for a network trained here (`--arch`) or
//! brought along (`--model X.tflite|X.json`).
//!
//! source (train float -> QAT -> RAT, or import) -> accuracy against k (PTQ and RAT, paired
//! statistics) -> final model at k -> RTL at a folding -> golden vectors -> Verilator
//! co-simulation -> yosys (rescalers at every k, whole designs) -> `REPORT.md`. Every artifact
//! lands in one run folder as a typed JSON file ([`artifacts`]). Each stage is keyed by a hash
//! of its inputs (files by content, settings by value, the ratflow version); a re-run skips the
//! stages whose key and outputs are unchanged.

use crate::data::{self, InputSet, Split, npy};
use crate::error::input;
use crate::fsio::{self, read_json, write_json};
use crate::golden::{self, vectors};
use crate::model::Model;
use crate::quant::{self, Rescale, Rounding};
use crate::report;
use crate::report::StageLog;
use crate::report::artifacts::{
    AccuracyRow, AccuracySweep, Cosim, DesignRow, Fmax, RescalerRow, SourceInfo,
};
use crate::rtl;
use crate::sim;
use crate::synth::{self, Scope, yosys::Target};
use crate::train::{self, Stage, finetune, sweep};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The MNIST CNN of `models/cnn/` (a residual block, six requantizers in series plus an ADD):
/// what `ratflow flow` trains when given neither `--arch` nor `--model`.
pub const DEFAULT_ARCH: &str = "conv2d:16:3x3,batchnorm,relu,max_pool2d:2,res(conv2d:16:3x3,batchnorm,relu,conv2d:16:3x3,batchnorm),relu,max_pool2d:2,conv2d:32:3x3,batchnorm,relu,flatten,dense:10";

/// Where the network comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Trained here on `--data` (float, QAT, RAT) from this architecture.
    Arch(String),
    /// An int8 `.tflite` (imported) or an int-model JSON.
    Model(PathBuf),
}

/// What the flow was asked for.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    pub out: PathBuf,
    pub source: Source,
    /// MNIST IDX folder: training data of `--arch`, evaluation (and RAT) data of MNIST-shaped
    /// models without `--inputs`.
    pub data: PathBuf,
    /// Inputs (and labels) of a `--model` network.
    pub inputs: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    pub quick: bool,
    /// Rescale width of the final model; `None`: 4 for a trained network, and for a model the
    /// narrowest k whose PTQ agreement with k = 31 is at least `min_agreement`.
    pub k: Option<u32>,
    pub min_agreement: f64,
    /// ... or the SNR (dB) of the final tensor against k = 31 it must keep.
    pub min_snr_db: f64,
    pub rounding: Rounding,
    /// Which RAT variant becomes the final (hardware) model.
    pub variant: Stage,
    pub seed: u64,
    pub threads: usize,
    pub folding: rtl::Spec,
    /// Re-run every stage even when its inputs did not change.
    pub force: bool,
    /// Also synthesize the whole final and k = 31 designs (iCE40, Xilinx): minutes for the
    /// MNIST CNN, more than an hour of yosys for DS-CNN on a 2-core machine.
    pub designs: bool,
    /// The command line, for the report's "reproduce" section.
    pub command: String,
}

/// The settings that differ between the full flow and `--quick` (what CI runs).
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub recipe: train::Recipe,
    pub ks: Vec<u32>,
    /// CSD digit budgets of the multiplierless rows (trained networks), at the final k.
    pub csd: Vec<u32>,
    pub sweep_epochs: usize,
    pub repeats: usize,
    /// Widths whose rescalers are synthesized (those of `ks`, plus the final k): a k = 31
    /// requantizer with a channel ROM takes yosys half a minute on this machine.
    pub hw_ks: Vec<u32>,
    /// Inputs of a `--model` network's sweep when they are random.
    pub random_inputs: usize,
    pub vectors: usize,
    /// Place and route the largest rescaler for its Fmax.
    pub fmax: bool,
    /// Synthesize whole datapaths (the final model and the k = 31 model), not only rescalers.
    pub full_designs: bool,
}

impl Budget {
    pub fn of(quick: bool, source: &Source) -> Budget {
        let mut recipe = train::Recipe::default();
        let cnn = matches!(source, Source::Arch(a) if a.contains("conv"));
        // A CNN epoch costs ~30x an MLP epoch here; these budgets keep `make flow` (CNN + DS-CNN)
        // under 30 minutes on 2 cores and still reach the model card's accuracy band.
        (recipe.float.epochs, recipe.qat.epochs, recipe.rat.epochs) = match (quick, cnn) {
            (true, true) => (2, 1, 1),
            (true, false) => (15, 2, 2),
            (false, true) => (20, 4, 3),
            (false, false) => (60, 6, 4),
        };
        let ks = if quick {
            vec![31, 8, 4, 2]
        } else {
            match source {
                // The widths where the CNN's PTQ and RAT part ways (models/README.md), not
                // all ten of `ratflow sweep`: each is 2 x repeats RAT runs.
                Source::Arch(_) => vec![31, 8, 6, 4, 3, 2, 1],
                Source::Model(_) => vec![31, 16, 12, 8, 6, 5, 4, 3, 2],
            }
        };
        Budget {
            recipe,
            hw_ks: if quick { vec![] } else { vec![31, 8, 4, 2] },
            ks,
            csd: if quick { vec![] } else { vec![2] },
            sweep_epochs: 1,
            repeats: if quick { 1 } else { 2 },
            random_inputs: if quick { 50 } else { 200 },
            vectors: if quick { 20 } else { 200 },
            fmax: !quick,
            full_designs: false,
        }
    }
}

/// Stage keys persisted in the run folder.
struct Ledger {
    path: PathBuf,
    keys: serde_json::Map<String, Value>,
    force: bool,
    logs: Vec<StageLog>,
    total: usize,
}

impl Ledger {
    fn open(out: &Path, force: bool, total: usize) -> Ledger {
        let path = out.join(".flow-state.json");
        let keys = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        Ledger {
            path,
            keys,
            force,
            logs: Vec::new(),
            total,
        }
    }

    /// Runs `work` unless `name` already ran with this `key` and its `outputs` exist.
    /// `work` returns a one-line summary; a cached stage's summary is kept from its run.
    fn stage(
        &mut self,
        name: &'static str,
        key: &str,
        outputs: &[PathBuf],
        work: impl FnOnce() -> Result<String>,
    ) -> Result<()> {
        let n = self.logs.len() + 1;
        let stored = self.keys.get(name);
        let fresh = !self.force
            && stored.and_then(|v| v["key"].as_str()) == Some(key)
            && outputs.iter().all(|p| p.exists());
        if fresh {
            let summary = stored
                .and_then(|v| v["summary"].as_str())
                .unwrap_or("")
                .to_string();
            eprintln!(
                "[{n}/{}] {name}: unchanged, skipped ({summary})",
                self.total
            );
            self.logs.push(StageLog {
                name,
                seconds: 0.0,
                cached: true,
                summary,
            });
            return Ok(());
        }
        eprintln!("[{n}/{}] {name} ...", self.total);
        let t0 = Instant::now();
        let summary = work().with_context(|| format!("flow stage `{name}`"))?;
        let seconds = t0.elapsed().as_secs_f64();
        eprintln!("[{n}/{}] {name}: {summary} ({seconds:.1} s)", self.total);
        self.keys
            .insert(name.into(), json!({ "key": key, "summary": summary }));
        fsio::write_atomic(
            &self.path,
            serde_json::to_string_pretty(&Value::Object(self.keys.clone()))?.as_bytes(),
        )?;
        self.logs.push(StageLog {
            name,
            seconds,
            cached: false,
            summary,
        });
        Ok(())
    }
}

/// A stage key: SHA-256 over the ratflow version, the settings and the named files' bytes.
fn key(settings: &Value, files: &[&Path]) -> Result<String> {
    let mut text = format!("ratflow {}\n{settings}\n", crate::VERSION);
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        text.push_str(&format!("{} {}\n", f.display(), fsio::sha256_hex(&bytes)));
    }
    Ok(fsio::sha256_hex(text.as_bytes())[..16].to_string())
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains("-ubyte"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What the report needs, as the stages produced it.
pub struct FlowResult {
    pub logs: Vec<StageLog>,
    pub report: PathBuf,
}

/// The data a network is measured (and, with labels, fine-tuned) on.
struct EvalData {
    /// Measures accuracy or agreement; the golden vectors come from its first inputs.
    test: InputSet,
    /// Fine-tuning data of a `--model` network (with whether its labels are real), if any.
    train: Option<(data::Dataset, data::Dataset, bool)>,
    files: Vec<PathBuf>,
}

/// Runs the flow. Errors of any stage stop it (the run folder keeps what finished).
pub fn run(cfg: &FlowConfig) -> Result<FlowResult> {
    if let Some(k) = cfg.k.filter(|k| !(1..=quant::MAX_K_BITS).contains(k)) {
        return Err(input(format!(
            "--k {k} is outside 1..={}",
            quant::MAX_K_BITS
        )));
    }
    if !matches!(cfg.variant, Stage::RatPaper | Stage::RatLearned) {
        return Err(input("--variant must be rat-a or rat-b"));
    }
    if !(0.0..=100.0).contains(&cfg.min_agreement) {
        return Err(input("--min-agreement must be a percentage in 0..=100"));
    }
    let mut budget = Budget::of(cfg.quick, &cfg.source);
    budget.full_designs = cfg.designs;
    // A model is read (and refused) before the run folder exists.
    let source_model = match &cfg.source {
        Source::Model(p) => Some(finetune::load_source(p)?),
        Source::Arch(a) => {
            train::arch::Arch::from_arg(a)?;
            None
        }
    };
    // Everything external is checked before the first minute of work.
    sim::verilator()?;
    crate::tools::require("yosys", "yosys")?;
    let mut arch_test = None;
    let eval = match &source_model {
        Some(m) => model_data(cfg, m, &budget)?,
        // A network trained here is measured on the MNIST test split, quantized once its
        // input (S, Z) is known; reading it now refuses a bad --data before any training.
        None => {
            arch_test = Some(data::load(&cfg.data, Split::Test)?);
            EvalData {
                test: InputSet::random(0, 0, 0, Vec::new()),
                train: None,
                files: data_files(&cfg.data),
            }
        }
    };
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let started = Instant::now();
    let mut ledger = Ledger::open(
        &cfg.out,
        cfg.force,
        8 + usize::from(budget.fmax) + usize::from(budget.full_designs),
    );
    let out = &cfg.out;
    let eval_files = eval.files.clone();
    let efiles: Vec<&Path> = eval_files.iter().map(|p| p.as_path()).collect();

    // 1-2. The network and its accuracy against k.
    let acc_path = out.join("sweep").join("accuracy.json");
    let (k, final_path, k31_path) = match (&cfg.source, &source_model) {
        (Source::Arch(arch), _) => {
            let k = cfg.k.unwrap_or(4);
            let (f, r) = trained(cfg, arch, k, &budget, &mut ledger, &acc_path)?;
            (k, f, r)
        }
        (Source::Model(path), Some(model)) => brought(
            cfg,
            path,
            model,
            &eval,
            &budget,
            &mut ledger,
            &acc_path,
            &efiles,
        )?,
        (Source::Model(_), None) => unreachable!("a --model source is loaded above"),
    };
    let final_model = Model::load(&final_path)?;
    // A trained network's input (S, Z) is known only now.
    let eval = match &arch_test {
        Some(d) => {
            let q = final_model.input().q;
            EvalData {
                test: InputSet::from_dataset(d, q.scale, q.zero_point, "MNIST t10k"),
                ..eval
            }
        }
        None => eval,
    };

    // 3. RTL of the final model.
    let rtl_dir = out.join("rtl");
    let rtl_opts = rtl::Options {
        folding: cfg.folding.clone(),
        ..Default::default()
    };
    let design = rtl::generate(&final_model, &rtl_opts)?;
    let rtl_key = key(
        &json!({ "model": final_model.content_hash(), "folding": format!("{:?}", cfg.folding) }),
        &[&final_path],
    )?;
    ledger.stage(
        "rtl",
        &rtl_key,
        &[rtl_dir.join("manifest.json"), rtl_dir.join("files.f")],
        || {
            rtl::write(&design, &rtl_dir)?;
            Ok(format!(
                "{} Verilog files, {} units, folding {} at {} cycles: {} cycles/inference",
                design.verilog.len(),
                design.plan.units.len(),
                design.plan.folding.rule,
                design.plan.folding.target,
                design.plan.interval
            ))
        },
    )?;

    // 4. Golden vectors of the evaluation inputs.
    let vec_path = out.join("vectors.jsonl");
    let nvec = budget.vectors.min(eval.test.len());
    let vec_key = key(
        &json!({ "model": final_model.content_hash(), "count": nvec, "inputs": eval.test.source }),
        &efiles,
    )?;
    ledger.stage("vectors", &vec_key, std::slice::from_ref(&vec_path), || {
        let vs = vectors::generate(&final_model, &eval.test, Some(nvec), false)?;
        vectors::write_jsonl(&vec_path, &vs)?;
        Ok(format!(
            "{} golden vectors ({})",
            vs.len(),
            eval.test.source
        ))
    })?;

    // 5. Verilator co-simulation of the generated RTL against those vectors.
    let cosim_path = out.join("cosim.json");
    let cosim_key = key(
        &json!({ "rtl": rtl_key, "artifact": 2 }),
        &[&vec_path, &rtl_dir.join("manifest.json")],
    )?;
    ledger.stage(
        "cosim",
        &cosim_key,
        std::slice::from_ref(&cosim_path),
        || {
            let vs = vectors::read_jsonl(&vec_path, &final_model)?;
            let mut d = design.clone();
            sim::use_rtl_dir(&mut d, &rtl_dir)?;
            let sources = sim::network_sources(&d, false)?;
            let built = sim::build(&sources, &sim::cache_root(None))?;
            let opts = sim::RunOptions::default();
            let outcome = sim::run_network(&built, &d.plan, &vs, &opts)?;
            // The interval again without bubbles or stalls: what the manifest's schedule
            // promises (an input-bound design runs slower when the input has gaps).
            let clean_opts = sim::RunOptions {
                bubble: 0.0,
                stall: 0.0,
                ..sim::RunOptions::default()
            };
            let few = vs.first(8);
            let clean = sim::run_network(&built, &d.plan, &few, &clean_opts)?;
            if outcome.failed > 0 || !outcome.success || outcome.passed != vs.len() as u64
                || clean.failed > 0
                || !clean.success
            {
                let first: Vec<&str> = outcome.mismatches().into_iter().take(5).collect();
                bail!(
                    "co-simulation failed: {} passed, {} failed\n{}",
                    outcome.passed,
                    outcome.failed,
                    first.join("\n")
                );
            }
            let c = Cosim {
                model: final_model.name.clone(),
                hash: final_model.content_hash(),
                folding: format!("{} at {} cycles", d.plan.folding.rule, d.plan.folding.target),
                vectors: vs.len(),
                passed: outcome.passed,
                failed: outcome.failed,
                cycles: outcome.cycles,
                manifest_interval: d.plan.interval,
                measured_interval: outcome.interval,
                clean_interval: clean.interval,
                latency: outcome.latency,
                wall_seconds: outcome.wall_seconds,
                cpu_seconds: outcome.cpu_seconds,
                build_seconds: built.build_seconds,
                build_cached: built.cached,
                bubble: opts.bubble,
                stall: opts.stall,
            };
            write_json(&cosim_path, &c)?;
            Ok(format!(
                "{} passed, {} failed (Verilator, random bubbles and stalls); {:.0} cycles/inference without them vs {} in the manifest",
                c.passed, c.failed, c.clean_interval, c.manifest_interval
            ))
        },
    )?;

    // 6. Rescaler cost at every k: the final network's requantizers and ADDs re-derived at k
    // (trained networks: the RAT models of the sweep), each unit synthesized for iCE40.
    let syn_dir = out.join("synth");
    let hw_path = syn_dir.join("rescalers_by_k.json");
    let sweep_models = rescaler_models(cfg, &budget, k, &final_path, out);
    let mut key_files: Vec<&Path> = sweep_models
        .iter()
        .filter_map(|(_, p)| p.as_deref())
        .collect();
    key_files.push(&final_path);
    let hw_key = key(
        &json!({ "folding": format!("{:?}", cfg.folding), "ks": budget.ks, "hw_ks": budget.hw_ks, "csd": budget.csd, "k": k }),
        &key_files,
    )?;
    ledger.stage(
        "synth-rescalers",
        &hw_key,
        std::slice::from_ref(&hw_path),
        || {
            let bar = report::progress(sweep_models.len() as u64, "rescalers per k");
            let mut rows = Vec::new();
            for (spec, path) in &sweep_models {
                bar.set_message(spec.tag());
                let model = match path {
                    Some(p) => Model::load(p)?,
                    None => final_model
                        .rederived(*spec)
                        .map_err(|e| input(format!("k = {}: {e}", spec.k_bits)))?,
                };
                let multiplier = if spec.csd_digits.is_some() {
                    rtl::MulForm::Csd
                } else {
                    rtl::MulForm::Mul
                };
                let opts = rtl::Options {
                    multiplier,
                    ..rtl_opts.clone()
                };
                let d = rtl::generate(&model, &opts)?;
                let dir = syn_dir.join(spec.tag());
                rtl::write(&d, &dir.join("rtl"))?;
                let cost = synth::synthesize(
                    &d,
                    &dir.join("rtl"),
                    &dir.join("yosys"),
                    Target::Ice40,
                    Scope::Requant,
                    false,
                )?;
                rows.push(RescalerRow::from_cost(spec.k_bits, spec.csd_digits, &cost));
                bar.inc(1);
            }
            bar.finish_and_clear();
            write_json(&hw_path, &rows)?;
            let luts = |kk: u32| {
                rows.iter()
                    .find(|r| r.k == kk && r.csd.is_none())
                    .map(|r| r.requant.luts + r.add.luts)
            };
            Ok(match (luts(k), luts(31)) {
                (Some(a), Some(b)) if b > 0 => format!(
                    "{} rescaler sets; k = {k}: {a} LUT4s, {:.1}% of k = 31's {b}",
                    rows.len(),
                    100.0 * a as f64 / b as f64
                ),
                _ => format!("{} rescaler sets", rows.len()),
            })
        },
    )?;

    // 6b. Fmax: place and route (nextpnr-ice40, HX8K) of the largest rescaler unit at k and at
    // k = 31, the widest arithmetic on any path. One unit each: a whole CNN does not fit an
    // iCE40, and routing every unit costs minutes apiece.
    let fmax_path = syn_dir.join("fmax.json");
    let fkey = key(&json!({ "after": hw_key, "k": k }), &[&hw_path])?;
    let fmax_work = || {
        let rows: Vec<RescalerRow> = read_json(&hw_path)?;
        let mut found = Vec::new();
        let mut tasks = Vec::new();
        for kk in [k, 31] {
            let Some(r) = rows.iter().find(|r| r.k == kk && r.csd.is_none()) else {
                continue;
            };
            if let Some(u) = r.units.iter().max_by_key(|u| u.luts) {
                let dir = syn_dir.join(Rescale::plain(kk, cfg.rounding).tag());
                let unit = dir.join("yosys").join(&u.instance);
                tasks.push((kk, u.instance.clone(), u.luts, unit));
            }
            if kk == 31 {
                break;
            }
        }
        let results = synth::par_map(&tasks, 2, |(_, _, _, unit)| {
            synth::yosys::ice40_fmax(&unit.join("netlist.json"), unit)
        });
        for ((kk, inst, luts, _), r) in tasks.iter().zip(results) {
            found.push(artifacts_fmax(*kk, inst, *luts, r?));
        }
        write_json(&fmax_path, &found)?;
        Ok(found
            .iter()
            .map(|f| format!("k = {}: {} MHz ({})", f.k, opt_mhz(f.fmax_mhz), f.unit))
            .collect::<Vec<_>>()
            .join("; "))
    };
    if budget.fmax {
        ledger.stage("fmax", &fkey, std::slice::from_ref(&fmax_path), fmax_work)?;
    }

    // 7. Whole datapaths (full flow only): the final model and the k = 31 model, iCE40 and
    // Xilinx 7-series, with each library module's share.
    let design_path = syn_dir.join("designs.json");
    if budget.full_designs {
        let dkey = key(
            &json!({ "folding": format!("{:?}", cfg.folding), "targets": ["ice40", "xilinx"] }),
            &[&final_path, &k31_path],
        )?;
        ledger.stage(
            "synth-designs",
            &dkey,
            std::slice::from_ref(&design_path),
            || {
                let mut tasks = Vec::new();
                for (label, path) in [("final", &final_path), ("k31", &k31_path)] {
                    let model = Model::load(path)?;
                    let d = std::sync::Arc::new(rtl::generate(&model, &rtl_opts)?);
                    let dir = syn_dir.join(format!("design-{label}"));
                    rtl::write(&d, &dir.join("rtl"))?;
                    // Xilinx for the hardware model only: a whole-CNN synth_xilinx is the
                    // slowest run of the flow.
                    let targets: &[Target] = if label == "final" {
                        &[Target::Ice40, Target::Xilinx]
                    } else {
                        &[Target::Ice40]
                    };
                    for &target in targets {
                        tasks.push((label, d.clone(), dir.clone(), target));
                    }
                }
                let bar = report::progress(tasks.len() as u64, "whole datapaths");
                let rows: Vec<DesignRow> = synth::par_map(&tasks, 2, |(label, d, dir, target)| {
                    let cost = synth::synthesize(
                        d,
                        &dir.join("rtl"),
                        &dir.join(target.as_str()),
                        *target,
                        Scope::Design,
                        false,
                    );
                    bar.inc(1);
                    cost.map(|c| DesignRow::from_cost(label, &c))
                })
                .into_iter()
                .collect::<Result<_>>()?;
                bar.finish_and_clear();
                write_json(&design_path, &rows)?;
                let luts = |l: &str| {
                    rows.iter()
                        .find(|r| r.label == l && r.target == "ice40")
                        .map(|r| r.total.luts)
                };
                Ok(match (luts("final"), luts("k31")) {
                    (Some(a), Some(b)) if b > 0 => format!(
                        "{} syntheses; iCE40 LUT4s k = {k} {a} vs k = 31 {b} ({:.1}%)",
                        rows.len(),
                        100.0 * a as f64 / b as f64
                    ),
                    _ => format!("{} syntheses", rows.len()),
                })
            },
        )?;
    }

    // 8. The report, always rewritten from the stages' files.
    let report_path = out.join("REPORT.md");
    let t0 = Instant::now();
    let n = ledger.logs.len() + 1;
    eprintln!("[{n}/{}] report ...", ledger.total);
    let mut logs = ledger.logs.clone();
    let inputs = report::Inputs {
        out: out.clone(),
        quick: cfg.quick,
        k,
        final_model: &final_model,
        final_path: final_path.clone(),
        k31_path: k31_path.clone(),
        design: &design,
        full_designs: budget.full_designs,
        fmax: budget.fmax,
        command: cfg.command.clone(),
    };
    report::write(&inputs, &logs, started.elapsed().as_secs_f64())?;
    let secs = t0.elapsed().as_secs_f64();
    logs.push(StageLog {
        name: "report",
        seconds: secs,
        cached: false,
        summary: report_path.display().to_string(),
    });
    eprintln!(
        "[{n}/{}] report: {} ({secs:.1} s)",
        ledger.total,
        report_path.display()
    );
    write_json(&out.join("stages.json"), &logs)?;
    Ok(FlowResult {
        logs,
        report: report_path,
    })
}

/// The evaluation (and fine-tuning) data of a `--model` network: `--inputs` (with `--labels`),
/// else MNIST for MNIST-shaped inputs, else random int8 codes.
fn model_data(cfg: &FlowConfig, m: &Model, budget: &Budget) -> Result<EvalData> {
    let t = m.input();
    if let Some(x) = &cfg.inputs {
        let codes = npy::read_inputs(x, t.len(), t.q.scale, t.q.zero_point)?;
        if codes.is_empty() {
            return Err(input(format!("{}: no inputs", x.display())));
        }
        let labels = cfg
            .labels
            .as_ref()
            .map(|l| npy::read_labels(l, codes.len(), m.num_classes()))
            .transpose()?;
        let real = labels.is_some();
        let lab = labels.clone().unwrap_or_else(|| {
            let unlabelled = finetune::codes_dataset(&codes, &vec![0; codes.len()], &t.shape);
            finetune::teacher(m, &unlabelled, 1.0).1
        });
        let set = finetune::codes_dataset(&codes, &lab, &t.shape);
        let mut files = vec![x.clone()];
        files.extend(cfg.labels.clone());
        return Ok(EvalData {
            test: InputSet {
                codes,
                labels,
                source: x.display().to_string(),
            },
            train: (m.num_classes() <= 256).then(|| (set.clone(), set, real)),
            files,
        });
    }
    let mnist_shaped = t.len() == 784 && m.num_classes() == 10;
    let mnist = || -> Option<(data::Dataset, data::Dataset)> {
        Some((
            data::load(&cfg.data, Split::Train).ok()?,
            data::load(&cfg.data, Split::Test).ok()?,
        ))
    };
    if let Some((tr, te)) = mnist_shaped.then(mnist).flatten() {
        {
            let ds = |d: &data::Dataset, split: Split| {
                let set = InputSet::from_dataset(d, t.q.scale, t.q.zero_point, split.as_str());
                let labels: Vec<usize> = d.labels.iter().map(|&l| l as usize).collect();
                (
                    set.clone(),
                    finetune::codes_dataset(&set.codes, &labels, &t.shape),
                )
            };
            let (test, te_ds) = ds(&te, Split::Test);
            let (_, tr_ds) = ds(&tr, Split::Train);
            return Ok(EvalData {
                test: InputSet {
                    source: format!("MNIST t10k ({})", cfg.data.display()),
                    ..test
                },
                train: Some((tr_ds, te_ds, true)),
                files: data_files(&cfg.data),
            });
        }
    }
    let mut set = InputSet::random(cfg.seed, budget.random_inputs, t.len(), Vec::new());
    set.source = format!("uniform random int8 codes, seed {}", cfg.seed);
    Ok(EvalData {
        test: set,
        train: None,
        files: Vec::new(),
    })
}

fn artifacts_fmax(k: u32, unit: &str, luts: u64, fmax_mhz: Option<f64>) -> Fmax {
    Fmax {
        k,
        unit: unit.to_string(),
        luts,
        fmax_mhz,
    }
}

fn opt_mhz(f: Option<f64>) -> String {
    f.map_or("-".into(), |f| format!("{f:.1}"))
}

/// Source stages of a network trained here: float -> QAT -> RAT at k, then the training
/// sweep. Returns the final model and the k = 31 model.
fn trained(
    cfg: &FlowConfig,
    arch: &str,
    k: u32,
    budget: &Budget,
    ledger: &mut Ledger,
    acc_path: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let out = &cfg.out;
    let train_set = data::load(&cfg.data, Split::Train)?;
    let test_set = data::load(&cfg.data, Split::Test)?;
    let dfiles = data_files(&cfg.data);
    let dref: Vec<&Path> = dfiles.iter().map(|p| p.as_path()).collect();
    let tdir = out.join("train");
    let final_spec = Rescale::plain(k, cfg.rounding);
    let name = "mnist_net";
    let final_path = tdir.join(format!("{}.json", cfg.variant.file_stem(final_spec)));
    let k31_path = tdir.join("qat_k31.json");
    let source_path = out.join("source.json");
    let train_key = key(
        &json!({ "recipe": format!("{:?}", budget.recipe), "k": k, "seed": cfg.seed, "arch": arch,
                 "threads": cfg.threads, "rounding": cfg.rounding.as_str() }),
        &dref,
    )?;
    let train_outputs = vec![
        tdir.join("float.safetensors"),
        tdir.join("qat.safetensors"),
        k31_path.clone(),
        final_path.clone(),
        source_path.clone(),
    ];
    ledger.stage("train", &train_key, &train_outputs, || {
        let job = train::TrainJob {
            stages: vec![Stage::Float, Stage::Qat, Stage::RatPaper, Stage::RatLearned],
            out_dir: tdir.clone(),
            init: None,
            hidden: None,
            arch: Some(train::arch::Arch::from_arg(arch)?),
            name: name.into(),
            exec: train::exec::Exec::cpu(),
            spec: final_spec,
            seed: cfg.seed,
            threads: cfg.threads,
            recipe: budget.recipe.clone(),
            progress: true,
        };
        let produced = train::run(&job, &train_set, &test_set)?;
        let float_acc = produced
            .iter()
            .find(|p| p.stage == Stage::Float)
            .map(|p| p.report.graph_test_accuracy);
        let golden = |s: Stage| {
            produced
                .iter()
                .find(|p| p.stage == s)
                .and_then(|p| p.exported.map(|e| e.0))
        };
        write_json(
            &source_path,
            &SourceInfo {
                kind: "trained".into(),
                path: cfg.data.display().to_string(),
                name: name.into(),
                arch: Some(arch.to_string()),
                float_accuracy: float_acc,
                k31_accuracy: golden(Stage::Qat),
            },
        )?;
        let accs: Vec<String> = produced
            .iter()
            .filter_map(|p| {
                p.exported
                    .map(|(g, _, _)| format!("{} {g:.2}%", p.stage.as_str()))
            })
            .collect();
        Ok(format!(
            "float {:.2}%, {} (golden)",
            float_acc.unwrap_or(f64::NAN),
            accs.join(", ")
        ))
    })?;

    let sdir = out.join("sweep");
    let sweep_key = key(
        &json!({ "ks": budget.ks, "csd": budget.csd, "k": k,
                 "epochs": budget.sweep_epochs, "repeats": budget.repeats,
                 "recipe": format!("{:?}", budget.recipe.rat), "seed": cfg.seed,
                 "threads": cfg.threads, "rounding": cfg.rounding.as_str(),
                 "variant": cfg.variant.as_str() }),
        &[
            &tdir.join("qat.safetensors"),
            &tdir.join("float.safetensors"),
        ],
    )?;
    let sweep_outputs = vec![
        sdir.join("sweep.json"),
        sdir.join("sweep.md"),
        sdir.join("sweep.svg"),
        acc_path.to_path_buf(),
    ];
    ledger.stage("sweep", &sweep_key, &sweep_outputs, || {
        let mut rat = budget.recipe.rat.clone();
        rat.epochs = budget.sweep_epochs;
        let job = sweep::SweepJob {
            qat: tdir.join("qat.safetensors"),
            float: tdir.join("float.safetensors"),
            ks: budget.ks.clone(),
            csd: budget.csd.clone(),
            csd_ks: if budget.csd.is_empty() {
                vec![]
            } else {
                vec![k]
            },
            out_dir: sdir.clone(),
            rat,
            rounding: cfg.rounding,
            seed: cfg.seed,
            threads: cfg.threads,
            progress: true,
            save_models: true,
            repeats: budget.repeats,
            exec: train::exec::Exec::cpu(),
        };
        let r = sweep::run(&job, &train_set, &test_set)?;
        let variant = cfg.variant;
        let rows = r
            .rows
            .iter()
            .map(|row| {
                let runs = &row.rat_vs_k31[usize::from(variant == Stage::RatLearned)];
                let mean = if variant == Stage::RatLearned {
                    row.rat_b
                } else {
                    row.rat_a
                };
                AccuracyRow {
                    k: row.k,
                    csd: row.csd,
                    ptq: row.ptq,
                    ptq_ci: (
                        r.qat_accuracy + row.ptq_vs_k31.ci95.0,
                        r.qat_accuracy + row.ptq_vs_k31.ci95.1,
                    ),
                    ptq_p: Some(row.ptq_vs_k31.p),
                    rat: Some(mean),
                    rat_ci: Some((r.qat_accuracy + runs.ci95.0, r.qat_accuracy + runs.ci95.1)),
                    rat_spread: Some(runs.spread),
                }
            })
            .collect();
        let acc = AccuracySweep {
            metric: "accuracy".into(),
            data: format!("MNIST t10k ({})", cfg.data.display()),
            count: test_set.len(),
            k31: r.qat_accuracy,
            rat_variant: Some(variant.as_str().to_string()),
            rows,
            ptq_breaks_at: r.breaks_at_significant,
            table: std::fs::read_to_string(sdir.join("sweep.md")).unwrap_or_default(),
        };
        write_json(acc_path, &acc)?;
        Ok(match r.breaks_at_significant {
            Some(b) => format!(
                "{} widths; PTQ significantly below k = 31 from k = {b}",
                r.rows.len()
            ),
            None => format!("{} widths; PTQ holds at every k", r.rows.len()),
        })
    })?;
    Ok((final_path, k31_path))
}

/// Source stages of a network brought along: import (or load), the post-training sweep over
/// k, the choice of k, and RAT at k when there is data to fine-tune on.
#[allow(clippy::too_many_arguments)]
fn brought(
    cfg: &FlowConfig,
    path: &Path,
    model: &Model,
    eval: &EvalData,
    budget: &Budget,
    ledger: &mut Ledger,
    acc_path: &Path,
    efiles: &[&Path],
) -> Result<(u32, PathBuf, PathBuf)> {
    let out = &cfg.out;
    let src_dir = out.join("source");
    let src_json = src_dir.join("model.json");
    let k31_path = src_dir.join("model_k31.json");
    let info_path = out.join("source.json");
    let skey = key(&json!({ "source": path.display().to_string() }), &[path])?;
    ledger.stage(
        "import",
        &skey,
        &[src_json.clone(), k31_path.clone(), info_path.clone()],
        || {
            model.save(&src_json)?;
            let r31 = model
                .rederived(Rescale::plain(quant::MAX_K_BITS, model.rescale.rounding))
                .map_err(|e| input(format!("model {}: {e}", model.name)))?;
            r31.save(&k31_path)?;
            let kind = if path.extension().and_then(|e| e.to_str()) == Some("tflite") {
                "tflite"
            } else {
                "int-model"
            };
            write_json(
                &info_path,
                &SourceInfo {
                    kind: kind.into(),
                    path: path.display().to_string(),
                    name: model.name.clone(),
                    arch: None,
                    float_accuracy: None,
                    k31_accuracy: None,
                },
            )?;
            Ok(format!(
                "{} ops, input {:?}, {} classes",
                model.ops.len(),
                model.input().shape,
                model.num_classes()
            ))
        },
    )?;

    // PTQ at every k on the evaluation inputs.
    let sdir = out.join("sweep");
    let ptq_path = sdir.join("sweep.json");
    let mut files: Vec<&Path> = efiles.to_vec();
    files.push(&src_json);
    let pkey = key(
        &json!({ "ks": budget.ks, "inputs": eval.test.source, "count": eval.test.len() }),
        &files,
    )?;
    ledger.stage(
        "sweep",
        &pkey,
        &[ptq_path.clone(), sdir.join("sweep.md")],
        || {
            let s = golden::sweep::run(model, &eval.test, &budget.ks)?;
            write_json(&ptq_path, &s)?;
            fsio::write_atomic(
                sdir.join("sweep.md"),
                golden::sweep::markdown(&s).as_bytes(),
            )?;
            let broken = s
                .rows
                .iter()
                .filter(|r| {
                    r.error.is_none() && r.top1_agreement.unwrap_or(0.0) < cfg.min_agreement
                })
                .map(|r| r.k)
                .max();
            Ok(format!(
                "{} widths on {} inputs; agreement below {}% from k = {}",
                s.rows.len(),
                s.count,
                cfg.min_agreement,
                broken.map_or("-".into(), |k| k.to_string())
            ))
        },
    )?;
    let ptq: golden::sweep::Sweep = read_json(&ptq_path)?;
    let k = match cfg.k {
        Some(k) => k,
        // Top-1 agreement judges a classifier; the SNR of the final tensor judges a network
        // whose argmax means nothing (an autoencoder), so either keeps a k.
        None => ptq
            .rows
            .iter()
            .filter(|r| {
                r.error.is_none()
                    && (r.top1_agreement.unwrap_or(0.0) >= cfg.min_agreement
                        || r.identical == Some(true)
                        || r.snr_db.is_some_and(|db| db >= cfg.min_snr_db))
            })
            .map(|r| r.k)
            .min()
            .unwrap_or(quant::MAX_K_BITS),
    };

    // RAT at k when there is data, else PTQ at k.
    let fdir = out.join("final");
    let rat_summary = fdir.join("finetune.json");
    let final_path = fdir.join(format!("{}_k{k}.json", model.name));
    let fkey = key(
        &json!({ "k": k, "seed": cfg.seed, "variant": cfg.variant.as_str(),
                 "rat": format!("{:?}", budget.recipe.rat), "data": eval.train.is_some() }),
        &files,
    )?;
    ledger.stage(
        "final",
        &fkey,
        &[final_path.clone(), rat_summary.clone()],
        || {
            let mut summary = json!({ "k": k, "rat": null });
            let msg = match &eval.train {
                Some((tr, te, real)) => {
                    let job = finetune::FinetuneJob {
                        from: path.to_path_buf(),
                        stages: vec![cfg.variant],
                        spec: Rescale {
                            k_bits: k,
                            rounding: model.rescale.rounding,
                            csd_digits: None,
                        },
                        out_dir: fdir.join("rat"),
                        seed: cfg.seed,
                        threads: cfg.threads,
                        recipe: budget.recipe.clone(),
                        progress: true,
                        exec: train::exec::Exec::cpu(),
                        distill: !real,
                        temperature: 1.0,
                    };
                    let r = finetune::run(&job, model, tr, te, !real)?;
                    let (_, p, acc) = r
                        .stages
                        .first()
                        .context("fine-tuning produced no model")?
                        .clone();
                    std::fs::copy(&p, &final_path)
                        .with_context(|| format!("copying {}", p.display()))?;
                    summary["rat"] = json!({
                        "variant": cfg.variant.as_str(), "accuracy": acc,
                        "ptq_accuracy": r.ptq_accuracy, "source_accuracy": r.source_accuracy,
                        "against": r.against, "supervision": if *real { "labels" } else { "distill" },
                        "epochs": budget.recipe.rat.epochs,
                    });
                    format!(
                        "k = {k}: {} {acc:.2}% vs PTQ {:.2}% ({} {})",
                        cfg.variant.as_str(),
                        r.ptq_accuracy,
                        if *real { "labels" } else { "label-free" },
                        r.against
                    )
                }
                None => {
                    let m = model
                        .rederived(Rescale::plain(k, model.rescale.rounding))
                        .map_err(|e| input(format!("k = {k}: {e}")))?;
                    m.save(&final_path)?;
                    format!("k = {k}: PTQ (no data to fine-tune on)")
                }
            };
            write_json(&rat_summary, &summary)?;
            Ok(msg)
        },
    )?;

    // The accuracy side of the report, from both.
    let fin: Value = read_json(&rat_summary)?;
    let labels = ptq.reference_accuracy.is_some();
    let rows = ptq
        .rows
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| {
            let (v, ci, p) = if labels {
                let pr = r.vs_k31.as_ref();
                let base = ptq.reference_accuracy.unwrap_or(0.0);
                (
                    r.accuracy.unwrap_or(0.0),
                    pr.map_or((0.0, 0.0), |p| (base + p.ci95.0, base + p.ci95.1)),
                    pr.map(|p| p.p),
                )
            } else {
                (
                    r.top1_agreement.unwrap_or(0.0),
                    r.agreement_ci95.unwrap_or((0.0, 100.0)),
                    None,
                )
            };
            let rat = (r.k == k)
                .then(|| fin["rat"]["accuracy"].as_f64())
                .flatten();
            AccuracyRow {
                k: r.k,
                csd: None,
                ptq: v,
                ptq_ci: ci,
                ptq_p: p,
                rat,
                rat_ci: None,
                rat_spread: None,
            }
        })
        .collect();
    let acc = AccuracySweep {
        metric: if labels { "accuracy" } else { "agreement" }.into(),
        data: ptq.inputs.clone(),
        count: ptq.count,
        k31: ptq.reference_accuracy.unwrap_or(100.0),
        rat_variant: fin["rat"]["variant"].as_str().map(str::to_string),
        ptq_breaks_at: ptq
            .rows
            .iter()
            .filter(|r| {
                if labels {
                    r.vs_k31
                        .as_ref()
                        .is_some_and(|p| p.significant() && p.diff < 0.0)
                } else {
                    r.agreement_ci95.is_some_and(|c| c.1 < 100.0)
                }
            })
            .map(|r| r.k)
            .max(),
        rows,
        table: std::fs::read_to_string(sdir.join("sweep.md")).unwrap_or_default(),
    };
    write_json(acc_path, &acc)?;
    Ok((k, final_path, k31_path))
}

/// The model at each k whose rescalers are synthesized: for a trained network the sweep's RAT
/// models of the chosen variant, otherwise the final model re-derived at k (`None`).
fn rescaler_models(
    cfg: &FlowConfig,
    budget: &Budget,
    k: u32,
    final_path: &Path,
    out: &Path,
) -> Vec<(Rescale, Option<PathBuf>)> {
    let mut ks: Vec<u32> = budget
        .hw_ks
        .iter()
        .copied()
        .filter(|kk| budget.ks.contains(kk))
        .collect();
    if !ks.contains(&k) {
        ks.push(k);
        ks.sort_by(|a, b| b.cmp(a));
    }
    let mut specs: Vec<Rescale> = ks
        .iter()
        .map(|&kk| Rescale::plain(kk, cfg.rounding))
        .collect();
    let trained = matches!(cfg.source, Source::Arch(_));
    if trained {
        specs.extend(budget.csd.iter().map(|&d| Rescale {
            k_bits: k,
            rounding: cfg.rounding,
            csd_digits: Some(d),
        }));
    }
    specs
        .into_iter()
        .map(|spec| {
            let path = if trained {
                Some(
                    out.join("sweep")
                        .join("models")
                        .join(format!("{}.json", cfg.variant.file_stem(spec))),
                )
            } else if spec.k_bits == k && spec.csd_digits.is_none() {
                Some(final_path.to_path_buf())
            } else {
                None
            };
            (spec, path)
        })
        .collect()
}
