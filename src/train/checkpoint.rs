//! Training checkpoints as safetensors: the float shadow weights plus the quantizer state a
//! later stage needs (activation ranges, learned rescale, frozen weight scales).
//!
//! MLP tensors are named `fc1.weight`, `fc1.bias`, `fc1.range` (f64 `[lo, hi]`),
//! `fc1.log2_m`, `fc1.weight_scale` (f64); one metadata key, `ratflow`, holds a JSON object
//! (stage, k, CSD digit budget if any, rounding and the lineage of stages that produced the
//! weights). A graph network's checkpoint adds a `graph` object to the metadata (input shape
//! and quantization, the node list, per-node rounding overrides) and names its tensors
//! `{node}.{what}` ([`GraphNet::tensors`]). One key, sorted JSON, no timestamps: a checkpoint
//! is a pure function of its content, so rerunning a command reproduces it byte for byte.

use super::Stage;
use super::arch::Act;
use super::graph::{GraphNet, GraphTensor};
use super::layers::{ActRange, LearnedRescale, Product, QuantLayer};
use super::net::Net;
use super::network::Mlp;
use crate::error::input;
use crate::fsio;
use crate::quant::Rounding;
use anyhow::{Context, Result};
use candle_core::{Device, Var};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

const META_KEY: &str = "ratflow";
const FORMAT: &str = "ratflow.checkpoint";

