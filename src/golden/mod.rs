//! The golden integer model: executes a validated int-model exactly as DESIGN sections 1 and 5
//! define it. Every accuracy ratflow reports and every vector a testbench checks comes from
//! here.
//!
//! One engine loops over the ops; each kind's kernel lives in its own file under `ops/` and is
//! prepared once per model (weights widened, zero points folded, lookup tables built). The
//! kernels are exact first: every partial sum stays inside the bound the model's validation
//! proved for its accumulators, so i32 arithmetic never wraps, and every rescale goes through
//! [`crate::quant`], the single definition of the integer semantics. Then fast: centred inputs
//! make padding taps zero, so convolutions run as dense dot products over gathered windows.

pub mod bench;
pub mod sweep;
pub mod vectors;

pub(crate) mod ops;

use crate::model::{Model, TensorId};
use ops::Kernel;

/// Everything one inference computes: every tensor (indexed like [`Model::tensors`], the input
/// included), the accumulators of accumulating ops when asked for, and the class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub tensors: Vec<Vec<i8>>,
    /// Per op: its accumulators (`[pixels][channels]` flat) if requested and it accumulates.
    pub acc: Vec<Option<Vec<i32>>>,
    pub class: usize,
}

/// A model prepared for fast exact execution.
pub struct Engine {
    kernels: Vec<Kernel>,
    /// Per op: input tensor ids and output tensor id.
    wiring: Vec<(Vec<TensorId>, TensorId)>,
    tensor_lens: Vec<usize>,
    input: TensorId,
    output: TensorId,
}

/// Reusable buffers for allocation-free inference.
#[derive(Default)]
pub struct Scratch {
    tensors: Vec<Vec<i8>>,
    kernel: ops::KernelScratch,
}

impl Engine {
    pub fn new(model: &Model) -> Engine {
        Engine {
            kernels: model
                .ops
                .iter()
                .map(|op| Kernel::prepare(model, op))
                .collect(),
            wiring: model
                .ops
                .iter()
                .map(|op| (op.inputs.clone(), op.output))
                .collect(),
            tensor_lens: model.tensors.iter().map(|t| t.len()).collect(),
            input: model.inputs[0],
            output: model.outputs[0],
        }
    }

    pub fn input_len(&self) -> usize {
        self.tensor_lens[self.input]
    }

    pub fn output_len(&self) -> usize {
        self.tensor_lens[self.output]
    }

    /// Runs every op on `input` with the given buffers; `acc` collects accumulators.
    fn execute(
        &self,
        input: &[i8],
        tensors: &mut Vec<Vec<i8>>,
        kscratch: &mut ops::KernelScratch,
        mut acc: Option<&mut Vec<Option<Vec<i32>>>>,
    ) {
        assert_eq!(input.len(), self.input_len(), "input length");
        tensors.resize_with(self.tensor_lens.len(), Vec::new);
        tensors[self.input].clear();
        tensors[self.input].extend_from_slice(input);
        for (i, (kernel, (ins, out))) in self.kernels.iter().zip(&self.wiring).enumerate() {
            // The output is never one of the inputs (validated), so it can be taken out while
            // the inputs are borrowed.
            let mut y = std::mem::take(&mut tensors[*out]);
            y.resize(self.tensor_lens[*out], 0);
            let xs: Vec<&[i8]> = ins.iter().map(|&t| tensors[t].as_slice()).collect();
            let want_acc = acc.is_some() && kernel.accumulates();
            kernel.run(&xs, &mut y, kscratch);
            if let Some(all) = acc.as_deref_mut() {
                all[i] = want_acc.then(|| kscratch.acc.clone());
            }
            tensors[*out] = y;
        }
    }

    /// Runs one input and records every tensor (and, with `with_acc`, every accumulator).
    pub fn run(&self, input: &[i8], with_acc: bool) -> Trace {
        let mut tensors = Vec::new();
        let mut ks = ops::KernelScratch::default();
        let mut acc = vec![None; self.kernels.len()];
        self.execute(input, &mut tensors, &mut ks, with_acc.then_some(&mut acc));
        let class = argmax(&tensors[self.output]);
        Trace {
            tensors,
            acc,
            class,
        }
    }

    /// The first output tensor, computed into reusable buffers.
    pub fn infer<'s>(&self, input: &[i8], scratch: &'s mut Scratch) -> &'s [i8] {
        self.execute(input, &mut scratch.tensors, &mut scratch.kernel, None);
        &scratch.tensors[self.output]
    }

    /// The predicted class only, without allocating once the scratch is warm.
    pub fn classify(&self, input: &[i8], scratch: &mut Scratch) -> usize {
        argmax(self.infer(input, scratch))
    }

    /// Classes of many inputs, on all cores (results in input order).
    pub fn classify_batch(&self, inputs: &[Vec<i8>]) -> Vec<usize> {
        use rayon::prelude::*;
        inputs
            .par_iter()
            .map_init(Scratch::default, |s, x| self.classify(x, s))
            .collect()
    }

    /// How many of `inputs` are classified as their label.
    pub fn correct(&self, inputs: &[Vec<i8>], labels: &[usize]) -> usize {
        self.classify_batch(inputs)
            .iter()
            .zip(labels)
            .filter(|(p, l)| p == l)
            .count()
    }
}

/// Accuracy of a model on labelled inputs, measured by the golden engine.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Accuracy {
    pub correct: usize,
    pub total: usize,
    /// Percent.
    pub accuracy: f64,
}

/// Top-1 accuracy of `model` on `inputs` (which must carry labels), on all cores.
pub fn accuracy(model: &Model, inputs: &crate::data::InputSet) -> anyhow::Result<Accuracy> {
    let Some(labels) = &inputs.labels else {
        return Err(crate::error::input(format!(
            "{}: accuracy needs labels (--labels Y.npy)",
            inputs.source
        )));
    };
    if inputs.is_empty() {
        return Err(crate::error::input(format!("{}: no inputs", inputs.source)));
    }
    if let Some(bad) = inputs
        .codes
        .iter()
        .position(|x| x.len() != model.input_len())
    {
        return Err(crate::error::input(format!(
            "{}: input {bad} has {} values but model {} takes {}",
            inputs.source,
            inputs.codes[bad].len(),
            model.name,
            model.input_len()
        )));
    }
    let correct = Engine::new(model).correct(&inputs.codes, labels);
    Ok(Accuracy {
        correct,
        total: inputs.len(),
        accuracy: 100.0 * correct as f64 / inputs.len() as f64,
    })
}

/// Index of the largest value, ties to the lowest index (DESIGN "Classification").
pub fn argmax(v: &[i8]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests;
