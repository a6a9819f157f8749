//! The MLP: a stack of dense [`QuantLayer`]s, ReLU between them, run as float or as integers.
//! (The same network is also the architecture `flatten,dense:128,relu,dense:64,relu,dense:10`
//! of [`super::graph::GraphNet`], which computes the same integers; this type keeps the
//! original checkpoint and version 1 int-model formats.)

use super::arch::Act;
use super::exec::Exec;
use super::layers::{Product, QuantLayer};
use crate::model::QParams;
use crate::quant::Rescale;
use crate::rng::Rng;
use anyhow::Result;
use candle_core::{Device, Tensor, Var};

/// DESIGN's input quantization: `x = p - 128`, S = 1/255, Z = -128.
pub const INPUT_QPARAMS: QParams = QParams {
    scale: 1.0 / 255.0,
    zero_point: -128,
};

pub struct Mlp {
    pub layers: Vec<QuantLayer>,
    pub exec: Exec,
}

impl Mlp {
    /// He-uniform weights (bound `sqrt(6 / fan_in)`) and zero biases from `seed`, so a run is
    /// reproducible without candle's own (unseeded) random generator.
    pub fn new(inputs: usize, hidden: &[usize], classes: usize, seed: u64) -> Result<Mlp> {
        let mut rng = Rng::new(seed);
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(classes);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, io)| {
                let (fan_in, out) = (io[0], io[1]);
                let bound = (6.0 / fan_in as f64).sqrt();
                let w: Vec<f32> = (0..out * fan_in)
                    .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
                    .collect();
                Ok(QuantLayer::new(
                    &format!("fc{}", i + 1),
                    Product::Dense,
                    Var::from_vec(w, (out, fan_in), &Device::Cpu)?,
                    Var::zeros(out, candle_core::DType::F32, &Device::Cpu)?,
                    if i + 2 < sizes.len() {
                        Act::Relu
                    } else {
                        Act::None
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp {
            layers,
            exec: Exec::cpu(),
        })
    }

    /// Moves every parameter to `exec`'s device and runs its op implementation from now on.
    pub fn set_exec(&mut self, exec: Exec) -> Result<()> {
        for l in &mut self.layers {
            super::graph::move_layer(l, &exec.device)?;
        }
        self.exec = exec;
        Ok(())
    }

    pub fn inputs(&self) -> usize {
        self.layers[0].in_features()
    }

    pub fn hidden(&self) -> Vec<usize> {
        let n = self.layers.len();
        self.layers[..n - 1]
            .iter()
            .map(|l| l.out_features())
            .collect()
    }

    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_features())
    }

    /// Real logits from real inputs `p / 255`.
    pub fn forward_float(&mut self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &mut self.layers {
            h = l.forward_float(&h, false, &self.exec)?;
        }
        Ok(h)
    }

    /// Float forward that also folds every layer's real outputs into its activation range:
    /// the calibration that gives QAT its starting ranges.
    pub fn calibrate(&mut self, x: &Tensor, momentum: f64) -> Result<()> {
        let mut h = x.clone();
        for l in &mut self.layers {
            h = l.forward_float(&h, false, &self.exec)?;
            if self.exec.portable {
                l.observe_tensor(&h, momentum)?;
            } else {
                l.observe(&h.flatten_all()?.to_vec1::<f32>()?, momentum);
            }
        }
        Ok(())
    }

    /// Real logits `S_out * (y - Z_out)` from pixel values `p` (= `x - Z_x`) through the
    /// integer pipeline. `momentum` set means training: ranges update from this batch.
    pub fn forward_int(
        &mut self,
        pixels: &Tensor,
        spec: Rescale,
        momentum: Option<f64>,
    ) -> Result<Tensor> {
        let mut h = pixels.clone();
        let mut q = INPUT_QPARAMS;
        for l in &mut self.layers {
            (h, q) = l.forward_int(&h, q, spec, momentum, &self.exec)?;
        }
        Ok(h.affine(q.scale, 0.0)?)
    }

    /// Weights and biases (what Adam trains at the main learning rate).
    pub fn weight_vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.clone(), l.bias.clone()])
            .collect()
    }

    /// Learned `log2 M` parameters (empty unless learned-rescale training began).
    pub fn rescale_vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .filter_map(|l| l.learned.as_ref().map(|r| r.log2_m.clone()))
            .collect()
    }

    /// The input quantization of layer `i` under the current ranges.
    pub fn layer_input(&self, i: usize) -> Result<QParams> {
        if i == 0 {
            return Ok(INPUT_QPARAMS);
        }
        match self.layers[i - 1].range {
            Some(r) => Ok(r.qparams()),
            None => anyhow::bail!("{}: no activation range", self.layers[i - 1].name),
        }
    }

    pub fn start_learned(&mut self) -> Result<()> {
        for i in 0..self.layers.len() {
            let q = self.layer_input(i)?;
            self.layers[i].start_learned(q)?;
        }
        Ok(())
    }

    pub fn has_ranges(&self) -> bool {
        self.layers.iter().all(|l| l.range.is_some())
    }

    /// Whether every parameter is finite (checked before a checkpoint is written).
    pub fn is_finite(&self) -> Result<bool> {
        for v in self.weight_vars().iter().chain(&self.rescale_vars()) {
            let s = v.abs()?.sum_all()?.to_scalar::<f32>()?;
            if !s.is_finite() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
