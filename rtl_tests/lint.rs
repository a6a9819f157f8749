//! Every generated design passes `verilator --lint-only -Wall` with no output, compiles with
//! `iverilog -g2005 -Wall` without warnings, and synthesizes with yosys without latches: random
//! graphs with every op kind at two foldings, version 1 chains with the corner constants in
//! both multiplier forms and both accumulator widths, the bug-report cases, and the imported
//! DS-CNN and ResNet-8. Icarus also simulates a small design bit-exactly.

use crate::common::*;
use ratflow::golden::vectors::{self, Vectors};
use ratflow::model::Model;
use ratflow::model::random::{GraphSpec, random_graph};
use ratflow::quant::Rounding;
use ratflow::rtl::{self, AccWidth, MulForm, Parallel, Spec};
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("tool runs");
    (out.status.success(), text(&out))
}

/// Verilator -Wall and Icarus on the whole design; yosys `synth` (`full`) or, for the CNNs,
/// elaboration and `proc` (where latches are inferred) with the latch check.
fn lint_dir(dir: &Path, top: &str, full_synth: bool) {
    let (ok, log) = run(Command::new("verilator").current_dir(dir).args([
        "--lint-only",
        "-Wall",
        "-I.",
        "-f",
        "files.f",
        "--top-module",
        top,
    ]));
    assert!(
        ok && log.trim().is_empty(),
        "verilator -Wall on {top}:\n{log}"
    );
    let (ok, log) = run(Command::new("iverilog").current_dir(dir).args([
        "-g2005",
        "-Wall",
        "-I.",
        "-c",
        "files.f",
        "-s",
        top,
        "-o",
        "/dev/null",
    ]));
    assert!(
        ok && !log.contains("warning"),
        "iverilog -g2005 on {top}:\n{log}"
    );
    let files: Vec<String> = std::fs::read_to_string(dir.join("files.f"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(".v"))
        .map(String::from)
        .collect();
    let body = if full_synth {
        format!("synth -top {top}; check -assert")
    } else {
        format!("hierarchy -check -top {top}; proc; check -assert")
    };
    let script = format!(
        "read_verilog -defer -I. {}; {body}; select -assert-none t:$*latch* t:$*LATCH*",
        files.join(" ")
    );
    let (ok, log) = run(Command::new("yosys")
        .current_dir(dir)
        .args(["-q", "-p", &script]));
    assert!(ok, "yosys on {top}:\n{log}");
    assert!(
        !log.to_lowercase().contains("warning"),
        "yosys warnings for {top}:\n{log}"
    );
}

fn graph(seed: u64, k: Option<u32>, r: Option<Rounding>) -> Model {
    random_graph(&GraphSpec {
        seed,
        k_bits: k,
        rounding: r,
    })
}

#[test]
fn generated_designs_are_lint_clean_portable_and_latch_free() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let (mul, csd) = (MulForm::Mul, MulForm::Csd);
    let (a32, amin) = (AccWidth::Bits32, AccWidth::Minimal);
    let par = |p: usize| Spec::Parallel(Parallel::Each(p));
    let load = |p: &Path| Model::load(p).unwrap();
    let designs: Vec<(&str, Model, Spec, MulForm, AccWidth)> = vec![
        ("g3_default", graph(3, None, None), Spec::Default, mul, amin),
        ("g3_p1_csd", graph(3, None, None), par(1), csd, amin),
        (
            "g8_k31",
            graph(8, Some(31), Some(Rounding::Double)),
            Spec::Default,
            mul,
            a32,
        ),
        (
            "g9_k4_csd",
            graph(9, Some(4), Some(Rounding::Single)),
            par(2),
            csd,
            a32,
        ),
        (
            "corners_d4",
            corner_model(21, 4, Rounding::Double, &[7, 5], 6),
            par(1),
            mul,
            amin,
        ),
        (
            "corners_s31_csd",
            csd_limited(&corner_model(22, 31, Rounding::Single, &[7, 5], 6), 2),
            par(7),
            csd,
            amin,
        ),
        (
            "k5",
            load(&fixture("cases/saturation_constant_k5.json")),
            Spec::Default,
            mul,
            amin,
        ),
        (
            "long",
            load(&fixture("cases/long_layer_name.json")),
            Spec::Default,
            mul,
            amin,
        ),
    ];
    let mut forms = std::collections::BTreeSet::new();
    for (name, model, folding, multiplier, acc) in designs {
        let d = rtl::generate(
            &model,
            &rtl::Options {
                folding,
                multiplier,
                acc,
                ..Default::default()
            },
        )
        .unwrap();
        for o in &d.plan.ops {
            forms.insert(o.requant_form);
        }
        let dir = tmp.path().join(name);
        rtl::write(&d, &dir).unwrap();
        lint_dir(&dir, &d.plan.top, true);
    }
    for f in [
        "csd-const",
        "csd-rom",
        "mul-const",
        "mul-rom",
        "add-mul",
        "add-csd",
    ] {
        assert!(forms.contains(f), "{f} not covered: {forms:?}");
    }
}

