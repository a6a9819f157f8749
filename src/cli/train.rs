//! `ratflow train`: Candle training (float, QAT, RAT) of the MLP or of any `--arch`, and RAT
//! fine-tuning of an imported int-model (`--from`).

use super::TrainData;
use crate::data::{self, InputSet, Split};
use crate::error::input;
use crate::train::{self, Stage, arch::Arch, exec::Exec, finetune};
use anyhow::Result;
use std::path::PathBuf;

// Aliases keep clap from treating these as repeated arguments: each is one comma-separated
// value that a parser turns into a list (clap derive special-cases the literal `Vec`).
type Stages = Vec<crate::train::Stage>;
type Sizes = Vec<usize>;

/// Train a network: float, QAT (exports k = 31), RAT at k bits (paper and learned rescale);
/// the MLP by default, any architecture with --arch, or RAT on an imported model with --from.
///
/// Writes into --out: float.safetensors; qat.safetensors + qat_k31.json;
/// rat-a_k{K}.safetensors + rat-a_k{K}.json; rat-b_k{K}.safetensors + rat-b_k{K}.json
/// (with --csd D: rat-a_k{K}_csd{D}.* and rat-b_k{K}_csd{D}.*). With --from M.json:
/// {name}_rat-a_k{K}.json, {name}_rat-b_k{K}.json and {name}_finetune_k{K}.json (accuracies
/// of the source, PTQ at k and each RAT variant).
/// Deterministic for a given --seed and --threads.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Stages to run, in order, comma separated: float, qat, rat-a, rat-b (default: all four;
    /// with --from: rat-a,rat-b).
    #[arg(long, value_parser = crate::train::parse_stages)]
    pub stage: Option<Stages>,
    /// Architecture of a new network instead of the MLP: a description like
    /// `conv2d:16:3x3,batchnorm,relu,max_pool2d:2,flatten,dense:10`, or a .json file
    /// (grammar in docs/train.md).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Name prefix of a new --arch network's exported models.
    #[arg(long, default_value = "mnist_cnn")]
    pub name: String,
    /// RAT fine-tuning of an int8 model (int-model .json with weight_scale, version 1 or 2):
    /// the float network starts from its dequantized weights and its (S, Z).
    #[arg(long, value_name = "M.json", conflicts_with_all = ["arch", "init", "hidden"])]
    pub from: Option<PathBuf>,
    /// With --from: fine-tuning inputs as .npy `[N, ...input shape]` (int8 codes or float
    /// real values) instead of MNIST; without --labels the run is label-free.
    #[arg(long, value_name = "X.npy", requires = "from")]
    pub inputs: Option<PathBuf>,
    /// Labels of --inputs (.npy integers, each below the model's output size).
    #[arg(long, value_name = "Y.npy", requires = "inputs")]
    pub labels: Option<PathBuf>,
    /// With --from: train label-free, towards the source model's own outputs on the inputs
    /// (even where labels exist).
    #[arg(long, requires = "from")]
    pub distill: bool,
    /// Softmax temperature of the label-free targets.
    #[arg(long, default_value_t = 1.0, requires = "from")]
    pub temperature: f64,
    /// Where tensors live: cpu, cuda, cuda:N (needs the `cuda` build feature), metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Checkpoint to start the first stage from (float for qat, qat for rat-a/rat-b).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Hidden layer sizes of a new network, comma separated (default 128,64).
    #[arg(long, value_parser = super::parse_sizes)]
    pub hidden: Option<Sizes>,
    /// Rescale multiplicand width for RAT, 1..=31.
    #[arg(long, default_value = "4", value_parser = super::parse_k)]
    pub k: u32,
    /// Multiplierless RAT: every m has at most D non-zero canonical signed digits
    /// (1..=16; 1 = power-of-two rescaling, 2 = one shift-add), projected in the forward
    /// pass of both RAT variants and recorded as rescale.csd_digits. QAT is unaffected.
    #[arg(long, value_name = "D", value_parser = super::parse_csd)]
    pub csd: Option<u32>,
    /// Rounding mode of the exported rescale (single or double).
    #[arg(long, default_value = "single", value_parser = super::parse_rounding)]
    pub rounding: crate::quant::Rounding,
    /// Seed of the initial weights, shuffles and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads for the matrix products (recorded in provenance; results were bit-identical
    /// for 1 and 2 threads, but fix it to reproduce files byte for byte).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub data: TrainData,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
}

