//! Training with candle: float, QAT, and Rescale-Aware Training (RAT) at k bits.
//!
//! The stages share one network interface ([`net::Net`]: the MLP of [`network::Mlp`], or a
//! graph network of [`graph::GraphNet`] built from an `--arch` description ([`arch`]) or an
//! imported int-model) whose layers run either in float or as the integer ops they will be
//! exported as ([`layers::QuantLayer`] for dense/conv2d/depthwise_conv2d, [`pool`],
//! [`add`]). The integer forward is DESIGN sections 1 and 5 executed on exact integer codes
//! held in f32 tensors, with straight-through gradients ([`fakequant`], [`rescale`]), so QAT
//! and both RAT variants are the same pipeline with a different source of the rescale
//! `(m, s)`:
//!
//! | stage   | rescale in the forward pass                                        | export k |
//! |---------|--------------------------------------------------------------------|----------|
//! | `float` | none (real arithmetic)                                             | -        |
//! | `qat`   | derived from the current scales at 31 bits (the real `M`)          | 31       |
//! | `rat-a` | derived from the current scales at k bits, every step (the paper)  | k        |
//! | `rat-b` | learned per channel in the log domain, quantized to k bits (STE)   | k        |
//!
//! With a CSD digit budget D (`--csd D`, [`crate::quant::Rescale::csd_digits`]) both RAT variants project
//! every `m` onto the nearest value with at most D non-zero canonical signed digits
//! ([`quant::derive_multiplier_csd`]) in the same place of the forward pass, with the same
//! straight-through backward, and export `rescale.csd_digits = D`; D = 1 is power-of-two
//! rescaling. QAT stays the unconstrained 31-bit baseline. Batchnorms train in the float
//! stage only and fold into their layers when QAT begins ([`batchnorm`]), as TFLite's
//! converter folds them before quantizing.
//!
//! Every custom op has a second implementation from candle's standard ops, used off the CPU
//! ([`exec`]); `ratflow train --device cuda` selects it.
//!
//! Accuracy that matters is measured on the exported int-model by the golden engine; the
//! graph's own accuracy and its agreement with the golden model are recorded beside it.

pub mod adam;
pub mod add;
pub mod arch;
pub mod batches;
pub mod batchnorm;
pub mod bench;
pub mod checkpoint;
pub mod conv2d;
pub mod dense;
pub mod depthwise;
pub mod exec;
pub mod export;
pub mod fakequant;
pub mod finetune;
pub mod graph;
pub mod im2col;
pub mod layers;
pub mod net;
pub mod network;
pub mod plot;
pub mod pool;
pub mod rescale;

pub mod sweep;
pub mod trainer;

use crate::data::Dataset;
use crate::error::input;
use crate::quant::Rescale;
use crate::quant::{self, Rounding};
use anyhow::{Context, Result};
use arch::Arch;
use checkpoint::Checkpoint;
use exec::Exec;
use graph::GraphNet;
use net::Net;
use network::Mlp;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use trainer::{Hyper, Mode, StageReport, StageRun};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Float = 0,
    Qat = 1,
    /// RAT (a): the paper's variant, `m` re-derived at k bits from the scales each step.
    RatPaper = 2,
    /// RAT (b): per-channel rescale factors learned directly.
    RatLearned = 3,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Float, Stage::Qat, Stage::RatPaper, Stage::RatLearned];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Float => "float",
            Stage::Qat => "qat",
            Stage::RatPaper => "rat-a",
            Stage::RatLearned => "rat-b",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Which checkpoint stages this stage may start from.
    fn starts_from(self) -> &'static [Stage] {
        match self {
            Stage::Float => &[Stage::Float],
            Stage::Qat => &[Stage::Float, Stage::Qat],
            Stage::RatPaper => &[Stage::Qat, Stage::RatPaper],
            Stage::RatLearned => &[Stage::Qat, Stage::RatLearned],
        }
    }

    /// File stem of this stage's outputs in the output folder: `rat-a_k4`, or
    /// `rat-b_k8_csd2` under a CSD digit budget.
    pub fn file_stem(self, spec: Rescale) -> String {
        match self {
            Stage::Float => "float".into(),
            Stage::Qat => "qat".into(),
            Stage::RatPaper | Stage::RatLearned => format!("{}_{}", self.as_str(), spec.tag()),
        }
    }
}

