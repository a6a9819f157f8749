//! `ratflow rtl` and `ratflow sim` as a user runs them: outputs, independent vector files,
//! waveforms, and the errors for bad input and a missing simulator.

use crate::common::*;
use ratflow::golden::Engine;
use ratflow::model::random::{RandomSpec, random_model};
use serde_json::{Value, json};
use std::fs;

fn small() -> ratflow::model::Model {
    random_model(&RandomSpec {
        seed: 12,
        inputs: Some(24),
        layers: Some(vec![5, 3]),
        k_bits: Some(6),
        rounding: Some(ratflow::quant::Rounding::Double),
    })
}

#[test]
fn rtl_writes_top_library_copies_filelist_manifest_and_roms() {
    let tmp = tempfile::tempdir().unwrap();
    let m = small();
    let mpath = save(&m, tmp.path(), "m.json");
    let out = tmp.path().join("rtl");
    let o = ratflow(&[
        "rtl",
        "--model",
        p(&mpath),
        "--out",
        p(&out),
        "--parallel",
        "5,3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let list = fs::read_to_string(out.join("files.f")).unwrap();
    let files: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with('+'))
        .collect();
    assert_eq!(
        files,
        [
            "rf_rescale.v",
            "rf_saturate.v",
            "rf_dwc.v",
            "rf_mac.v",
            "rf_requant.v",
            "rf_argmax.v",
            "random_12.v"
        ]
    );
    let man: Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(man["model"]["hash"], json!(m.content_hash()));
    assert_eq!(
        man["ops"][0]["fold"],
        json!({ "simd": 1, "pe": 5, "rq": 1 })
    );
    // 24 inputs, 5 outputs at PE 5: 24 cycles; the second layer 5 inputs x 3 outputs at PE 3.
    assert_eq!(man["ops"][0]["cycles"], json!(24));
    assert_eq!(man["cycles"]["interval"], json!(24));
    assert_eq!(man["ops"][0]["name"], json!("fc1"));
    assert!(man["ops"][0]["rom_bits"].as_u64().unwrap() >= 24 * 5 * 8);
    for f in &files {
        let v = fs::read_to_string(out.join(f)).unwrap();
        assert!(
            v.contains(&m.content_hash()) && v.contains(ratflow::VERSION),
            "{f}"
        );
    }
    // The library copies are the library's modules, unchanged after their header line.
    let copy = fs::read_to_string(out.join("rf_mac.v")).unwrap();
    let orig = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rtl/lib/rf_mac.v"),
    )
    .unwrap();
    assert_eq!(copy.split_once('\n').unwrap().1, orig);
    assert!(out.join("o0_fc1_w.hex").is_file() && out.join("folding.json").is_file());
    // Bad folding or top names are input errors.
    for bad in [
        &["--parallel", "6,3"][..],
        &["--top", "module"][..],
        &["--top", "rf_mac"][..],
        &["--target-cycles", "0"][..],
        &["--parallel", "2", "--target-cycles", "9"][..],
    ] {
        let mut args = vec!["rtl", "--model", p(&mpath), "--out", p(&out)];
        args.extend_from_slice(bad);
        let o = ratflow(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
    }
    let fold = tmp.path().join("bad_fold.json");
    fs::write(
        &fold,
        r#"{"format":"ratflow.folding","version":1,"ops":{"fc9":{"pe":1}}}"#,
    )
    .unwrap();
    let o = ratflow(&[
        "rtl",
        "--model",
        p(&mpath),
        "--out",
        p(&out),
        "--folding",
        p(&fold),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("fc9"), "{}", text(&o));
}

/// Vectors written independently of ratflow's JSONL writer (hand-built JSON objects, inputs at
/// -128 and 127): accepted, checked, and a wrong expected value in them is reported.
#[test]
fn sim_checks_independent_jsonl_vectors() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let m = small();
    let mpath = save(&m, tmp.path(), "m.json");
    let engine = Engine::new(&m);
    let n = m.input_len();
    let inputs: Vec<Vec<i8>> = vec![
        vec![-128; n],
        vec![127; n],
        (0..n)
            .map(|i| if i % 3 == 0 { 127 } else { -128 })
            .collect(),
        (0..n).map(|i| (i as i32 * 37 % 256 - 128) as i8).collect(),
    ];
    let lines: Vec<String> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let t = engine.run(x, true);
            let acc: Vec<Vec<i32>> = t.acc.iter().map(|a| a.clone().unwrap()).collect();
            let layers: Vec<&Vec<i8>> = m.ops.iter().map(|op| &t.tensors[op.output]).collect();
            json!({ "index": 1000 + i, "input": x, "acc": acc, "layers": layers, "class": t.class })
                .to_string()
        })
        .collect();
    let good = tmp.path().join("good.jsonl");
    fs::write(&good, lines.join("\n") + "\n").unwrap();
    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--vectors",
        p(&good),
        "--parallel",
        "full",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(summary(&text(&o)), (4, 0));
    assert!(text(&o).contains("random_12"), "{}", text(&o));

    // The reference says fc2's output 1 of vector 1002 is one higher than it is.
    let mut v: Value = serde_json::from_str(&lines[2]).unwrap();
    let y = v["layers"][1][1].as_i64().unwrap();
    v["layers"][1][1] = json!(if y == 127 { 126 } else { y + 1 });
    let mut bad_lines = lines.clone();
    bad_lines[2] = v.to_string();
    let bad = tmp.path().join("bad.jsonl");
    fs::write(&bad, bad_lines.join("\n") + "\n").unwrap();
    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--vectors",
        p(&bad),
        "--parallel",
        "full",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(summary(&out), (3, 1), "{out}");
    assert!(
        out.contains("mismatch: vector 1002: op 1 \"fc2\" (dense) output of tensor")
            && out.contains("element 1 (pixel (0, 0) channel 1)"),
        "{out}"
    );

    // Vectors of another model's shape are bad input.
    let wrong = tmp.path().join("wrong.jsonl");
    fs::write(
        &wrong,
        "{\"index\":0,\"input\":[1,2],\"acc\":[[1]],\"layers\":[[1]],\"class\":0}\n",
    )
    .unwrap();
    let o = ratflow(&["sim", "--model", p(&mpath), "--vectors", p(&wrong)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn sim_writes_a_waveform_on_request() {
    // A CNN-shaped graph (windows, MAC engines, fork, skip FIFO, add, pools, argmax).
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let g = ratflow::model::random::random_graph(&ratflow::model::random::GraphSpec {
        seed: 3,
        ..Default::default()
    });
    let mpath = save(&g, tmp.path(), "g.json");
    let fst = tmp.path().join("wave.fst");
    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--count",
        "3",
        "--trace",
        p(&fst),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(fs::metadata(&fst).unwrap().len() > 1000);
}

#[test]
fn sim_without_verilator_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mpath = save(&small(), tmp.path(), "m.json");
    let o = std::process::Command::new(bin())
        .args(["sim", "--model", p(&mpath)])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("verilator") && out.contains("apt-get install verilator"),
        "{out}"
    );
}

