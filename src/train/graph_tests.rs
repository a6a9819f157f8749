//! Graph networks against the golden engine, the importer path, checkpoints, the MLP.

use super::*;
use crate::data::Dataset;
use crate::golden::Engine;
use crate::quant::Rounding;
use crate::rng::Rng;
use crate::train::arch::Arch;
use crate::train::checkpoint::Checkpoint;
use crate::train::export::tests::synthetic;
use crate::train::net::Net;
use crate::train::trainer::{Hyper, Mode, StageRun, calibrate, graph_logits, train_stage};
use crate::train::{Recipe, Stage, StageSetup, begin_stage};

/// Every op kind of int-model v2: conv2d (stride, SAME), batchnorm, relu6, depthwise with a
/// depth multiplier, a residual block with a projection shortcut, both pools, flatten, dense.
const EVERY_OP: &str = "conv2d:6:3x3,batchnorm,relu,depthwise_conv2d:3x3:m2,relu6,\
    res(conv2d:12:3x3,relu,conv2d:12:3x3;conv2d:12:1x1),relu,max_pool2d:2,\
    res(depthwise_conv2d:3x3,relu),avg_pool2d:2:s1,flatten,dense:10";

/// Random 8x8 images with labels 0..9.
fn images(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    Dataset {
        rows: 8,
        cols: 8,
        pixels: (0..n * 64).map(|_| rng.next_u64() as u8).collect(),
        labels: (0..n).map(|_| (rng.next_u64() % 10) as u8).collect(),
    }
}

fn graph(arch: &str, data: &Dataset, seed: u64) -> Net {
    let ck = crate::train::fresh_graph(&Arch::parse(arch).unwrap(), data, seed, "t").unwrap();
    ck.net
}

fn as_graph(net: &mut Net) -> &mut GraphNet {
    match net {
        Net::Graph(g) => g,
        Net::Mlp(_) => panic!("a graph network"),
    }
}

/// Runs the training graph in integer mode and the golden engine on its export, and asserts
/// identical output codes on every image; returns the model.
fn graph_equals_golden(net: &mut Net, data: &Dataset, spec: Rescale) -> Result<Model> {
    let model = net.to_model(spec, "t", Value::Null)?;
    let engine = Engine::new(&model);
    let logits = graph_logits(net, data, Mode::Int(spec))?;
    let out_q = model.output().q;
    for (i, row) in logits.iter().enumerate() {
        let trace = engine.run(&data.input_i8(i), false);
        let codes: Vec<i8> = row
            .iter()
            .map(|&v| ((v as f64 / out_q.scale).round() as i64 + out_q.zero_point as i64) as i8)
            .collect();
        assert_eq!(codes, trace.tensors[model.outputs[0]], "{spec:?} image {i}");
    }
    Ok(model)
}