/// `--stage float,qat,rat-a`: a comma-separated, increasing list of stages.
pub fn parse_stages(s: &str) -> std::result::Result<Vec<Stage>, String> {
    let stages = s
        .split(',')
        .map(|p| {
            Stage::parse(p.trim()).ok_or_else(|| {
                format!("unknown stage {p:?}: use float, qat, rat-a, rat-b (comma separated)")
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if stages.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!(
            "{s:?}: list each stage once, in pipeline order (float, qat, rat-a, rat-b)"
        ));
    }
    Ok(stages)
}

/// Hyper-parameters of every stage. The defaults are the shipped recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    pub float: Hyper,
    pub qat: Hyper,
    pub rat: Hyper,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            float: Hyper {
                epochs: 60,
                lr: 2e-3,
                weight_decay: 1e-4,
                batch: 64,
                max_shift: 2,
                rescale_lr: 0.0,
                ema: 0.99,
            },
            qat: Hyper {
                epochs: 6,
                lr: 2e-4,
                weight_decay: 1e-4,
                batch: 64,
                max_shift: 2,
                rescale_lr: 0.0,
                ema: 0.99,
            },
            rat: Hyper {
                epochs: 4,
                lr: 1e-4,
                weight_decay: 1e-4,
                batch: 64,
                max_shift: 2,
                rescale_lr: 2e-3,
                ema: 0.99,
            },
        }
    }
}

impl Recipe {
    pub fn hyper(&self, stage: Stage) -> &Hyper {
        match stage {
            Stage::Float => &self.float,
            Stage::Qat => &self.qat,
            Stage::RatPaper | Stage::RatLearned => &self.rat,
        }
    }
}

/// SHA-256 of a dataset's pixels and labels: names the data in provenance without a path.
pub fn fingerprint(data: &Dataset) -> Value {
    let mut bytes = data.pixels.clone();
    bytes.extend_from_slice(&data.labels);
    json!({ "images": data.len(), "rows": data.rows, "cols": data.cols,
            "sha256": crate::fsio::sha256_hex(&bytes) })
}

/// A float-stage checkpoint of `net`.
fn float_checkpoint(net: Net) -> Checkpoint {
    Checkpoint {
        net,
        stage: Stage::Float,
        k: None,
        csd: None,
        rounding: Rounding::Single,
        lineage: Vec::new(),
    }
}

/// Fresh float network (architecture from `hidden`), checked against the data.
pub fn fresh(inputs: usize, hidden: &[usize], seed: u64) -> Result<Checkpoint> {
    Ok(float_checkpoint(Net::Mlp(Mlp::new(
        inputs, hidden, 10, seed,
    )?)))
}

/// DESIGN's MNIST input: `[28, 28, 1]` images of `p / 255`, S = 1/255, Z = -128.
pub fn mnist_input(data: &Dataset) -> (Vec<usize>, crate::model::QParams) {
    (vec![data.rows, data.cols, 1], network::INPUT_QPARAMS)
}

/// Fresh float graph network of `arch` over the images of `data` (`[rows, cols, 1]`),
/// named `name` (exported models are `{name}_{stage}`).
pub fn fresh_graph(arch: &Arch, data: &Dataset, seed: u64, name: &str) -> Result<Checkpoint> {
    let (shape, q) = mnist_input(data);
    let nodes = arch
        .compile(&shape)
        .map_err(|e| input(format!("--arch: {e}")))?;
    let mut g = GraphNet::build(nodes, &shape, q, seed)?;
    g.arch = Some(arch.to_string());
    g.name = name.to_string();
    Ok(float_checkpoint(Net::Graph(g)))
}

/// Checks that `ck` suits the data (an input error otherwise).
pub fn check_data(ck: &Checkpoint, data: &Dataset, what: &str) -> Result<()> {
    if data.is_empty() {
        return Err(input(format!("{what}: no images")));
    }
    if data.pixels_per_image() != ck.net.input_len() {
        return Err(input(format!(
            "{what}: images have {} pixels but the network takes {} inputs",
            data.pixels_per_image(),
            ck.net.input_len()
        )));
    }
    if let Some(&l) = data.labels.iter().max()
        && l as usize >= ck.net.classes()
    {
        return Err(input(format!(
            "{what}: label {l} but the network has {} classes",
            ck.net.classes()
        )));
    }
    Ok(())
}

