//! Trained network -> int-model, through the semantics module only.
//!
//! Every integer written here comes from [`crate::quant`]: weight codes from
//! [`crate::quant::quantize_weight`] at [`crate::quant::weight_scale`], bias codes from
//! [`crate::quant::quantize_bias`], output parameters from [`crate::quant::affine_params`] of
//! the tracked range, and `(m, s)` from [`crate::quant::derive_multiplier`] at the model's `k`
//! (of `S_x S_w / S_y`, or of the learned factor), or from
//! [`crate::quant::derive_multiplier_csd`] when the spec carries a CSD digit budget, which is
//! then recorded as `rescale.csd_digits`. The layer computes its parameters with the same
//! [`super::layers::QuantLayer::ints`] the training graph used in its last step, so graph and
//! export cannot drift apart. This file writes the MLP's version 1 model; graph networks
//! export version 2 ([`super::graph::GraphNet::to_model`]).

use super::network::{INPUT_QPARAMS, Mlp};
use crate::data::Dataset;
use crate::golden::{Engine, Scratch};
use crate::model::{Dense, DenseLayer, Model};
use crate::quant::Rescale;
use anyhow::{Context, Result};
use serde_json::Value;

/// Integers up to 2^24 are exact in f32: below this worst-case accumulator, every partial sum
/// of the training graph's f32 product is exact and the graph equals the golden model.
pub const F32_EXACT: i64 = 1 << 24;

/// Warns about rescalers whose factor underflowed (`m = 0`: output fixed at the zero point).
pub fn warn_underflow(name: &str, mults: &[crate::quant::Dyadic]) {
    let underflow = mults.iter().filter(|m| m.m == 0).count();
    if underflow > 0 {
        eprintln!(
            "warning: {name}: {underflow} channel(s) have a rescale factor below 2^-62 (m = 0, output fixed at the zero point)"
        );
    }
}

