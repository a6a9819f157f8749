//! `ratflow flow`: the whole mission in one command, on the bundled data by default.
//!
//! float -> QAT -> k-sweep (PTQ, RAT-a, RAT-b) -> RAT at k -> int-model -> RTL -> golden
//! vectors -> Verilator co-simulation -> yosys (requantizers per k, whole datapaths) ->
//! `REPORT.md`. Every artifact lands in one run folder. Each stage is keyed by a hash of its
//! inputs (files by content, settings by value, the ratflow version); a re-run skips the
//! stages whose key and outputs are unchanged, so editing only the report costs seconds.

use crate::data::{self, Split};
use crate::error::input;
use crate::fsio;
use crate::golden::vectors;
use crate::model::Model;
use crate::quant::Rescale;
use crate::quant::{self, Rounding};
use crate::report;
use crate::rtl::{self, Parallel};
use crate::sim;
use crate::synth::{self, Scope, yosys::Target};
use crate::train::{self, Stage, sweep};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the flow was asked for.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    pub out: PathBuf,
    pub data: PathBuf,
    pub quick: bool,
    /// Rescale width of the final model.
    pub k: u32,
    pub rounding: Rounding,
    /// Which RAT variant becomes the final (hardware) model.
    pub variant: Stage,
    pub seed: u64,
    pub threads: usize,
    pub parallel: Parallel,
    /// Re-run every stage even when its inputs did not change.
    pub force: bool,
}

/// The settings that differ between the full flow and `--quick` (what CI runs).
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub recipe: train::Recipe,
    pub ks: Vec<u32>,
    /// CSD digit budgets of the multiplierless rows, and the widths they are tried at.
    pub csd: Vec<u32>,
    pub csd_ks: Vec<u32>,
    pub sweep_epochs: usize,
    pub repeats: usize,
    pub vectors: usize,
    /// Synthesize whole datapaths (the final model and the k = 31 model), not only rescalers.
    pub full_designs: bool,
}

impl Budget {
    pub fn of(quick: bool, k: u32) -> Budget {
        let mut recipe = train::Recipe::default();
        let mut ks = sweep::DEFAULT_KS.to_vec();
        if !ks.contains(&k) {
            ks.push(k);
            ks.sort_by(|a, b| b.cmp(a));
        }
        if quick {
            recipe.float.epochs = 15;
            recipe.qat.epochs = 2;
            recipe.rat.epochs = 2;
            let mut q = vec![31, 8, 4, 2, 1];
            if !q.contains(&k) {
                q.push(k);
                q.sort_by(|a, b| b.cmp(a));
            }
            ks = q;
        }
        let (csd, csd_ks) = if quick {
            (vec![2], vec![k])
        } else {
            (sweep::DEFAULT_CSD.to_vec(), sweep::DEFAULT_CSD_KS.to_vec())
        };
        Budget {
            recipe,
            ks,
            csd,
            csd_ks,
            sweep_epochs: 2,
            repeats: if quick { 1 } else { 3 },
            vectors: if quick { 200 } else { 2000 },
            full_designs: !quick,
        }
    }
}

