//! int-model version 2: every validation rule with a malformed file whose one-line error names
//! the op and the field; round trips; the graph rules (producers, order, cycles).

use super::random::{GraphSpec, random_graph};
use super::*;
use serde_json::json;

/// A small valid graph: conv2d -> depthwise -> add(residual) -> avg pool -> max pool ->
/// reshape -> dense, with explicit names.
fn graph() -> Model {
    let mut m = random_graph(&GraphSpec {
        seed: 11,
        k_bits: Some(8),
        rounding: Some(Rounding::Single),
    });
    m.provenance = json!({"test": true});
    m
}

fn value_of(m: &Model) -> Value {
    serde_json::from_str(&m.to_json()).unwrap()
}

/// Index of the first op of `kind` in the test graph.
fn op_of(v: &Value, kind: &str) -> usize {
    v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} op"))
}

fn error_after(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = value_of(&graph());
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
fn random_graphs_round_trip_and_use_every_kind() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut dead = std::collections::BTreeSet::new();
    let mut per_tensor = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let m = random_graph(&GraphSpec {
            seed,
            ..Default::default()
        });
        let text = m.to_json();
        let back = Model::from_json_bytes(text.as_bytes()).unwrap();
        assert_eq!(back, m, "seed {seed}");
        assert_eq!(back.to_json(), text);
        for op in &m.ops {
            kinds.insert(op.kind.name());
            let r = m.op_rescale(op);
            for d in op.kind.dyadics() {
                if d.m == 0 {
                    dead.insert(r.rounding.as_str());
                }
            }
            if let Some(ch) = op.kind.channels() {
                per_tensor.insert(ch.per_tensor());
            }
        }
    }
    assert_eq!(kinds.len(), ops::KIND_NAMES.len(), "{kinds:?}");
    assert_eq!(dead.len(), 2, "dead channels in both rounding modes");
    assert_eq!(per_tensor.len(), 2, "per-tensor and per-channel (m, s)");
}

#[test]
fn unknown_kind_names_the_op() {
    assert_names(
        |v| v["ops"][1]["kind"] = json!("conv3d"),
        &["ops[1].kind", "conv3d", "not a supported op kind"],
    );
}

#[test]
fn dangling_tensor_names_the_op_and_field() {
    assert_names(
        |v| v["ops"][2]["inputs"][0] = json!("nowhere"),
        &["ops[2].inputs[0]", "nowhere", "not a tensor declared"],
    );
    assert_names(
        |v| v["ops"][0]["output"] = json!("nowhere"),
        &["ops[0].output", "nowhere"],
    );
    assert_names(
        |v| v["outputs"][0] = json!("nowhere"),
        &["outputs[0]", "nowhere"],
    );
}

#[test]
fn unproduced_tensor_is_refused() {
    assert_names(
        |v| {
            v["tensors"]["orphan"] = json!({"shape": [3], "scale": 1.0, "zero_point": 0});
            v["ops"][1]["inputs"][0] = json!("orphan");
        },
        &[
            "ops[1]",
            "inputs[0] = \"orphan\"",
            "neither a graph input nor produced",
        ],
    );
}

#[test]
fn cycle_and_order_are_refused() {
    // The reshape reads the dense op's output while the dense op reads the reshape's: a cycle.
    // Both read any shape, so the graph rule, not a shape rule, fires.
    let v = value_of(&graph());
    let (r, d) = (op_of(&v, "reshape"), op_of(&v, "dense"));
    let e = error_after(|v| {
        let out = v["ops"][d]["output"].clone();
        v["ops"][r]["inputs"][0] = out;
    });
    assert!(
        e.contains(&format!("ops[{r}]")) && e.contains("cycle") && e.contains(&format!("ops[{d}]")),
        "{e}"
    );
    // Two ops swapped: out of order, no cycle.
    let e = error_after(|v| {
        let ops = v["ops"].as_array_mut().unwrap();
        ops.swap(0, 1);
    });
    assert!(e.contains("topological order"), "{e}");
}

