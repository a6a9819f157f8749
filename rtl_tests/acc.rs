//! Minimal accumulators: the per-layer widths hold every value the hardware registers take, the
//! corner inputs really reach both ends of each channel's range (in the first layer and, through
//! a saturating first layer, in the second), co-simulation is exact on them (also with
//! accumulators below 16 bits and of 1 bit, in both multiplier forms), and one bit less in
//! either of the first two layers fails co-simulation on those vectors.

use crate::common::*;
use ratflow::golden::Engine;
use ratflow::golden::vectors::{self, Vector};
use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::{Dyadic, Rounding};
use ratflow::rng::Rng;
use ratflow::rtl::{self, MulForm, Parallel, Plan, verilog::sbits};
use ratflow::sim::{self, Outcome, RunOptions};

const N: usize = 10;

/// A 10-10-6-4-3 model whose second layer's accumulator range is reachable: the first layer
/// copies each input, saturated, to its output (weight 127 on the diagonal, M = 1/64, so
/// x = 127 gives 127 and x = -128 gives -128), so any sign pattern of the second layer's inputs
/// is one input vector away. The second layer has full-range random weights and biases, the
/// third weights in -1..=1 and no bias (an accumulator below 16 bits), the last all zero (a
/// 1-bit accumulator; it always outputs its zero point).
fn reachable_model() -> Model {
    let mut m = random_model(&RandomSpec {
        seed: 61,
        inputs: Some(N),
        layers: Some(vec![N, 6, 4, 3]),
        k_bits: Some(8),
        rounding: Some(Rounding::Single),
    });
    m.tensors[0].q.zero_point = -128;
    let l0 = m.dense_mut(0);
    l0.weight = (0..N * N)
        .map(|i| if i / N == i % N { 127 } else { 0 })
        .collect();
    // acc = (x + 128) * 127 - 128 * 127 = 127 x; b' = b + 128 * 127 = 0.
    l0.bias = vec![-128 * 127; N];
    l0.multiplier = vec![128; N];
    l0.shift = vec![13; N];
    m.ops[0].clamp = ratflow::quant::Clamp::NONE;
    let out0 = m.ops[0].output;
    m.tensors[out0].q.zero_point = 0;
    let mut rng = Rng::new(5);
    let l1 = m.dense_mut(1);
    for w in &mut l1.weight {
        *w = rng.range(-128, 127) as i8;
    }
    for b in &mut l1.bias {
        *b = rng.range(-40_000, 40_000) as i32;
    }
    let l2 = m.dense_mut(2);
    for w in &mut l2.weight {
        *w = rng.range(-1, 1) as i8;
    }
    l2.bias.fill(0);
    let l3 = m.dense_mut(3);
    l3.weight.fill(0);
    l3.bias.fill(0);
    m.validate().expect("the reachable model is valid");
    assert_eq!(m.layers()[0].mult(0), Dyadic { m: 128, s: 13 });
    m
}

/// Inputs that drive every channel of layer 1 to both ends of its range (through the copying
/// first layer), after the random-input corners (which include `extreme_inputs` for layer 0),
/// then random inputs.
fn corner_vectors(m: &Model) -> Vec<Vector> {
    let inputs = vectors::random_inputs(m, 9, 4 + 2 * N + 20);
    let mut vs = vectors::generate(m, &inputs, None, false)
        .unwrap()
        .into_v1()
        .unwrap();
    let engine = Engine::new(m);
    let l1 = &m.layers()[1];
    for c in 0..l1.out_features {
        // Layer 1's input zero point is 0: (y - 0) * w is largest at y = 127 for w >= 0.
        let hi: Vec<i8> = l1
            .row(c)
            .iter()
            .map(|&w| if w >= 0 { 127 } else { -128 })
            .collect();
        let lo: Vec<i8> = hi
            .iter()
            .map(|&x| if x == 127 { -128 } else { 127 })
            .collect();
        for x in [hi, lo] {
            let t = engine.run(&x, true);
            vs.push(Vector::from_trace(m, vs.len(), None, &x, t));
        }
    }
    vs
}