/// One stage's bookkeeping, for the summary and the report.
#[derive(Clone, Debug)]
pub struct StageLog {
    pub name: &'static str,
    pub seconds: f64,
    pub cached: bool,
    pub summary: String,
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

/// Everything the report needs, as the stages produced it.
pub struct FlowResult {
    pub logs: Vec<StageLog>,
    pub report: PathBuf,
}

/// Runs the flow. Errors of any stage stop it (the run folder keeps what finished).
pub fn run(cfg: &FlowConfig) -> Result<FlowResult> {
    if !(1..=quant::MAX_K_BITS).contains(&cfg.k) {
        return Err(input(format!(
            "--k {} is outside 1..={}",
            cfg.k,
            quant::MAX_K_BITS
        )));
    }
    if !matches!(cfg.variant, Stage::RatPaper | Stage::RatLearned) {
        return Err(input("--variant must be rat-a or rat-b"));
    }
    // Everything external is checked before the first minute of work.
    sim::verilator()?;
    crate::tools::require("yosys", "yosys")?;
    let train_set = data::load(&cfg.data, Split::Train)?;
    let test_set = data::load(&cfg.data, Split::Test)?;
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let budget = Budget::of(cfg.quick, cfg.k);
    let started = Instant::now();
    let mut ledger = Ledger::open(&cfg.out, cfg.force, 7 + usize::from(budget.full_designs));
    let out = &cfg.out;
    let dfiles = data_files(&cfg.data);
    let dref: Vec<&Path> = dfiles.iter().map(|p| p.as_path()).collect();

    // 1. float -> QAT -> RAT-a/RAT-b at k.
    let tdir = out.join("train");
    let final_spec = Rescale::plain(cfg.k, cfg.rounding);
    let variant_stem = cfg.variant.file_stem(final_spec);
    let final_path = tdir.join(format!("{variant_stem}.json"));
    let qat31_path = tdir.join("qat_k31.json");
    let train_key = key(
        &json!({ "recipe": format!("{:?}", budget.recipe), "k": cfg.k, "seed": cfg.seed,
                 "threads": cfg.threads, "rounding": cfg.rounding.as_str() }),
        &dref,
    )?;
    let train_outputs = vec![
        tdir.join("float.safetensors"),
        tdir.join("qat.safetensors"),
        qat31_path.clone(),
        final_path.clone(),
    ];
    ledger.stage("train", &train_key, &train_outputs, || {
        let job = train::TrainJob {
            stages: vec![Stage::Float, Stage::Qat, Stage::RatPaper, Stage::RatLearned],
            out_dir: tdir.clone(),
            init: None,
            hidden: None,
            arch: None,
            name: "mnist_mlp".into(),
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
            .map_or(0.0, |p| p.report.graph_test_accuracy);
        let accs: Vec<String> = produced
            .iter()
            .filter_map(|p| {
                p.exported
                    .map(|(g, _, _)| format!("{} {g:.2}%", p.stage.as_str()))
            })
            .collect();
        Ok(format!(
            "float {float_acc:.2}%, {} (golden)",
            accs.join(", ")
        ))
    })?;

    // 2. The k-sweep from the QAT network.
    let sdir = out.join("sweep");
    let sweep_key = key(
        &json!({ "ks": budget.ks, "csd": budget.csd, "csd_ks": budget.csd_ks,
                 "epochs": budget.sweep_epochs, "repeats": budget.repeats,
                 "recipe": format!("{:?}", budget.recipe.rat), "seed": cfg.seed,
                 "threads": cfg.threads, "rounding": cfg.rounding.as_str() }),
        &[
            &tdir.join("qat.safetensors"),
            &tdir.join("float.safetensors"),
        ],
    )?;
    let sweep_outputs = vec![
        sdir.join("sweep.json"),
        sdir.join("sweep.md"),
        sdir.join("sweep.svg"),
    ];
    ledger.stage("sweep", &sweep_key, &sweep_outputs, || {
        let mut rat = budget.recipe.rat.clone();
        rat.epochs = budget.sweep_epochs;
        let job = sweep::SweepJob {
            qat: tdir.join("qat.safetensors"),
            float: tdir.join("float.safetensors"),
            ks: budget.ks.clone(),
            csd: budget.csd.clone(),
            csd_ks: budget.csd_ks.clone(),
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
        Ok(match r.breaks_at {
            Some(k) => format!("{} widths; PTQ breaks at k = {k}", r.rows.len()),
            None => format!("{} widths; PTQ holds at every k", r.rows.len()),
        })
    })?;

    // 3. RTL of the final model.
    let final_model = Model::load(&final_path)?;
    let rtl_dir = out.join("rtl");
    let rtl_opts = rtl::Options {
        folding: rtl::Spec::Parallel(cfg.parallel.clone()),
        ..Default::default()
    };
    let design = rtl::generate(&final_model, &rtl_opts)?;
    let rtl_key = key(
        &json!({ "model": final_model.content_hash(), "parallel": cfg.parallel.to_string() }),
        &[&final_path],
    )?;
    ledger.stage(
        "rtl",
        &rtl_key,
        &[rtl_dir.join("manifest.json"), rtl_dir.join("files.f")],
        || {
            rtl::write(&design, &rtl_dir)?;
            Ok(format!(
                "{} Verilog files ({} units), P = {}, {} cycles/inference",
                design.verilog.len(),
                design.plan.units.len(),
                cfg.parallel,
                design.plan.interval
            ))
        },
    )?;

    // 4. Golden vectors for the test images.
    let vec_path = out.join("vectors.jsonl");
    let vec_key = key(
        &json!({ "model": final_model.content_hash(), "count": budget.vectors }),
        &dref,
    )?;
    ledger.stage("vectors", &vec_key, std::slice::from_ref(&vec_path), || {
        let q = final_model.input().q;
        let inputs =
            crate::data::InputSet::from_dataset(&test_set, q.scale, q.zero_point, "MNIST t10k");
        let vs = vectors::generate(&final_model, &inputs, Some(budget.vectors), false)?;
        vectors::write_jsonl(&vec_path, &vs)?;
        Ok(format!("{} golden vectors", vs.len()))
    })?;

    // 5. Verilator co-simulation of the generated RTL against those vectors.
    let cosim_path = out.join("cosim.json");
    let cosim_key = key(
        &json!({ "rtl": rtl_key }),
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
            let outcome = sim::run_network(&built, &d.plan, &vs, &sim::RunOptions::default())?;
            let summary = json!({
                "model": final_model.name, "hash": final_model.content_hash(),
                "parallel": cfg.parallel.to_string(), "vectors": vs.len(),
                "interval_manifest": d.plan.interval,
                "passed": outcome.passed, "failed": outcome.failed,
                "cycles": outcome.cycles, "wall_seconds": outcome.wall_seconds,
                "build_seconds": built.build_seconds, "build_cached": built.cached,
                "latency": outcome.latency, "interval": outcome.interval,
                "bubble": 0.1, "stall": 0.2,
            });
            if outcome.failed > 0 || !outcome.success || outcome.passed != vs.len() as u64 {
                let first: Vec<&str> = outcome.mismatches().into_iter().take(5).collect();
                bail!(
                    "co-simulation failed: {} passed, {} failed\n{}",
                    outcome.passed,
                    outcome.failed,
                    first.join("\n")
                );
            }
            fsio::write_atomic(
                &cosim_path,
                (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
            )?;
            Ok(format!(
                "{} passed, {} failed (Verilator, random bubbles and stalls)",
                outcome.passed, outcome.failed
            ))
        },
    )?;

    // 6. Rescaler cost per k: the requantizers of the sweep's models, synthesized for iCE40.
    let syn_dir = out.join("synth");
    let hw_sweep_path = syn_dir.join("requant_by_k.json");
    // Plain k-bit rows first, then the multiplierless (CSD) rows.
    let specs: Vec<Rescale> = budget
        .ks
        .iter()
        .map(|&k| Rescale::plain(k, cfg.rounding))
        .chain(budget.csd.iter().flat_map(|&d| {
            budget.csd_ks.iter().map(move |&k| Rescale {
                k_bits: k,
                rounding: cfg.rounding,
                csd_digits: Some(d),
            })
        }))
        .collect();
    let sweep_models: Vec<(Rescale, PathBuf)> = specs
        .iter()
        .map(|&spec| {
            (
                spec,
                sdir.join("models")
                    .join(format!("{}.json", cfg.variant.file_stem(spec))),
            )
        })
        .collect();
    let mut key_files: Vec<&Path> = sweep_models.iter().map(|(_, p)| p.as_path()).collect();
    key_files.push(&final_path);
    let hw_key = key(
        &json!({ "parallel": cfg.parallel.to_string(), "fmax_k": [31, cfg.k], "csd_form": "csd" }),
        &key_files,
    )?;
    ledger.stage(
        "synth-requant",
        &hw_key,
        std::slice::from_ref(&hw_sweep_path),
        || {
            let bar = report::progress(sweep_models.len() as u64, "requantizers per k");
            let mut rows = Vec::new();
            for (spec, path) in &sweep_models {
                let k = spec.k_bits;
                bar.set_message(spec.tag());
                let model = Model::load(path)?;
                // Digit-budgeted models are built for shift-add rescalers; the k-bit rows keep
                // the paper's multiplier, so a D row reads against the k row it replaces.
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
                let fmax = spec.csd_digits.is_none() && (k == 31 || k == cfg.k);
                let cost = synth::synthesize(
                    &d,
                    &dir.join("rtl"),
                    &dir.join("yosys"),
                    Target::Ice40,
                    Scope::Requant,
                    fmax,
                )?;
                let mut j = cost.to_json();
                j["k"] = json!(k);
                j["csd_digits"] = json!(spec.csd_digits);
                j["tag"] = json!(spec.tag());
                j["model_file"] = json!(path.display().to_string());
                rows.push(j);
                bar.inc(1);
            }
            bar.finish_and_clear();
            let luts = |k: u32| {
                rows.iter()
                    .find(|r| r["k"] == k && r["csd_digits"].is_null())
                    .and_then(|r| r["requant_total"]["luts"].as_u64())
            };
            let ratio = match (luts(cfg.k), luts(31)) {
                (Some(a), Some(b)) if b > 0 => format!(
                    "; k = {} rescalers use {:.1}% of the k = 31 LUTs",
                    cfg.k,
                    100.0 * a as f64 / b as f64
                ),
                _ => String::new(),
            };
            fsio::write_atomic(
                &hw_sweep_path,
                (serde_json::to_string_pretty(&json!({ "target": "ice40", "rows": rows }))? + "\n")
                    .as_bytes(),
            )?;
            Ok(format!("{} rescaler sets synthesized{ratio}", rows.len()))
        },
    )?;

    // 7. Whole datapaths, full flow only: the final model, the same with DESIGN's 32-bit
    // accumulators (what minimal widths save), the k = 31 model, and the digit-budgeted models
    // at the final k in shift-add form.
    let design_path = syn_dir.join("designs.json");
    if budget.full_designs {
        use rtl::{AccWidth, MulForm};
        let mut jobs: Vec<(String, PathBuf, MulForm, AccWidth, Option<u32>)> = vec![
            (
                "final".into(),
                final_path.clone(),
                MulForm::Mul,
                AccWidth::Minimal,
                None,
            ),
            (
                "final-acc32".into(),
                final_path.clone(),
                MulForm::Mul,
                AccWidth::Bits32,
                None,
            ),
            (
                "k31".into(),
                qat31_path.clone(),
                MulForm::Mul,
                AccWidth::Minimal,
                None,
            ),
        ];
        for (spec, path) in &sweep_models {
            if let (Some(d), true) = (spec.csd_digits, spec.k_bits == cfg.k) {
                jobs.push((
                    format!("csd{d}"),
                    path.clone(),
                    MulForm::Csd,
                    AccWidth::Minimal,
                    Some(d),
                ));
            }
        }
        let files: Vec<&Path> = jobs.iter().map(|j| j.1.as_path()).collect();
        let labels: Vec<String> = jobs
            .iter()
            .map(|j| format!("{} {} {}", j.0, j.2, j.3))
            .collect();
        let dkey = key(
            &json!({ "parallel": cfg.parallel.to_string(), "designs": labels }),
            &files,
        )?;
        ledger.stage(
            "synth-design",
            &dkey,
            std::slice::from_ref(&design_path),
            || {
                // RTL first (cheap, one folder per design), then the syntheses two at a time:
                // one hierarchical yosys run is single-threaded and takes about a minute.
                let mut tasks = Vec::new();
                for (label, path, multiplier, acc, csd) in &jobs {
                    let model = Model::load(path)?;
                    let opts = rtl::Options {
                        multiplier: *multiplier,
                        acc: *acc,
                        ..rtl_opts.clone()
                    };
                    let d = rtl::generate(&model, &opts)?;
                    let dir = syn_dir.join(format!("design-{label}"));
                    rtl::write(&d, &dir.join("rtl"))?;
                    // The generic (gate-area) figure for the two designs the headline compares.
                    let targets: &[Target] = if label == "final" || label == "k31" {
                        &[Target::Ice40, Target::Generic]
                    } else {
                        &[Target::Ice40]
                    };
                    let d = std::sync::Arc::new(d);
                    for &target in targets {
                        tasks.push((label, path, *csd, d.clone(), dir.clone(), target));
                    }
                }
                let bar = report::progress(tasks.len() as u64, "whole datapaths");
                let rows: Vec<Value> =
                    synth::par_map(&tasks, 2, |(label, path, csd, d, dir, target)| {
                        let cost = synth::synthesize(
                            d,
                            &dir.join("rtl"),
                            &dir.join(target.as_str()),
                            *target,
                            Scope::Design,
                            false,
                        );
                        bar.inc(1);
                        cost.map(|cost| {
                            let mut j = cost.to_json();
                            j["label"] = json!(label);
                            j["csd_digits"] = json!(csd);
                            j["model_file"] = json!(path.display().to_string());
                            j
                        })
                    })
                    .into_iter()
                    .collect::<Result<_>>()?;
                bar.finish_and_clear();
                let luts = |l: &str| {
                    rows.iter()
                        .find(|r| r["label"] == l && r["target"] == "ice40")
                        .and_then(|r| r["total"]["luts"].as_f64())
                };
                let ratio = match (luts("final"), luts("final-acc32")) {
                    (Some(a), Some(b)) if b > 0.0 => {
                        format!(
                            "; minimal accumulators: {:.3} of the 32-bit datapath's LUT4s",
                            a / b
                        )
                    }
                    _ => String::new(),
                };
                fsio::write_atomic(
                    &design_path,
                    (serde_json::to_string_pretty(&json!({ "rows": rows }))? + "\n").as_bytes(),
                )?;
                Ok(format!("{} whole-design syntheses{ratio}", rows.len()))
            },
        )?;
    }

    // 8. The report, always rewritten from the stages' files.
    let report_path = out.join("REPORT.md");
    let t0 = Instant::now();
    let n = ledger.logs.len() + 1;
    eprintln!("[{n}/{}] report ...", ledger.total);
    let inputs = report::Inputs {
        out: out.clone(),
        config: cfg.clone(),
        budget: budget.clone(),
        final_model: final_path.clone(),
        qat_model: qat31_path.clone(),
        design: &design,
        test: &test_set,
    };
    let mut logs = ledger.logs.clone();
    logs.push(StageLog {
        name: "report",
        seconds: 0.0,
        cached: false,
        summary: String::new(),
    });
    report::write(&inputs, &logs, started.elapsed().as_secs_f64())?;
    let secs = t0.elapsed().as_secs_f64();
    if let Some(last) = logs.last_mut() {
        last.seconds = secs;
        last.summary = format!("{}", report_path.display());
    }
    eprintln!(
        "[{n}/{}] report: {} ({secs:.1} s)",
        ledger.total,
        report_path.display()
    );
    Ok(FlowResult {
        logs,
        report: report_path,
    })
}