#[test]
fn shape_mismatch_between_ops() {
    assert_names(
        |v| {
            let out = v["ops"][0]["output"].as_str().unwrap().to_string();
            let s = v["tensors"][&out]["shape"][0].as_u64().unwrap();
            v["tensors"][&out]["shape"][0] = json!(s + 1);
        },
        &["ops[0]", "output", "has shape", "the op produces"],
    );
    let i = op_of(&value_of(&graph()), "dense");
    assert_names(
        |v| {
            let out = v["ops"][i]["output"].as_str().unwrap().to_string();
            v["tensors"][&out]["shape"] = json!([100]);
        },
        &[&format!("ops[{i}].weight"), "has", "expected 100"],
    );
}

#[test]
fn clamp_rules() {
    assert_names(
        |v| v["ops"][0]["clamp"] = json!([-129, 127]),
        &["ops[0].clamp[0] = -129", "outside"],
    );
    assert_names(
        |v| v["ops"][0]["clamp"] = json!([10, -10]),
        &["ops[0].clamp", "lo > hi"],
    );
    assert_names(
        |v| {
            v["ops"][0].as_object_mut().unwrap().remove("clamp");
        },
        &["ops[0].clamp: missing"],
    );
    let r = op_of(&value_of(&graph()), "reshape");
    assert_names(
        |v| v["ops"][r]["clamp"] = json!([0, 127]),
        &[&format!("ops[{r}]"), "reshape carries no activation"],
    );
}

#[test]
fn pool_must_not_rescale() {
    for kind in ["avg_pool2d", "max_pool2d"] {
        let i = op_of(&value_of(&graph()), kind);
        assert_names(
            |v| {
                let out = v["ops"][i]["output"].as_str().unwrap().to_string();
                v["tensors"][&out]["zero_point"] = json!(5);
            },
            &[&format!("ops[{i}]"), kind, "does not rescale"],
        );
    }
}

#[test]
fn add_rules() {
    let i = op_of(&value_of(&graph()), "add");
    assert_names(
        |v| {
            let out = v["ops"][i]["output"].as_str().unwrap().to_string();
            v["tensors"][&out]["shape"] = json!([1, 1, 1]);
        },
        &[&format!("ops[{i}]"), "equal shapes"],
    );
    assert_names(
        |v| v["ops"][i]["left_shift"] = json!(24),
        &[&format!("ops[{i}].left_shift = 24"), "outside"],
    );
    assert_names(
        |v| v["ops"][i]["multiplier"] = json!([1, 2]),
        &[&format!("ops[{i}].multiplier has 2 entries, expected 3")],
    );
    // Inputs rescaled by ~2^20 each: their sum no longer fits i32.
    assert_names(
        |v| {
            v["ops"][i]["k_bits"] = json!(31);
            v["ops"][i]["rounding"] = json!("single");
            v["ops"][i]["multiplier"] = json!([1 << 30, 1 << 30, 1]);
            v["ops"][i]["shift"] = json!([20, 20, 1]);
        },
        &[&format!("ops[{i}]"), "overflows i32"],
    );
}

#[test]
fn multiplier_must_fit_k() {
    assert_names(
        |v| {
            v["ops"][0]["k_bits"] = json!(4);
            v["ops"][0]["multiplier"][0] = json!(300);
        },
        &["ops[0]", "multiplier[0] = 300", "does not fit k_bits = 4"],
    );
    assert_names(
        |v| {
            v["ops"][0]["rounding"] = json!("double");
            v["ops"][0]["multiplier"][0] = json!(1);
            v["ops"][0]["shift"][0] = json!(0);
        },
        &["ops[0]", "shift[0] = 0", "double"],
    );
    assert_names(
        |v| v["ops"][0]["k_bits"] = json!(32),
        &["ops[0].k_bits = 32"],
    );
}

#[test]
fn accumulator_bound_names_the_channel() {
    assert_names(
        |v| v["ops"][0]["bias"][1] = json!(i32::MAX),
        &["ops[0]", "output channel 1", "overflows i32"],
    );
}