fn cosim(design: &rtl::Design, vs: &[Vector]) -> Outcome {
    let built = sim::build(&sim::network_sources(design, false).unwrap(), &cache()).unwrap();
    sim::run_network(
        &built,
        &design.plan,
        vs,
        &RunOptions {
            seed: 3,
            bubble: 0.2,
            stall: 0.3,
            ..RunOptions::default()
        },
        &design.timing,
    )
    .unwrap()
}

#[test]
fn minimal_accumulators_hold_the_reached_bounds_and_one_bit_less_fails() {
    require_tools();
    let model = reachable_model();
    let opts = rtl::Options {
        top: Some("accw".into()),
        parallel: Parallel::PerLayer(vec![3, 6, 2, 3]),
        ..Default::default()
    };
    let plan = Plan::build(&model, &opts).unwrap();
    let vs = corner_vectors(&model);

    // Golden side: in layers 0 and 1 every channel's exact range is reached at both ends by
    // these vectors, the widths are the narrowest that hold the layer's range, and the end
    // that needs the last bit is a reached value.
    for li in 0..2 {
        let layer = &model.layers()[li];
        let lp = &plan.layers[li];
        let zx = model.layer_input(li).zero_point;
        let seen = |a: i64| {
            vs.iter()
                .any(|v| (0..layer.out_features).any(|c| v.acc[li][c] as i64 == a))
        };
        for c in 0..layer.out_features {
            let (lo, hi) = layer.acc_range(c, zx);
            assert!(
                vs.iter().any(|v| v.acc[li][c] as i64 == lo)
                    && vs.iter().any(|v| v.acc[li][c] as i64 == hi),
                "layer {li} channel {c}: {lo}..={hi} not reached"
            );
        }
        let (lo, hi) = lp.acc_range;
        assert_eq!(lp.acc_bits, sbits(lo, hi));
        assert!(lp.acc_bits < 32, "layer {li}: {} bits", lp.acc_bits);
        let half = 1i64 << (lp.acc_bits - 2);
        assert!(
            (lo < -half && seen(lo)) || (hi >= half && seen(hi)),
            "layer {li}: {lo}..={hi} in {} bits",
            lp.acc_bits
        );
        eprintln!(
            "layer {li}: accumulator range {lo}..={hi}, {} bits",
            lp.acc_bits
        );
    }

    let widths: Vec<u32> = plan.layers.iter().map(|l| l.acc_bits).collect();
    assert!(widths[2] < 16 && widths[3] == 1, "{widths:?}");

    // The minimal design is exact on them, in both multiplier forms.
    for multiplier in [MulForm::Mul, MulForm::Csd] {
        let design = rtl::generate(
            &model,
            &rtl::Options {
                multiplier,
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(
            design.plan.layers,
            plan.layers
                .iter()
                .map(|l| rtl::LayerPlan {
                    multiplier,
                    ..l.clone()
                })
                .collect::<Vec<_>>()
        );
        let out = cosim(&design, &vs);
        assert!(
            out.success && out.failed == 0 && out.passed == vs.len() as u64,
            "{multiplier}: {}",
            out.output
        );
    }

    // One bit less in layer 0 or in layer 1 fails on these vectors, at that layer's
    // accumulators.
    for li in 0..2 {
        let mut narrow = plan.clone();
        narrow.layers[li].acc_bits -= 1;
        let design = rtl::generate_plan(narrow).unwrap();
        let out = cosim(&design, &vs);
        assert!(!out.success && out.failed > 0, "layer {li}: {}", out.output);
        let first = out
            .mismatches()
            .into_iter()
            .next()
            .expect("a mismatch line")
            .to_string();
        assert!(
            first.contains(&format!("layer {li} ({})", model.layers()[li].name))
                && first.contains("accumulator"),
            "{first}"
        );
        eprintln!(
            "{} bits in layer {li}: {first}",
            plan.layers[li].acc_bits - 1
        );
    }
}
