//! The two network kinds the stages train, behind one interface: the original MLP
//! ([`Mlp`], version 1 int-models and its own checkpoint layout, kept so the shipped MLP
//! files reproduce byte for byte) and graph networks ([`GraphNet`]: any `--arch`, imported
//! int-models, version 2 exports).

use super::exec::Exec;
use super::graph::GraphNet;
use super::network::Mlp;
use super::trainer::Mode;
use crate::model::{Model, QParams};
use crate::quant::Rescale;
use anyhow::Result;
use candle_core::{Tensor, Var};
use serde_json::Value;

pub enum Net {
    Mlp(Mlp),
    Graph(GraphNet),
}

impl Net {
    /// Logits `[B, classes]` of a pixel batch (`[B, n]`, values `q + 128` of the input codes;
    /// for MNIST the pixel values). Float mode feeds real values `S_x (q - Z_x)`, integer mode
    /// centred codes. `train` selects batch statistics in batchnorms; `ema` updates ranges.
    pub fn logits(
        &mut self,
        px: &Tensor,
        mode: Mode,
        ema: Option<f64>,
        train: bool,
    ) -> Result<Tensor> {
        match self {
            Net::Mlp(m) => {
                let px = px.to_device(&m.exec.device)?;
                match mode {
                    Mode::Float => m.forward_float(&px.affine(1.0 / 255.0, 0.0)?),
                    Mode::Int(spec) => m.forward_int(&px, spec, ema),
                }
            }
            Net::Graph(g) => {
                let x = g.centred_input(px)?;
                match mode {
                    Mode::Float => {
                        let real = x.affine(g.input_q.scale, 0.0)?;
                        g.forward_float(&real, train, None)
                    }
                    Mode::Int(spec) => g.forward_int(&x, spec, ema),
                }
            }
        }
    }

    /// Float forward that folds every quantized tensor's real values into its range (the
    /// calibration that gives QAT its starting ranges).
    pub fn calibrate(&mut self, px: &Tensor, momentum: f64) -> Result<()> {
        match self {
            Net::Mlp(m) => {
                let px = px.to_device(&m.exec.device)?;
                m.calibrate(&px.affine(1.0 / 255.0, 0.0)?, momentum)
            }
            Net::Graph(g) => {
                let real = g.centred_input(px)?.affine(g.input_q.scale, 0.0)?;
                g.forward_float(&real, false, Some(momentum)).map(|_| ())
            }
        }
    }

    pub fn weight_vars(&self) -> Vec<Var> {
        match self {
            Net::Mlp(m) => m.weight_vars(),
            Net::Graph(g) => g.weight_vars(),
        }
    }

    pub fn rescale_vars(&self) -> Vec<Var> {
        match self {
            Net::Mlp(m) => m.rescale_vars(),
            Net::Graph(g) => g.rescale_vars(),
        }
    }

    pub fn is_finite(&self) -> Result<bool> {
        match self {
            Net::Mlp(m) => m.is_finite(),
            Net::Graph(g) => g.is_finite(),
        }
    }

    pub fn has_ranges(&self) -> bool {
        match self {
            Net::Mlp(m) => m.has_ranges(),
            Net::Graph(g) => g.has_ranges(),
        }
    }

    pub fn start_learned(&mut self) -> Result<()> {
        match self {
            Net::Mlp(m) => m.start_learned(),
            Net::Graph(g) => g.start_learned(),
        }
    }

    /// Folds batchnorms into their layers (QAT's first step); the MLP has none.
    pub fn fold_batchnorm(&mut self) -> Result<()> {
        match self {
            Net::Mlp(_) => Ok(()),
            Net::Graph(g) => g.fold_batchnorm(),
        }
    }

    /// Values per input (pixels for MNIST).
    pub fn input_len(&self) -> usize {
        match self {
            Net::Mlp(m) => m.inputs(),
            Net::Graph(g) => g.input_len(),
        }
    }

    pub fn input_q(&self) -> QParams {
        match self {
            Net::Mlp(_) => super::network::INPUT_QPARAMS,
            Net::Graph(g) => g.input_q,
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            Net::Mlp(m) => m.classes(),
            Net::Graph(g) => g.classes(),
        }
    }

    pub fn exec(&self) -> &Exec {
        match self {
            Net::Mlp(m) => &m.exec,
            Net::Graph(g) => &g.exec,
        }
    }

    /// Moves the network to `exec`'s device and op implementation.
    pub fn set_exec(&mut self, exec: Exec) -> Result<()> {
        match self {
            Net::Mlp(m) => m.set_exec(exec),
            Net::Graph(g) => g.set_exec(exec),
        }
    }

    /// The name exported models are prefixed with (`mnist_mlp`, or the graph's own).
    pub fn model_name(&self) -> &str {
        match self {
            Net::Mlp(_) => "mnist_mlp",
            Net::Graph(g) => &g.name,
        }
    }

    /// The int-model of the current state (version 1 for the MLP, 2 for graphs).
    pub fn to_model(&self, spec: Rescale, name: &str, provenance: Value) -> Result<Model> {
        match self {
            Net::Mlp(m) => super::export::to_model(m, spec, name, provenance),
            Net::Graph(g) => g.to_model(spec, name, provenance),
        }
    }

    /// `784-128-64-10` for the MLP, the architecture text for a graph.
    pub fn describe(&self) -> String {
        match self {
            Net::Mlp(m) => {
                let mut sizes = vec![m.inputs()];
                sizes.extend(m.hidden());
                sizes.push(m.classes());
                sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            }
            Net::Graph(g) => g
                .arch
                .clone()
                .unwrap_or_else(|| format!("graph of {} ops (from {})", g.nodes.len(), g.name)),
        }
    }
}