/// `--multiplier` and `--acc` reach the RTL and the manifest, and `sim --rtl` takes them back
/// from the manifest (a harness built for other accumulator widths would not match the RTL).
#[test]
fn rtl_and_sim_take_the_multiplier_and_accumulator_options() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let m = small();
    let mpath = save(&m, tmp.path(), "m.json");
    let out = tmp.path().join("rtl");
    let o = ratflow(&[
        "rtl",
        "--model",
        p(&mpath),
        "--out",
        p(&out),
        "--parallel",
        "full",
        "--multiplier",
        "csd",
        "--acc",
        "32",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let man: Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(man["multiplier"], json!("csd"));
    assert_eq!(man["acc"], json!("32"));
    for l in man["ops"].as_array().unwrap() {
        assert_eq!(l["acc_bits"], json!(32));
        // Per-channel lanes past the CSD break-even (2 + k/4 digits) keep the multiplier.
        let f = l["requant_form"].as_str().unwrap();
        assert!(["csd-const", "csd-rom", "mul-rom"].contains(&f), "{l}");
    }
    assert!(
        man["ops"][0]["requant_form"]
            .as_str()
            .unwrap()
            .starts_with("csd")
    );
    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--rtl",
        p(&out),
        "--random-inputs",
        "4",
        "--count",
        "30",
    ]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("multiplier csd, accumulators 32"), "{log}");
    assert_eq!(summary(&log), (30, 0));

    // The defaults: the `*` form and minimal accumulators, recorded per layer.
    let def = tmp.path().join("def");
    let o = ratflow(&["rtl", "--model", p(&mpath), "--out", p(&def)]);
    assert!(o.status.success(), "{}", text(&o));
    let man: Value =
        serde_json::from_str(&fs::read_to_string(def.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        (&man["multiplier"], &man["acc"]),
        (&json!("mul"), &json!("minimal"))
    );
    for (i, l) in man["ops"].as_array().unwrap().iter().enumerate() {
        let zx = m.layer_input(i).zero_point;
        let (lo, hi) = (0..m.layers()[i].out_features)
            .map(|c| m.layers()[i].acc_range(c, zx))
            .fold((0, 0), |(a, b), (lo, hi)| (lo.min(a), hi.max(b)));
        assert_eq!(l["acc_range"], json!([lo, hi]));
        assert_eq!(
            l["acc_bits"],
            json!(ratflow::rtl::verilog::sbits(lo, hi).max(2)),
            "layer {i}"
        );
    }

    // Bad values are input errors; `--rtl` takes them from its manifest only.
    for bad in [&["--multiplier", "shift"][..], &["--acc", "16"][..]] {
        let mut args = vec!["rtl", "--model", p(&mpath), "--out", p(&def)];
        args.extend_from_slice(bad);
        let o = ratflow(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    }
    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--rtl",
        p(&out),
        "--multiplier",
        "mul",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