pub struct Checkpoint {
    pub net: Net,
    pub stage: Stage,
    /// Rescale width the integer stages trained at (31 for QAT; none for float).
    pub k: Option<u32>,
    /// CSD digit budget of the rescale a RAT stage trained with (none: unconstrained).
    pub csd: Option<u32>,
    pub rounding: Rounding,
    /// One record per stage that produced these weights, oldest first.
    pub lineage: Vec<Value>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Checkpoint {
    pub fn metadata(&self) -> Value {
        let mut meta = match &self.net {
            Net::Mlp(mlp) => json!({
                "format": FORMAT, "version": 1, "tool": format!("ratflow {}", crate::VERSION),
                "stage": self.stage.as_str(), "k_bits": self.k, "rounding": self.rounding.as_str(),
                "inputs": mlp.inputs(), "hidden": mlp.hidden(),
                "classes": mlp.classes(), "lineage": self.lineage,
            }),
            Net::Graph(g) => json!({
                "format": FORMAT, "version": 1, "tool": format!("ratflow {}", crate::VERSION),
                "stage": self.stage.as_str(), "k_bits": self.k, "rounding": self.rounding.as_str(),
                "inputs": g.input_len(), "graph": g.metadata(),
                "classes": g.classes(), "lineage": self.lineage,
            }),
        };
        // Only when set, so that unconstrained checkpoints keep their exact bytes.
        if let Some(d) = self.csd {
            meta["csd_digits"] = json!(d);
        }
        meta
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let layers: &[QuantLayer] = match &self.net {
            Net::Mlp(mlp) => &mlp.layers,
            Net::Graph(g) => {
                for (name, t) in g.tensors()? {
                    tensors.push(match t {
                        GraphTensor::F32(dims, v) => (name, Dtype::F32, dims, f32_bytes(&v)),
                        GraphTensor::F64(v) => (name, Dtype::F64, vec![v.len()], f64_bytes(&v)),
                    });
                }
                &[]
            }
        };
        for l in layers {
            for (what, var) in [("weight", &l.weight), ("bias", &l.bias)] {
                let v = var.flatten_all()?.to_vec1::<f32>()?;
                tensors.push((
                    format!("{}.{what}", l.name),
                    Dtype::F32,
                    var.dims().to_vec(),
                    f32_bytes(&v),
                ));
            }
            if let Some(r) = l.range {
                tensors.push((
                    format!("{}.range", l.name),
                    Dtype::F64,
                    vec![2],
                    f64_bytes(&[r.lo, r.hi]),
                ));
            }
            if let Some(lr) = &l.learned {
                let t = lr.log2_m.to_vec1::<f32>()?;
                tensors.push((
                    format!("{}.log2_m", l.name),
                    Dtype::F32,
                    vec![t.len()],
                    f32_bytes(&t),
                ));
                tensors.push((
                    format!("{}.weight_scale", l.name),
                    Dtype::F64,
                    vec![lr.weight_scales.len()],
                    f64_bytes(&lr.weight_scales),
                ));
            }
        }
        let views = tensors
            .iter()
            .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
            .collect::<Result<Vec<_>>>()?;
        let meta = HashMap::from([(META_KEY.to_string(), self.metadata().to_string())]);
        Ok(safetensors::serialize(views, Some(meta))?)
    }

    /// Writes atomically; refuses non-finite parameters (a diverged run must not replace the
    /// last good checkpoint).
    pub fn save(&self, path: &Path) -> Result<()> {
        if !self.net.is_finite()? {
            anyhow::bail!(
                "refusing to write {}: parameters are not finite",
                path.display()
            );
        }
        fsio::write_atomic(path, &self.to_bytes()?)
            .with_context(|| format!("saving checkpoint {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path)
            .map_err(|e| input(format!("cannot read checkpoint {}: {e}", path.display())))?;
        Checkpoint::from_bytes(&bytes).map_err(|e| {
            input(format!(
                "{}: not a ratflow checkpoint: {e:#}",
                path.display()
            ))
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        let st = SafeTensors::deserialize(bytes)?;
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let meta: Value = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .context("no `ratflow` metadata")
            .and_then(|s| Ok(serde_json::from_str(s)?))?;
        if meta["format"] != FORMAT {
            anyhow::bail!("metadata format is {}, expected {FORMAT:?}", meta["format"]);
        }
        let stage = meta["stage"]
            .as_str()
            .and_then(Stage::parse)
            .context("metadata.stage missing or unknown")?;
        let rounding = meta["rounding"]
            .as_str()
            .and_then(Rounding::parse)
            .context("metadata.rounding missing or unknown")?;
        let k = meta["k_bits"].as_u64().map(|k| k as u32);
        let csd = meta["csd_digits"].as_u64().map(|d| d as u32);
        let lineage = meta["lineage"].as_array().cloned().unwrap_or_default();
        if meta["graph"].is_object() {
            let get = |name: &str| -> Result<Option<GraphTensor>> {
                let Ok(t) = st.tensor(name) else {
                    return Ok(None);
                };
                Ok(Some(match t.dtype() {
                    Dtype::F32 => GraphTensor::F32(
                        t.shape().to_vec(),
                        t.data()
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                            .collect(),
                    ),
                    Dtype::F64 => GraphTensor::F64(
                        t.data()
                            .chunks_exact(8)
                            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                            .collect(),
                    ),
                    d => anyhow::bail!("tensor {name} is {d:?}, expected F32 or F64"),
                }))
            };
            return Ok(Checkpoint {
                net: Net::Graph(GraphNet::restore(&meta["graph"], &get)?),
                stage,
                k,
                csd,
                rounding,
                lineage,
            });
        }
        let count = meta["hidden"]
            .as_array()
            .context("metadata.hidden missing")?
            .len()
            + 1;
        let f32s = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = st.tensor(name).with_context(|| format!("tensor {name}"))?;
            if t.dtype() != Dtype::F32 {
                anyhow::bail!("tensor {name} is {:?}, expected F32", t.dtype());
            }
            let v = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            Ok((t.shape().to_vec(), v))
        };
        let f64s = |name: &str| -> Result<Option<Vec<f64>>> {
            let Ok(t) = st.tensor(name) else {
                return Ok(None);
            };
            if t.dtype() != Dtype::F64 {
                anyhow::bail!("tensor {name} is {:?}, expected F64", t.dtype());
            }
            Ok(Some(
                t.data()
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
            ))
        };
        let mut layers = Vec::new();
        let mut fan_in = None;
        for i in 0..count {
            let name = format!("fc{}", i + 1);
            let (ws, w) = f32s(&format!("{name}.weight"))?;
            let (bs, b) = f32s(&format!("{name}.bias"))?;
            let (&[out, inp], &[bout]) = (ws.as_slice(), bs.as_slice()) else {
                anyhow::bail!("{name}: weight {ws:?} / bias {bs:?} have the wrong rank");
            };
            if bout != out || fan_in.is_some_and(|f| f != inp) {
                anyhow::bail!("{name}: weight {ws:?} and bias {bs:?} do not chain");
            }
            fan_in = Some(out);
            let range = match f64s(&format!("{name}.range"))? {
                Some(r) if r.len() == 2 => Some(ActRange { lo: r[0], hi: r[1] }),
                Some(r) => anyhow::bail!("{name}.range has {} values, expected 2", r.len()),
                None => None,
            };
            let learned = match f64s(&format!("{name}.weight_scale"))? {
                Some(weight_scales) => {
                    let (ts, t) = f32s(&format!("{name}.log2_m"))?;
                    if ts != [out] || weight_scales.len() != out {
                        anyhow::bail!("{name}: learned rescale shapes do not match {out}");
                    }
                    Some(LearnedRescale {
                        log2_m: Var::from_vec(t, out, &Device::Cpu)?,
                        weight_scales,
                    })
                }
                None => None,
            };
            let mut layer = QuantLayer::new(
                &name,
                Product::Dense,
                Var::from_vec(w, (out, inp), &Device::Cpu)?,
                Var::from_vec(b, out, &Device::Cpu)?,
                if i + 1 < count { Act::Relu } else { Act::None },
            );
            layer.range = range;
            layer.learned = learned;
            layers.push(layer);
        }
        Ok(Checkpoint {
            net: Net::Mlp(Mlp {
                layers,
                exec: crate::train::exec::Exec::cpu(),
            }),
            stage,
            k,
            csd,
            rounding,
            lineage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_byte_for_byte() -> Result<()> {
        let mut mlp = Mlp::new(6, &[5, 4], 3, 7)?;
        mlp.layers[0].range = Some(ActRange { lo: 0.0, hi: 2.5 });
        mlp.layers[1].range = Some(ActRange { lo: 0.0, hi: 1.5 });
        mlp.layers[2].range = Some(ActRange { lo: -3.0, hi: 4.0 });
        mlp.start_learned()?;
        let ck = Checkpoint {
            net: Net::Mlp(mlp),
            stage: Stage::RatLearned,
            k: Some(4),
            csd: Some(2),
            rounding: Rounding::Single,
            lineage: vec![json!({"stage": "float", "epochs": 1})],
        };
        let bytes = ck.to_bytes()?;
        let back = Checkpoint::from_bytes(&bytes)?;
        assert_eq!(back.to_bytes()?, bytes);
        assert_eq!(back.stage, Stage::RatLearned);
        assert_eq!(back.k, Some(4));
        assert_eq!(back.csd, Some(2));
        let Net::Mlp(mlp) = &back.net else {
            panic!("an MLP checkpoint came back as a graph")
        };
        assert_eq!(mlp.hidden(), vec![5, 4]);
        assert_eq!(mlp.layers[2].range, Some(ActRange { lo: -3.0, hi: 4.0 }));
        assert!(mlp.layers[1].learned.is_some());
        Ok(())
    }

    #[test]
    fn rejects_garbage() {
        assert!(Checkpoint::from_bytes(b"not a safetensors file").is_err());
        let Err(e) = Checkpoint::load(Path::new("/nonexistent/x.safetensors")) else {
            panic!("loaded a missing file")
        };
        assert_eq!(crate::error::exit_code(&e), 2);
    }
}
