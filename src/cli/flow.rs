//! `ratflow flow`: the whole mission in one command, cached by content.

use super::{parse_k, parse_rounding};
use crate::data;
use crate::error::input;
use crate::flow::{DEFAULT_ARCH, Source};
use crate::quant::Rounding;
use anyhow::Result;
use std::path::PathBuf;

/// The whole flow: (train ->) accuracy against k (PTQ, RAT) -> final model -> RTL -> golden
/// vectors -> Verilator co-simulation -> yosys -> REPORT.md. Without --model or --arch it
/// trains the MNIST CNN of models/cnn on the bundled data. Re-running skips stages whose
/// inputs did not change.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// An int8 .tflite or int-model .json to take through the flow (no training; RAT at k
    /// when there is data: MNIST-shaped inputs, or --inputs).
    #[arg(long, value_name = "M.tflite|M.json", conflicts_with = "arch")]
    pub model: Option<PathBuf>,
    /// Train this architecture here (docs/train.md), e.g. `dense:128,relu,dense:10` for an
    /// MLP; default: the MNIST CNN of models/cnn.
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<String>,
    /// With --model: inputs as .npy `[N, ...input shape]` (int8 codes or float32 real values);
    /// default: MNIST for MNIST-shaped models, else random int8 codes.
    #[arg(long, value_name = "X.npy", requires = "model")]
    pub inputs: Option<PathBuf>,
    /// Labels of --inputs (.npy integers `[N]`): accuracy instead of agreement, supervised RAT.
    #[arg(long, value_name = "Y.npy", requires = "inputs")]
    pub labels: Option<PathBuf>,
    /// Run folder: every artifact and REPORT.md.
    #[arg(long, default_value = "runs/default")]
    pub out: PathBuf,
    /// Small budget (fewer epochs, widths and vectors; rescaler synthesis only): what CI runs.
    #[arg(long)]
    pub quick: bool,
    /// Rescale width of the final model (default: 4 when training; for --model the narrowest
    /// k whose top-1 agreement with k = 31 is at least --min-agreement).
    #[arg(long, value_parser = parse_k)]
    pub k: Option<u32>,
    /// Agreement (%) the automatic k must keep.
    #[arg(long, default_value_t = 99.0)]
    pub min_agreement: f64,
    /// ... or the SNR (dB) of the final tensor it must keep (judges networks whose argmax
    /// means nothing, such as autoencoders).
    #[arg(long, default_value_t = 40.0)]
    pub min_snr: f64,
    /// RAT variant that becomes the hardware: rat-a (paper) or rat-b (learned rescale).
    #[arg(long, default_value = "rat-b")]
    pub variant: String,
    #[arg(long, default_value = "single", value_parser = parse_rounding)]
    pub rounding: Rounding,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Matrix-product threads for training (recorded; results are identical for 1 and 2).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[command(flatten)]
    pub fold: super::rtl::FoldingArgs,
    /// Also synthesize the whole final and k = 31 designs (iCE40 and Xilinx, each library
    /// module's share): minutes for the MNIST CNN, over an hour of yosys for DS-CNN.
    #[arg(long)]
    pub designs: bool,
    /// Re-run every stage even if its inputs did not change.
    #[arg(long)]
    pub force: bool,
    /// Folder with the MNIST IDX files.
    #[arg(long, default_value_os_t = data::bundled_dir())]
    pub data: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    let variant = match crate::train::Stage::parse(&a.variant) {
        Some(s @ (crate::train::Stage::RatPaper | crate::train::Stage::RatLearned)) => s,
        _ => {
            return Err(input(format!(
                "--variant {:?}: use rat-a or rat-b",
                a.variant
            )));
        }
    };
    if a.threads == 0 {
        return Err(input("--threads must be at least 1"));
    }
    crate::train::set_threads(a.threads);
    let source = match (&a.model, &a.arch) {
        (Some(m), _) => Source::Model(m.clone()),
        (None, Some(s)) => Source::Arch(s.clone()),
        (None, None) => Source::Arch(DEFAULT_ARCH.to_string()),
    };
    let command = std::env::args()
        .map(|s| {
            if s.chars()
                .all(|c| c.is_alphanumeric() || "-_./=,:".contains(c))
            {
                s
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let cfg = crate::flow::FlowConfig {
        out: a.out.clone(),
        source,
        data: a.data.clone(),
        inputs: a.inputs.clone(),
        labels: a.labels.clone(),
        quick: a.quick,
        k: a.k,
        min_agreement: a.min_agreement,
        min_snr_db: a.min_snr,
        rounding: a.rounding,
        variant,
        seed: a.seed,
        threads: a.threads,
        folding: a.fold.spec()?,
        force: a.force,
        designs: a.designs,
        command,
    };
    let r = crate::flow::run(&cfg)?;
    println!("flow finished: every stage passed");
    for l in &r.logs {
        println!(
            "  {:<16} {:>8}  {}",
            l.name,
            if l.cached {
                "cached".to_string()
            } else {
                format!("{:.1} s", l.seconds)
            },
            l.summary
        );
    }
    println!("report: {}", r.report.display());
    Ok(())
}
