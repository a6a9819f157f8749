//! `ratflow sweep`: accuracy against rescale width k (PTQ, RAT-a, RAT-b).

use super::TrainData;
use crate::train;
use anyhow::Result;
use std::path::PathBuf;

/// One comma-separated value (clap derive special-cases the literal `Vec`).
type Digits = Vec<u32>;

/// Accuracy against rescale width k: PTQ, RAT-a and RAT-b from one QAT checkpoint, or, with
/// `--model M.json`, the post-training sweep of any int-model (`ratflow ptq-sweep`).
///
/// Rows: every k of --ks (any k-bit m), then every CSD digit budget of --csd at every
/// width of --csd-ks. Writes sweep.json, sweep.md (table), sweep.svg (plot against k) and,
/// with CSD rows, sweep_csd.svg (plot against the digit budget) into --out.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// QAT checkpoint (qat.safetensors from `ratflow train`).
    #[arg(long, required_unless_present = "model")]
    pub qat: Option<PathBuf>,
    /// Float checkpoint, for the reference column.
    #[arg(long, required_unless_present = "model")]
    pub float: Option<PathBuf>,
    /// An int-model (imported or trained elsewhere): every rescaler re-derived at each k and
    /// compared with its k = 31 self on --inputs or random inputs (no training; the same as
    /// `ratflow ptq-sweep`).
    #[arg(long, conflicts_with_all = ["qat", "float"])]
    pub model: Option<PathBuf>,
    /// With --model: inputs as a .npy array `[N, ...input shape]` (default: random int8 codes,
    /// seed --seed).
    #[arg(long, value_name = "X.npy", requires = "model")]
    pub inputs: Option<PathBuf>,
    /// With --model: labels of --inputs (.npy integers `[N]`), for the accuracy column.
    #[arg(long, value_name = "Y.npy", requires = "inputs")]
    pub labels: Option<PathBuf>,
    /// With --model: inputs used.
    #[arg(long, default_value_t = 200, requires = "model")]
    pub count: usize,
    /// Widths to sweep.
    #[arg(long, default_value = "31,16,12,8,6,5,4,3,2,1", value_parser = super::parse_k, value_delimiter = ',')]
    pub ks: Vec<u32>,
    /// CSD digit budgets of the multiplierless rows, comma separated, or `none`.
    #[arg(long, default_value = "3,2,1", value_parser = super::parse_csd_list)]
    pub csd: Digits,
    /// Widths k of the CSD rows.
    #[arg(long, default_value = "4,8,31", value_parser = super::parse_k, value_delimiter = ',')]
    pub csd_ks: Vec<u32>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Fine-tuning budget of each RAT run, in epochs.
    #[arg(long, default_value_t = 2)]
    pub budget: usize,
    /// Peak learning rate of the RAT runs (default: the train recipe's).
    #[arg(long)]
    pub rat_lr: Option<f64>,
    /// Learning rate of the learned log2 rescale factors (RAT-b).
    #[arg(long)]
    pub rescale_lr: Option<f64>,
    /// Rounding mode of every exported rescale (single or double).
    #[arg(long, default_value = "single", value_parser = super::parse_rounding)]
    pub rounding: crate::quant::Rounding,
    /// First RAT seed (repeats use SEED, SEED+1, ...).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads for the matrix products (recorded in sweep.json).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    #[command(flatten)]
    pub data: TrainData,
    /// Also write every int-model of the sweep into OUT/models/.
    #[arg(long)]
    pub save_models: bool,
    /// RAT runs per k and variant (seeds SEED, SEED+1, ...); the table shows the mean.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Where tensors live: cpu, cuda, cuda:N (needs the `cuda` build feature), metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: &Args) -> Result<()> {
    if let Some(model) = &a.model {
        return super::ptq_sweep::run(&super::ptq_sweep::Args {
            model: model.clone(),
            inputs: a.inputs.clone(),
            labels: a.labels.clone(),
            seed: a.seed,
            count: a.count,
            ks: a.ks.clone(),
            out: Some(a.out.clone()),
        });
    }
    crate::train::set_threads(a.threads as usize);
    let cmd = a.clone();
    let (train_set, test_set) = cmd.data.load()?;
    let recipe = super::train::RecipeArgs {
        rat_lr: cmd.rat_lr,
        rescale_lr: cmd.rescale_lr,
        ..Default::default()
    };
    let mut rat = recipe.apply(train::Recipe::default()).rat;
    rat.epochs = cmd.budget;
    let job = train::sweep::SweepJob {
        qat: cmd
            .qat
            .ok_or_else(|| crate::error::input("--qat is required without --model"))?,
        float: cmd
            .float
            .ok_or_else(|| crate::error::input("--float is required without --model"))?,
        ks: cmd.ks,
        csd: cmd.csd,
        csd_ks: cmd.csd_ks,
        out_dir: cmd.out.clone(),
        rat,
        rounding: cmd.rounding,
        seed: cmd.seed,
        threads: cmd.threads as usize,
        progress: !cmd.quiet,
        save_models: cmd.save_models,
        repeats: cmd.repeats,
        exec: crate::train::exec::Exec::parse(&cmd.device)
            .map_err(|e| crate::error::input(format!("{e:#}")))?,
    };
    let r = train::sweep::run(&job, &train_set, &test_set)?;
    print!("{}", train::sweep::markdown(&r));
    println!(
        "wrote {0}/sweep.json, {0}/sweep.md, {0}/sweep.svg{1}",
        cmd.out.display(),
        if r.constrained().next().is_some() {
            format!(", {}/sweep_csd.svg", cmd.out.display())
        } else {
            String::new()
        }
    );
    Ok(())
}
