//! The binary driven as a user would: bad input gives one line naming the problem, exit code 2,
//! and no output file; good input produces files other tools can check.

use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ratflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratflow"))
        .args(args)
        .output()
        .expect("run ratflow")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn small_model() -> Model {
    random_model(&RandomSpec {
        seed: 5,
        layers: Some(vec![16, 10]),
        k_bits: Some(8),
        rounding: Some(ratflow::quant::Rounding::Single),
        ..Default::default()
    })
}

/// Runs `vectors` on a model file and asserts a clean input-error rejection.
fn assert_rejected(dir: &Path, model_text: &str, needle: &str) {
    let model = dir.join("bad.json");
    std::fs::write(&model, model_text).unwrap();
    let out = dir.join("out.jsonl");
    let o = ratflow(&[
        "vectors",
        "--model",
        s(&model),
        "--count",
        "3",
        "--out",
        s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(!out.exists(), "no output file on error");
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        1,
        "no temporary files left behind"
    );
}

fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&small_model().to_json()).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn bad_models_exit_2_without_output() {
    let cases: Vec<(String, &str)> = vec![
        (
            "{\"format\": \"ratflow.int-model\", ".into(),
            "not valid JSON",
        ),
        (edited(|v| v["version"] = json!(7)), "version = 7"),
        (edited(|v| v["rescale"]["k_bits"] = json!(0)), "k_bits = 0"),
        (
            edited(|v| v["rescale"]["k_bits"] = json!(32)),
            "k_bits = 32",
        ),
        (
            edited(|v| v["layers"][0]["multiplier"][3] = json!(256)),
            "layers[0].multiplier[3] = 256 does not fit k_bits = 8",
        ),
        (
            edited(|v| v["layers"][1]["shift"][2] = json!(63)),
            "layers[1].shift[2] = 63",
        ),
        (
            edited(|v| {
                v["rescale"]["rounding"] = json!("double");
                v["layers"][0]["multiplier"][0] = json!(200);
                v["layers"][0]["shift"][0] = json!(7);
            }),
            "layers[0].shift[0] = 7",
        ),
        (
            edited(|v| {
                let n = 70_000;
                v["input"]["shape"] = json!([n]);
                v["layers"][0]["in_features"] = json!(n);
                v["layers"][0]["weight"] = json!(vec![vec![127; n]; 16]);
            }),
            "overflows i32",
        ),
    ];
    for (text, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        assert_rejected(dir.path(), &text, needle);
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], payload: usize) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(std::iter::repeat_n(1u8, payload));
    v
}

/// A data folder with test-split files built from the given bytes.
fn data_dir(images: Vec<u8>, labels: Vec<u8>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("t10k-images-idx3-ubyte.gz"), gz(&images)).unwrap();
    std::fs::write(d.path().join("t10k-labels-idx1-ubyte"), labels).unwrap();
    d
}

fn assert_data_rejected(data: &Path, needle: &str) {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m.json");
    small_model().save(&model).unwrap();
    let out = work.path().join("v.jsonl");
    for args in [
        vec!["eval", "--model", s(&model), "--data", s(data)],
        vec![
            "vectors",
            "--model",
            s(&model),
            "--data",
            s(data),
            "--out",
            s(&out),
        ],
    ] {
        let o = ratflow(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        assert!(!out.exists());
    }
}

#[test]
fn bad_data_exits_2() {
    let good_labels = idx(0x801, &[3], 3);
    let truncated = idx(0x803, &[3, 28, 28], 3 * 784 - 10);
    assert_data_rejected(data_dir(truncated, good_labels.clone()).path(), "truncated");
    let wrong_magic = idx(0x802, &[3, 28, 28], 3 * 784);
    assert_data_rejected(
        data_dir(wrong_magic, good_labels.clone()).path(),
        "wrong IDX magic",
    );
    let images = idx(0x803, &[4, 28, 28], 4 * 784);
    assert_data_rejected(data_dir(images, good_labels).path(), "has 4 images but");
    assert_data_rejected(Path::new("/nonexistent/mnist"), "no such folder");
    let empty = tempfile::tempdir().unwrap();
    assert_data_rejected(empty.path(), "missing t10k-images-idx3-ubyte");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["eval"],
        vec!["eval", "--model", "m.json", "--split", "validation"],
        vec!["random-model", "--k", "0", "--out", "x.json"],
        vec!["random-model", "--k", "32", "--out", "x.json"],
        vec!["random-model", "--layers", "12x3", "--out", "x.json"],
        vec!["frobnicate"],
    ] {
        let o = ratflow(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!Path::new("x.json").exists());
    }
    let o = ratflow(&["eval", "--model", "/nonexistent/m.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/m.json"));
}

