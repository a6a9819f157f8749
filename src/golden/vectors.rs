//! Golden vectors: the JSONL interchange format of DESIGN sections 2 (version 1, dense chains)
//! and 5 (version 2, graphs), written from the golden model and read back (from ratflow or any
//! other tool) for co-simulation. Version 1 models keep version 1 vectors.

use super::{Engine, Trace};
use crate::data::InputSet;
use crate::error::input;
use crate::fsio::AtomicFile;
use crate::model::{Model, OpKind};
use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// One line of a version 1 vector file: per-layer accumulators and outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vector {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<usize>,
    pub input: Vec<i8>,
    pub acc: Vec<Vec<i32>>,
    pub layers: Vec<Vec<i8>>,
    pub class: usize,
}

/// One line of a version 2 vector file: every op output by tensor name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphVector {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<usize>,
    pub input: Vec<i8>,
    /// Every op's output, keyed by tensor name, in op order.
    pub tensors: IndexMap<String, Vec<i8>>,
    /// Accumulating ops' accumulators, keyed by their output tensor name (on request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc: Option<IndexMap<String, Vec<i32>>>,
    /// The first graph output.
    pub output: Vec<i8>,
    pub class: usize,
}

/// A vector file of either version.
#[derive(Clone, Debug, PartialEq)]
pub enum Vectors {
    V1(Vec<Vector>),
    V2(Vec<GraphVector>),
}