/// Every training hyper-parameter flag; unset ones keep the shipped recipe.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RecipeArgs {
    /// Float epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// QAT epochs.
    #[arg(long)]
    pub qat_epochs: Option<usize>,
    /// RAT epochs (both variants).
    #[arg(long)]
    pub rat_epochs: Option<usize>,
    /// Peak learning rate of the float stage (cosine schedule to zero).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Peak learning rate of QAT.
    #[arg(long)]
    pub qat_lr: Option<f64>,
    /// Peak learning rate of RAT (both variants).
    #[arg(long)]
    pub rat_lr: Option<f64>,
    /// Learning rate of the learned log2 rescale factors (RAT-b).
    #[arg(long)]
    pub rescale_lr: Option<f64>,
    /// Mini-batch size of every stage.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Random shift augmentation, in pixels per axis (0 = off), every stage.
    #[arg(long)]
    pub shift: Option<u32>,
}

impl RecipeArgs {
    pub fn apply(&self, mut r: train::Recipe) -> train::Recipe {
        let set = |v: Option<usize>, d: &mut usize| {
            if let Some(v) = v {
                *d = v
            }
        };
        set(self.epochs, &mut r.float.epochs);
        set(self.qat_epochs, &mut r.qat.epochs);
        set(self.rat_epochs, &mut r.rat.epochs);
        for (v, d) in [
            (self.lr, &mut r.float.lr),
            (self.qat_lr, &mut r.qat.lr),
            (self.rat_lr, &mut r.rat.lr),
            (self.rescale_lr, &mut r.rat.rescale_lr),
        ] {
            if let Some(v) = v {
                *d = v;
            }
        }
        for h in [&mut r.float, &mut r.qat, &mut r.rat] {
            set(self.batch, &mut h.batch);
            if let Some(s) = self.shift {
                h.max_shift = s;
            }
        }
        r
    }
}

pub fn run(a: &Args) -> Result<()> {
    crate::train::set_threads(a.threads as usize);
    let cmd = a.clone();
    let exec = Exec::parse(&cmd.device).map_err(|e| input(format!("{e:#}")))?;
    if let Some(from) = &cmd.from {
        return run_from(&cmd, from, exec);
    }
    let arch = cmd.arch.as_deref().map(Arch::from_arg).transpose()?;
    let (train_set, test_set) = cmd.data.load()?;
    let recipe = cmd.recipe.apply(train::Recipe::default());
    let job = train::TrainJob {
        stages: cmd
            .stage
            .unwrap_or_else(|| vec![Stage::Float, Stage::Qat, Stage::RatPaper, Stage::RatLearned]),
        out_dir: cmd.out,
        init: cmd.init,
        hidden: cmd.hidden,
        arch,
        name: cmd.name,
        exec,
        spec: crate::quant::Rescale {
            k_bits: cmd.k,
            rounding: cmd.rounding,
            csd_digits: cmd.csd,
        },
        seed: cmd.seed,
        threads: cmd.threads as usize,
        recipe,
        progress: !cmd.quiet,
    };
    for p in train::run(&job, &train_set, &test_set)? {
        let secs = train::bench::median(&p.report.epoch_seconds);
        match (&p.model, p.exported) {
            (Some(m), Some((golden, graph, agree))) => println!(
                "{:<6} {} + {}: golden {golden:.2}%, graph {graph:.2}%, agreement {agree:.2}% ({} epochs, {secs:.3} s/epoch median)",
                p.stage.as_str(),
                p.checkpoint.display(),
                m.display(),
                p.report.epochs
            ),
            _ => println!(
                "{:<6} {}: float test {:.2}% ({} epochs, {secs:.3} s/epoch median)",
                p.stage.as_str(),
                p.checkpoint.display(),
                p.report.graph_test_accuracy,
                p.report.epochs
            ),
        }
    }
    Ok(())
}

