//! `ratflow train`: Candle training of the MLP (float, QAT, RAT).

use super::TrainData;
use crate::train;
use anyhow::Result;
use std::path::PathBuf;

// Aliases keep clap from treating these as repeated arguments: each is one comma-separated
// value that a parser turns into a list (clap derive special-cases the literal `Vec`).
type Stages = Vec<crate::train::Stage>;
type Sizes = Vec<usize>;

/// Train the MLP: float, QAT (exports k = 31), RAT at k bits (paper and learned rescale).
///
/// Writes into --out: float.safetensors; qat.safetensors + qat_k31.json;
/// rat-a_k{K}.safetensors + rat-a_k{K}.json; rat-b_k{K}.safetensors + rat-b_k{K}.json
/// (with --csd D: rat-a_k{K}_csd{D}.* and rat-b_k{K}_csd{D}.*).
/// Deterministic for a given --seed and --threads.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Stages to run, in order, comma separated: float, qat, rat-a, rat-b.
    #[arg(long, default_value = "float,qat,rat-a,rat-b", value_parser = crate::train::parse_stages)]
    pub stage: Stages,
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
    let (train_set, test_set) = cmd.data.load()?;
    let recipe = cmd.recipe.apply(train::Recipe::default());
    let job = train::TrainJob {
        stages: cmd.stage,
        out_dir: cmd.out,
        init: cmd.init,
        hidden: cmd.hidden,
        arch: None,
        name: "mnist_mlp".into(),
        exec: train::exec::Exec::cpu(),
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