pub fn to_model(mlp: &Mlp, spec: Rescale, name: &str, provenance: Value) -> Result<Model> {
    let mut layers = Vec::with_capacity(mlp.layers.len());
    for (i, l) in mlp.layers.iter().enumerate() {
        let input = mlp.layer_input(i)?;
        let ints = l
            .ints(input, spec)
            .with_context(|| format!("exporting {}", l.name))?;
        let (out, inp) = (l.out_features(), l.in_features());
        let (weight, bias) = l.codes(input, &ints)?;
        warn_underflow(&l.name, &ints.mults);
        layers.push(DenseLayer {
            name: l.name.clone(),
            dense: Dense {
                in_features: inp,
                out_features: out,
                weight,
                bias,
                multiplier: ints.mults.iter().map(|m| m.m).collect(),
                shift: ints.mults.iter().map(|m| m.s).collect(),
            },
            output: ints.output,
            relu: l.act != super::arch::Act::None,
        });
    }
    let model = Model::dense_model(
        name,
        spec,
        vec![mlp.inputs()],
        INPUT_QPARAMS,
        layers,
        provenance,
    );
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("exported model is invalid: {e}"))?;
    for l in &model.layers() {
        let bound = (0..l.out_features)
            .map(|c| l.acc_bound(c))
            .max()
            .unwrap_or(0);
        if bound > F32_EXACT {
            eprintln!(
                "warning: {}: worst-case accumulator {bound} exceeds 2^24; the training graph's f32 \
                 accumulators may round, so graph and golden model can disagree on rare inputs",
                l.name
            );
        }
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::quant::{self, Rounding};
    use crate::rng::Rng;
    use crate::train::layers::QuantLayer;
    use crate::train::net::Net;
    use crate::train::network::Mlp;
    use crate::train::trainer::calibrate;
    use serde_json::json;

    /// `mlp` with activation ranges from `data` (the trainer's calibration).
    pub(crate) fn calibrated(mlp: Mlp, data: &Dataset) -> Result<Mlp> {
        let mut net = Net::Mlp(mlp);
        calibrate(&mut net, data, 32)?;
        let Net::Mlp(mlp) = net else {
            unreachable!("an MLP stays an MLP")
        };
        Ok(mlp)
    }

    /// Random 4x4 "images" with labels 0..9.
    pub(crate) fn synthetic(n: usize, seed: u64) -> Dataset {
        let mut rng = Rng::new(seed);
        Dataset {
            rows: 4,
            cols: 4,
            pixels: (0..n * 16).map(|_| rng.next_u64() as u8).collect(),
            labels: (0..n).map(|_| (rng.next_u64() % 10) as u8).collect(),
        }
    }

    /// Runs the graph in integer mode under `spec` and the golden engine on its export, and
    /// asserts identical output codes (hence classes) on every image; returns the model.
    fn graph_equals_golden(mlp: &mut Mlp, data: &Dataset, spec: Rescale) -> Result<Model> {
        let model = to_model(mlp, spec, "t", json!({}))?;
        assert_eq!(model.rescale.k_bits, spec.k_bits);
        assert_eq!(model.rescale.csd_digits, spec.csd_digits);
        let engine = Engine::new(&model);
        let (px, _) =
            crate::train::batches::batch(data, &(0..data.len()).collect::<Vec<_>>(), None)?;
        let logits = mlp.forward_int(&px, spec, None)?.to_vec2::<f32>()?;
        let out_q = model.output().q;
        for (i, row) in logits.iter().enumerate() {
            let trace = engine.run(&data.input_i8(i), false);
            let codes: Vec<i8> = row
                .iter()
                .map(|&v| ((v as f64 / out_q.scale).round() as i64 + out_q.zero_point as i64) as i8)
                .collect();
            assert_eq!(codes, trace.tensors[model.outputs[0]], "{spec:?} image {i}");
        }
        let graph: Vec<usize> = logits
            .iter()
            .map(|row| {
                (0..row.len())
                    .rev()
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(graph, golden_predictions(&model, data), "{spec:?}");
        Ok(model)
    }

    /// The exported model, run by the golden engine, produces exactly the graph's output
    /// codes (hence classes) on every image, at every k and in both rounding modes.
    #[test]
    fn golden_engine_reproduces_the_training_graph() -> Result<()> {
        let data = synthetic(300, 5);
        let mut mlp = calibrated(Mlp::new(16, &[12, 8], 10, 3)?, &data)?;
        for k in [31, 8, 4, 2, 1] {
            for rounding in [Rounding::Single, Rounding::Double] {
                graph_equals_golden(&mut mlp, &data, Rescale::plain(k, rounding))?;
            }
        }
        Ok(())
    }

    /// Under a CSD digit budget, in both RAT variants (m derived from the scales, and learned
    /// log2 M): every exported m respects the budget and is exactly the CSD projection of the
    /// real factor, the budget binds (some m differ from the plain k-bit ones), the model
    /// records `rescale.csd_digits`, survives the loader's validation, and the golden engine
    /// reproduces the graph on every image.
    #[test]
    fn csd_export_records_the_budget_loads_and_matches_the_graph() -> Result<()> {
        let data = synthetic(300, 7);
        let mut mlp = calibrated(Mlp::new(16, &[12, 8], 10, 5)?, &data)?;
        for learned in [false, true] {
            if learned {
                mlp.start_learned()?;
                // Move the learned factors off the derived ones, as training would.
                let mut rng = Rng::new(11);
                for l in &mlp.layers {
                    let lr = l.learned.as_ref().unwrap();
                    let t: Vec<f32> = lr
                        .log2_m
                        .to_vec1::<f32>()?
                        .iter()
                        .map(|&t| t + (rng.unit() as f32 - 0.5) * 0.8)
                        .collect();
                    lr.log2_m
                        .set(&candle_core::Tensor::new(t, lr.log2_m.device())?)?;
                }
            }
            for (k, d) in [(8, 1), (8, 2), (8, 3), (31, 2), (4, 2)] {
                let spec = Rescale {
                    k_bits: k,
                    rounding: Rounding::Single,
                    csd_digits: Some(d),
                };
                let model = graph_equals_golden(&mut mlp, &data, spec)?;
                let plain = to_model(&mlp, Rescale::plain(k, Rounding::Single), "p", json!({}))?;
                let mut differs = 0;
                for (i, (l, p)) in model.layers().iter().zip(&plain.layers()).enumerate() {
                    let input = mlp.layer_input(i)?;
                    let real: Vec<f64> = match &mlp.layers[i].learned {
                        Some(lr) => lr
                            .log2_m
                            .to_vec1::<f32>()?
                            .iter()
                            .map(|&t| (t as f64).exp2())
                            .collect(),
                        None => QuantLayer::real_m(
                            input,
                            &mlp.layers[i].ints(input, spec)?.weight_scales,
                            l.output,
                        ),
                    };
                    for (c, &r) in real.iter().enumerate() {
                        assert!(quant::csd::weight(l.multiplier[c] as u64) <= d);
                        let want = quant::derive_multiplier_csd(r, k, d).unwrap().mult;
                        assert_eq!(l.mult(c), want, "{spec:?} layer {i} channel {c}");
                        differs += usize::from(l.mult(c) != p.mult(c));
                    }
                }
                assert!(differs > 0, "{spec:?}: the budget never bound");
                let text = model.to_json();
                assert!(text.contains(&format!("\"csd_digits\": {d}")), "{spec:?}");
                let back = Model::from_json_bytes(text.as_bytes())?;
                assert_eq!(back.rescale.csd_digits, Some(d));
                assert_eq!(back.content_hash(), model.content_hash());
            }
        }
        Ok(())
    }

    /// Exported integers are the quant module's, computed from the float state.
    #[test]
    fn exported_integers_follow_design() -> Result<()> {
        let data = synthetic(64, 9);
        let mlp = calibrated(Mlp::new(16, &[6], 10, 4)?, &data)?;
        let spec = Rescale::plain(5, Rounding::Single);
        let model = to_model(&mlp, spec, "t", json!({}))?;
        let l = &mlp.layers[0];
        let w = l.weight.to_vec2::<f32>()?;
        let b = l.bias.to_vec1::<f32>()?;
        let out = l.range.unwrap().qparams();
        for c in 0..6 {
            let s_w = quant::weight_scale(&w[c]);
            let codes: Vec<i8> = w[c]
                .iter()
                .map(|&v| quant::quantize_weight(v, s_w))
                .collect();
            assert_eq!(model.layers()[0].row(c), &codes[..]);
            assert_eq!(
                model.layers()[0].bias[c],
                quant::quantize_bias(b[c], 1.0 / 255.0, s_w)
            );
            let m = quant::derive_multiplier(s_w / 255.0 / out.scale, 5)
                .unwrap()
                .mult;
            assert_eq!(model.layers()[0].mult(c), m);
            assert!(codes.iter().any(|&q| q.abs() == 127));
        }
        assert_eq!(model.layers()[0].output, out);
        assert_eq!(model.layers()[0].output.zero_point, -128);
        Ok(())
    }
}
