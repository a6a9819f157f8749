//! Random valid int-models, for tests that must not be tuned to one trained network.
//!
//! Layer sizes, weights (dense, sparse, saturated), biases, zero points, ReLU, `k`, rounding
//! mode and rescale factors spanning many octaves are all drawn from a seed. Every model is
//! valid by construction and passes [`Model::validate`].

use super::{DenseLayer, InputSpec, Model, QParams, RescaleSpec};
use crate::quant::{self, Multiplier, Rounding};
use crate::rng::Rng;
use serde_json::json;

/// What to randomize; `None` fields are drawn from the seed.
#[derive(Clone, Debug, Default)]
pub struct RandomSpec {
    pub seed: u64,
    /// Input length; 784 (the default) uses MNIST's input quantization.
    pub inputs: Option<usize>,
    /// Output sizes of every layer, last one included.
    pub layers: Option<Vec<usize>>,
    pub k_bits: Option<u32>,
    pub rounding: Option<Rounding>,
}

pub fn random_model(spec: &RandomSpec) -> Model {
    let mut rng = Rng::new(spec.seed);
    let inputs = spec.inputs.unwrap_or(784);
    let sizes = spec.layers.clone().unwrap_or_else(|| {
        let hidden = rng.range(0, 2) as usize;
        let mut v: Vec<usize> = (0..hidden).map(|_| rng.range(1, 40) as usize).collect();
        v.push(rng.range(2, 12) as usize);
        v
    });
    let k_bits = spec
        .k_bits
        .unwrap_or_else(|| *rng.pick(&[31, 31, 24, 16, 12, 8, 8, 6, 5, 4, 4, 3, 2, 1]));
    let rounding = spec.rounding.unwrap_or_else(|| {
        if rng.chance(0.5) {
            Rounding::Single
        } else {
            Rounding::Double
        }
    });
    let input_q = if inputs == 784 {
        QParams {
            scale: 1.0 / 255.0,
            zero_point: -128,
        }
    } else {
        QParams {
            scale: 1.0 / 255.0,
            zero_point: rng.i8(),
        }
    };
    let mut layers = Vec::new();
    let mut fan_in = inputs;
    let mut in_scale = input_q.scale;
    for (i, &out) in sizes.iter().enumerate() {
        let last = i + 1 == sizes.len();
        let layer = random_layer(&mut rng, i, fan_in, out, k_bits, rounding, in_scale, last);
        in_scale = layer.output.scale;
        fan_in = out;
        layers.push(layer);
    }
    let model = Model {
        name: format!("random_{}", spec.seed),
        rescale: RescaleSpec {
            k_bits,
            rounding,
            csd_digits: None,
        },
        input: InputSpec {
            shape: vec![inputs],
            qparams: input_q,
        },
        layers,
        provenance: json!({ "generator": "ratflow random-model", "seed": spec.seed }),
    };
    if let Err(e) = model.validate() {
        panic!("random model generator produced an invalid model: {e}");
    }
    model
}