/// `--from M.json`: RAT fine-tuning of an imported model (see [`finetune`]).
fn run_from(cmd: &Args, from: &std::path::Path, exec: Exec) -> Result<()> {
    let model = finetune::load_source(from)?;
    let t = model.input();
    let classes = model.num_classes();
    let mut recipe = cmd.recipe.apply(train::Recipe::default());
    let (train_set, test_set, test_is_teacher, distill) = match &cmd.inputs {
        Some(x) => {
            let codes = data::npy::read_inputs(x, t.len(), t.q.scale, t.q.zero_point)?;
            if codes.is_empty() {
                return Err(input(format!("{}: no inputs", x.display())));
            }
            let labels = cmd
                .labels
                .as_ref()
                .map(|l| data::npy::read_labels(l, codes.len(), classes))
                .transpose()?;
            if classes > 256 {
                return Err(input(format!(
                    "{}: {classes} classes; training handles at most 256",
                    model.name
                )));
            }
            let distill = cmd.distill || labels.is_none();
            // The source model's classes, for a label-free run's accuracy column.
            let unlabelled = finetune::codes_dataset(&codes, &vec![0; codes.len()], &t.shape);
            let teacher = finetune::teacher(&model, &unlabelled, 1.0).1;
            let (lab, is_teacher) = match labels {
                Some(l) => (l, false),
                None => (teacher, true),
            };
            let set = finetune::codes_dataset(&codes, &lab, &t.shape);
            // Shifting arbitrary inputs is not augmentation: off unless asked for.
            if cmd.recipe.shift.is_none() {
                recipe.rat.max_shift = 0;
            }
            (set.clone(), set, is_teacher, distill)
        }
        None => {
            let load = |split: Split| -> Result<crate::data::Dataset> {
                let d = data::load(&cmd.data.data, split)?;
                if d.pixels_per_image() != t.len() {
                    return Err(input(format!(
                        "model {} takes {} inputs (shape {:?}) but the MNIST images in {} have {} pixels: pass --inputs X.npy",
                        model.name,
                        t.len(),
                        t.shape,
                        cmd.data.data.display(),
                        d.pixels_per_image()
                    )));
                }
                let set = InputSet::from_dataset(&d, t.q.scale, t.q.zero_point, split.as_str());
                let labels: Vec<usize> = d.labels.iter().map(|&l| l as usize).collect();
                Ok(finetune::codes_dataset(&set.codes, &labels, &t.shape))
            };
            let (mut tr, mut te) = (load(Split::Train)?, load(Split::Test)?);
            for (d, limit) in [
                (&mut tr, cmd.data.train_limit),
                (&mut te, cmd.data.test_limit),
            ] {
                if let Some(n) = limit {
                    if n == 0 {
                        return Err(input("a limit of 0 images leaves no data"));
                    }
                    d.truncate(n);
                }
            }
            (tr, te, false, cmd.distill)
        }
    };
    let stages = cmd
        .stage
        .clone()
        .unwrap_or_else(|| vec![Stage::RatPaper, Stage::RatLearned]);
    let job = finetune::FinetuneJob {
        from: from.to_path_buf(),
        stages,
        spec: crate::quant::Rescale {
            k_bits: cmd.k,
            rounding: model.rescale.rounding,
            csd_digits: cmd.csd,
        },
        out_dir: cmd.out.clone(),
        seed: cmd.seed,
        threads: cmd.threads as usize,
        recipe,
        progress: !cmd.quiet,
        exec,
        distill,
        temperature: cmd.temperature,
    };
    let r = finetune::run(&job, &model, &train_set, &test_set, test_is_teacher)?;
    println!(
        "{} on {} test inputs, against {} (golden): source k = {} {:.2}%, PTQ k = {} {:.2}%",
        model.name,
        test_set.len(),
        r.against,
        model.widest_k(),
        r.source_accuracy,
        cmd.k,
        r.ptq_accuracy
    );
    for (stage, path, acc) in &r.stages {
        println!(
            "{:<6} {} ({}): {acc:.2}%",
            stage.as_str(),
            path.display(),
            if distill { "label-free" } else { "labels" }
        );
    }
    Ok(())
}