/// Whether `stage` can start from checkpoint `ck` (an input error naming both otherwise).
pub fn check_start(stage: Stage, ck: &Checkpoint) -> Result<()> {
    if !stage.starts_from().contains(&ck.stage) {
        let wanted: Vec<&str> = stage.starts_from().iter().map(|s| s.as_str()).collect();
        return Err(input(format!(
            "stage {} starts from a {} checkpoint, but the given checkpoint is from stage {}",
            stage.as_str(),
            wanted.join(" or "),
            ck.stage.as_str()
        )));
    }
    Ok(())
}

/// Everything one stage records about itself.
pub struct StageSetup {
    pub stage: Stage,
    pub spec: Rescale,
    pub seed: u64,
    pub threads: usize,
}

/// Turns a checkpoint into the starting point of `stage`: calibrates ranges for QAT, freezes
/// scales and initialises `log2 M` for learned-rescale RAT, and opens a lineage record.
pub fn begin_stage(
    ck: &mut Checkpoint,
    setup: &StageSetup,
    hyper: &Hyper,
    train: &Dataset,
) -> Result<()> {
    check_start(setup.stage, ck)?;
    if setup.stage >= Stage::Qat {
        // TFLite's converter folds batchnorms before quantizing; QAT starts from that network.
        ck.net.fold_batchnorm()?;
        if !ck.net.has_ranges() {
            trainer::calibrate(&mut ck.net, train, hyper.batch)?;
        }
    }
    if setup.stage == Stage::RatLearned && ck.net.rescale_vars().is_empty() {
        ck.net.start_learned()?;
    }
    let mode = Mode::of(setup.stage, setup.spec);
    ck.stage = setup.stage;
    (ck.k, ck.csd, ck.rounding) = match mode {
        Mode::Float => (None, None, Rounding::Single),
        Mode::Int(s) => (Some(s.k_bits), s.csd_digits, s.rounding),
    };
    let mut rec = json!({
        "stage": setup.stage.as_str(), "seed": setup.seed, "threads": setup.threads,
        "hyper": hyper.to_json(), "train_data": fingerprint(train),
    });
    if let Mode::Int(s) = mode {
        rec["k_bits"] = json!(s.k_bits);
        rec["rounding"] = json!(s.rounding.as_str());
        if let Some(d) = s.csd_digits {
            rec["csd_digits"] = json!(d);
        }
    }
    // Only off the default, so that CPU runs keep their exact bytes.
    let exec = ck.net.exec();
    if exec.portable || !exec.device.is_cpu() {
        rec["device"] = json!(exec.describe());
    }
    ck.lineage.push(rec);
    Ok(())
}

/// The int-model of a QAT/RAT checkpoint with golden accuracy and graph agreement in its
/// provenance.
pub struct Exported {
    pub model: crate::model::Model,
    /// Per test image: whether the golden engine classifies it correctly.
    pub golden_correct: Vec<bool>,
    pub golden_accuracy: f64,
    pub graph_accuracy: f64,
    pub agreement: f64,
}

pub fn export_checkpoint(
    ck: &mut Checkpoint,
    spec: Rescale,
    label: &str,
    test: &Dataset,
) -> Result<Exported> {
    let name = format!("{}_{label}", ck.net.model_name());
    let mut model = ck.net.to_model(spec, &name, Value::Null)?;
    let golden = export::golden_predictions(&model, test);
    let graph = trainer::graph_predictions(&mut ck.net, test, Mode::Int(spec))?;
    let golden_accuracy = trainer::accuracy_of(&golden, test);
    let graph_accuracy = trainer::accuracy_of(&graph, test);
    let agreement = export::agreement(&golden, &graph);
    model.provenance = json!({
        "tool": format!("ratflow {}", crate::VERSION),
        "export": label, "k_bits": spec.k_bits, "rounding": spec.rounding.as_str(),
        "lineage": ck.lineage,
        "test_data": fingerprint(test),
        "accuracy": { "golden_test": golden_accuracy, "graph_test": graph_accuracy,
                      "graph_golden_agreement": agreement },
    });
    if let Some(d) = spec.csd_digits {
        model.provenance["csd_digits"] = json!(d);
    }
    let golden_correct = golden
        .iter()
        .zip(&test.labels)
        .map(|(&p, &l)| p == l as usize)
        .collect();
    Ok(Exported {
        model,
        golden_correct,
        golden_accuracy,
        graph_accuracy,
        agreement,
    })
}