#[test]
fn window_rules() {
    let c = op_of(&value_of(&graph()), "conv2d");
    assert_names(
        |v| v["ops"][c]["stride"] = json!([0, 1]),
        &[&format!("ops[{c}].stride[0] = 0")],
    );
    assert_names(
        |v| {
            // A consistent 40-row filter that no padded input can hold.
            let o = v["ops"][c]["weight"].as_array().unwrap().len();
            let kw = v["ops"][c]["kernel"][1].as_u64().unwrap() as usize;
            let ch = v["ops"][c]["weight"][0][0][0].as_array().unwrap().len();
            v["ops"][c]["kernel"][0] = json!(40);
            v["ops"][c]["weight"] = json!(vec![vec![vec![vec![0; ch]; kw]; 40]; o]);
        },
        &[&format!("ops[{c}]"), "kernel", "padded input"],
    );
    let p = op_of(&value_of(&graph()), "max_pool2d");
    assert_names(
        |v| v["ops"][p]["dilation"] = json!([2, 2]),
        &[&format!("ops[{p}].dilation[0] = 2")],
    );
    let d = op_of(&value_of(&graph()), "depthwise_conv2d");
    assert_names(
        |v| v["ops"][d]["weight"][0] = json!([]),
        &[&format!("ops[{d}].weight[0] has 0 entries")],
    );
}

#[test]
fn a_pool_window_entirely_in_padding_is_refused() {
    let p = op_of(&value_of(&graph()), "avg_pool2d");
    let e = error_after(|v| {
        let k = v["ops"][p]["kernel"][0].as_u64().unwrap();
        v["ops"][p]["padding"][0] = json!(k);
        // Keep the declared output shape consistent with the larger padding.
        let input = v["ops"][p]["inputs"][0].as_str().unwrap().to_string();
        let out = v["ops"][p]["output"].as_str().unwrap().to_string();
        let h = v["tensors"][&input]["shape"][0].as_u64().unwrap();
        let pb = v["ops"][p]["padding"][1].as_u64().unwrap();
        let s = v["ops"][p]["stride"][0].as_u64().unwrap();
        v["tensors"][&out]["shape"][0] = json!((h + k + pb - k) / s + 1);
    });
    assert!(
        e.contains(&format!("ops[{p}]")) && e.contains("padding"),
        "{e}"
    );
}

#[test]
fn graph_level_rules() {
    assert_names(
        |v| v["inputs"] = json!([]),
        &["inputs lists 0 tensors", "exactly one input"],
    );
    assert_names(|v| v["ops"] = json!([]), &["ops", "at least one op"]);
    assert_names(
        |v| {
            let name = v["ops"][0]["name"].clone();
            v["ops"][1]["name"] = name;
        },
        &["ops[1].name", "unique"],
    );
    assert_names(
        |v| {
            let out = v["ops"][0]["output"].clone();
            v["ops"][1]["output"] = out;
        },
        &["ops[1]", "also the output of ops[0]"],
    );
    assert_names(
        |v| v["tensors"]["input"]["shape"] = json!([2, 2, 2, 2]),
        &["tensors.\"input\".shape", "rank 1 or 3"],
    );
    assert_names(
        |v| v["tensors"]["input"]["shape"] = json!([1 << 26, 1 << 26, 1 << 26]),
        &["tensors.\"input\".shape", "overflows"],
    );
    assert_names(
        |v| v["tensors"]["input"]["shape"] = json!([8192, 8192, 8]),
        &["tensors.\"input\".shape", "more than the limit"],
    );
    assert_names(
        |v| v["rescale"] = json!({"rounding": "single"}),
        &["rescale.k_bits: missing"],
    );
}

