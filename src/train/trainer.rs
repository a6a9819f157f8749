//! The training loop shared by every stage: seeded batches, Adam(W) with a cosine schedule,
//! a progress bar per epoch, a checkpoint after every epoch, and a hard stop on a non-finite
//! loss so that the last checkpoint on disk is always the last good one.

use super::Stage;
use super::adam::AdamW;
use super::batches::{EpochPlan, argmax_rows, batch};
use super::checkpoint::Checkpoint;
use super::net::Net;
use crate::data::Dataset;
use crate::quant::Rescale;
use crate::rng::Rng;
use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

/// Hyper-parameters of one stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyper {
    pub epochs: usize,
    /// Peak learning rate; the schedule is a cosine from it to zero over all steps.
    pub lr: f64,
    /// Decoupled (AdamW) weight decay on weights and biases.
    pub weight_decay: f64,
    pub batch: usize,
    /// Random shift of each training image by up to this many pixels per axis.
    pub max_shift: u32,
    /// Learning rate of the learned `log2 M` (learned-rescale RAT only).
    pub rescale_lr: f64,
    /// EMA momentum of the activation ranges.
    pub ema: f64,
}

impl Hyper {
    pub fn to_json(&self) -> Value {
        json!({
            "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
            "batch": self.batch, "max_shift": self.max_shift, "rescale_lr": self.rescale_lr,
            "ema": self.ema,
        })
    }
}

/// What a stage produced, for the log and the provenance.
#[derive(Clone, Debug)]
pub struct StageReport {
    pub epochs: usize,
    pub final_loss: f64,
    /// Training-graph accuracy on the test split after the last epoch (percent).
    pub graph_test_accuracy: f64,
    /// Wall seconds of each epoch's training steps (no evaluation, no checkpoint).
    pub epoch_seconds: Vec<f64>,
}

/// The diverged-training error: exit code 1, message names the stage, epoch and file kept.
#[derive(Debug)]
pub struct Diverged(pub String);

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Diverged {}

/// How a stage runs the network.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Float,
    Int(Rescale),
}

impl Mode {
    pub fn of(stage: Stage, spec: Rescale) -> Mode {
        match stage {
            Stage::Float => Mode::Float,
            // QAT is the unconstrained 31-bit baseline whatever the RAT spec says.
            Stage::Qat => Mode::Int(Rescale::plain(crate::quant::MAX_K_BITS, spec.rounding)),
            Stage::RatPaper | Stage::RatLearned => Mode::Int(spec),
        }
    }
}

/// The training graph's predicted classes on a dataset (no augmentation, no range update).
pub fn graph_predictions(net: &mut Net, data: &Dataset, mode: Mode) -> Result<Vec<usize>> {
    Ok(graph_logits(net, data, mode)?
        .iter()
        .map(|row| argmax_f32(row))
        .collect())
}