#[test]
fn imported_cnns_are_lint_clean_and_latch_free() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    for name in ["kws_ref_model", "pretrainedResnet_quant"] {
        let model = Model::load(&fixture(&format!("imported/{name}.json"))).unwrap();
        for (tag, folding) in [
            ("default", Spec::Default),
            ("p4", Spec::Parallel(Parallel::Each(4))),
        ] {
            let d = rtl::generate(
                &model,
                &rtl::Options {
                    folding,
                    ..Default::default()
                },
            )
            .unwrap();
            let dir = tmp.path().join(format!("{name}_{tag}"));
            rtl::write(&d, &dir).unwrap();
            lint_dir(&dir, &d.plan.top, false);
        }
    }
}

/// Portability beyond lint: Icarus simulates the residual block (windows, MAC engines,
/// requantizers, fork, skip FIFO, add, argmax; ROM images with comment headers) and prints the
/// golden outputs and classes. The Verilog testbench only drives the stream and prints.
#[test]
fn icarus_simulation_matches_the_golden_model() {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let model = resblock();
    let d = rtl::generate(
        &model,
        &rtl::Options {
            top: Some("ic".into()),
            ..Default::default()
        },
    )
    .unwrap();
    rtl::write(&d, tmp.path()).unwrap();
    let n = 4;
    let vs = match vectors::generate(&model, &vectors::random_inputs(&model, 5, n), None, false)
        .unwrap()
    {
        Vectors::V2(v) => v,
        Vectors::V1(_) => unreachable!("a graph"),
    };
    let inputs: String = vs
        .iter()
        .flat_map(|v| &v.input)
        .map(|x| format!("{:02x}\n", *x as u8))
        .collect();
    std::fs::write(tmp.path().join("in.hex"), inputs).unwrap();
    let len = model.input_len();
    let outs = model.num_classes() / d.plan.out_lanes + 1;
    let tb = format!(
        "`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0, rst_n = 0, v = 0, l = 0;\n  reg [7:0] d = 0;\n  wire rdy, ov, ou, ol;\n  wire [{ow}:0] od;\n  ic dut(.clk_i(clk), .rst_ni(rst_n), .s_axis_tdata(d), .s_axis_tvalid(v), .s_axis_tready(rdy),\n    .s_axis_tlast(l), .m_axis_tdata(od), .m_axis_tuser(ou), .m_axis_tvalid(ov), .m_axis_tready(1'b1),\n    .m_axis_tlast(ol));\n  always #5 clk = ~clk;\n  reg [7:0] mem [0:{last}];\n  integer i, b;\n  initial begin\n    $readmemh(\"in.hex\", mem);\n    #22 rst_n = 1; i = 0; b = 0;\n    while (i < {total}) begin\n      @(negedge clk); v = 1; d = mem[i]; l = (i % {len}) == {len1};\n      @(posedge clk); if (rdy) i = i + 1;\n    end\n    @(negedge clk); v = 0;\n  end\n  always @(posedge clk) if (ov) begin\n    $display(\"%0d %h %0d\", ou, od, ol); b = b + 1;\n    if (b == {beats}) $finish;\n  end\nendmodule\n",
        ow = d.plan.out_lanes * 8 - 1,
        last = n * len - 1,
        total = n * len,
        len1 = len - 1,
        beats = n * outs,
    );
    std::fs::write(tmp.path().join("tb.v"), tb).unwrap();
    let (ok, log) = run(Command::new("iverilog")
        .current_dir(tmp.path())
        .args(["-g2005", "-I.", "-o", "sim.vvp", "-c", "files.f", "tb.v"]));
    assert!(ok, "{log}");
    let (ok, log) = run(Command::new("vvp")
        .current_dir(tmp.path())
        .args(["-n", "sim.vvp"]));
    assert!(ok, "{log}");
    let got: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("$finish") && !l.starts_with("VCD"))
        .collect();
    let mut want = Vec::new();
    for v in &vs {
        for y in &v.output {
            want.push(format!("0 {:02x} 0", *y as u8));
        }
        want.push(format!("1 {:02x} 1", v.class));
    }
    assert_eq!(got, want);
}