#[test]
fn rounding_defaults_to_single_and_ops_override() {
    let mut v = value_of(&graph());
    v["rescale"].as_object_mut().unwrap().remove("rounding");
    v["ops"][0]["rounding"] = json!("double");
    v["ops"][0]["k_bits"] = json!(8);
    let m = Model::from_json_bytes(v.to_string().as_bytes());
    // The test graph's (m, s) were derived for single rounding; either it loads with the
    // override in force, or the one rule `double` adds (s >= k) names op 0.
    match m {
        Ok(m) => {
            assert_eq!(m.rescale.rounding, Rounding::Single);
            assert_eq!(m.op_rescale(&m.ops[0]).rounding, Rounding::Double);
        }
        Err(e) => assert!(e.to_string().contains("ops[0]"), "{e}"),
    }
}

#[test]
fn shared_cases_exit_2_naming_the_field() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cases");
    let e = Model::load(&dir.join("shape_product_wraps.json")).unwrap_err();
    assert_eq!(crate::error::exit_code(&e), 2);
    assert!(
        e.to_string().contains("input.shape") && e.to_string().contains("overflows"),
        "{e}"
    );
    let e = Model::load(&dir.join("huge_dimensions.json")).unwrap_err();
    assert_eq!(crate::error::exit_code(&e), 2);
    assert!(
        e.to_string()
            .contains("layers[0].weight[0] has 0 entries, expected 16777216"),
        "{e}"
    );
}

#[test]
fn v1_models_load_as_dense_chains_and_save_back_unchanged() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for name in [
        "qat_k31.json",
        "rat-a_k4.json",
        "rat-b_k4.json",
        "rat-a_k4_csd2.json",
    ] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let m = Model::load(&path).unwrap();
        assert_eq!(m.version, 1);
        assert_eq!(m.dense_chain().unwrap().len(), 3);
        assert_eq!(m.to_json(), text, "{name} saves back byte for byte");
    }
}

#[test]
fn rederived_reproduces_the_real_factors_at_any_k() {
    for seed in 0..30 {
        let m = random_graph(&GraphSpec {
            seed,
            k_bits: Some(31),
            rounding: Some(Rounding::Single),
        });
        let same = m.rederived(m.rescale).unwrap();
        for (a, b) in m.ops.iter().zip(&same.ops) {
            if a.k_bits.is_none() && a.rounding.is_none() {
                assert_eq!(
                    a.kind.dyadics(),
                    b.kind.dyadics(),
                    "seed {seed} op {}",
                    a.name
                );
            }
            assert_eq!(b.k_bits, None);
        }
        for k in [8, 4, 2] {
            let narrow = m.rederived(Rescale::plain(k, Rounding::Single)).unwrap();
            assert_eq!(narrow.widest_k(), k);
            for op in &narrow.ops {
                for d in op.kind.dyadics() {
                    assert!(d.m >> k == 0, "seed {seed} k {k} op {}", op.name);
                }
            }
            // A fresh derivation at k, not a rounding of the 31-bit constants.
            let add = narrow
                .ops
                .iter()
                .find(|o| matches!(o.kind, OpKind::Add(_)))
                .unwrap();
            let reals = narrow.real_factors(add).unwrap();
            for (d, r) in add.kind.dyadics().iter().zip(reals) {
                assert_eq!(*d, quant::derive_multiplier(r, k).unwrap().mult);
            }
        }
    }
    // Without weight scales the real factors are unknown: the error names the op.
    let mut m = graph();
    m.ops[0].weight_scale = None;
    let e = m
        .rederived(Rescale::plain(4, Rounding::Single))
        .unwrap_err();
    assert!(e.contains("ops[0]") && e.contains("weight_scale"), "{e}");
}

#[test]
fn weight_scale_rules() {
    assert_names(
        |v| v["ops"][0]["weight_scale"] = json!([1.0]),
        &["ops[0]", "weight_scale has 1 entries"],
    );
    assert_names(
        |v| v["ops"][0]["weight_scale"][0] = json!(-1.0),
        &["ops[0].weight_scale[0] = -1", "positive"],
    );
    let r = op_of(&value_of(&graph()), "reshape");
    assert_names(
        |v| v["ops"][r]["weight_scale"] = json!([1.0]),
        &[&format!("ops[{r}]"), "weight_scale", "no weights"],
    );
}
