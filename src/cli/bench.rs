//! `ratflow bench`: golden-engine speed against LiteRT's kernel sets, in the same run.

use crate::error::input;
use crate::golden::{Engine, bench};
use crate::model::Model;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Images/s of the golden engine (1 thread, batch 1) on each int-model and, with --tflite, of
/// LiteRT's BUILTIN_WITHOUT_DEFAULT_DELEGATES (builtin) and default XNNPACK (auto) kernel sets
/// on the same models, measured in alternation in the same run (medians of --rounds).
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// int-model files, one per benchmarked model.
    #[arg(long, required = true, num_args = 1..)]
    pub model: Vec<PathBuf>,
    /// The .tflite each model was imported from (same order), for the LiteRT columns.
    #[arg(long, num_args = 1..)]
    pub tflite: Vec<PathBuf>,
    /// Python with ai-edge-litert (default: build/venv-litert/bin/python, made by
    /// scripts/litert/setup-venv.sh).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Seconds per timed run.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Alternating rounds; each figure is the median.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also time LiteRT's reference kernels (BUILTIN_REF).
    #[arg(long)]
    pub with_ref: bool,
    #[arg(long)]
    pub json: bool,
}

/// One model's figures, images per second.
#[derive(Serialize)]
struct Row {
    model: String,
    ratflow: f64,
    /// ratflow per second of its own CPU time (the machine's load left out).
    ratflow_cpu: Option<f64>,
    litert_ref: Option<f64>,
    litert_builtin: Option<f64>,
    litert_xnnpack: Option<f64>,
    /// ratflow / builtin and ratflow / XNNPACK.
    vs_builtin: Option<f64>,
    vs_xnnpack: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn litert(python: &Path, tflite: &Path, resolver: &str, seconds: f64) -> Result<f64> {
    let script = crate::data::bundled_dir()
        .parent()
        .expect("the repository root")
        .join("scripts/litert/bench.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(tflite)
        .args(["--resolver", resolver, "--seconds", &seconds.to_string()])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        return Err(input(format!(
            "LiteRT bench of {} ({resolver}) failed: {}",
            tflite.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the LiteRT bench of {}", tflite.display()))?;
    v["images_per_s"]
        .as_f64()
        .context("LiteRT bench printed no images_per_s")
}

pub fn run(a: &Args) -> Result<()> {
    if a.seconds.is_nan() || a.seconds <= 0.0 || a.rounds == 0 {
        return Err(input("--seconds and --rounds must be positive"));
    }
    if !a.tflite.is_empty() && a.tflite.len() != a.model.len() {
        return Err(input("give one --tflite per --model, in the same order"));
    }
    let python = a.python.clone().unwrap_or_else(|| {
        crate::data::bundled_dir()
            .parent()
            .expect("the repository root")
            .join("build/venv-litert/bin/python")
    });
    if !a.tflite.is_empty() && !python.exists() {
        return Err(crate::error::ToolMissing {
            tool: python.display().to_string(),
            hint: "run scripts/litert/setup-venv.sh (PyPI ai-edge-litert) or pass --python".into(),
        }
        .into());
    }
    let mut rows = Vec::new();
    for (i, path) in a.model.iter().enumerate() {
        let model = Model::load(path)?;
        let engine = Engine::new(&model);
        let tfl = a.tflite.get(i);
        let mut resolvers = vec!["builtin", "auto"];
        if a.with_ref {
            resolvers.insert(0, "ref");
        }
        let mut ours = Vec::new();
        let mut ours_cpu = Vec::new();
        let mut theirs = vec![Vec::new(); resolvers.len()];
        for round in 0..a.rounds {
            let speed = bench::images_per_second(&engine, a.seconds, round as u64);
            ours.push(speed.wall);
            ours_cpu.extend(speed.cpu);
            if let Some(t) = tfl {
                for (j, r) in resolvers.iter().enumerate() {
                    theirs[j].push(litert(&python, t, r, a.seconds)?);
                }
            }
        }
        let ours = median(ours);
        let ours_cpu = (!ours_cpu.is_empty()).then(|| median(ours_cpu));
        let get = |name: &str| {
            let j = resolvers.iter().position(|r| *r == name)?;
            tfl.map(|_| median(theirs[j].clone()))
        };
        let (builtin, xnn) = (get("builtin"), get("auto"));
        rows.push(Row {
            model: model.name.clone(),
            ratflow: ours,
            ratflow_cpu: ours_cpu,
            litert_ref: get("ref"),
            litert_builtin: builtin,
            litert_xnnpack: xnn,
            vs_builtin: builtin.map(|b| ours / b),
            vs_xnnpack: xnn.map(|x| ours / x),
        });
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}"));
    let r = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}x"));
    println!(
        "images/s, 1 thread, batch 1, median of {} alternating rounds of {} s",
        a.rounds, a.seconds
    );
    println!(
        "| model | ratflow | ratflow per CPU-s | LiteRT ref | LiteRT builtin | LiteRT XNNPACK | vs builtin | vs XNNPACK |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            row.model,
            row.ratflow,
            f(row.ratflow_cpu),
            f(row.litert_ref),
            f(row.litert_builtin),
            f(row.litert_xnnpack),
            r(row.vs_builtin),
            r(row.vs_xnnpack)
        );
    }
    Ok(())
}