/// The exported version 2 model, run by the golden engine, produces exactly the training
/// graph's output codes on every image: every op kind, at every k, both roundings, derived
/// and learned rescale, on both op implementations.
#[test]
fn golden_engine_reproduces_the_cnn_training_graph() -> Result<()> {
    let data = images(120, 5);
    for exec in [Exec::cpu(), Exec::cpu_portable()] {
        let mut net = graph(EVERY_OP, &data, 3);
        net.set_exec(exec.clone())?;
        // A few float steps move the batchnorm statistics; then fold and calibrate, as QAT.
        let h = Hyper {
            epochs: 1,
            batch: 40,
            ..Recipe::default().float
        };
        let mut ck = Checkpoint {
            net,
            stage: Stage::Float,
            k: None,
            csd: None,
            rounding: Rounding::Single,
            lineage: Vec::new(),
        };
        train_stage(
            &mut ck,
            &StageRun {
                stage: Stage::Float,
                hyper: &h,
                spec: Rescale::plain(31, Rounding::Single),
                seed: 1,
                train: &data,
                test: &data,
                checkpoint: None,
                progress: false,
                targets: None,
            },
        )?;
        let mut net = ck.net;
        assert!(as_graph(&mut net).has_batchnorm());
        net.fold_batchnorm()?;
        calibrate(&mut net, &data, 40)?;
        let kinds: Vec<&str> = net
            .to_model(Rescale::plain(31, Rounding::Single), "t", Value::Null)?
            .ops
            .iter()
            .map(|o| o.kind.name())
            .collect();
        for k in [
            "conv2d",
            "depthwise_conv2d",
            "add",
            "max_pool2d",
            "avg_pool2d",
            "reshape",
            "dense",
        ] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        for learned in [false, true] {
            if learned {
                net.start_learned()?;
                // Move the learned factors off the derived ones, as training would.
                let mut rng = Rng::new(11);
                for v in net.rescale_vars() {
                    let t: Vec<f32> = v
                        .flatten_all()?
                        .to_vec1::<f32>()?
                        .iter()
                        .map(|&t| t + (rng.unit() as f32 - 0.5) * 0.6)
                        .collect();
                    v.set(&Tensor::from_vec(t, v.dims(), v.device())?)?;
                }
            }
            for k in [31, 8, 4, 2, 1] {
                for rounding in [Rounding::Single, Rounding::Double] {
                    let m = graph_equals_golden(&mut net, &data, Rescale::plain(k, rounding))?;
                    assert_eq!(m.version, 2);
                    assert!(
                        m.ops
                            .iter()
                            .filter(|o| o.kind.accumulates())
                            .all(|o| o.weight_scale.is_some())
                    );
                }
            }
            let csd = Rescale {
                k_bits: 8,
                rounding: Rounding::Single,
                csd_digits: Some(2),
            };
            graph_equals_golden(&mut net, &data, csd)?;
        }
    }
    Ok(())
}

/// Fast and portable op paths give the same integer logits for the same parameters, and
/// training steps on both stay within f32 rounding of each other.
#[test]
fn op_paths_agree_on_a_cnn() -> Result<()> {
    let data = images(64, 2);
    let mut a = graph(EVERY_OP, &data, 4);
    a.fold_batchnorm()?;
    calibrate(&mut a, &data, 32)?;
    let bytes = Checkpoint {
        net: a,
        stage: Stage::Qat,
        k: Some(31),
        csd: None,
        rounding: Rounding::Single,
        lineage: Vec::new(),
    }
    .to_bytes()?;
    let mut fast = Checkpoint::from_bytes(&bytes)?;
    let mut port = Checkpoint::from_bytes(&bytes)?;
    port.net.set_exec(Exec::cpu_portable())?;
    for k in [31, 4, 1] {
        let spec = Rescale::plain(k, Rounding::Double);
        assert_eq!(
            graph_logits(&mut fast.net, &data, Mode::Int(spec))?,
            graph_logits(&mut port.net, &data, Mode::Int(spec))?
        );
    }
    let h = Hyper {
        epochs: 1,
        batch: 16,
        ..Recipe::default().rat
    };
    for ck in [&mut fast, &mut port] {
        let setup = StageSetup {
            stage: Stage::RatPaper,
            spec: Rescale::plain(4, Rounding::Single),
            seed: 1,
            threads: 1,
        };
        begin_stage(ck, &setup, &h, &data)?;
        train_stage(
            ck,
            &StageRun {
                stage: Stage::RatPaper,
                hyper: &h,
                spec: setup.spec,
                seed: 1,
                train: &data,
                test: &data,
                checkpoint: None,
                progress: false,
                targets: None,
            },
        )?;
    }
    for (x, y) in fast.net.weight_vars().iter().zip(port.net.weight_vars()) {
        let (x, y) = (
            x.flatten_all()?.to_vec1::<f32>()?,
            y.flatten_all()?.to_vec1::<f32>()?,
        );
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
        }
    }
    Ok(())
}

