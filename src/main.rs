//! The `ratflow` command line: argument parsing only; the work lives in the library.

use clap::{Parser, Subcommand};
use ratflow::cli;
use std::path::PathBuf;
use std::process::ExitCode;

// Aliases keep clap from treating these as repeated arguments: each is one comma-separated
// value that a parser turns into a list (clap derive special-cases the literal `Vec`).
type Sizes = Vec<usize>;
type Stages = Vec<ratflow::train::Stage>;
type Digits = Vec<u32>;

#[derive(Parser)]
#[command(
    name = "ratflow",
    version,
    about = "Rescale-aware training to verified integer RTL"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accuracy of an int-model on an MNIST split, measured by the golden integer model.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: cli::DataArgs,
        /// Print one JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Golden vectors (JSONL) from the golden integer model.
    Vectors {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: cli::DataArgs,
        /// Number of vectors (at most the split's size for MNIST inputs).
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Random int8 inputs (corners first) from this seed instead of MNIST images.
        #[arg(long, value_name = "SEED")]
        random_inputs: Option<u64>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Layers, shapes, rescale settings, m/s ranges and accumulator bounds of an int-model.
    Inspect {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Train the MLP: float, QAT (exports k = 31), RAT at k bits (paper and learned rescale).
    ///
    /// Writes into --out: float.safetensors; qat.safetensors + qat_k31.json;
    /// rat-a_k{K}.safetensors + rat-a_k{K}.json; rat-b_k{K}.safetensors + rat-b_k{K}.json
    /// (with --csd D: rat-a_k{K}_csd{D}.* and rat-b_k{K}_csd{D}.*).
    /// Deterministic for a given --seed and --threads.
    Train {
        /// Stages to run, in order, comma separated: float, qat, rat-a, rat-b.
        #[arg(long, default_value = "float,qat,rat-a,rat-b", value_parser = ratflow::train::parse_stages)]
        stage: Stages,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Checkpoint to start the first stage from (float for qat, qat for rat-a/rat-b).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Hidden layer sizes of a new network, comma separated (default 128,64).
        #[arg(long, value_parser = cli::parse_sizes)]
        hidden: Option<Sizes>,
        /// Rescale multiplicand width for RAT, 1..=31.
        #[arg(long, default_value = "4", value_parser = cli::parse_k)]
        k: u32,
        /// Multiplierless RAT: every m has at most D non-zero canonical signed digits
        /// (1..=16; 1 = power-of-two rescaling, 2 = one shift-add), projected in the forward
        /// pass of both RAT variants and recorded as rescale.csd_digits. QAT is unaffected.
        #[arg(long, value_name = "D", value_parser = cli::parse_csd)]
        csd: Option<u32>,
        /// Rounding mode of the exported rescale (single or double).
        #[arg(long, default_value = "single", value_parser = cli::parse_rounding)]
        rounding: ratflow::quant::Rounding,
        /// Seed of the initial weights, shuffles and augmentation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Threads for the matrix products (recorded in provenance; results were bit-identical
        /// for 1 and 2 threads, but fix it to reproduce files byte for byte).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        threads: u64,
        #[command(flatten)]
        recipe: cli::RecipeArgs,
        #[command(flatten)]
        data: cli::TrainData,
        /// No progress bars or per-epoch lines.
        #[arg(long)]
        quiet: bool,
    },
    /// Accuracy against rescale width k: PTQ, RAT-a and RAT-b from one QAT checkpoint.
    ///
    /// Rows: every k of --ks (any k-bit m), then every CSD digit budget of --csd at every
    /// width of --csd-ks. Writes sweep.json, sweep.md (table), sweep.svg (plot against k) and,
    /// with CSD rows, sweep_csd.svg (plot against the digit budget) into --out.
    Sweep {
        /// QAT checkpoint (qat.safetensors from `ratflow train`).
        #[arg(long)]
        qat: PathBuf,
        /// Float checkpoint, for the reference column.
        #[arg(long)]
        float: PathBuf,
        /// Widths to sweep.
        #[arg(long, default_value = "31,16,12,8,6,5,4,3,2,1", value_parser = cli::parse_k, value_delimiter = ',')]
        ks: Vec<u32>,
        /// CSD digit budgets of the multiplierless rows, comma separated, or `none`.
        #[arg(long, default_value = "3,2,1", value_parser = cli::parse_csd_list)]
        csd: Digits,
        /// Widths k of the CSD rows.
        #[arg(long, default_value = "4,8,31", value_parser = cli::parse_k, value_delimiter = ',')]
        csd_ks: Vec<u32>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Fine-tuning budget of each RAT run, in epochs.
        #[arg(long, default_value_t = 2)]
        budget: usize,
        /// Peak learning rate of the RAT runs (default: the train recipe's).
        #[arg(long)]
        rat_lr: Option<f64>,
        /// Learning rate of the learned log2 rescale factors (RAT-b).
        #[arg(long)]
        rescale_lr: Option<f64>,
        /// Rounding mode of every exported rescale (single or double).
        #[arg(long, default_value = "single", value_parser = cli::parse_rounding)]
        rounding: ratflow::quant::Rounding,
        /// First RAT seed (repeats use SEED, SEED+1, ...).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Threads for the matrix products (recorded in sweep.json).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        threads: u64,
        #[command(flatten)]
        data: cli::TrainData,
        /// Also write every int-model of the sweep into OUT/models/.
        #[arg(long)]
        save_models: bool,
        /// RAT runs per k and variant (seeds SEED, SEED+1, ...); the table shows the mean.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long)]
        quiet: bool,
    },
    /// Seconds per training epoch of each stage (8,000 images, batch 64).
    BenchTrain {
        /// Epochs timed per stage (the median is reported).
        #[arg(long, default_value_t = 5)]
        epochs: usize,
        #[arg(long, default_value = "128,64", value_parser = cli::parse_sizes)]
        hidden: Sizes,
        /// Rescale width of the RAT stages.
        #[arg(long, default_value = "4", value_parser = cli::parse_k)]
        k: u32,
        /// Threads for the matrix products.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        threads: u64,
        #[command(flatten)]
        data: cli::TrainData,
        #[arg(long)]
        json: bool,
    },
    /// A random valid int-model (for testing other tools and the RTL).
    RandomModel {
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Input length (784 = MNIST).
        #[arg(long)]
        inputs: Option<usize>,
        /// Output sizes of all layers, comma separated, e.g. 32,10.
        #[arg(long)]
        layers: Option<String>,
        #[arg(long, value_parser = cli::parse_k)]
        k: Option<u32>,
        #[arg(long, value_parser = cli::parse_rounding)]
        rounding: Option<ratflow::quant::Rounding>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Synthesizable Verilog-2005 for an int-model: one module per file, ROM images, files.f,
    /// manifest.json.
    Rtl {
        #[arg(long)]
        model: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Output channels computed at once: P for every layer (capped at its outputs), `full`,
        /// or one value per layer (e.g. 16,8,10).
        #[arg(long, default_value = "1", value_parser = ratflow::rtl::Parallel::parse)]
        parallel: ratflow::rtl::Parallel,
        /// Name of the top module (default: the model name as a Verilog identifier).
        #[arg(long)]
        top: Option<String>,
        /// Requantizer multiply: `mul` (acc * m) or `csd` (canonical signed-digit shift-adds,
        /// no multiplier).
        #[arg(long, default_value = "mul", value_parser = ratflow::rtl::MulForm::parse)]
        multiplier: ratflow::rtl::MulForm,
        /// Accumulator widths: `minimal` (per layer, the narrowest that cannot overflow) or
        /// `32`.
        #[arg(long, default_value = "minimal", value_parser = ratflow::rtl::AccWidth::parse)]
        acc: ratflow::rtl::AccWidth,
    },
    /// Bit-exact co-simulation of the generated RTL (Verilator) against golden vectors.
    Sim(cli::SimArgs),
    /// Hardware cost with yosys: cells per module and in total, requantizers on their own.
    Synth(cli::SynthArgs),
    /// The whole flow on the bundled data: train, sweep, RTL, vectors, co-simulation,
    /// synthesis, REPORT.md. Re-running skips stages whose inputs did not change.
    Flow(cli::FlowArgs),
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Rtl {
            model,
            out,
            parallel,
            top,
            multiplier,
            acc,
        } => cli::rtl(
            &model,
            &out,
            ratflow::rtl::Options {
                top,
                parallel,
                multiplier,
                acc,
            },
        ),
        Command::Sim(a) => cli::sim(&a),
        Command::Synth(a) => cli::synth(&a),
        Command::Flow(a) => cli::flow(&a),
        Command::Eval { model, data, json } => cli::eval(&model, &data, json),
        Command::Vectors {
            model,
            data,
            count,
            random_inputs,
            out,
        } => cli::vectors(&model, &data, count, random_inputs, &out),
        Command::Inspect { model, json } => cli::inspect(&model, json),
        Command::Train {
            stage,
            out,
            init,
            hidden,
            k,
            csd,
            rounding,
            seed,
            threads,
            recipe,
            data,
            quiet,
        } => {
            ratflow::train::set_threads(threads as usize);
            cli::train(cli::TrainCmd {
                stages: stage,
                out,
                init,
                hidden,
                k,
                csd,
                rounding,
                seed,
                threads: threads as usize,
                recipe,
                data,
                quiet,
            })
        }
        Command::Sweep {
            qat,
            float,
            ks,
            csd,
            csd_ks,
            out,
            budget,
            rat_lr,
            rescale_lr,
            rounding,
            seed,
            threads,
            data,
            save_models,
            repeats,
            quiet,
        } => {
            ratflow::train::set_threads(threads as usize);
            cli::sweep(cli::SweepCmd {
                qat,
                float,
                ks,
                csd,
                csd_ks,
                out,
                rat_epochs: budget,
                recipe: cli::RecipeArgs {
                    rat_lr,
                    rescale_lr,
                    ..Default::default()
                },
                rounding,
                seed,
                threads: threads as usize,
                data,
                save_models,
                repeats,
                quiet,
            })
        }
        Command::BenchTrain {
            epochs,
            hidden,
            k,
            threads,
            data,
            json,
        } => {
            ratflow::train::set_threads(threads as usize);
            cli::bench_train(epochs, hidden, k, threads as usize, &data, json)
        }
        Command::RandomModel {
            seed,
            inputs,
            layers,
            k,
            rounding,
            out,
        } => cli::random_model(
            &ratflow::model::random::RandomSpec {
                seed,
                inputs,
                layers: layers
                    .map(|l| cli::parse_sizes(&l).map_err(ratflow::error::input))
                    .transpose()?,
                k_bits: k,
                rounding,
            },
            &out,
        ),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(ratflow::error::exit_code(&e))
        }
    }
}
