//! `ratflow random-model`: random valid int-models for testing other tools and the RTL.

use super::{parse_k, parse_rounding, parse_sizes};
use crate::error::input;
use crate::model::random::{GraphSpec, RandomSpec, random_graph, random_model};
use crate::quant::Rounding;
use anyhow::Result;
use std::path::PathBuf;

/// A random valid int-model: a dense chain (version 1, the default) or, with --graph, a
/// version 2 graph using every op kind.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A version 2 graph of every op kind (conv2d, depthwise_conv2d, pools, add, reshape,
    /// dense) instead of a dense chain.
    #[arg(long)]
    pub graph: bool,
    /// Input length of a dense chain (784 = MNIST).
    #[arg(long, conflicts_with = "graph")]
    pub inputs: Option<usize>,
    /// Output sizes of all layers of a dense chain, comma separated, e.g. 32,10.
    #[arg(long, value_parser = parse_sizes, conflicts_with = "graph")]
    pub layers: Option<std::vec::Vec<usize>>,
    #[arg(long, value_parser = parse_k)]
    pub k: Option<u32>,
    #[arg(long, value_parser = parse_rounding)]
    pub rounding: Option<Rounding>,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    if a.inputs == Some(0) {
        return Err(input("--inputs must be positive"));
    }
    let model = if a.graph {
        random_graph(&GraphSpec {
            seed: a.seed,
            k_bits: a.k,
            rounding: a.rounding,
        })
    } else {
        random_model(&RandomSpec {
            seed: a.seed,
            inputs: a.inputs,
            layers: a.layers.clone(),
            k_bits: a.k,
            rounding: a.rounding,
        })
    };
    model.save(&a.out)?;
    eprintln!(
        "wrote {} ({} ops, k = {}, {} rounding) to {}",
        model.name,
        model.ops.len(),
        model.widest_k(),
        model.rescale.rounding,
        a.out.display()
    );
    Ok(())
}