/// The training graph's logits of every image (no augmentation, no range update).
pub fn graph_logits(net: &mut Net, data: &Dataset, mode: Mode) -> Result<Vec<Vec<f32>>> {
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut out = Vec::with_capacity(data.len());
    for chunk in idx.chunks(500) {
        let (px, _) = batch(data, chunk, None)?;
        out.extend(net.logits(&px, mode, None, false)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// Index of the largest value, ties to the lowest (DESIGN's classification rule).
fn argmax_f32(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

pub fn accuracy_of(preds: &[usize], data: &Dataset) -> f64 {
    let ok = preds
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    100.0 * ok as f64 / data.len().max(1) as f64
}

/// Initial activation ranges from the float network: the mean batch min/max over the first
/// 2,048 training images, in batches of the size training will use (so the starting range
/// matches what the EMA will then track).
pub fn calibrate(net: &mut Net, data: &Dataset, batch_size: usize) -> Result<()> {
    let n = data.len().min(2048);
    let idx: Vec<usize> = (0..n).collect();
    for (i, chunk) in idx.chunks(batch_size.max(1)).enumerate() {
        let (px, _) = batch(data, chunk, None)?;
        // Momentum i / (i + 1) makes the EMA update an exact running mean.
        net.calibrate(&px, i as f64 / (i + 1) as f64)?;
    }
    Ok(())
}

/// Everything a stage needs besides the network.
pub struct StageRun<'a> {
    pub stage: Stage,
    pub hyper: &'a Hyper,
    pub spec: Rescale,
    pub seed: u64,
    pub train: &'a Dataset,
    pub test: &'a Dataset,
    /// Written after every epoch (atomically), so a crash or divergence keeps the last good one.
    pub checkpoint: Option<&'a Path>,
    pub progress: bool,
    /// Label-free training: per training image, the probabilities (`[N, classes]` row-major)
    /// the loss pulls the network's softmax towards instead of the labels (distillation).
    pub targets: Option<&'a [f32]>,
}

fn epoch_seed(seed: u64, stage: Stage, epoch: usize) -> u64 {
    let mut r = Rng::new(seed ^ ((stage as u64 + 1) << 40) ^ epoch as u64);
    r.next_u64()
}

/// Runs one stage on `ck` in place. The checkpoint must already suit the stage (see
/// [`super::begin_stage`]).
pub fn train_stage(ck: &mut Checkpoint, run: &StageRun) -> Result<StageReport> {
    let h = run.hyper;
    let mode = Mode::of(run.stage, run.spec);
    let n = run.train.len();
    if n == 0 {
        bail!("no training images");
    }
    let steps_per_epoch = n.div_ceil(h.batch);
    let total = (steps_per_epoch * h.epochs).max(1);
    let exec = ck.net.exec().clone();
    let mut opt = AdamW::new(ck.net.weight_vars(), h.lr, h.weight_decay, &exec)?;
    let rescale_vars = ck.net.rescale_vars();
    let mut opt_m = match rescale_vars.is_empty() {
        true => None,
        false => Some(AdamW::new(rescale_vars, h.rescale_lr, 0.0, &exec)?),
    };
    let classes = ck.net.classes();
    if let Some(t) = run.targets
        && t.len() != n * classes
    {
        bail!(
            "distillation targets: {} values for {n} images of {classes} classes",
            t.len()
        );
    }
    let ema = match mode {
        Mode::Float => None,
        Mode::Int(_) => Some(h.ema),
    };
    let style =
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos:>4}/{len:4} {elapsed:>3} {msg}")
            .expect("static template")
            .progress_chars("=> ");
    let mut report = StageReport {
        epochs: h.epochs,
        final_loss: f64::NAN,
        graph_test_accuracy: f64::NAN,
        epoch_seconds: Vec::new(),
    };
    let mut step = 0usize;
    for epoch in 0..h.epochs {
        let plan = EpochPlan::new(n, epoch_seed(run.seed, run.stage, epoch), h.max_shift);
        let bar = if run.progress {
            ProgressBar::new(steps_per_epoch as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style.clone());
        bar.set_prefix(format!("{} {}/{}", run.stage.as_str(), epoch + 1, h.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let t0 = Instant::now();
        for (b, idx) in plan.order.chunks(h.batch).enumerate() {
            let start = b * h.batch;
            let shifts = &plan.shifts[start..start + idx.len()];
            let (px, labels) = batch(run.train, idx, Some(shifts))?;
            let lr_scale = 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos());
            opt.lr = h.lr * lr_scale;
            if let Some(o) = opt_m.as_mut() {
                o.lr = h.rescale_lr * lr_scale;
            }
            let diverged = |what: String| {
                bar.abandon();
                let kept = match run.checkpoint {
                    Some(p) if epoch > 0 => format!(
                        "the last good checkpoint {} (epoch {epoch}) is kept",
                        p.display()
                    ),
                    Some(p) => format!(
                        "{} was not written by this run (no epoch completed)",
                        p.display()
                    ),
                    None => "no checkpoint was requested".to_string(),
                };
                anyhow::Error::new(Diverged(format!(
                    "{} training diverged: {what} at epoch {}, step {}; stopped, {kept} (try a lower --lr)",
                    run.stage.as_str(),
                    epoch + 1,
                    b + 1
                )))
            };
            // Exploding weights surface in integer mode as an underivable rescale factor
            // (not finite, or too large for any shift) before any loss exists; report them
            // as the divergence they are.
            let out = match ck.net.logits(&px, mode, ema, true) {
                Ok(out) => out,
                Err(e)
                    if !ck.net.is_finite()?
                        || e.chain().any(|c| c.is::<crate::quant::DeriveError>()) =>
                {
                    return Err(diverged(format!("{e:#}")));
                }
                Err(e) => return Err(e),
            };
            let loss = match run.targets {
                None => candle_nn::loss::cross_entropy(&out, &labels.to_device(&exec.device)?)?,
                Some(t) => {
                    let rows: Vec<f32> = idx
                        .iter()
                        .flat_map(|&i| t[i * classes..(i + 1) * classes].iter().copied())
                        .collect();
                    let p = Tensor::from_vec(rows, (idx.len(), classes), &exec.device)?;
                    let logp = candle_nn::ops::log_softmax(&out, 1)?;
                    (p * logp)?.sum(1)?.mean(0)?.neg()?
                }
            };
            let lv = loss.to_scalar::<f32>()? as f64;
            if !lv.is_finite() {
                return Err(diverged(format!("loss is {lv}")));
            }
            let grads = loss.backward()?;
            opt.step(&grads)?;
            if let Some(o) = opt_m.as_mut() {
                o.step(&grads)?;
            }
            let preds = argmax_rows(&out)?;
            let labels_v = labels.to_vec1::<u32>()?;
            correct += preds
                .iter()
                .zip(&labels_v)
                .filter(|(p, l)| **p == **l as usize)
                .count();
            seen += idx.len();
            loss_sum += lv * idx.len() as f64;
            step += 1;
            bar.inc(1);
            if b % 8 == 0 {
                bar.set_message(format!(
                    "loss {:.4} acc {:.2}%",
                    loss_sum / seen as f64,
                    100.0 * correct as f64 / seen as f64
                ));
            }
        }
        report.epoch_seconds.push(t0.elapsed().as_secs_f64());
        bar.finish_and_clear();
        report.final_loss = loss_sum / seen.max(1) as f64;
        let preds = graph_predictions(&mut ck.net, run.test, mode)?;
        report.graph_test_accuracy = accuracy_of(&preds, run.test);
        if run.progress {
            eprintln!(
                "{:>14} loss {:.4}  train {:.2}%  test {:.2}% (graph)  {:.2} s",
                format!("{} {}/{}", run.stage.as_str(), epoch + 1, h.epochs),
                report.final_loss,
                100.0 * correct as f64 / seen.max(1) as f64,
                report.graph_test_accuracy,
                report.epoch_seconds.last().unwrap_or(&0.0)
            );
        }
        if let Some(Value::Object(rec)) = ck.lineage.last_mut() {
            rec.insert("epochs_completed".into(), json!(epoch + 1));
            rec.insert("final_loss".into(), json!(report.final_loss));
            rec.insert(
                "graph_test_accuracy".into(),
                json!(report.graph_test_accuracy),
            );
        }
        if let Some(p) = run.checkpoint {
            ck.save(p).context("writing the epoch checkpoint")?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::export::tests::synthetic;
    use crate::train::{Recipe, Stage, StageSetup, begin_stage, fresh};

    fn run<'a>(
        stage: Stage,
        h: &'a Hyper,
        data: &'a Dataset,
        ck: Option<&'a Path>,
    ) -> StageRun<'a> {
        StageRun {
            stage,
            hyper: h,
            spec: Rescale::plain(4, crate::quant::Rounding::Single),
            seed: 1,
            train: data,
            test: data,
            checkpoint: ck,
            progress: false,
            targets: None,
        }
    }

    fn first_log2_m(ck: &Checkpoint) -> Vec<f32> {
        let Net::Mlp(m) = &ck.net else {
            panic!("an MLP")
        };
        m.layers[0]
            .learned
            .as_ref()
            .unwrap()
            .log2_m
            .to_vec1::<f32>()
            .unwrap()
    }

    /// A diverging run stops with `Diverged` and leaves the previous checkpoint untouched.
    #[test]
    fn nan_loss_stops_and_keeps_the_last_good_checkpoint() -> Result<()> {
        let data = synthetic(64, 1);
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("float.safetensors");
        let mut ck = fresh(16, &[8], 1)?;
        let mut h = Hyper {
            epochs: 1,
            batch: 16,
            ..Recipe::default().float
        };
        train_stage(&mut ck, &run(Stage::Float, &h, &data, Some(&path)))?;
        let good = std::fs::read(&path)?;
        h.lr = 1e30;
        h.epochs = 3;
        let e = train_stage(&mut ck, &run(Stage::Float, &h, &data, Some(&path))).unwrap_err();
        assert!(e.is::<Diverged>(), "{e:#}");
        assert!(format!("{e}").contains("diverged"), "{e}");
        assert_eq!(crate::error::exit_code(&e), 1);
        assert_eq!(std::fs::read(&path)?, good);
        Ok(())
    }

    /// In integer mode too, divergence is reported as such.
    #[test]
    fn integer_stage_divergence_is_reported() -> Result<()> {
        let data = synthetic(64, 4);
        let mut ck = fresh(16, &[8], 1)?;
        let h = Hyper {
            epochs: 3,
            batch: 16,
            lr: 1e30,
            ..Recipe::default().qat
        };
        let setup = StageSetup {
            stage: Stage::Qat,
            spec: Rescale::plain(31, crate::quant::Rounding::Single),
            seed: 1,
            threads: 1,
        };
        begin_stage(&mut ck, &setup, &h, &data)?;
        let e = train_stage(&mut ck, &run(Stage::Qat, &h, &data, None)).unwrap_err();
        assert!(e.is::<Diverged>(), "{e:#}");
        Ok(())
    }

    /// Training lowers the loss, and a rerun with the same seed is bit-identical.
    #[test]
    fn training_learns_and_is_deterministic() -> Result<()> {
        let data = synthetic(128, 2);
        let h = Hyper {
            epochs: 6,
            batch: 16,
            max_shift: 1,
            ..Recipe::default().float
        };
        let go = || -> Result<(Vec<u8>, f64, f64)> {
            let mut ck = fresh(16, &[16], 3)?;
            let first = train_stage(
                &mut ck,
                &run(
                    Stage::Float,
                    &Hyper {
                        epochs: 1,
                        ..h.clone()
                    },
                    &data,
                    None,
                ),
            )?;
            let last = train_stage(&mut ck, &run(Stage::Float, &h, &data, None))?;
            Ok((ck.to_bytes()?, first.final_loss, last.final_loss))
        };
        let (a, l1, l2) = go()?;
        assert!(l2 < l1, "loss {l1} -> {l2}");
        assert_eq!(go()?.0, a);
        Ok(())
    }

    /// QAT and both RAT variants run from a float checkpoint, and learned rescale moves
    /// its log2 M parameters.
    #[test]
    fn integer_stages_run() -> Result<()> {
        let data = synthetic(96, 3);
        let mut ck = fresh(16, &[8], 2)?;
        let h = Hyper {
            epochs: 1,
            batch: 32,
            ..Recipe::default().rat
        };
        let spec = Rescale::plain(3, crate::quant::Rounding::Single);
        for stage in [Stage::Qat, Stage::RatPaper] {
            let setup = StageSetup {
                stage,
                spec,
                seed: 1,
                threads: 1,
            };
            begin_stage(&mut ck, &setup, &h, &data)?;
            train_stage(&mut ck, &run(stage, &h, &data, None))?;
        }
        assert_eq!(ck.k, Some(3));
        ck.stage = Stage::Qat;
        let setup = StageSetup {
            stage: Stage::RatLearned,
            spec,
            seed: 1,
            threads: 1,
        };
        begin_stage(&mut ck, &setup, &h, &data)?;
        let before = first_log2_m(&ck);
        train_stage(&mut ck, &run(Stage::RatLearned, &h, &data, None))?;
        let after = first_log2_m(&ck);
        assert_ne!(before, after);
        assert_eq!(ck.lineage.len(), 3);
        Ok(())
    }
}
