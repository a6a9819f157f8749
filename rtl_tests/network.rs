//! Whole designs through `ratflow sim` (Verilator) against golden vectors: the MNIST MLP of
//! the flow, random graphs with every op kind at two foldings, the imported DS-CNN and
//! ResNet-8, and the public-bug-report cases. Every run uses random input bubbles and output
//! stalls; full-speed runs check that the measured cycles per inference equal the manifest's.

use crate::common::*;
use ratflow::model::Model;
use ratflow::model::random::{GraphSpec, random_graph};

/// `ratflow sim` with `args`; asserts it passed and returns its output.
fn sim_ok(args: &[&str]) -> String {
    let mut a = vec!["sim"];
    a.extend_from_slice(args);
    let o = ratflow(&a);
    let t = text(&o);
    assert!(o.status.success(), "ratflow {}:\n{t}", a.join(" "));
    t
}

/// Full speed: the measured interval equals the manifest's formula.
fn interval_matches(args: &[&str]) {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--bubble", "0", "--stall", "0"]);
    let t = sim_ok(&a);
    let (measured, formula) = intervals(&t);
    assert_eq!(measured, formula as f64, "{t}");
}

#[test]
fn mnist_mlp_500_images_at_p16() {
    require_tools();
    let m = shipped("qat_k31.json");
    let t = sim_ok(&[
        "--model",
        p(&m),
        "--count",
        "500",
        "--parallel",
        "16",
        "--bubble",
        "0.2",
        "--stall",
        "0.3",
    ]);
    assert_eq!(summary(&t), (500, 0), "{t}");
}

#[test]
fn csd_model_through_multiplierless_requantizers() {
    // k = 4 with at most 2 CSD digits: per-channel digit ROMs (csd-rom).
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let m = shipped("rat-a_k4_csd2.json");
    let dir = rtl_dir(&m, tmp.path(), &["--parallel", "16", "--multiplier", "csd"]);
    let man = manifest(&dir);
    let forms: Vec<&str> = man["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["requant_form"].as_str().unwrap())
        .collect();
    assert!(forms.iter().all(|f| f.starts_with("csd")), "{forms:?}");
    let t = sim_ok(&[
        "--model",
        p(&m),
        "--rtl",
        p(&dir),
        "--count",
        "200",
        "--bubble",
        "0.2",
        "--stall",
        "0.3",
    ]);
    assert_eq!(summary(&t), (200, 0), "{t}");
}

#[test]
fn random_graphs_with_every_op_kind_at_two_foldings() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    for seed in [3u64, 6] {
        let m = random_graph(&GraphSpec {
            seed,
            ..Default::default()
        });
        let kinds: Vec<&str> = m.ops.iter().map(|o| o.kind.name()).collect();
        for k in ratflow::model::ops::KIND_NAMES {
            assert!(kinds.contains(k), "seed {seed} lacks {k}: {kinds:?}");
        }
        let path = save(&m, tmp.path(), &format!("g{seed}.json"));
        for fold in [&[][..], &["--parallel", "1"][..]] {
            let mut a = vec!["--model", p(&path), "--count", "10"];
            a.extend_from_slice(fold);
            interval_matches(&a);
            let mut b = vec![
                "--model",
                p(&path),
                "--count",
                "40",
                "--bubble",
                "0.3",
                "--stall",
                "0.4",
                "--seed",
                "9",
            ];
            b.extend_from_slice(fold);
            let t = sim_ok(&b);
            assert_eq!(summary(&t), (40, 0), "{t}");
        }
    }
}

#[test]
fn imported_dscnn_200_vectors() {
    require_tools();
    let m = fixture("imported/kws_ref_model.json");
    let t = sim_ok(&[
        "--model",
        p(&m),
        "--count",
        "200",
        "--acc-vectors",
        "8",
        "--seed",
        "3",
    ]);
    assert_eq!(summary(&t), (200, 0), "{t}");
    interval_matches(&["--model", p(&m), "--count", "8", "--acc-vectors", "0"]);
}

#[test]
fn imported_resnet8_20_vectors() {
    require_tools();
    let m = fixture("imported/pretrainedResnet_quant.json");
    let t = sim_ok(&[
        "--model",
        p(&m),
        "--count",
        "20",
        "--acc-vectors",
        "4",
        "--seed",
        "5",
    ]);
    assert_eq!(summary(&t), (20, 0), "{t}");
    interval_matches(&["--model", p(&m), "--count", "6", "--acc-vectors", "0"]);
}

/// The two public-bug-report kinds (a constant that does not fit its width, names used as
/// identifiers and file names) on the shipped cases and on other inputs of the same kinds.
#[test]
fn bug_report_cases_cosimulate_bit_exactly() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let mut models: Vec<(String, std::path::PathBuf)> = vec![
        ("k5".into(), fixture("cases/saturation_constant_k5.json")),
        ("long".into(), fixture("cases/long_layer_name.json")),
    ];
    // Same kinds: saturation thresholds near the ends of int8 at other zero points and k;
    // a graph whose every op and tensor name is a 230-character TFLite-style name.
    let base = Model::load(&models[0].1).unwrap();
    for (i, (z, k)) in [(127i8, 5u32), (-100, 2), (90, 3)].into_iter().enumerate() {
        let mut m = base.clone();
        m.rescale.k_bits = k;
        let out = m.ops[0].output;
        m.tensors[out].q.zero_point = z;
        for op in &mut m.ops {
            if let ratflow::model::OpKind::Dense(d) = &mut op.kind {
                // M = 1: the output is the accumulator plus Z, saturated.
                d.multiplier.fill(1 << (k - 1));
                d.shift.fill(k - 1);
            }
        }
        m.validate().unwrap();
        models.push((
            format!("k{k}z{z}"),
            save(&m, tmp.path(), &format!("sat{i}.json")),
        ));
    }
    let mut g = random_graph(&GraphSpec {
        seed: 12,
        ..Default::default()
    });
    for (i, op) in g.ops.iter_mut().enumerate() {
        op.name = format!(
            "model_{i}/block;{}/Conv2D;model/batch_normalization_{i}/FusedBatchNormV3/ReadVariableOp",
            "very/long/scope".repeat(10)
        );
    }
    for (i, t) in g.tensors.iter_mut().enumerate() {
        t.name = format!("tensor {i};{}", "x/".repeat(110));
    }
    g.validate().unwrap();
    models.push(("long_graph".into(), save(&g, tmp.path(), "long_graph.json")));
    for (label, m) in &models {
        let t = sim_ok(&["--model", p(m), "--count", "64", "--stall", "0.3"]);
        assert_eq!(summary(&t), (64, 0), "{label}: {t}");
    }
}