#[allow(clippy::too_many_arguments)]
fn random_layer(
    rng: &mut Rng,
    index: usize,
    fan_in: usize,
    out: usize,
    k: u32,
    rounding: Rounding,
    in_scale: f64,
    last: bool,
) -> DenseLayer {
    // Weight style per layer: full-range, small, sparse, or saturated at the int8 extremes.
    let style = rng.range(0, 3);
    let mut weight = Vec::with_capacity(out * fan_in);
    for _ in 0..out * fan_in {
        let w = match style {
            0 => rng.range(-127, 127),
            1 => rng.range(-8, 8),
            2 if rng.chance(0.8) => 0,
            2 => rng.range(-127, 127),
            _ => *rng.pick(&[-128, -127, 127, 0]),
        };
        weight.push(w as i8);
    }
    let mut bias = Vec::with_capacity(out);
    let mut multiplier = Vec::with_capacity(out);
    let mut shift = Vec::with_capacity(out);
    for c in 0..out {
        let row = &weight[c * fan_in..(c + 1) * fan_in];
        let l1: i64 = row.iter().map(|&w| (w as i64).abs()).sum();
        let l2: f64 = row.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt();
        let room = i32::MAX as i64 - 255 * l1;
        let b = match rng.range(0, 4) {
            0 => 0,
            1 => rng.range(-(room.min(1 << 20)), room.min(1 << 20)),
            2 => rng.range(-room, room),
            _ => rng.range(-1000, 1000).clamp(-room, room),
        };
        bias.push(b as i32);
        // Scale a typical accumulator (inputs spread over 0..255, std ~74) to ~64 codes, then
        // spread over several octaves so outputs both saturate and sit near zero.
        let typical = (74.0 * l2 + (b as f64).abs() / 4.0).max(1.0);
        let mut real = 64.0 / typical;
        real *= (rng.unit() * 8.0 - 4.0).exp2();
        if rng.chance(0.03) {
            // Tiny M: a shift near or past the limit.
            real = (-(rng.range(30, 70) as f64)).exp2();
        } else if rounding == Rounding::Single && rng.chance(0.05) {
            // M >= 1 (s < k) is legal in single mode only.
            real = 1.0 + rng.unit() * 2.0;
        }
        let mult = derive_legal(real, k, rounding);
        multiplier.push(mult.m);
        shift.push(mult.s);
    }
    let zero_point = rng.i8();
    let relu = !last && rng.chance(0.7);
    let mean_m = multiplier
        .iter()
        .zip(&shift)
        .map(|(&m, &s)| Multiplier { m, s }.value())
        .filter(|v| *v > 0.0)
        .fold(0.0, f64::max)
        .max(1e-12);
    DenseLayer {
        name: format!("fc{}", index + 1),
        in_features: fan_in,
        out_features: out,
        weight,
        bias,
        multiplier,
        shift,
        output: QParams {
            scale: in_scale / 127.0 / mean_m,
            zero_point,
        },
        relu,
    }
}

/// (m, s) for `real` at `k`, nudged into what the model format allows for `rounding`: no
/// negative shift, and in `double` mode `s >= k` and never the (0, 0) underflow encoding.
fn derive_legal(real: f64, k: u32, rounding: Rounding) -> Multiplier {
    let largest_below_one = Multiplier {
        m: ((1u64 << k) - 1) as u32,
        s: k,
    };
    match quant::derive_multiplier(real, k) {
        Err(_) => {
            if rounding == Rounding::Single {
                quant::derive_multiplier((1u64 << (k - 1)) as f64, k)
                    .expect("2^(k-1) is representable")
                    .mult
            } else {
                largest_below_one
            }
        }
        Ok(d) if rounding == Rounding::Double && (d.underflow || d.mult.s < k) => {
            if d.underflow {
                Multiplier {
                    m: 1u32 << (k - 1),
                    s: 62,
                }
            } else {
                largest_below_one
            }
        }
        Ok(d) => d.mult,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_seeds_are_valid_and_varied() {
        let mut ks = std::collections::BTreeSet::new();
        let mut modes = std::collections::BTreeSet::new();
        let mut saw_m_ge_1 = false;
        let mut saw_underflow = false;
        for seed in 0..300 {
            let m = random_model(&RandomSpec {
                seed,
                ..Default::default()
            });
            m.validate().unwrap();
            ks.insert(m.rescale.k_bits);
            modes.insert(m.rescale.rounding.as_str());
            for l in &m.layers {
                for c in 0..l.out_features {
                    saw_m_ge_1 |= l.mult(c).s < m.rescale.k_bits && l.multiplier[c] != 0;
                    saw_underflow |= l.multiplier[c] == 0;
                }
            }
            // Round-trips through the file format unchanged.
            let back = Model::from_json_bytes(m.to_json().as_bytes()).unwrap();
            assert_eq!(back, m);
        }
        assert!(ks.len() >= 10, "{ks:?}");
        assert_eq!(modes.len(), 2);
        assert!(saw_m_ge_1 && saw_underflow);
    }

    #[test]
    fn same_seed_same_model() {
        let spec = RandomSpec {
            seed: 7,
            ..Default::default()
        };
        assert_eq!(random_model(&spec).to_json(), random_model(&spec).to_json());
    }
}
