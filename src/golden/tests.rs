//! The fast engine against a literal, unoptimised reading of the integer semantics.

use super::*;
use crate::model::random::{RandomSpec, random_model};
use crate::rng::Rng;

/// DESIGN section 1 word for word: i64 accumulators with the zero point subtracted per input.
fn literal(model: &Model, input: &[i8]) -> Trace {
    let mut x: Vec<i8> = input.to_vec();
    let mut acc = Vec::new();
    let mut out = Vec::new();
    for (i, l) in model.layers.iter().enumerate() {
        let zx = model.layer_input(i).zero_point as i64;
        let a: Vec<i32> = (0..l.out_features)
            .map(|c| {
                let s: i64 = l
                    .row(c)
                    .iter()
                    .zip(&x)
                    .map(|(&w, &xv)| (xv as i64 - zx) * w as i64)
                    .sum::<i64>()
                    + l.bias[c] as i64;
                i32::try_from(s).expect("validated models never overflow i32")
            })
            .collect();
        let y: Vec<i8> = a
            .iter()
            .enumerate()
            .map(|(c, &v)| model.requant(i, c).apply(v))
            .collect();
        x = y.clone();
        acc.push(a);
        out.push(y);
    }
    let last = out.last().unwrap();
    let max = *last.iter().max().unwrap();
    let class = last.iter().position(|&v| v == max).unwrap();
    Trace { acc, out, class }
}

#[test]
fn engine_matches_literal_semantics_on_random_models() {
    for seed in 0..60 {
        let inputs = if seed % 3 == 0 {
            784
        } else {
            1 + seed as usize * 7
        };
        let model = random_model(&RandomSpec {
            seed,
            inputs: Some(inputs),
            ..Default::default()
        });
        let engine = Engine::new(&model);
        let mut rng = Rng::new(seed);
        let mut scratch = Scratch::default();
        for case in 0..40 {
            let input: Vec<i8> = match case {
                0 => vec![-128; inputs],
                1 => vec![127; inputs],
                _ => (0..inputs).map(|_| rng.i8()).collect(),
            };
            let trace = engine.run(&input);
            assert_eq!(trace, literal(&model, &input), "seed {seed} case {case}");
            assert_eq!(engine.classify(&input, &mut scratch), trace.class);
        }
    }
}

#[test]
fn argmax_ties_go_low() {
    assert_eq!(argmax(&[3, 7, 7, -1]), 1);
    assert_eq!(argmax(&[-128, -128]), 0);
    assert_eq!(argmax_i16(&[0, 5, 5]), 1);
}

#[test]
fn dot_handles_remainders() {
    for n in 0..70 {
        let x: Vec<i16> = (0..n).map(|i| (i as i16 * 37 % 255) - 128).collect();
        let w: Vec<i16> = (0..n).map(|i| (i as i16 * 91 % 255) - 127).collect();
        let expect: i32 = x.iter().zip(&w).map(|(&a, &b)| a as i32 * b as i32).sum();
        assert_eq!(dot(&x, &w), expect);
    }
}
