//! Every generated Verilog file passes `verilator --lint-only -Wall` with no warnings (each
//! module linted as its own top), compiles with `iverilog -g2005`, and the designs synthesize
//! with `yosys synth` without errors, failed checks or latches.

use crate::common::*;
use ratflow::model::Model;
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::quant::Rounding;
use ratflow::rtl::{self, AccWidth, MulForm, Parallel};
use std::path::Path;
use std::process::Command;

fn design_variants() -> Vec<(String, Model, Parallel, MulForm, AccWidth)> {
    let rm = |seed, inputs, layers: &[usize], k, r| {
        random_model(&RandomSpec {
            seed,
            inputs: Some(inputs),
            layers: Some(layers.to_vec()),
            k_bits: Some(k),
            rounding: Some(r),
        })
    };
    let (mul, csd) = (MulForm::Mul, MulForm::Csd);
    let (a32, amin) = (AccWidth::Bits32, AccWidth::Minimal);
    // A layer of weights in -1..=1 without bias (an accumulator below 16 bits) and an all-zero
    // one (a 1-bit accumulator).
    let mut narrow = rm(8, 5, &[4, 3, 2], 8, Rounding::Double);
    for w in &mut narrow.dense_mut(1).weight {
        *w = (*w as i32 % 2) as i8;
    }
    narrow.dense_mut(1).bias.fill(0);
    narrow.dense_mut(2).weight.fill(0);
    narrow.dense_mut(2).bias.fill(0);
    vec![
        // Time-shared, parallel and mixed lanes, both rounding modes, k = 31 and small k.
        (
            "s8_p1".into(),
            rm(3, 12, &[7, 5, 3], 8, Rounding::Single),
            Parallel::Each(1),
            mul,
            a32,
        ),
        (
            "s8_full".into(),
            rm(3, 12, &[7, 5, 3], 8, Rounding::Single),
            Parallel::Full,
            mul,
            amin,
        ),
        (
            "d31_mixed".into(),
            rm(4, 9, &[6, 4], 31, Rounding::Double),
            Parallel::PerLayer(vec![4, 3]),
            mul,
            amin,
        ),
        (
            "corners_d4".into(),
            corner_model(21, 4, Rounding::Double, &[7, 5], 6),
            Parallel::PerLayer(vec![1, 5]),
            mul,
            a32,
        ),
        (
            "corners_s31".into(),
            corner_model(22, 31, Rounding::Single, &[7, 5], 6),
            Parallel::PerLayer(vec![7, 2]),
            mul,
            amin,
        ),
        // Degenerate shapes: one input, one class, k = 1.
        (
            "tiny_k1".into(),
            rm(9, 1, &[1, 1], 1, Rounding::Double),
            Parallel::Each(1),
            mul,
            amin,
        ),
        // CSD shift-adds: baked and from digit ROMs (k = 31 limited to 2 digits), and a layer
        // whose digits exceed the ROM break-even (it keeps its multiplier).
        (
            "csd_s8".into(),
            rm(3, 12, &[7, 5, 3], 8, Rounding::Single),
            Parallel::PerLayer(vec![7, 2, 1]),
            csd,
            amin,
        ),
        (
            "csd_corners_d31".into(),
            csd_limited(&corner_model(23, 31, Rounding::Double, &[7, 5], 6), 2),
            Parallel::PerLayer(vec![1, 5]),
            csd,
            a32,
        ),
        // Narrow minimal accumulators (below 16 bits, 1 bit).
        (
            "narrow_csd".into(),
            narrow,
            Parallel::PerLayer(vec![1, 3, 2]),
            csd,
            amin,
        ),
    ]
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("tool runs");
    (out.status.success(), text(&out))
}

fn lint_dir(dir: &Path, top: &str, modules: &[String], files: &[String], yosys: bool) {
    for m in modules {
        let (ok, log) = run(Command::new("verilator")
            .current_dir(dir)
            .args(["--lint-only", "-Wall", "--top-module", m])
            .args(files));
        assert!(
            ok && log.trim().is_empty(),
            "verilator -Wall on {m}:\n{log}"
        );
        let (ok, log) = run(Command::new("iverilog")
            .current_dir(dir)
            .args(["-g2005", "-Wall", "-s", m, "-o", "/dev/null"])
            .args(files));
        assert!(
            ok && !log.contains("warning"),
            "iverilog -g2005 on {m}:\n{log}"
        );
    }
    if yosys {
        let script = format!(
            "read_verilog {}; hierarchy -check -top {top}; synth -top {top}; check -assert; \
             select -assert-none t:$*latch* t:$*LATCH*",
            files.join(" ")
        );
        let (ok, log) = run(Command::new("yosys")
            .current_dir(dir)
            .args(["-q", "-p", &script]));
        assert!(ok, "yosys synth of {top}:\n{log}");
        assert!(
            !log.to_lowercase().contains("warning"),
            "yosys warnings for {top}:\n{log}"
        );
    }
}

