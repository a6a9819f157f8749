//! What a training sweep measured: one row per width (and CSD budget), with the paired
//! statistics against the k = 31 model. Kept apart from the sweep itself so that the plot
//! reads results without depending on the code that produces them.

use crate::stats::{Paired, Runs};

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub k: u32,
    /// CSD digit budget of every `m` in this row (`None`: any k-bit `m`).
    pub csd: Option<u32>,
    pub ptq: f64,
    /// Mean golden accuracy over the repeats.
    pub rat_a: f64,
    pub rat_b: f64,
    /// Golden accuracy of each repeat of RAT-a and RAT-b.
    pub runs: [Vec<f64>; 2],
    /// Lowest graph-golden agreement over the repeats of RAT-a and RAT-b.
    pub agreement: [f64; 2],
    /// Content hashes of the PTQ model and of the first repeat of RAT-a and RAT-b.
    pub hashes: [String; 3],
    /// PTQ against the k = 31 QAT model, paired on the test images.
    pub ptq_vs_k31: Paired,
    /// RAT-a and RAT-b runs against the k = 31 QAT model.
    pub rat_vs_k31: [Runs; 2],
}

pub struct SweepResult {
    pub repeats: usize,
    pub float_accuracy: f64,
    pub qat_accuracy: f64,
    pub rows: Vec<Row>,
    /// Widest plain k at which PTQ breaks (CSD rows are not considered).
    pub breaks_at: Option<u32>,
    /// Widest plain k at which PTQ is significantly below the k = 31 model (the 95% interval
    /// of the paired difference lies below zero).
    pub breaks_at_significant: Option<u32>,
}

impl SweepResult {
    /// The plain k-bit rows.
    pub fn plain(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.csd.is_none())
    }

    /// The CSD-constrained rows.
    pub fn constrained(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.csd.is_some())
    }
}
