//! RAT on an imported int8 model: `ratflow train --from M.json --k K`.
//!
//! The float network is initialised from the file itself ([`GraphNet::from_model`]): weights
//! `S_w[c] w`, biases `S_x S_w[c] b`, and every tensor's (S, Z), every op's weight scales and
//! rounding fixed to the file's, so that the network exported at the file's k is the file.
//! Then RAT fine-tunes at k (paper variant: `(m, s)` derived at k from the fixed scales, the
//! weights adapt; learned-rescale variant: `log2 M` learned too). Two kinds of supervision:
//!
//! * **labels** (`--data` MNIST, or `--inputs X.npy --labels Y.npy`): cross-entropy;
//! * **label-free** (`--inputs X.npy` alone, or `--distill`): the k-bit network is pulled
//!   towards the source model's own outputs on the same inputs (the golden engine's int8
//!   logits of the file, dequantized, softmax at temperature T) by the soft cross-entropy
//!   `-sum p_teacher log p_student`: users often have sensor data but no labels.
//!
//! Alongside, the report gives the source model's accuracy and PTQ at k (the file re-derived
//! at k from its real factors, no training), all measured by the golden engine.

use super::checkpoint::Checkpoint;
use super::exec::Exec;
use super::graph::GraphNet;
use super::net::Net;
use super::trainer::{self, StageRun};
use super::{Recipe, Stage, StageSetup, begin_stage, export_checkpoint, fingerprint};
use crate::data::Dataset;
use crate::error::input;
use crate::golden::{Engine, Scratch};
use crate::model::Model;
use crate::quant::{self, Rescale};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Where the file to fine-tune comes from. `.json` is an int-model (version 1 or 2);
/// `.tflite` is an int8 TFLite file, imported as `ratflow import` would (errors name the
/// file and the op or field the importer refuses).
pub fn load_source(path: &Path) -> Result<Model> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Model::load(path),
        // The importer's default kernel set (BUILTIN_REF semantics): the fine-tuned model
        // starts from exactly what LiteRT's reference kernels compute.
        Some("tflite") => Ok(crate::import::tflite::import_file(
            path,
            &crate::import::tflite::ImportOptions::default(),
        )?
        .model),
        _ => Err(input(format!(
            "{}: --from takes an int-model .json or an int8 .tflite",
            path.display()
        ))),
    }
}

/// Int8 input codes (per input, the model's input shape flattened) as a dataset the trainer
/// batches: pixel value `q + 128`, so that centred codes are `pixel - 128 - Z`. `[H, W, 1]`
/// inputs keep their image shape (shift augmentation works on them); others are one row.
pub fn codes_dataset(codes: &[Vec<i8>], labels: &[usize], shape: &[usize]) -> Dataset {
    let (rows, cols) = match *shape {
        [h, w, 1] => (h, w),
        _ => (1, shape.iter().product()),
    };
    Dataset {
        rows,
        cols,
        pixels: codes
            .iter()
            .flat_map(|x| x.iter().map(|&q| (q as i16 + 128) as u8))
            .collect(),
        labels: labels.iter().map(|&l| l as u8).collect(),
    }
}

/// The golden engine's int8 outputs of `model` on every input of `data`, as probabilities
/// `softmax(S (q - Z) / T)` (`[N, classes]` row-major) and as classes.
pub fn teacher(model: &Model, data: &Dataset, temperature: f64) -> (Vec<f32>, Vec<usize>) {
    let engine = Engine::new(model);
    let mut scratch = Scratch::default();
    let q = model.output().q;
    let mut probs = Vec::with_capacity(data.len() * model.num_classes());
    let mut classes = Vec::with_capacity(data.len());
    for i in 0..data.len() {
        let out = engine.infer(&data.input_i8(i), &mut scratch);
        classes.push(crate::golden::argmax(out));
        let z: Vec<f64> = out
            .iter()
            .map(|&v| q.scale * (v as f64 - q.zero_point as f64) / temperature)
            .collect();
        let max = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        probs.extend(e.iter().map(|v| (v / sum) as f32));
    }
    (probs, classes)
}

