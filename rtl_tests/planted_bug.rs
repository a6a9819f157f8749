//! A planted bug must fail co-simulation and be named: one baked requantizer constant, and one
//! weight ROM word, corrupted in RTL written by `ratflow rtl` and simulated with `--rtl`.

use crate::common::*;
use ratflow::golden::Engine;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::Rounding;
use std::fs;

fn model() -> ratflow::model::Model {
    random_model(&RandomSpec {
        seed: 77,
        inputs: Some(20),
        layers: Some(vec![6, 4]),
        k_bits: Some(8),
        rounding: Some(Rounding::Single),
    })
}

#[test]
fn corrupted_baked_constant_is_caught_and_named() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let m = model();
    let mpath = save(&m, tmp.path(), "m.json");
    let rtl_dir = tmp.path().join("rtl");
    let o = ratflow(&[
        "rtl",
        "--model",
        p(&mpath),
        "--out",
        p(&rtl_dir),
        "--parallel",
        "full",
        "--top",
        "bug",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The clean RTL passes.
    let clean = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--rtl",
        p(&rtl_dir),
        "--count",
        "40",
    ]);
    assert!(clean.status.success(), "{}", text(&clean));
    assert_eq!(summary(&text(&clean)), (40, 0));

    // Pick a layer-0 channel whose golden outputs vary on these vectors, so that forcing its
    // multiplicand to 0 (output = zero point) must show.
    let vs = ratflow::golden::vectors::generate(
        &m,
        &ratflow::golden::vectors::random_inputs(&m, 1, 40),
        None,
        false,
    )
    .unwrap()
    .into_v1()
    .unwrap();
    let engine = Engine::new(&m);
    let zp = m.layers()[0].output.zero_point;
    let ch = (0..6)
        .find(|&c| {
            m.layers()[0].multiplier[c] != 0
                && vs
                    .iter()
                    .any(|v| engine.run(&v.input, false).tensors[m.ops[0].output][c] != zp)
        })
        .expect("a live channel");
    let mult = m.layers()[0].mult(ch);
    let file = rtl_dir.join("bug_fc1_requant.v");
    let src = fs::read_to_string(&file).unwrap();
    let needle = format!("l{ch}_acc_q * $signed({{1'b0, 8'd{}}})", mult.m);
    assert_eq!(src.matches(&needle).count(), 1, "{needle}");
    fs::write(
        &file,
        src.replace(&needle, &format!("l{ch}_acc_q * $signed({{1'b0, 8'd0}})")),
    )
    .unwrap();

    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--rtl",
        p(&rtl_dir),
        "--count",
        "40",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let (passed, failed) = summary(&out);
    assert!(failed > 0 && passed + failed == 40, "{out}");
    // The first mismatch names the vector, layer 0 (fc1) and the corrupted channel's output
    // (its accumulator is still right).
    let first = out
        .lines()
        .find(|l| l.starts_with("mismatch:"))
        .expect("a mismatch line");
    assert!(
        first.contains(&format!("layer 0 (fc1) channel {ch} output")),
        "{first}"
    );
    assert!(
        !out.contains(&format!("layer 0 (fc1) channel {ch} accumulator")),
        "{out}"
    );
    eprintln!("planted constant: {first}");
}

#[test]
fn corrupted_weight_rom_word_is_caught_and_named() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let m = model();
    let mpath = save(&m, tmp.path(), "m.json");
    let rtl_dir = tmp.path().join("rtl");
    let o = ratflow(&[
        "rtl",
        "--model",
        p(&mpath),
        "--out",
        p(&rtl_dir),
        "--parallel",
        "2",
        "--top",
        "bugrom",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Layer 1 (fc2), P = 2: word g*6 + i holds w[2g + lane][i]. Flip the sign bit of lane 1
    // of word 1*6 + 3: weight w[3][3] of fc2.
    let file = rtl_dir.join("bugrom_fc2_weight.hex");
    let src = fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = src.lines().map(String::from).collect();
    let data_lines: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].starts_with("//"))
        .collect();
    assert_eq!(data_lines.len(), 2 * 6);
    let li = data_lines[6 + 3];
    let word = &lines[li];
    let hi = u8::from_str_radix(&word[0..2], 16).unwrap() ^ 0x80;
    lines[li] = format!("{hi:02x}{}", &word[2..]);
    fs::write(&file, lines.join("\n") + "\n").unwrap();

    let o = ratflow(&[
        "sim",
        "--model",
        p(&mpath),
        "--rtl",
        p(&rtl_dir),
        "--count",
        "40",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let first = out
        .lines()
        .find(|l| l.starts_with("mismatch:"))
        .expect("a mismatch line");
    assert!(
        first.contains("layer 1 (fc2) channel 3 accumulator"),
        "{first}"
    );
    eprintln!("planted ROM word: {first}");
}
