//! Trained network -> int-model, through the semantics module only.
//!
//! Every integer written here comes from [`crate::quant`]: weight codes from
//! [`quant::quantize_weight`] at [`quant::weight_scale`], bias codes from
//! [`quant::quantize_bias`], output parameters from [`quant::affine_params`] of the tracked
//! range, and `(m, s)` from [`quant::derive_multiplier`] at the model's `k` (of `S_x S_w / S_y`,
//! or of the learned factor). The layer computes its parameters with the same
//! [`QuantDense::ints`] the training graph used in its last step, so graph and export cannot
//! drift apart.

use super::layers::IntSpec;
use super::network::{INPUT_QPARAMS, Mlp};
use crate::data::Dataset;
use crate::golden::{Engine, Scratch};
use crate::model::{DenseLayer, InputSpec, Model, RescaleSpec};
use crate::quant;
use anyhow::{Context, Result};
use serde_json::Value;

pub fn to_model(mlp: &Mlp, spec: IntSpec, name: &str, provenance: Value) -> Result<Model> {
    let mut layers = Vec::with_capacity(mlp.layers.len());
    for (i, l) in mlp.layers.iter().enumerate() {
        let input = mlp.layer_input(i)?;
        let ints = l
            .ints(input, spec.k)
            .with_context(|| format!("exporting {}", l.name))?;
        let (out, inp) = (l.out_features(), l.in_features());
        let w = l.weight.flatten_all()?.to_vec1::<f32>()?;
        let b = l.bias.to_vec1::<f32>()?;
        let weight = w
            .chunks_exact(inp)
            .zip(&ints.weight_scales)
            .flat_map(|(row, &s)| row.iter().map(move |&v| quant::quantize_weight(v, s)))
            .collect();
        let bias = b
            .iter()
            .zip(&ints.weight_scales)
            .map(|(&v, &s)| quant::quantize_bias(v, input.scale, s))
            .collect();
        let underflow = ints.mults.iter().filter(|m| m.m == 0).count();
        if underflow > 0 {
            eprintln!(
                "warning: {}: {underflow} channel(s) have a rescale factor below 2^-62 (m = 0, output fixed at the zero point)",
                l.name
            );
        }
        layers.push(DenseLayer {
            name: l.name.clone(),
            in_features: inp,
            out_features: out,
            weight,
            bias,
            multiplier: ints.mults.iter().map(|m| m.m).collect(),
            shift: ints.mults.iter().map(|m| m.s).collect(),
            output: ints.output,
            relu: l.relu,
        });
    }
    let model = Model {
        name: name.to_string(),
        rescale: RescaleSpec {
            k_bits: spec.k,
            rounding: spec.rounding,
            csd_digits: None,
        },
        input: InputSpec {
            shape: vec![mlp.inputs()],
            qparams: INPUT_QPARAMS,
        },
        layers,
        provenance,
    };
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("exported model is invalid: {e}"))?;
    Ok(model)
}

/// The golden engine's predicted class of every image.
pub fn golden_predictions(model: &Model, data: &Dataset) -> Vec<usize> {
    let engine = Engine::new(model);
    let mut scratch = Scratch::default();
    (0..data.len())
        .map(|i| engine.classify(&data.input_i8(i), &mut scratch))
        .collect()
}

/// Percentage of images on which two predictors agree.
pub fn agreement(a: &[usize], b: &[usize]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    100.0 * same as f64 / a.len().max(1) as f64
}
