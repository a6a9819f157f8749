//! `ratflow eval`: accuracy measured by the golden integer model.

use super::{DataArgs, InputArgs};
use crate::golden;
use crate::model::Model;
use crate::train;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Accuracy of an int-model on labelled inputs (MNIST split, or --inputs/--labels), measured
/// by the golden integer model. A `.safetensors` checkpoint evaluates its float network.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &Args) -> Result<()> {
    if a.model.extension().is_some_and(|e| e == "safetensors") {
        let data = DataArgs {
            data: a.inputs.data.clone(),
            split: a.inputs.split,
        };
        return eval_checkpoint(&a.model, &data, a.json);
    }
    let model = Model::load(&a.model)?;
    let inputs = a.inputs.load(&model, 1000)?;
    let r = golden::accuracy(&model, &inputs)?;
    let k = model.widest_k();
    if a.json {
        println!(
            "{}",
            json!({
                "model": model.name, "hash": model.content_hash(),
                "inputs": inputs.source, "split": a.inputs.split.as_str(),
                "correct": r.correct, "total": r.total, "accuracy": r.accuracy,
                "k_bits": k, "rounding": model.rescale.rounding.as_str(),
                "csd_digits": model.rescale.csd_digits,
            })
        );
    } else {
        println!(
            "{}: {:.2}% ({}/{}) on {} [k = {k}{}, {} rounding, hash {}]",
            model.name,
            r.accuracy,
            r.correct,
            r.total,
            if a.inputs.inputs.is_none() && a.inputs.random_inputs.is_none() {
                a.inputs.split.as_str().to_string()
            } else {
                inputs.source.clone()
            },
            model
                .rescale
                .csd_digits
                .map(|d| format!(", at most {d} CSD digits"))
                .unwrap_or_default(),
            model.rescale.rounding,
            model.content_hash()
        );
    }
    Ok(())
}

/// `eval` of a training checkpoint: the float network of its weights (for a QAT/RAT
/// checkpoint, the float shadow weights; its integer accuracy is the exported JSON's).
fn eval_checkpoint(path: &Path, data_args: &DataArgs, as_json: bool) -> Result<()> {
    let mut ck = train::checkpoint::Checkpoint::load(path)?;
    let data = data_args.load()?;
    train::check_data(&ck, &data, &data_args.data.display().to_string())?;
    let preds = train::trainer::graph_predictions(&mut ck.net, &data, train::trainer::Mode::Float)?;
    let acc = train::trainer::accuracy_of(&preds, &data);
    let correct = preds
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    let hash = &crate::fsio::sha256_hex(&std::fs::read(path)?)[..16];
    if as_json {
        println!(
            "{}",
            json!({
                "checkpoint": path.display().to_string(), "stage": ck.stage.as_str(),
                "network": "float", "sha256_16": hash, "split": data_args.split.as_str(),
                "correct": correct, "total": data.len(), "accuracy": acc,
            })
        );
    } else {
        println!(
            "{} ({} checkpoint, float network): {acc:.2}% ({correct}/{}) on {} [sha256 {hash}]",
            path.display(),
            ck.stage.as_str(),
            data.len(),
            data_args.split.as_str(),
        );
    }
    Ok(())
}
