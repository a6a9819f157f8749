//! Golden vectors: the JSONL interchange format of README "golden vectors", written from the
//! golden model and read back (from ratflow or any other tool) for co-simulation.

use super::{Engine, Trace};
use crate::data::Dataset;
use crate::error::input;
use crate::fsio::AtomicFile;
use crate::model::Model;
use crate::rng::Rng;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// One line of a vector file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vector {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<u8>,
    pub input: Vec<i8>,
    pub acc: Vec<Vec<i32>>,
    pub layers: Vec<Vec<i8>>,
    pub class: usize,
}

impl Vector {
    pub fn from_trace(index: usize, label: Option<u8>, input: Vec<i8>, t: Trace) -> Vector {
        Vector {
            index,
            label,
            input,
            acc: t.acc,
            layers: t.out,
            class: t.class,
        }
    }
}

/// Where vector inputs come from.
pub enum Inputs<'a> {
    /// The first images of a dataset, with labels.
    Data(&'a Dataset),
    /// Corner patterns (all -128, all 127, alternating extremes, the patterns that drive each
    /// first-layer channel to its accumulator extremes) followed by uniform random int8 inputs.
    Random { seed: u64 },
}

/// Inputs that drive every first-layer channel to both ends of its accumulator range: the
/// values where the i32 bound and any narrowed accumulator are actually reached.
pub fn extreme_inputs(model: &Model) -> Vec<Vec<i8>> {
    let l = &model.layers[0];
    let mut out = Vec::new();
    for c in 0..l.out_features {
        let hi: Vec<i8> = l
            .row(c)
            .iter()
            .map(|&w| if w >= 0 { 127 } else { -128 })
            .collect();
        let lo: Vec<i8> = l
            .row(c)
            .iter()
            .map(|&w| if w >= 0 { -128 } else { 127 })
            .collect();
        out.push(hi);
        out.push(lo);
    }
    out
}

/// Builds `count` vectors.
pub fn generate(model: &Model, inputs: Inputs, count: usize) -> Result<Vec<Vector>> {
    let engine = Engine::new(model);
    let n = model.input_len();
    match inputs {
        Inputs::Data(data) => {
            if data.pixels_per_image() != n {
                return Err(input(format!(
                    "the model takes {n} inputs but the data has {}x{} = {} pixels per image",
                    data.rows,
                    data.cols,
                    data.pixels_per_image()
                )));
            }
            let count = count.min(data.len());
            Ok((0..count)
                .map(|i| {
                    let x = data.input_i8(i);
                    let t = engine.run(&x);
                    Vector::from_trace(i, Some(data.labels[i]), x, t)
                })
                .collect())
        }
        Inputs::Random { seed } => {
            let mut rng = Rng::new(seed);
            let mut fixed = vec![
                vec![-128i8; n],
                vec![127i8; n],
                (0..n)
                    .map(|i| if i % 2 == 0 { 127 } else { -128 })
                    .collect(),
                vec![0i8; n],
            ];
            fixed.extend(extreme_inputs(model));
            let all = (0..count).map(|i| {
                fixed
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| (0..n).map(|_| rng.i8()).collect())
            });
            Ok(all
                .enumerate()
                .map(|(i, x)| {
                    let t = engine.run(&x);
                    Vector::from_trace(i, None, x, t)
                })
                .collect())
        }
    }
}

/// Writes vectors as JSONL, atomically.
pub fn write_jsonl(path: &Path, vectors: &[Vector]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    for v in vectors {
        serde_json::to_writer(&mut f, v)?;
        f.write_all(b"\n")?;
    }
    f.commit()
}

/// Reads a JSONL vector file and checks every record against the model's shapes.
pub fn read_jsonl(path: &Path, model: &Model) -> Result<Vec<Vector>> {
    let file = std::fs::File::open(path)
        .map_err(|e| input(format!("cannot open vectors {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (lineno, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), lineno + 1);
        let v: Vector = serde_json::from_str(&line).map_err(|e| input(format!("{at}: {e}")))?;
        check_shapes(&v, model).map_err(|e| input(format!("{at}: {e}")))?;
        out.push(v);
    }
    if out.is_empty() {
        return Err(input(format!("{}: no vectors", path.display())));
    }
    Ok(out)
}

fn check_shapes(v: &Vector, model: &Model) -> std::result::Result<(), String> {
    if v.input.len() != model.input_len() {
        return Err(format!(
            "input has {} values, the model takes {}",
            v.input.len(),
            model.input_len()
        ));
    }
    for (field, lens) in [
        ("acc", v.acc.iter().map(Vec::len).collect::<Vec<_>>()),
        ("layers", v.layers.iter().map(Vec::len).collect()),
    ] {
        let want: Vec<usize> = model.layers.iter().map(|l| l.out_features).collect();
        if lens != want {
            return Err(format!(
                "{field} has shape {lens:?}, the model's layers are {want:?}"
            ));
        }
    }
    if v.class >= model.num_classes() {
        return Err(format!(
            "class {} is not below {}",
            v.class,
            model.num_classes()
        ));
    }
    Ok(())
}