pub struct FinetuneJob {
    pub from: PathBuf,
    /// `rat-a`, `rat-b` or both.
    pub stages: Vec<Stage>,
    pub spec: Rescale,
    pub out_dir: PathBuf,
    pub seed: u64,
    pub threads: usize,
    pub recipe: Recipe,
    pub progress: bool,
    pub exec: Exec,
    /// Train towards the source model's outputs instead of labels.
    pub distill: bool,
    pub temperature: f64,
}

/// What one fine-tuning wrote and measured (golden accuracies on the test data, percent).
pub struct FinetuneReport {
    pub source_accuracy: f64,
    pub ptq_accuracy: f64,
    /// Per stage: the model file and its accuracy.
    pub stages: Vec<(Stage, PathBuf, f64)>,
    /// What the accuracies are against: labels, or the source model's classes.
    pub against: &'static str,
    pub summary: Value,
}

/// Fine-tunes `model` at the job's k on `train`; `test` measures (its labels are real labels,
/// or with `test_is_teacher` the source model's own classes). Validates everything first.
pub fn run(
    job: &FinetuneJob,
    model: &Model,
    train: &Dataset,
    test: &Dataset,
    test_is_teacher: bool,
) -> Result<FinetuneReport> {
    if !(1..=quant::MAX_K_BITS).contains(&job.spec.k_bits) {
        return Err(input(format!(
            "--k {} is outside 1..={}",
            job.spec.k_bits,
            quant::MAX_K_BITS
        )));
    }
    if job.stages.is_empty() || job.stages.iter().any(|s| *s < Stage::RatPaper) {
        return Err(input(
            "--from fine-tunes with RAT: --stage takes rat-a, rat-b or both",
        ));
    }
    if !(job.temperature.is_finite() && job.temperature > 0.0) {
        return Err(input(format!(
            "--temperature {} must be positive",
            job.temperature
        )));
    }
    let label = job.from.display().to_string();
    let mut net = GraphNet::from_model(model).with_context(|| format!("--from {label}"))?;
    net.set_exec(job.exec.clone())?;
    let base = Checkpoint {
        net: Net::Graph(net),
        stage: Stage::Qat,
        k: Some(model.widest_k()),
        csd: model.rescale.csd_digits,
        rounding: model.rescale.rounding,
        lineage: vec![json!({
            "stage": "import", "from": model.name, "hash": model.content_hash(),
            "k_bits": model.widest_k(), "rounding": model.rescale.rounding.as_str(),
        })],
    };
    super::check_data(&base, train, "fine-tuning data")?;
    super::check_data(&base, test, "test data")?;
    let targets = if job.distill {
        Some(teacher(model, train, job.temperature).0)
    } else {
        None
    };
    let hyper = job.recipe.hyper(Stage::RatPaper);
    if hyper.batch == 0 || !(hyper.lr.is_finite() && hyper.lr > 0.0) {
        return Err(input("RAT: batch size and learning rate must be positive"));
    }
    let measure = |m: &Model| export_accuracy(m, test);
    let source_accuracy = measure(model);
    let ptq = model
        .rederived(job.spec)
        .map_err(|e| input(format!("PTQ of {label} at {}: {e}", job.spec.describe())))?;
    let ptq_accuracy = measure(&ptq);
    let base_bytes = base.to_bytes()?;
    let prefix = format!("{}_", model.name);
    let mut written = Vec::new();
    for &stage in &job.stages {
        let mut ck = Checkpoint::from_bytes(&base_bytes)?;
        ck.net.set_exec(job.exec.clone())?;
        let setup = StageSetup {
            stage,
            spec: job.spec,
            seed: job.seed,
            threads: job.threads,
        };
        begin_stage(&mut ck, &setup, hyper, train)?;
        if let Some(Value::Object(rec)) = ck.lineage.last_mut() {
            rec.insert(
                "supervision".into(),
                json!(if job.distill { "distill" } else { "labels" }),
            );
            if job.distill {
                rec.insert("temperature".into(), json!(job.temperature));
            }
        }
        let stem = stage.file_stem(job.spec);
        let ck_path = job.out_dir.join(format!("{prefix}{stem}.safetensors"));
        trainer::train_stage(
            &mut ck,
            &StageRun {
                stage,
                hyper,
                spec: job.spec,
                seed: job.seed,
                train,
                test,
                checkpoint: Some(&ck_path),
                progress: job.progress,
                targets: targets.as_deref(),
            },
        )?;
        if hyper.epochs == 0 {
            ck.save(&ck_path)?;
        }
        let ex = export_checkpoint(&mut ck, job.spec, &stem, test)?;
        let path = job.out_dir.join(format!("{prefix}{stem}.json"));
        ex.model.save(&path)?;
        written.push((stage, path, ex.golden_accuracy));
    }
    let against = if test_is_teacher {
        "the source model's classes"
    } else {
        "labels"
    };
    let summary = json!({
        "tool": format!("ratflow {}", crate::VERSION),
        "from": model.name, "hash": model.content_hash(), "k_bits": job.spec.k_bits,
        "csd_digits": job.spec.csd_digits, "supervision": if job.distill { "distill" } else { "labels" },
        "train_data": fingerprint(train), "test_data": fingerprint(test),
        "accuracy_against": against,
        "source_accuracy": source_accuracy, "ptq_accuracy": ptq_accuracy,
        "stages": written.iter().map(|(s, p, a)| json!({
            "stage": s.as_str(), "model": p.file_name().map(|f| f.to_string_lossy().to_string()),
            "accuracy": a })).collect::<Vec<_>>(),
    });
    crate::fsio::write_atomic(
        job.out_dir
            .join(format!("{prefix}finetune_{}.json", job.spec.tag())),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    Ok(FinetuneReport {
        source_accuracy,
        ptq_accuracy,
        stages: written,
        against,
        summary,
    })
}

/// Golden accuracy (percent) of `m` on `data` (inputs `pixel - 128`, labels of the dataset).
fn export_accuracy(m: &Model, data: &Dataset) -> f64 {
    trainer::accuracy_of(&super::export::golden_predictions(m, data), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Rounding;
    use crate::train::arch::Arch;
    use crate::train::trainer::calibrate;

    fn images(n: usize, seed: u64) -> Dataset {
        let mut rng = crate::rng::Rng::new(seed);
        // Two classes that differ by brightness, so that a tiny CNN learns them.
        let labels: Vec<u8> = (0..n).map(|_| (rng.next_u64() % 2) as u8).collect();
        let pixels = labels
            .iter()
            .flat_map(|&l| {
                let base = if l == 1 { 140 } else { 60 };
                (0..36)
                    .map(|_| (base + rng.range(-50, 50)) as u8)
                    .collect::<Vec<_>>()
            })
            .collect();
        Dataset {
            rows: 6,
            cols: 6,
            pixels,
            labels,
        }
    }

    /// Both supervisions run from an exported v2 model, write their models and the summary,
    /// and the distillation targets are the source model's own outputs.
    #[test]
    fn supervised_and_label_free_runs() -> Result<()> {
        let data = images(200, 1);
        let arch = Arch::parse("conv2d:4:3x3,relu,max_pool2d:2,flatten,dense:2").unwrap();
        let mut ck = crate::train::fresh_graph(&arch, &data, 1, "src")?;
        calibrate(&mut ck.net, &data, 50)?;
        let model = ck
            .net
            .to_model(Rescale::plain(31, Rounding::Single), "src", Value::Null)?;
        let (probs, classes) = teacher(&model, &data, 1.0);
        assert_eq!(probs.len(), 400);
        assert!((probs[0] + probs[1] - 1.0).abs() < 1e-5);
        assert_eq!(
            classes,
            super::super::export::golden_predictions(&model, &data)
        );
        let dir = tempfile::tempdir()?;
        for distill in [false, true] {
            let mut recipe = Recipe::default();
            recipe.rat.epochs = 1;
            recipe.rat.max_shift = 0;
            let job = FinetuneJob {
                from: dir.path().join("src.json"),
                stages: vec![Stage::RatPaper, Stage::RatLearned],
                spec: Rescale::plain(2, Rounding::Single),
                out_dir: dir.path().to_path_buf(),
                seed: 1,
                threads: 1,
                recipe,
                progress: false,
                exec: Exec::cpu(),
                distill,
                temperature: 2.0,
            };
            let r = run(&job, &model, &data, &data, false)?;
            assert_eq!(r.stages.len(), 2);
            for (_, p, a) in &r.stages {
                let m = Model::load(p)?;
                assert_eq!(m.widest_k(), 2);
                assert!((0.0..=100.0).contains(a));
            }
            assert!(dir.path().join("src_finetune_k2.json").is_file());
        }
        Ok(())
    }
}
