//! The `ratflow` command line: argument parsing only; the work lives in the library.

use clap::{Parser, Subcommand};
use ratflow::cli;
use std::path::PathBuf;
use std::process::ExitCode;

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
        Command::Eval { model, data, json } => cli::eval(&model, &data, json),
        Command::Vectors {
            model,
            data,
            count,
            random_inputs,
            out,
        } => cli::vectors(&model, &data, count, random_inputs, &out),
        Command::Inspect { model, json } => cli::inspect(&model, json),
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