fn tmp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn random_model_vectors_eval_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let model = tmp_path(dir.path(), "r.json");
    let vecs = tmp_path(dir.path(), "r.jsonl");
    let o = ratflow(&[
        "random-model",
        "--seed",
        "9",
        "--layers",
        "20,10",
        "--out",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ratflow(&[
        "vectors",
        "--model",
        s(&model),
        "--count",
        "25",
        "--out",
        s(&vecs),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = Model::load(&model).unwrap();
    let vs = ratflow::golden::vectors::read_jsonl(&vecs, &m).unwrap();
    assert_eq!(vs.len(), 25);
    assert!(vs.v1().unwrap().iter().all(|v| v.label.is_some()));
    let o = ratflow(&["eval", "--model", s(&model), "--json"]);
    assert!(o.status.success());
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["total"], 2000);
    let o = ratflow(&["inspect", "--model", s(&model)]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("fc1") && text.contains("k = "), "{text}");
}

/// The golden vectors against an independent implementation of README's integer semantics in
/// Python (exact big integers, written from the text, sharing no code with the Rust model).
#[test]
fn vectors_match_independent_python_reference() {
    if Command::new("python3").arg("--version").output().is_err() {
        panic!("python3 is required for the independent reference check");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference_check.py");
    for seed in 0..12u64 {
        let model = dir.path().join(format!("m{seed}.json"));
        let vecs = dir.path().join(format!("v{seed}.jsonl"));
        let k = ["31", "16", "8", "4", "2", "1"][seed as usize % 6];
        let rounding = if seed % 2 == 0 { "single" } else { "double" };
        let o = ratflow(&[
            "random-model",
            "--seed",
            &seed.to_string(),
            "--k",
            k,
            "--rounding",
            rounding,
            "--out",
            s(&model),
        ]);
        assert!(o.status.success());
        let mut args = vec![
            "vectors",
            "--model",
            s(&model),
            "--count",
            "40",
            "--out",
            s(&vecs),
        ];
        let seed_s = seed.to_string();
        if seed % 3 == 0 {
            args.extend(["--random-inputs", &seed_s]);
        }
        let o = ratflow(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = Command::new("python3")
            .args([s(&script), s(&model), s(&vecs)])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "seed {seed}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Version 2: `ratflow vectors` (with accumulators) on 56 random graphs using every op kind, k in
/// {31, 8, 4, 2} and both rounding modes, equals the independent Python reference of DESIGN
/// section 5 on every element; one corrupted element is caught.
#[test]
fn graph_vectors_match_independent_python_reference() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference_check.py");
    let mut pairs: Vec<String> = Vec::new();
    let mut seed = 100u64;
    for k in ["31", "8", "4", "2"] {
        for rounding in ["single", "double"] {
            for _ in 0..7 {
                seed += 1;
                let model = dir.path().join(format!("g{seed}.json"));
                let vecs = dir.path().join(format!("g{seed}.jsonl"));
                let seed_s = seed.to_string();
                let o = ratflow(&[
                    "random-model",
                    "--graph",
                    "--seed",
                    &seed_s,
                    "--k",
                    k,
                    "--rounding",
                    rounding,
                    "--out",
                    s(&model),
                ]);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                let o = ratflow(&[
                    "vectors",
                    "--model",
                    s(&model),
                    "--random-inputs",
                    &seed_s,
                    "--count",
                    "20",
                    "--acc",
                    "--out",
                    s(&vecs),
                ]);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                pairs.push(s(&model).to_string());
                pairs.push(s(&vecs).to_string());
            }
        }
    }
    let o = Command::new("python3")
        .arg(s(&script))
        .args(&pairs)
        .output()
        .expect("python3 is required for the independent reference check");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // One element of one op output changed: the reference must fail and name it.
    let vecs = Path::new(&pairs[1]);
    let text = std::fs::read_to_string(vecs).unwrap();
    let mut v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let (name, first) = {
        let (n, t) = v["tensors"].as_object().unwrap().iter().next().unwrap();
        (n.clone(), t[0].as_i64().unwrap())
    };
    v["tensors"][&name][0] = json!(if first == 127 { 126 } else { first + 1 });
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{v}\n")).unwrap();
    let o = Command::new("python3")
        .args([s(&script), &pairs[0], s(&bad)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&name));
}

/// `ratflow synth` on a trained-like model in both multiplier forms (needs yosys, which
/// `make test` installs): the JSON object of the README, the forms side by side, the estimate
/// present for the multiplier form only, and exit code 3 without yosys.
#[test]
fn synth_reports_both_multiplier_forms() {
    let dir = tempfile::tempdir().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/rat-a_k4_csd2.json");
    let o = ratflow(&[
        "synth",
        "--model",
        s(&model),
        "--requant-only",
        "--no-fmax",
        "--multiplier",
        "both",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["target"], "ice40");
    let mul = &j["forms"]["mul"];
    let csd = &j["forms"]["csd"];
    assert_eq!(mul["multiplier"], "mul");
    assert_eq!(csd["multiplier"], "csd");
    for (cost, form) in [(mul, "mul-rom"), (csd, "csd-rom")] {
        let mods = cost["modules"].as_array().unwrap();
        assert_eq!(mods.len(), 3, "{cost}");
        for m in mods {
            assert_eq!(m["role"], "requant");
            assert_eq!(m["form"], form);
            assert!(m["luts"].as_u64().unwrap() > 50, "{m}");
            assert!(m.get("dsps").is_none(), "absent figures are omitted: {m}");
            // The analytical model covers the multiplier form, not the digit ROM.
            assert_eq!(m.get("estimate_luts").is_some(), form == "mul-rom", "{m}");
        }
    }
    let rows = j["comparison"]["rows"].as_array().unwrap();
    let total = rows.iter().find(|r| r["name"] == "requantizers").unwrap();
    assert_eq!(total["mul"], mul["requant_total"]["luts"]);
    assert_eq!(total["csd"], csd["requant_total"]["luts"]);
    // A 2-digit model in shift-add form is smaller than through the 4-bit multiplier.
    assert!(total["csd_over_mul"].as_f64().unwrap() < 1.0, "{total}");

    let o = Command::new(env!("CARGO_BIN_EXE_ratflow"))
        .args(["synth", "--model", s(&model), "--requant-only"])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("yosys"));
    let o = ratflow(&["synth", "--model", s(&model), "--multiplier", "wide"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A version 2 graph with every op kind, as JSON.
fn graph_value() -> Value {
    let m = ratflow::model::random::random_graph(&ratflow::model::random::GraphSpec {
        seed: 4,
        k_bits: Some(8),
        rounding: Some(ratflow::quant::Rounding::Single),
    });
    serde_json::from_str(&m.to_json()).unwrap()
}

fn op_index(v: &Value, kind: &str) -> usize {
    v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["kind"] == kind)
        .unwrap()
}

/// DESIGN section 5's bad inputs, through the binary: each exits 2 with one line naming the op
/// and field, and writes no file.
#[test]
fn bad_graphs_exit_2_naming_the_op_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph_value();
    let (pool, add, dense, reshape) = (
        op_index(&g, "avg_pool2d"),
        op_index(&g, "add"),
        op_index(&g, "dense"),
        op_index(&g, "reshape"),
    );
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, String)> = vec![
        (
            Box::new(|v: &mut Value| v["ops"][1]["kind"] = json!("lstm")),
            "ops[1].kind = \"lstm\" is not a supported op kind".into(),
        ),
        (
            Box::new(|v: &mut Value| {
                let out = v["ops"][0]["output"].as_str().unwrap().to_string();
                let h = v["tensors"][&out]["shape"][0].as_u64().unwrap();
                v["tensors"][&out]["shape"][0] = json!(h + 1);
            }),
            "ops[0]".into(),
        ),
        (
            Box::new(|v: &mut Value| v["ops"][2]["inputs"][0] = json!("missing")),
            "ops[2].inputs[0] = \"missing\" is not a tensor declared".into(),
        ),
        (
            Box::new(move |v: &mut Value| {
                let out = v["ops"][dense]["output"].clone();
                v["ops"][reshape]["inputs"][0] = out;
            }),
            "cycle".into(),
        ),
        (
            Box::new(|v: &mut Value| v["ops"][0]["clamp"] = json!([-200, 127])),
            "ops[0].clamp[0] = -200".into(),
        ),
        (
            Box::new(|v: &mut Value| v["ops"][0]["clamp"] = json!([5, 4])),
            "ops[0].clamp = [5, 4] has lo > hi".into(),
        ),
        (
            Box::new(move |v: &mut Value| {
                let out = v["ops"][pool]["output"].as_str().unwrap().to_string();
                v["tensors"][&out]["scale"] = json!(123.0);
            }),
            format!("ops[{pool}]"),
        ),
        (
            Box::new(move |v: &mut Value| {
                let out = v["ops"][add]["output"].as_str().unwrap().to_string();
                v["tensors"][&out]["shape"] = json!([1, 2, 3]);
            }),
            "equal shapes".into(),
        ),
        (
            Box::new(|v: &mut Value| v["ops"][0]["multiplier"][0] = json!(256)),
            "multiplier[0] = 256".into(),
        ),
        (
            Box::new(|v: &mut Value| v["ops"][0]["bias"][0] = json!(2147483647)),
            "overflows i32".into(),
        ),
    ];
    for (edit, needle) in &cases {
        let mut v = g.clone();
        edit(&mut v);
        assert_rejected(dir.path(), &v.to_string(), needle);
    }
    for (case, needle) in [
        ("shape_product_wraps.json", "input.shape"),
        (
            "huge_dimensions.json",
            "layers[0].weight[0] has 0 entries, expected 16777216",
        ),
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/cases")
                .join(case),
        )
        .unwrap();
        assert_rejected(dir.path(), &text, needle);
    }
}

/// Writes a minimal `.npy` (version 1.0 header) of `descr` and `shape` with raw `data`.
fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// `--inputs`/`--labels` .npy files: int8 codes and float32 reals accepted (the reals quantized
/// with the input's (S, Z)); malformed, wrong-dtype, wrong-shape files and out-of-range labels
/// exit 2 naming the file, without writing anything.
#[test]
fn npy_inputs_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let v = graph_value();
    let model = dir.path().join("g.json");
    std::fs::write(&model, v.to_string()).unwrap();
    let m = Model::load(&model).unwrap();
    let n = m.input_len();
    let classes = m.num_classes();
    let codes: Vec<u8> = (0..3 * n).map(|i| (i * 37 % 256) as u8).collect();
    let x = dir.path().join("x.npy");
    write_npy(&x, "|i1", &[3, n], &codes);
    let labels = dir.path().join("y.npy");
    let lab: Vec<u8> = (0..3i64)
        .flat_map(|i| (i % classes as i64).to_le_bytes())
        .collect();
    write_npy(&labels, "<i8", &[3], &lab);
    let out = dir.path().join("v.jsonl");
    let o = ratflow(&[
        "vectors",
        "--model",
        s(&model),
        "--inputs",
        s(&x),
        "--labels",
        s(&labels),
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert_eq!(first["input"][1], json!(37));
    assert_eq!(first["label"], json!(0));
    let o = ratflow(&[
        "eval",
        "--model",
        s(&model),
        "--inputs",
        s(&x),
        "--labels",
        s(&labels),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["total"], 3);
    // float32 real values: r = S * (q - Z) quantizes back to q.
    let t = m.input();
    let reals: Vec<u8> = (0..n)
        .flat_map(|i| {
            let q = (i * 37 % 256) as u8 as i8;
            ((t.q.scale * (q as f64 - t.q.zero_point as f64)) as f32).to_le_bytes()
        })
        .collect();
    let xf = dir.path().join("xf.npy");
    write_npy(&xf, "<f4", &[1, n], &reals);
    let outf = dir.path().join("vf.jsonl");
    let o = ratflow(&[
        "vectors",
        "--model",
        s(&model),
        "--inputs",
        s(&xf),
        "--out",
        s(&outf),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let vf: Value = serde_json::from_str(
        std::fs::read_to_string(&outf)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(vf["input"], first["input"]);
    // Bad files.
    let bad = dir.path().join("bad.npy");
    let rejected = |args: &[&str], needle: &str| {
        let out = dir.path().join("never.jsonl");
        let mut all = vec!["vectors", "--model", s(&model), "--out", s(&out)];
        all.extend_from_slice(args);
        let o = ratflow(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        assert!(!out.exists());
    };
    std::fs::write(&bad, b"\x93NUMPY garbage").unwrap();
    rejected(&["--inputs", s(&bad)], "not a valid .npy file");
    write_npy(&bad, "<i2", &[1, n], &vec![0; 2 * n]);
    rejected(&["--inputs", s(&bad)], "dtype '<i2' is not int8");
    write_npy(&bad, "|i1", &[2, n + 1], &vec![0; 2 * (n + 1)]);
    rejected(&["--inputs", s(&bad)], "shape");
    write_npy(&bad, "|i1", &[4, n], &vec![0; n]);
    rejected(&["--inputs", s(&bad)], "missing");
    let big: Vec<u8> = (0..3i64)
        .flat_map(|_| (classes as i64).to_le_bytes())
        .collect();
    write_npy(&bad, "<i8", &[3], &big);
    rejected(
        &["--inputs", s(&x), "--labels", s(&bad)],
        &format!("label 0 = {classes} is outside 0..{classes}"),
    );
    write_npy(&bad, "<f4", &[3], &[0; 12]);
    rejected(
        &["--inputs", s(&x), "--labels", s(&bad)],
        "not an integer type",
    );
}

/// `ratflow flow` refuses bad input before the run folder exists: one line naming the file,
/// option or field, exit 2.
#[test]
fn flow_refuses_bad_input_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let trunc = dir.path().join("truncated.tflite");
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny/kws_ref_model.tflite");
    std::fs::write(&trunc, &std::fs::read(real).unwrap()[..64]).unwrap();
    let text = dir.path().join("model.json");
    std::fs::write(&text, "{\"version\": 2, \"ops\": [").unwrap();
    let x = dir.path().join("x.npy");
    write_npy(&x, "|i1", &[2, 3], &[0u8; 6]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model", s(&trunc)], "truncated.tflite"),
        (vec!["--model", s(&text)], "model.json"),
        (
            vec!["--model", "/nonexistent/m.tflite"],
            "/nonexistent/m.tflite",
        ),
        (vec!["--arch", "conv2d:8:3x3,frobnicate"], "frobnicate"),
        (vec!["--k", "0"], "--k"),
        (vec!["--k", "32"], "--k"),
        (vec!["--variant", "rat-c"], "--variant"),
        (
            vec![
                "--model",
                "models/tiny/kws_ref_model.tflite",
                "--inputs",
                s(&x),
            ],
            "x.npy",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["flow", "--out", s(&out)];
        all.extend(&args);
        let o = Command::new(env!("CARGO_BIN_EXE_ratflow"))
            .args(&all)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| {
                !l.trim().is_empty()
                    && !l.starts_with("For more information")
                    && !l.starts_with("Usage:")
            })
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} created the run folder");
    }
}
