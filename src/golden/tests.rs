//! The fast engine against a literal, unoptimised reading of DESIGN section 5: i64
//! accumulators, the zero point subtracted per tap, padding taps skipped by bounds checks,
//! one output element at a time.

use super::*;
use crate::model::random::{GraphSpec, RandomSpec, random_graph, random_model};
use crate::model::{Op, OpKind, Window};
use crate::rng::Rng;

/// Input index `(iy, ix)` of tap `(ky, kx)` for output `(oy, ox)`, if inside `h x w`.
fn tap(
    win: &Window,
    oy: usize,
    ox: usize,
    ky: usize,
    kx: usize,
    h: usize,
    w: usize,
) -> Option<(usize, usize)> {
    let iy = (oy * win.stride[0] + ky * win.dilation[0]) as i64 - win.padding[0] as i64;
    let ix = (ox * win.stride[1] + kx * win.dilation[1]) as i64 - win.padding[2] as i64;
    (iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w)
        .then_some((iy as usize, ix as usize))
}

fn to_i32(v: i64) -> i32 {
    i32::try_from(v).expect("validated models never overflow i32")
}

/// One op, literally: returns the output codes and, for accumulating ops, the accumulators.
fn literal_op(model: &Model, op: &Op, xs: &[&[i8]]) -> (Vec<i8>, Option<Vec<i32>>) {
    let io = model.io(op);
    let zx = io.inputs[0].q.zero_point as i64;
    let out = io.output;
    let rq = |c: usize, a: i32| model.requant(op, c).unwrap().apply(a);
    match &op.kind {
        OpKind::Dense(d) => {
            let acc: Vec<i32> = (0..d.out_features)
                .map(|c| {
                    let s: i64 = (0..d.in_features)
                        .map(|i| (xs[0][i] as i64 - zx) * d.weight[c * d.in_features + i] as i64)
                        .sum();
                    to_i32(s + d.bias[c] as i64)
                })
                .collect();
            (
                acc.iter().enumerate().map(|(c, &a)| rq(c, a)).collect(),
                Some(acc),
            )
        }
        OpKind::Conv2d(cv) => {
            let (h, w, c) = io.inputs[0].hwc().unwrap();
            let (oh, ow, o) = out.hwc().unwrap();
            let [kh, kw] = cv.window.kernel;
            let mut acc = Vec::new();
            for oy in 0..oh {
                for ox in 0..ow {
                    for oc in 0..o {
                        let mut s = cv.bias[oc] as i64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let Some((iy, ix)) = tap(&cv.window, oy, ox, ky, kx, h, w) {
                                    for ic in 0..c {
                                        let x = xs[0][(iy * w + ix) * c + ic] as i64 - zx;
                                        let wt = cv.weight[((oc * kh + ky) * kw + kx) * c + ic];
                                        s += x * wt as i64;
                                    }
                                }
                            }
                        }
                        acc.push(to_i32(s));
                    }
                }
            }
            let y = acc.iter().enumerate().map(|(i, &a)| rq(i % o, a)).collect();
            (y, Some(acc))
        }
        OpKind::DepthwiseConv2d(dw) => {
            let (h, w, c) = io.inputs[0].hwc().unwrap();
            let (oh, ow, o) = out.hwc().unwrap();
            let [kh, kw] = dw.window.kernel;
            let dm = o / c;
            let mut acc = Vec::new();
            for oy in 0..oh {
                for ox in 0..ow {
                    for oc in 0..o {
                        let mut s = dw.bias[oc] as i64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let Some((iy, ix)) = tap(&dw.window, oy, ox, ky, kx, h, w) {
                                    let x = xs[0][(iy * w + ix) * c + oc / dm] as i64 - zx;
                                    s += x * dw.weight[(ky * kw + kx) * o + oc] as i64;
                                }
                            }
                        }
                        acc.push(to_i32(s));
                    }
                }
            }
            let y = acc.iter().enumerate().map(|(i, &a)| rq(i % o, a)).collect();
            (y, Some(acc))
        }
        OpKind::MaxPool2d(p) => pool(&p.window, op, io.inputs[0], out, xs[0], false),
        OpKind::AvgPool2d(p) => pool(&p.window, op, io.inputs[0], out, xs[0], true),
        OpKind::Add(_) => {
            let aq = model.add_requant(op).unwrap();
            let y = xs[0]
                .iter()
                .zip(xs[1])
                .map(|(&a, &b)| {
                    // DESIGN: a_i = rescale((q_i - Z_i) * 2^left_shift, m_i, s_i).
                    let r = model.op_rescale(op);
                    let a1 = crate::quant::rescale(
                        ((a as i64 - aq.input_zero_points[0] as i64) << aq.left_shift) as i32,
                        aq.inputs[0],
                        r.k_bits,
                        r.rounding,
                    );
                    let a2 = crate::quant::rescale(
                        ((b as i64 - aq.input_zero_points[1] as i64) << aq.left_shift) as i32,
                        aq.inputs[1],
                        r.k_bits,
                        r.rounding,
                    );
                    aq.output.apply(to_i32(a1 + a2))
                })
                .collect();
            (y, None)
        }
        OpKind::Reshape(_) => (xs[0].to_vec(), None),
    }
}

