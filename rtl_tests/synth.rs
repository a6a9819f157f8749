//! `ratflow synth` on a whole (small) graph: the top's total and every library module's share,
//! with the requantizers' and the adds' cells apart. Whole CNNs take tens of minutes in yosys;
//! their figures are measured by hand (docs/rtl.md, "Hardware cost").

use crate::common::*;
use serde_json::Value;

#[test]
fn synth_of_a_residual_block_gives_module_shares_with_rescalers_and_adds_apart() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let model = save(&resblock(), tmp.path(), "resblock.json");
    let fold = tmp.path().join("fold.json");
    std::fs::write(&fold, RESBLOCK_FOLDING).unwrap();
    for target in ["ice40", "xilinx"] {
        let o = ratflow(&[
            "synth",
            "--model",
            p(&model),
            "--folding",
            p(&fold),
            "--target",
            target,
            "--no-fmax",
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["target"], target);
        shares_partition_the_design(&j);
    }
}

fn shares_partition_the_design(j: &Value) {
    let total = j["total"]["luts"].as_u64().unwrap();
    assert!(total > 100, "{j}");
    let mods = j["modules"].as_array().unwrap();
    let roles: Vec<&str> = mods.iter().map(|m| m["role"].as_str().unwrap()).collect();
    for r in ["window", "mac", "requant", "add", "fork", "fifo", "argmax"] {
        assert!(roles.contains(&r), "no {r} share: {roles:?}");
    }
    // The shares partition the design's LUTs (the top itself has no logic of its own).
    let luts: u64 = mods.iter().map(|m| m["luts"].as_u64().unwrap()).sum();
    assert_eq!(luts, total, "{j}");
    let share: f64 = mods.iter().map(|m| m["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 0.01, "{share}");
    // Rescalers and adds apart: the totals are those modules' shares.
    for (key, role) in [("requant_total", "requant"), ("add_total", "add")] {
        let want: u64 = mods
            .iter()
            .filter(|m| m["role"] == role)
            .map(|m| m["luts"].as_u64().unwrap())
            .sum();
        assert!(want > 0, "{role}");
        assert_eq!(j[key]["luts"].as_u64().unwrap(), want, "{key}: {j}");
    }
}
