//! Planted bugs in a generated design must fail co-simulation and be named: a weight ROM word,
//! a requantizer's m constant (one bit flipped), the line buffer's right edge (in the library copy beside the
//! top) and a skip FIFO one beat short of the formula depth (a deadlock, named by the
//! watchdog). Each corrupts one file of a `ratflow rtl` folder and runs `ratflow sim --rtl`.

use crate::common::*;
use std::path::{Path, PathBuf};

struct Planted {
    _tmp: tempfile::TempDir,
    model: PathBuf,
    dir: PathBuf,
}

fn design() -> Planted {
    let tmp = tempfile::tempdir().unwrap();
    let model = save(&resblock(), tmp.path(), "resblock.json");
    let fold = tmp.path().join("fold.json");
    std::fs::write(&fold, RESBLOCK_FOLDING).unwrap();
    let dir = rtl_dir(&model, tmp.path(), &["--folding", p(&fold)]);
    Planted {
        _tmp: tmp,
        model,
        dir,
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

/// `ratflow sim --rtl` on the folder; asserts failure and returns the output.
fn sim_fails(d: &Planted, extra: &[&str]) -> String {
    let mut a = vec![
        "sim",
        "--model",
        p(&d.model),
        "--rtl",
        p(&d.dir),
        "--count",
        "12",
        "--acc-vectors",
        "12",
    ];
    a.extend_from_slice(extra);
    let o = ratflow(&a);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    t
}

#[test]
fn unplanted_design_passes() {
    require_tools();
    let d = design();
    let o = ratflow(&[
        "sim",
        "--model",
        p(&d.model),
        "--rtl",
        p(&d.dir),
        "--count",
        "12",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn corrupted_weight_rom_word_is_caught_at_its_accumulators() {
    require_tools();
    let d = design();
    // Op 1 (c1): word 3 of its weight ROM, lowest byte + 1.
    let rom = d.dir.join("o1_c1_w.hex");
    let text = std::fs::read_to_string(&rom).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let word = lines.iter().position(|l| !l.starts_with("//")).unwrap() + 3;
    let w = &lines[word];
    let low = u8::from_str_radix(&w[w.len() - 2..], 16)
        .unwrap()
        .wrapping_add(1);
    lines[word] = format!("{}{low:02x}", &w[..w.len() - 2]);
    std::fs::write(&rom, lines.join("\n") + "\n").unwrap();
    let t = sim_fails(&d, &[]);
    let first = first_failure(&t);
    assert!(
        first.contains("op 1 \"c1\" (conv2d) accumulators"),
        "{first}\n{t}"
    );
}

#[test]
fn corrupted_m_constant_is_caught_at_its_output() {
    require_tools();
    let d = design();
    // Op 2 (c2) is per-tensor: its m is the constant .M(201) of u_o2_c2_rq in the top; flip
    // its bit 6 (201 -> 137).
    let top = d.dir.join("resblock.v");
    let s = std::fs::read_to_string(&top).unwrap();
    let at = s.find(") u_o2_c2_rq (").unwrap();
    let start = s[..at].rfind("rf_requant #(").unwrap();
    let block = &s[start..at];
    assert!(block.contains(".M(201)"), "{block}");
    let fixed = format!(
        "{}{}{}",
        &s[..start],
        block.replace(".M(201)", ".M(137)"),
        &s[at..]
    );
    std::fs::write(&top, fixed).unwrap();
    let t = sim_fails(&d, &[]);
    let first = first_failure(&t);
    assert!(
        first.contains("op 2 \"c2\" (conv2d) output"),
        "{first}\n{t}"
    );
    assert!(
        !t.contains("\"c2\" (conv2d) accumulators"),
        "the accumulators are right: {t}"
    );
}

#[test]
fn line_buffer_right_edge_is_caught() {
    require_tools();
    let d = design();
    // The library copy beside the top: a tap one column right of the input is no longer padding.
    edit(
        &d.dir.join("rf_window.v"),
        "$signed(ix_q) >= $signed(X_W)",
        "$signed(ix_q) > $signed(X_W)",
    );
    let t = sim_fails(&d, &[]);
    let first = first_failure(&t);
    // The first 3x3 convolution reads the padding: its accumulators at column 7 are wrong.
    assert!(
        first.contains("op 1 \"c1\" (conv2d) accumulators") && first.contains(", 7) channel"),
        "{first}\n{t}"
    );
}

#[test]
fn skip_fifo_one_beat_short_of_the_formula_deadlocks_and_is_named() {
    require_tools();
    let d = design();
    let man = manifest(&d.dir);
    let f = &man["skip_fifos"][0];
    assert_eq!(f["exact"], true);
    let (depth, formula) = (
        f["depth"].as_u64().unwrap(),
        f["formula_depth"].as_u64().unwrap(),
    );
    assert_eq!(formula, 37);
    let top = d.dir.join("resblock.v");
    // At the formula depth it still works (no bubbles: the tightest schedule) ...
    edit(
        &top,
        &format!(".DEPTH({depth})"),
        &format!(".DEPTH({formula})"),
    );
    let o = ratflow(&[
        "sim",
        "--model",
        p(&d.model),
        "--rtl",
        p(&d.dir),
        "--count",
        "6",
        "--bubble",
        "0",
        "--stall",
        "0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // ... one beat less deadlocks, and the watchdog names the skip FIFO.
    edit(
        &top,
        &format!(".DEPTH({formula})"),
        &format!(".DEPTH({})", formula - 1),
    );
    let t = sim_fails(&d, &["--bubble", "0", "--stall", "0"]);
    assert!(t.contains("error: deadlock"), "{t}");
    let blocked: Vec<&str> = t.lines().filter(|l| l.contains("blocked:")).collect();
    assert!(
        blocked.iter().any(|l| l.contains("-> u_skip_o3_add")),
        "{blocked:?}\n{t}"
    );
}