fn pool(
    win: &Window,
    op: &Op,
    input: &crate::model::Tensor,
    out: &crate::model::Tensor,
    x: &[i8],
    avg: bool,
) -> (Vec<i8>, Option<Vec<i32>>) {
    let (h, w, c) = input.hwc().unwrap();
    let (oh, ow, _) = out.hwc().unwrap();
    let mut y = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let vals: Vec<i64> = (0..win.kernel[0])
                    .flat_map(|ky| (0..win.kernel[1]).map(move |kx| (ky, kx)))
                    .filter_map(|(ky, kx)| tap(win, oy, ox, ky, kx, h, w))
                    .map(|(iy, ix)| x[(iy * w + ix) * c + ch] as i64)
                    .collect();
                let v = if avg {
                    // Round half away from zero, as integers: no float.
                    let (sum, n) = (vals.iter().sum::<i64>(), vals.len() as i64);
                    let q = (2 * sum.abs() + n) / (2 * n);
                    if sum >= 0 { q } else { -q }
                } else {
                    *vals.iter().max().unwrap()
                };
                y.push(op.clamp.apply(v));
            }
        }
    }
    (y, None)
}

/// Every tensor, every op's accumulators, and the class.
type LiteralTrace = (Vec<Vec<i8>>, Vec<Option<Vec<i32>>>, usize);

fn literal(model: &Model, input: &[i8]) -> LiteralTrace {
    let mut tensors = vec![Vec::new(); model.tensors.len()];
    tensors[model.inputs[0]] = input.to_vec();
    let mut accs = Vec::new();
    for op in &model.ops {
        let xs: Vec<&[i8]> = op.inputs.iter().map(|&t| tensors[t].as_slice()).collect();
        let (y, acc) = literal_op(model, op, &xs);
        tensors[op.output] = y;
        accs.push(acc);
    }
    let out = &tensors[model.outputs[0]];
    let max = *out.iter().max().unwrap();
    let class = out.iter().position(|&v| v == max).unwrap();
    (tensors, accs, class)
}

fn check(model: &Model, seed: u64, cases: usize) {
    let engine = Engine::new(model);
    let n = model.input_len();
    let mut rng = Rng::new(seed);
    let mut scratch = Scratch::default();
    for case in 0..cases {
        let input: Vec<i8> = match case {
            0 => vec![-128; n],
            1 => vec![127; n],
            _ => (0..n).map(|_| rng.i8()).collect(),
        };
        let trace = engine.run(&input, true);
        let (tensors, accs, class) = literal(model, &input);
        for op in &model.ops {
            assert_eq!(
                trace.tensors[op.output], tensors[op.output],
                "{} seed {seed} case {case} op {}",
                model.name, op.name
            );
        }
        assert_eq!(trace.acc, accs, "{} seed {seed} case {case}", model.name);
        assert_eq!(trace.class, class);
        assert_eq!(engine.classify(&input, &mut scratch), class);
    }
}

#[test]
fn engine_matches_literal_semantics_on_random_dense_chains() {
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
        check(&model, seed, 30);
    }
}

#[test]
fn engine_matches_literal_semantics_on_random_graphs() {
    for seed in 0..120 {
        let model = random_graph(&GraphSpec {
            seed,
            ..Default::default()
        });
        check(&model, seed, 12);
    }
}

/// The portable matrix product (machines without AVX-512 VNNI) gives the same integers. The
/// switch is process-wide; other tests running meanwhile stay correct, as both paths agree.
#[test]
fn portable_path_matches_literal_semantics_on_random_graphs() {
    ops::gemm::force_portable(true);
    for seed in 200..240 {
        let model = random_graph(&GraphSpec {
            seed,
            ..Default::default()
        });
        check(&model, seed, 6);
    }
    ops::gemm::force_portable(false);
}

#[test]
fn argmax_ties_go_low() {
    assert_eq!(argmax(&[3, 7, 7, -1]), 1);
    assert_eq!(argmax(&[-128, -128]), 0);
}

#[test]
fn batch_classification_equals_one_by_one() {
    let model = random_graph(&GraphSpec {
        seed: 3,
        ..Default::default()
    });
    let engine = Engine::new(&model);
    let mut rng = Rng::new(5);
    let inputs: Vec<Vec<i8>> = (0..50)
        .map(|_| (0..model.input_len()).map(|_| rng.i8()).collect())
        .collect();
    let mut s = Scratch::default();
    let one: Vec<usize> = inputs.iter().map(|x| engine.classify(x, &mut s)).collect();
    assert_eq!(engine.classify_batch(&inputs), one);
}
