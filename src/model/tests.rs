//! Every validation rule, each with a malformed file, and the error must name the field.

use super::random::{RandomSpec, random_model};
use super::*;
use serde_json::json;

/// A tiny valid model: 3 inputs -> 2 -> 2, k = 8.
fn tiny() -> Model {
    Model::dense_model(
        "tiny",
        Rescale::plain(8, Rounding::Single),
        vec![3],
        QParams {
            scale: 1.0 / 255.0,
            zero_point: -128,
        },
        vec![
            DenseLayer {
                name: "fc1".into(),
                dense: Dense {
                    in_features: 3,
                    out_features: 2,
                    weight: vec![1, -2, 3, 127, -127, 0],
                    bias: vec![10, -10],
                    multiplier: vec![200, 129],
                    shift: vec![12, 9],
                },
                output: QParams {
                    scale: 0.05,
                    zero_point: -128,
                },
                relu: true,
            },
            DenseLayer {
                name: "fc2".into(),
                dense: Dense {
                    in_features: 2,
                    out_features: 2,
                    weight: vec![5, 6, -7, 8],
                    bias: vec![0, 1],
                    multiplier: vec![255, 128],
                    shift: vec![8, 8],
                },
                output: QParams {
                    scale: 0.1,
                    zero_point: 3,
                },
                relu: false,
            },
        ],
        json!({"test": true}),
    )
}

fn value_of(m: &Model) -> Value {
    serde_json::from_str(&m.to_json()).unwrap()
}

/// Applies `edit` to the tiny model's JSON and returns the load error text.
fn error_after(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = value_of(&tiny());
    edit(&mut v);
    let err = Model::from_json_bytes(v.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        crate::error::exit_code(&err),
        2,
        "must be an input error: {err}"
    );
    err.to_string()
}

fn assert_names(edit: impl FnOnce(&mut Value), needles: &[&str]) {
    let e = error_after(edit);
    for n in needles {
        assert!(e.contains(n), "error {e:?} should contain {n:?}");
    }
    assert!(!e.contains('\n'), "one line: {e:?}");
}

#[test]
fn round_trip_is_identity() {
    let m = tiny();
    let text = m.to_json();
    let back = Model::from_json_bytes(text.as_bytes()).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.to_json(), text);
}

#[test]
fn hash_ignores_name_and_provenance() {
    let a = tiny();
    let mut b = tiny();
    b.name = "other".into();
    b.provenance = json!({"x": 1});
    assert_eq!(a.content_hash(), b.content_hash());
    b.dense_mut(0).bias[0] += 1;
    assert_ne!(a.content_hash(), b.content_hash());
}

#[test]
fn rejects_not_json_and_not_utf8() {
    for bytes in [
        &b"{"[..],
        b"",
        b"[]",
        b"null",
        b"{\"format\": 3}",
        &[0xff, 0xfe, 0x00],
    ] {
        let err = Model::from_json_bytes(bytes).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
    }
}

#[test]
fn header_rules() {
    assert_names(|v| v["format"] = json!("onnx"), &["format", "onnx"]);
    assert_names(
        |v| v["version"] = json!(3),
        &["version = 3", "not supported"],
    );
    assert_names(
        |v| {
            v.as_object_mut().unwrap().remove("version");
        },
        &["version: missing"],
    );
    assert_names(|v| v["name"] = json!(5), &["name", "string"]);
    assert_names(
        |v| v["rescale"]["k_bits"] = json!(0),
        &["rescale.k_bits = 0"],
    );
    assert_names(
        |v| v["rescale"]["k_bits"] = json!(32),
        &["rescale.k_bits = 32"],
    );
    assert_names(
        |v| v["rescale"]["rounding"] = json!("stochastic"),
        &["rescale.rounding", "stochastic"],
    );
    assert_names(
        |v| v["rescale"]["csd_digits"] = json!(0),
        &["rescale.csd_digits = 0"],
    );
}

#[test]
fn input_rules() {
    assert_names(|v| v["input"]["shape"] = json!([]), &["input.shape"]);
    assert_names(
        |v| v["input"]["shape"] = json!([0]),
        &["input.shape[0] = 0"],
    );
    assert_names(|v| v["input"]["scale"] = json!(-1.0), &["input.scale"]);
    assert_names(
        |v| v["input"]["zero_point"] = json!(128),
        &["input.zero_point = 128"],
    );
    assert_names(
        |v| v["input"]["shape"] = json!([4]),
        &["layers[0].in_features = 3", "4 values"],
    );
}