/// `ratflow train`: the stages to run and where their files go.
pub struct TrainJob {
    pub stages: Vec<Stage>,
    pub out_dir: PathBuf,
    pub init: Option<PathBuf>,
    pub hidden: Option<Vec<usize>>,
    /// A graph network of this architecture instead of the MLP.
    pub arch: Option<Arch>,
    /// Name prefix of a new graph network's exported models.
    pub name: String,
    pub exec: Exec,
    pub spec: Rescale,
    pub seed: u64,
    pub threads: usize,
    pub recipe: Recipe,
    pub progress: bool,
}

/// What a stage wrote.
pub struct Produced {
    pub stage: Stage,
    pub checkpoint: PathBuf,
    pub model: Option<PathBuf>,
    pub report: StageReport,
    pub exported: Option<(f64, f64, f64)>,
}

/// An independent copy of `ck` on the same device.
pub fn deep_copy(ck: &Checkpoint) -> Result<Checkpoint> {
    let mut c = Checkpoint::from_bytes(&ck.to_bytes()?)?;
    c.net.set_exec(ck.net.exec().clone())?;
    Ok(c)
}

/// Validates everything (data, stages, checkpoint, k), then runs the stages in order. A RAT
/// stage always starts from the latest float/QAT state, so `qat,rat-a,rat-b` fine-tunes
/// both variants from the same QAT network.
pub fn run(job: &TrainJob, train: &Dataset, test: &Dataset) -> Result<Vec<Produced>> {
    if job.stages.is_empty() {
        return Err(input("--stage: no stages given"));
    }
    if !(1..=quant::MAX_K_BITS).contains(&job.spec.k_bits) {
        return Err(input(format!(
            "--k {} is outside 1..={}",
            job.spec.k_bits,
            quant::MAX_K_BITS
        )));
    }
    if let Some(d) = job.spec.csd_digits
        && !(1..=quant::MAX_CSD_DIGITS).contains(&d)
    {
        return Err(input(format!(
            "--csd {d} is outside 1..={}",
            quant::MAX_CSD_DIGITS
        )));
    }
    let first = job.stages[0];
    let base = match &job.init {
        Some(p) => {
            let ck = Checkpoint::load(p)?;
            match (&ck.net, &job.hidden, &job.arch) {
                (Net::Mlp(m), Some(h), _) if *h != m.hidden() => {
                    return Err(input(format!(
                        "--hidden {h:?} conflicts with {} (hidden {:?})",
                        p.display(),
                        m.hidden()
                    )));
                }
                (Net::Graph(_), Some(_), _) => {
                    return Err(input(format!(
                        "--hidden: {} is a graph network, not the MLP",
                        p.display()
                    )));
                }
                (_, _, Some(_)) => {
                    return Err(input(format!(
                        "--arch: the network comes from --init {}; give one or the other",
                        p.display()
                    )));
                }
                _ => {}
            }
            check_start(first, &ck).with_context(|| format!("--init {}", p.display()))?;
            ck
        }
        None if first == Stage::Float => match &job.arch {
            Some(_) if job.hidden.is_some() => {
                return Err(input(
                    "--hidden sizes the MLP; with --arch the architecture says it all",
                ));
            }
            Some(a) => fresh_graph(a, train, job.seed, &job.name)?,
            None => fresh(
                train.pixels_per_image(),
                job.hidden.as_deref().unwrap_or(&[128, 64]),
                job.seed,
            )?,
        },
        None => {
            return Err(input(format!(
                "stage {} needs --init CHECKPOINT (or an earlier stage in --stage)",
                first.as_str()
            )));
        }
    };
    let mut base = base;
    base.net.set_exec(job.exec.clone())?;
    check_data(&base, train, "training data")?;
    check_data(&base, test, "test data")?;
    // Walk the chain before training anything, so `float,rat-a` fails up front rather than
    // after the float stage has written its files.
    let mut current = base.stage;
    for (i, &stage) in job.stages.iter().enumerate() {
        if i > 0 && stage <= job.stages[i - 1] {
            return Err(input(
                "--stage: list each stage once, in pipeline order (float, qat, rat-a, rat-b)",
            ));
        }
        if !stage.starts_from().contains(&current) {
            return Err(input(format!(
                "stage {} cannot follow a {} network (it starts from {}); add the missing stage",
                stage.as_str(),
                current.as_str(),
                stage
                    .starts_from()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        if stage < Stage::RatPaper {
            current = stage;
        }
    }
    for (h, st) in job.stages.iter().map(|&s| (job.recipe.hyper(s), s)) {
        if h.batch == 0 {
            return Err(input(format!(
                "{}: batch size must be positive",
                st.as_str()
            )));
        }
        if !(h.lr.is_finite() && h.lr > 0.0) {
            return Err(input(format!(
                "{}: learning rate {} must be positive",
                st.as_str(),
                h.lr
            )));
        }
    }
    let mut base = Some(base);
    let mut produced = Vec::new();
    for &stage in &job.stages {
        let rat = stage >= Stage::RatPaper;
        let mut ck = match (&mut base, rat) {
            (Some(b), true) => deep_copy(b)?,
            (b, _) => b.take().expect("a float or QAT state precedes every stage"),
        };
        let hyper = job.recipe.hyper(stage);
        let setup = StageSetup {
            stage,
            spec: job.spec,
            seed: job.seed,
            threads: job.threads,
        };
        begin_stage(&mut ck, &setup, hyper, train)?;
        let stem = stage.file_stem(job.spec);
        let ck_path = job.out_dir.join(format!("{stem}.safetensors"));
        let run = StageRun {
            stage,
            hyper,
            spec: job.spec,
            seed: job.seed,
            train,
            test,
            checkpoint: Some(&ck_path),
            progress: job.progress,
            targets: None,
        };
        let report = trainer::train_stage(&mut ck, &run)?;
        if hyper.epochs == 0 {
            ck.save(&ck_path)?;
        }
        let (model, exported) = match Mode::of(stage, job.spec) {
            Mode::Float => (None, None),
            Mode::Int(spec) => {
                let label = match stage {
                    Stage::Qat => "qat_k31".to_string(),
                    _ => stem.clone(),
                };
                let ex = export_checkpoint(&mut ck, spec, &label, test)?;
                let path = job.out_dir.join(format!("{label}.json"));
                ex.model.save(&path)?;
                (
                    Some(path),
                    Some((ex.golden_accuracy, ex.graph_accuracy, ex.agreement)),
                )
            }
        };
        produced.push(Produced {
            stage,
            checkpoint: ck_path,
            model,
            report,
            exported,
        });
        if !rat {
            base = Some(ck);
        }
    }
    Ok(produced)
}

/// Sets the thread count of the matrix products (gemm, through the variable candle and gemm
/// read). Must run before the first tensor operation (candle sizes its pools once); called by
/// the CLI right after argument parsing.
///
/// candle's element-wise worker pool is kept at one thread whatever `n` is: at these sizes
/// (at most 100k elements) handing an element-wise op to a spinning worker costs more than
/// the op, and on a shared 2-core machine a descheduled worker stalls every step (QAT epochs
/// measured 0.15 s with the pool serial and up to 0.47 s with it at two threads under the
/// same load). Results do not depend on either setting: element-wise ops have no reduction
/// order, and gemm splits output tiles, not sums.
pub fn set_threads(n: usize) {
    keep_freed_memory();
    let n = n.max(1).to_string();
    // SAFETY: called from the single-threaded CLI entry point before any tensor operation or
    // thread pool exists, so no other thread can be reading the environment concurrently.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", &n);
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Keeps freed memory in the process instead of returning it to the kernel. A training step
/// allocates and frees the same few large buffers (gathered windows, gradients) every time;
/// with glibc's defaults each is a fresh mmap or a trimmed heap top, and its first touch costs
/// a page fault per 4 KiB (a fifth of a CNN step in `perf`). Memory then stays at the step's
/// peak (tens of MB).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// The path the stage's checkpoint goes to (for messages and tests).
pub fn checkpoint_path(dir: &Path, stage: Stage, spec: Rescale) -> PathBuf {
    dir.join(format!("{}.safetensors", stage.file_stem(spec)))
}
