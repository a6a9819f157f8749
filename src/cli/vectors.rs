//! `ratflow vectors`: golden vectors (JSONL) from the golden integer model.

use super::InputArgs;
use crate::error::input;
use crate::golden::vectors;
use crate::model::Model;
use anyhow::Result;
use std::path::PathBuf;

/// Golden vectors (JSONL, DESIGN sections 2 and 5): inputs, every op output, class, label.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Number of vectors (at most the number of inputs for MNIST or --inputs).
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Also record the accumulators of accumulating ops (version 2 vectors; version 1 always
    /// has them).
    #[arg(long)]
    pub acc: bool,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    if a.count == 0 {
        return Err(input("--count must be at least 1"));
    }
    let inputs = a.inputs.load(&model, a.count)?;
    let vs = vectors::generate(&model, &inputs, Some(a.count), a.acc)?;
    vectors::write_jsonl(&a.out, &vs)?;
    eprintln!(
        "wrote {} version {} vectors to {}",
        vs.len(),
        if vs.v1().is_some() { 1 } else { 2 },
        a.out.display()
    );
    Ok(())
}