#[test]
fn layer_rules() {
    assert_names(|v| v["layers"] = json!([]), &["at least one layer"]);
    assert_names(
        |v| v["layers"][1]["kind"] = json!("conv2d"),
        &["layers[1].kind", "conv2d"],
    );
    assert_names(
        |v| {
            v["layers"][1]["in_features"] = json!(3);
            v["layers"][1]["weight"] = json!([[5, 6, 0], [-7, 8, 0]]);
        },
        &["layers[1].in_features = 3", "2 values"],
    );
    assert_names(
        |v| v["layers"][0]["weight"][1] = json!([1, 2]),
        &["layers[0].weight[1] has 2 entries, expected 3"],
    );
    assert_names(
        |v| v["layers"][0]["weight"][1][2] = json!(200),
        &["layers[0].weight[1][2] = 200"],
    );
    assert_names(
        |v| v["layers"][0]["weight"][0][0] = json!(1.5),
        &["layers[0].weight[0][0] = 1.5", "integer"],
    );
    assert_names(
        |v| v["layers"][0]["bias"] = json!([1]),
        &["layers[0].bias has 1 entries, expected 2"],
    );
    assert_names(
        |v| v["layers"][0]["bias"][0] = json!(3_000_000_000i64),
        &["layers[0].bias[0] = 3000000000"],
    );
    assert_names(
        |v| v["layers"][1]["multiplier"][1] = json!(300),
        &["layers[1].multiplier[1] = 300 does not fit k_bits = 8"],
    );
    assert_names(
        |v| v["layers"][1]["shift"][0] = json!(63),
        &["layers[1].shift[0] = 63"],
    );
    assert_names(
        |v| v["layers"][0]["output"]["scale"] = json!(0),
        &["layers[0].output.scale"],
    );
    assert_names(
        |v| v["layers"][0]["output"]["zero_point"] = json!(-129),
        &["layers[0].output.zero_point = -129"],
    );
    assert_names(|v| v["layers"][0]["relu"] = json!(1), &["layers[0].relu"]);
    assert_names(
        |v| {
            v["layers"][0].as_object_mut().unwrap().remove("shift");
        },
        &["layers[0].shift: missing"],
    );
}

#[test]
fn double_needs_s_at_least_k() {
    assert_names(
        |v| {
            v["rescale"]["rounding"] = json!("double");
            v["layers"][1]["shift"][1] = json!(7);
        },
        &["layers[1].shift[1] = 7", "double"],
    );
    // m = 0 with s = 0 (the underflow encoding) is fine in double mode.
    let mut v = value_of(&tiny());
    v["rescale"]["rounding"] = json!("double");
    v["layers"][1]["multiplier"][1] = json!(0);
    v["layers"][1]["shift"][1] = json!(0);
    Model::from_json_bytes(v.to_string().as_bytes()).unwrap();
}

#[test]
fn csd_constraint_is_checked() {
    // 200 = 0b11001000 -> CSD 256 - 64 + 8: three digits.
    assert_names(
        |v| v["rescale"]["csd_digits"] = json!(2),
        &["layers[0].multiplier[0] = 200", "3 non-zero CSD digits"],
    );
    let mut v = value_of(&tiny());
    v["rescale"]["csd_digits"] = json!(3);
    let m = Model::from_json_bytes(v.to_string().as_bytes()).unwrap();
    assert_eq!(m.rescale.csd_digits, Some(3));
}

#[test]
fn i32_overflowing_weights_are_rejected() {
    // 784 inputs at |w| = 127 is 25 M: far from the limit, so overflow needs a huge bias.
    assert_names(
        |v| v["layers"][0]["bias"][1] = json!(i32::MAX),
        &["layers[0] channel 1", "overflows i32"],
    );
    // A wide layer of saturated weights: 255 * 127 * n > 2^31 - 1 for n >= 66,313.
    let mut m = tiny();
    let n = 66_313;
    m.tensors[0].shape = vec![n];
    m.dense_mut(0).in_features = n;
    m.dense_mut(0).weight = vec![127; 2 * n];
    let err = Model::from_json_bytes(m.to_json().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("overflows i32"), "{err}");
}

#[test]
fn truncated_and_random_bytes_never_panic() {
    let text = random_model(&RandomSpec {
        seed: 3,
        ..Default::default()
    })
    .to_json();
    let bytes = text.as_bytes();
    for cut in (0..bytes.len()).step_by(97) {
        assert!(Model::from_json_bytes(&bytes[..cut]).is_err());
    }
    let mut rng = crate::rng::Rng::new(11);
    for _ in 0..2000 {
        let mut b = tiny().to_json().into_bytes();
        for _ in 0..rng.range(1, 4) {
            let at = rng.range(0, b.len() as i64 - 1) as usize;
            b[at] = rng.next_u64() as u8;
        }
        let _ = Model::from_json_bytes(&b);
    }
}

#[test]
fn acc_range_is_reachable_and_tight() {
    let m = tiny();
    let l = &m.layers()[0];
    // Channel 0: w = [1, -2, 3], b = 10, x - Z in 0..=255.
    assert_eq!(l.acc_range(0, -128), (10 - 510, 10 + 255 * 4));
    assert!(l.acc_range(0, -128).1 <= l.acc_bound(0));
}

#[test]
fn save_is_atomic_and_refuses_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let mut bad = tiny();
    bad.dense_mut(0).multiplier[0] = 1 << 9;
    assert!(bad.save(&path).is_err());
    assert!(!path.exists());
    tiny().save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), tiny());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}