#[test]
fn generated_verilog_is_lint_clean_portable_and_synthesizable() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let mut forms = std::collections::BTreeSet::new();
    let mut widths = std::collections::BTreeSet::new();
    for (name, model, parallel, multiplier, acc) in design_variants() {
        let d = rtl::generate(
            &model,
            &rtl::Options {
                top: Some(format!("lint_{name}")),
                parallel,
                multiplier,
                acc,
            },
        )
        .unwrap();
        for l in &d.plan.layers {
            forms.insert(l.requant_form());
            widths.insert(l.acc_bits);
        }
        let dir = tmp.path().join(&name);
        rtl::write(&d, &dir).unwrap();
        let files: Vec<String> = d.verilog.iter().map(|f| f.name.clone()).collect();
        let modules: Vec<String> = files
            .iter()
            .map(|f| f.trim_end_matches(".v").to_string())
            .collect();
        lint_dir(&dir, &d.plan.top, &modules, &files, true);
    }
    assert_eq!(
        forms,
        ["csd-const", "csd-rom", "mul-const", "mul-rom"].into()
    );
    assert!(widths.contains(&1) && widths.contains(&32), "{widths:?}");
    assert!(widths.iter().any(|&b| (2..16).contains(&b)), "{widths:?}");
}

#[test]
fn mnist_sized_design_is_lint_clean() {
    // The 784-128-64-10 network at P = 16 (yosys is left to the smaller designs: its ROMs alone
    // would dominate the run time).
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let model = random_model(&RandomSpec {
        seed: 1,
        layers: Some(vec![128, 64, 10]),
        ..Default::default()
    });
    let d = rtl::generate(
        &model,
        &rtl::Options {
            top: None,
            parallel: Parallel::Each(16),
            ..Default::default()
        },
    )
    .unwrap();
    rtl::write(&d, tmp.path()).unwrap();
    let files: Vec<String> = d.verilog.iter().map(|f| f.name.clone()).collect();
    let modules: Vec<String> = files
        .iter()
        .map(|f| f.trim_end_matches(".v").to_string())
        .collect();
    lint_dir(tmp.path(), &d.plan.top, &modules, &files, false);
}

/// Portability beyond lint: Icarus simulates a small generated design (ROM images with their
/// comment headers, functions, generate-free packed MAC lanes) and prints the same logits and
/// classes as the golden vectors. The Verilog testbench only drives inputs and prints.
#[test]
fn icarus_simulation_matches_the_golden_model() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let model = random_model(&RandomSpec {
        seed: 11,
        inputs: Some(12),
        layers: Some(vec![9, 4]),
        k_bits: None,
        rounding: Some(Rounding::Double),
    });
    let d = rtl::generate(
        &model,
        &rtl::Options {
            top: Some("ic".into()),
            parallel: Parallel::Each(2),
            ..Default::default()
        },
    )
    .unwrap();
    rtl::write(&d, tmp.path()).unwrap();
    let vs = ratflow::golden::vectors::generate(
        &model,
        &ratflow::golden::vectors::random_inputs(&model, 5, 40),
        None,
        false,
    )
    .unwrap()
    .into_v1()
    .unwrap();
    let distinct: std::collections::BTreeSet<_> = vs.iter().map(|v| v.layers[1].clone()).collect();
    assert!(distinct.len() > 10, "the outputs vary");
    let c = model.num_classes();
    let mut tb = format!(
        "`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0, rst_n = 0, v = 0;\n  reg [7:0] d = 0;\n  wire rdy, ov;\n  wire [{}:0] lg;\n  wire [{}:0] cl;\n  ic dut(.clk_i(clk), .rst_ni(rst_n), .in_valid_i(v), .in_ready_o(rdy), .in_data_i(d),\n         .out_valid_o(ov), .out_ready_i(1'b1), .out_logits_o(lg), .out_class_o(cl));\n  always #5 clk = ~clk;\n  reg [7:0] mem [0:{}];\n  integer i, n;\n  initial begin\n",
        8 * c - 1,
        d.plan.class_bits() - 1,
        vs.len() * 12 - 1
    );
    for (k, x) in vs.iter().flat_map(|v| &v.input).enumerate() {
        tb.push_str(&format!("    mem[{k}] = 8'h{:02x};\n", *x as u8));
    }
    tb.push_str(&format!(
        "    #22 rst_n = 1; i = 0; n = 0;\n    while (i < {}) begin\n      @(negedge clk); v = 1; d = mem[i];\n      @(posedge clk); if (rdy) i = i + 1;\n    end\n    @(negedge clk); v = 0;\n  end\n  always @(posedge clk) if (ov) begin\n    $display(\"%h %0d\", lg, cl); n = n + 1;\n    if (n == {}) $finish;\n  end\nendmodule\n",
        vs.len() * 12,
        vs.len()
    ));
    std::fs::write(tmp.path().join("tb.v"), tb).unwrap();
    let (ok, log) = run(Command::new("iverilog")
        .current_dir(tmp.path())
        .args(["-g2005", "-o", "sim.vvp", "-c", "files.f", "tb.v"]));
    assert!(ok, "{log}");
    let (ok, log) = run(Command::new("vvp")
        .current_dir(tmp.path())
        .args(["-n", "sim.vvp"]));
    assert!(ok, "{log}");
    let got: Vec<&str> = log.lines().filter(|l| !l.contains("$finish")).collect();
    let want: Vec<String> = vs
        .iter()
        .map(|v| {
            let hex: String = v.layers[1]
                .iter()
                .rev()
                .map(|&y| format!("{:02x}", y as u8))
                .collect();
            format!("{hex} {}", v.class)
        })
        .collect();
    assert_eq!(got, want);
}