/// A network initialised from an exported model exports the same integers again (at the
/// model's k and at another), and a checkpoint of it round-trips byte for byte.
#[test]
fn from_model_reproduces_the_file() -> Result<()> {
    let data = images(80, 7);
    let mut net = graph(EVERY_OP, &data, 6);
    net.fold_batchnorm()?;
    calibrate(&mut net, &data, 40)?;
    for rounding in [Rounding::Single, Rounding::Double] {
        let spec = Rescale::plain(31, rounding);
        let model = net.to_model(spec, "m", Value::Null)?;
        let text = model.to_json();
        let back = Model::from_json_bytes(text.as_bytes())?;
        let mut imported = Net::Graph(GraphNet::from_model(&back)?);
        let again = imported.to_model(spec, "m", Value::Null)?;
        assert_eq!(again.content_hash(), model.content_hash(), "{rounding}");
        // Narrowing the import equals narrowing the file (both from the real factors).
        let k4 = Rescale::plain(4, rounding);
        assert_eq!(
            imported.to_model(k4, "m", Value::Null)?.content_hash(),
            back.rederived(k4).unwrap().content_hash()
        );
        graph_equals_golden(&mut imported, &data, spec)?;
        let ck = Checkpoint {
            net: imported,
            stage: Stage::Qat,
            k: Some(31),
            csd: None,
            rounding,
            lineage: Vec::new(),
        };
        let bytes = ck.to_bytes()?;
        let ck2 = Checkpoint::from_bytes(&bytes)?;
        assert_eq!(ck2.to_bytes()?, bytes);
        assert_eq!(
            ck2.net.to_model(spec, "m", Value::Null)?.content_hash(),
            model.content_hash()
        );
    }
    // A model without weight scales cannot be fine-tuned: one line naming the op.
    let mut bare = net.to_model(Rescale::plain(31, Rounding::Single), "m", Value::Null)?;
    bare.ops[0].weight_scale = None;
    let e = format!("{:#}", GraphNet::from_model(&bare).err().unwrap());
    assert!(e.contains("ops[0] \"conv1\": no weight_scale"), "{e}");
    assert!(!e.contains('\n'));
    Ok(())
}

/// The MLP is one instance of the architecture language: `flatten,dense,relu,...` trains the
/// same integers as the MLP type (float and QAT stages, same seed).
#[test]
fn the_mlp_is_an_architecture() -> Result<()> {
    let data = synthetic(96, 3);
    let mut mlp = crate::train::fresh(16, &[12], 2)?;
    let mut arch = crate::train::fresh_graph(
        &Arch::parse("flatten,dense:12,relu,dense:10").unwrap(),
        &data,
        2,
        "t",
    )?;
    for (stage, h) in [
        (
            Stage::Float,
            Hyper {
                epochs: 2,
                batch: 32,
                ..Recipe::default().float
            },
        ),
        (
            Stage::Qat,
            Hyper {
                epochs: 1,
                batch: 32,
                ..Recipe::default().qat
            },
        ),
    ] {
        for ck in [&mut mlp, &mut arch] {
            let setup = StageSetup {
                stage,
                spec: Rescale::plain(31, Rounding::Single),
                seed: 1,
                threads: 1,
            };
            begin_stage(ck, &setup, &h, &data)?;
            train_stage(
                ck,
                &StageRun {
                    stage,
                    hyper: &h,
                    spec: setup.spec,
                    seed: 1,
                    train: &data,
                    test: &data,
                    checkpoint: None,
                    progress: false,
                    targets: None,
                },
            )?;
        }
    }
    for k in [31, 4] {
        let spec = Rescale::plain(k, Rounding::Single);
        let a = mlp.net.to_model(spec, "a", Value::Null)?;
        let b = arch.net.to_model(spec, "b", Value::Null)?;
        assert_eq!(a.version, 1);
        assert_eq!(b.version, 2);
        let dense = |m: &Model| -> Vec<crate::model::Dense> {
            m.ops
                .iter()
                .filter_map(|o| match &o.kind {
                    OpKind::Dense(d) => Some(d.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(dense(&a), dense(&b), "k = {k}");
        assert_eq!(a.output().q, b.output().q);
    }
    Ok(())
}
