//! The `ratflow` command line: the list of commands; each command's arguments and its one
//! library call live in `ratflow::cli::<command>`.

use clap::{Parser, Subcommand};
use ratflow::cli;
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
    Eval(cli::eval::Args),
    Vectors(cli::vectors::Args),
    Import(cli::import::Args),
    Inspect(cli::inspect::Args),
    Train(cli::train::Args),
    Sweep(cli::sweep::Args),
    PtqSweep(cli::ptq_sweep::Args),
    Bench(cli::bench::Args),
    BenchTrain(cli::bench_train::Args),
    RandomModel(cli::random_model::Args),
    Rtl(cli::rtl::Args),
    Sim(cli::sim::Args),
    Synth(cli::synth::Args),
    Flow(cli::flow::Args),
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Eval(a) => cli::eval::run(&a),
        Command::Vectors(a) => cli::vectors::run(&a),
        Command::Import(a) => cli::import::run(&a),
        Command::Inspect(a) => cli::inspect::run(&a),
        Command::Train(a) => cli::train::run(&a),
        Command::Sweep(a) => cli::sweep::run(&a),
        Command::PtqSweep(a) => cli::ptq_sweep::run(&a),
        Command::Bench(a) => cli::bench::run(&a),
        Command::BenchTrain(a) => cli::bench_train::run(&a),
        Command::RandomModel(a) => cli::random_model::run(&a),
        Command::Rtl(a) => cli::rtl::run(&a),
        Command::Sim(a) => cli::sim::run(&a),
        Command::Synth(a) => cli::synth::run(&a),
        Command::Flow(a) => cli::flow::run(&a),
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