impl Vectors {
    pub fn len(&self) -> usize {
        match self {
            Vectors::V1(v) => v.len(),
            Vectors::V2(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` records (all when there are fewer).
    pub fn first(&self, n: usize) -> Vectors {
        match self {
            Vectors::V1(v) => Vectors::V1(v.iter().take(n).cloned().collect()),
            Vectors::V2(v) => Vectors::V2(v.iter().take(n).cloned().collect()),
        }
    }

    /// The version 1 records (dense chains), if that is what this is.
    pub fn v1(&self) -> Option<&[Vector]> {
        match self {
            Vectors::V1(v) => Some(v),
            Vectors::V2(_) => None,
        }
    }

    /// The version 1 records, consumed.
    pub fn into_v1(self) -> Option<Vec<Vector>> {
        match self {
            Vectors::V1(v) => Some(v),
            Vectors::V2(_) => None,
        }
    }

    /// Inputs and classes, whatever the version.
    pub fn inputs(&self) -> Vec<&[i8]> {
        match self {
            Vectors::V1(v) => v.iter().map(|x| x.input.as_slice()).collect(),
            Vectors::V2(v) => v.iter().map(|x| x.input.as_slice()).collect(),
        }
    }
}

impl Vector {
    /// The version 1 record of one run of a dense chain.
    pub fn from_trace(
        model: &Model,
        index: usize,
        label: Option<usize>,
        input: &[i8],
        t: Trace,
    ) -> Vector {
        v1_from_trace(model, index, label, input, t)
    }
}

/// `count` random inputs for `model`: its corner patterns first (see [`corner_inputs`]).
pub fn random_inputs(model: &Model, seed: u64, count: usize) -> InputSet {
    InputSet::random(seed, count, model.input_len(), corner_inputs(model))
}

fn v1_from_trace(
    model: &Model,
    index: usize,
    label: Option<usize>,
    input: &[i8],
    t: Trace,
) -> Vector {
    let mut t = t;
    Vector {
        index,
        label,
        input: input.to_vec(),
        acc: t
            .acc
            .iter_mut()
            .map(|a| a.take().unwrap_or_default())
            .collect(),
        layers: model
            .ops
            .iter()
            .map(|op| std::mem::take(&mut t.tensors[op.output]))
            .collect(),
        class: t.class,
    }
}

fn v2_from_trace(
    model: &Model,
    index: usize,
    label: Option<usize>,
    input: &[i8],
    t: Trace,
    with_acc: bool,
) -> GraphVector {
    let mut t = t;
    let output = t.tensors[model.outputs[0]].clone();
    let acc = with_acc.then(|| {
        model
            .ops
            .iter()
            .zip(t.acc.iter_mut())
            .filter_map(|(op, a)| Some((model.tensors[op.output].name.clone(), a.take()?)))
            .collect()
    });
    GraphVector {
        index,
        label,
        input: input.to_vec(),
        tensors: model
            .ops
            .iter()
            .map(|op| {
                (
                    model.tensors[op.output].name.clone(),
                    std::mem::take(&mut t.tensors[op.output]),
                )
            })
            .collect(),
        acc,
        output,
        class: t.class,
    }
}

/// Inputs that drive every channel of a first dense op to both ends of its accumulator range:
/// the values where the i32 bound and any narrowed accumulator are actually reached. Then the
/// constant patterns (all -128, all 127, alternating, all 0).
pub fn corner_inputs(model: &Model) -> Vec<Vec<i8>> {
    let n = model.input_len();
    let mut out = vec![
        vec![-128i8; n],
        vec![127i8; n],
        (0..n)
            .map(|i| if i % 2 == 0 { 127 } else { -128 })
            .collect(),
        vec![0i8; n],
    ];
    if let Some(OpKind::Dense(d)) = model.ops.first().map(|op| &op.kind) {
        for c in 0..d.out_features {
            let hi: Vec<i8> = d
                .row(c)
                .iter()
                .map(|&w| if w >= 0 { 127 } else { -128 })
                .collect();
            let lo: Vec<i8> = d
                .row(c)
                .iter()
                .map(|&w| if w >= 0 { -128 } else { 127 })
                .collect();
            out.push(hi);
            out.push(lo);
        }
    }
    out
}

/// Builds vectors for the first `count` inputs (all of them when `count` is `None`), version 1
/// for version 1 models, else version 2 (with accumulators when `with_acc`; version 1 always
/// has them).
pub fn generate(
    model: &Model,
    inputs: &InputSet,
    count: Option<usize>,
    with_acc: bool,
) -> Result<Vectors> {
    let n = model.input_len();
    if let Some(bad) = inputs.codes.iter().position(|x| x.len() != n) {
        return Err(input(format!(
            "input {bad} has {} values but model {} takes {n}",
            inputs.codes[bad].len(),
            model.name
        )));
    }
    let engine = Engine::new(model);
    let count = count.unwrap_or(inputs.len()).min(inputs.len());
    let v1 = model.version == 1;
    use rayon::prelude::*;
    let rows: Vec<(usize, Trace)> = (0..count)
        .into_par_iter()
        .map(|i| (i, engine.run(&inputs.codes[i], v1 || with_acc)))
        .collect();
    let label = |i: usize| inputs.labels.as_ref().map(|l| l[i]);
    Ok(if v1 {
        Vectors::V1(
            rows.into_iter()
                .map(|(i, t)| v1_from_trace(model, i, label(i), &inputs.codes[i], t))
                .collect(),
        )
    } else {
        Vectors::V2(
            rows.into_iter()
                .map(|(i, t)| v2_from_trace(model, i, label(i), &inputs.codes[i], t, with_acc))
                .collect(),
        )
    })
}

/// Writes vectors as JSONL, atomically.
pub fn write_jsonl(path: &Path, vectors: &Vectors) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    match vectors {
        Vectors::V1(vs) => {
            for v in vs {
                serde_json::to_writer(&mut f, v)?;
                f.write_all(b"\n")?;
            }
        }
        Vectors::V2(vs) => {
            for v in vs {
                serde_json::to_writer(&mut f, v)?;
                f.write_all(b"\n")?;
            }
        }
    }
    f.commit()
}

/// Reads a JSONL vector file of the version the model's vectors have, and checks every record
/// against the model's shapes.
pub fn read_jsonl(path: &Path, model: &Model) -> Result<Vectors> {
    let file = std::fs::File::open(path)
        .map_err(|e| input(format!("cannot open vectors {}: {e}", path.display())))?;
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for (lineno, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), lineno + 1);
        if model.version == 1 {
            let v: Vector = serde_json::from_str(&line).map_err(|e| input(format!("{at}: {e}")))?;
            check_v1(&v, model).map_err(|e| input(format!("{at}: {e}")))?;
            v1.push(v);
        } else {
            let v: GraphVector =
                serde_json::from_str(&line).map_err(|e| input(format!("{at}: {e}")))?;
            check_v2(&v, model).map_err(|e| input(format!("{at}: {e}")))?;
            v2.push(v);
        }
    }
    if v1.is_empty() && v2.is_empty() {
        return Err(input(format!("{}: no vectors", path.display())));
    }
    Ok(if model.version == 1 {
        Vectors::V1(v1)
    } else {
        Vectors::V2(v2)
    })
}

fn check_common(input: &[i8], class: usize, model: &Model) -> std::result::Result<(), String> {
    if input.len() != model.input_len() {
        return Err(format!(
            "input has {} values, the model takes {}",
            input.len(),
            model.input_len()
        ));
    }
    if class >= model.num_classes() {
        return Err(format!(
            "class {class} is not below {}",
            model.num_classes()
        ));
    }
    Ok(())
}

fn check_v1(v: &Vector, model: &Model) -> std::result::Result<(), String> {
    check_common(&v.input, v.class, model)?;
    let want: Vec<usize> = model
        .ops
        .iter()
        .map(|op| model.tensors[op.output].len())
        .collect();
    for (field, lens) in [
        ("acc", v.acc.iter().map(Vec::len).collect::<Vec<_>>()),
        ("layers", v.layers.iter().map(Vec::len).collect()),
    ] {
        if lens != want {
            return Err(format!(
                "{field} has shape {lens:?}, the model's layers are {want:?}"
            ));
        }
    }
    Ok(())
}

fn check_v2(v: &GraphVector, model: &Model) -> std::result::Result<(), String> {
    check_common(&v.input, v.class, model)?;
    if v.output.len() != model.output().len() {
        return Err(format!(
            "output has {} values, the model's output {:?} has {}",
            v.output.len(),
            model.output().name,
            model.output().len()
        ));
    }
    for (name, values) in &v.tensors {
        let Some(t) = model.tensor_id(name) else {
            return Err(format!("tensors.{name:?} is not a tensor of the model"));
        };
        if values.len() != model.tensors[t].len() {
            return Err(format!(
                "tensors.{name:?} has {} values, the tensor has {}",
                values.len(),
                model.tensors[t].len()
            ));
        }
    }
    Ok(())
}
