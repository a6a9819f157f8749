//! The generated RTL in the tools hardware engineers use (docs/ecosystem.md): the FuseSoC core
//! that `ratflow rtl` writes, run with the real `fusesoc` (lint, cocotb simulation, synthesis
//! setup), and the cocotb testbench `cocotb/test_axis_top.py` checking a small CNN against
//! golden vectors, with planted bugs it must catch.
//!
//! The Python packages (cocotb/requirements.txt, every version pinned) go into a virtual
//! environment under `build/venv-eco`, created on first use and reused while the requirements
//! file is unchanged. These tests need `python3` (with venv), `iverilog` and `verilator`
//! (`make tools`); they skip, saying so, only when the package index cannot be reached to
//! create the environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_ratflow");
/// A random graph with every op kind (conv2d, depthwise conv2d, add, average and max pool,
/// reshape, dense; 10x4x3 input, 4 classes) whose outputs differ from vector to vector, so a
/// corrupted weight shows at the output. Checked below, not assumed.
const SEED: &str = "28";
const VECTORS: usize = 24;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
}

fn ratflow(args: &[&str]) {
    let o = run(Command::new(BIN).args(args));
    assert!(o.status.success(), "ratflow {args:?}:\n{}", text(&o));
}

/// The virtual environment with fusesoc and cocotb, or `None` when the package index is
/// unreachable (the only reason to skip).
fn venv() -> Option<&'static Path> {
    static VENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = root().join("build/venv-eco");
        let req = root().join("cocotb/requirements.txt");
        let want = std::fs::read_to_string(&req).expect("cocotb/requirements.txt");
        let stamp = dir.join("ratflow-requirements.txt");
        if dir.join("bin/python").is_file()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str())
        {
            return Some(dir);
        }
        let t = Instant::now();
        let _ = std::fs::remove_dir_all(&dir);
        let o = run(Command::new("python3").arg("-m").arg("venv").arg(&dir));
        assert!(
            o.status.success(),
            "python3 -m venv {} failed (on Debian: apt-get install python3-venv):\n{}",
            dir.display(),
            text(&o)
        );
        let o = run(Command::new(dir.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "-q", "-r"])
            .arg(&req));
        if !o.status.success() {
            let out = text(&o);
            let offline = [
                "NewConnectionError",
                "Failed to establish a new connection",
                "Temporary failure in name resolution",
                "Network is unreachable",
                "ConnectTimeoutError",
                "Max retries exceeded",
            ];
            if offline.iter().any(|p| out.contains(p)) {
                let _ = std::fs::remove_dir_all(&dir);
                eprintln!(
                    "SKIPPED: the package index is unreachable, so fusesoc and cocotb cannot be \
                     installed into {} (pip: {})",
                    dir.display(),
                    out.lines().last().unwrap_or("")
                );
                return None;
            }
            panic!("pip install -r {} failed:\n{out}", req.display());
        }
        std::fs::write(&stamp, &want).unwrap();
        eprintln!(
            "created {} in {:.1} s",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
        Some(dir)
    })
    .as_deref()
}

/// A command from the virtual environment, with its `bin` first on PATH (fusesoc's sim flow
/// calls `cocotb-config`).
fn tool(venv: &Path, exe: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![venv.join("bin")];
    dirs.extend(std::env::split_paths(&path));
    let mut c = Command::new(venv.join("bin").join(exe));
    c.env("PATH", std::env::join_paths(dirs).unwrap())
        .env("VIRTUAL_ENV", venv);
    c
}

struct Design {
    dir: tempfile::TempDir,
    top: String,
}

impl Design {
    fn rtl(&self) -> PathBuf {
        self.dir.path().join("rtl")
    }
    fn vectors(&self) -> PathBuf {
        self.dir.path().join("v.jsonl")
    }
}

/// The small CNN's RTL and golden vectors, after checking that the vectors tell outputs apart.
fn small_cnn() -> Design {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    ratflow(&[
        "random-model",
        "--graph",
        "--seed",
        SEED,
        "--out",
        &p("m.json"),
    ]);
    ratflow(&["rtl", "--model", &p("m.json"), "--out", &p("rtl")]);
    ratflow(&[
        "vectors",
        "--model",
        &p("m.json"),
        "--count",
        &VECTORS.to_string(),
        "--random-inputs",
        "1",
        "--out",
        &p("v.jsonl"),
    ]);
    let rows = read_jsonl(&dir.path().join("v.jsonl"));
    let mut outputs: Vec<String> = rows.iter().map(|r| r["output"].to_string()).collect();
    outputs.sort();
    outputs.dedup();
    let mut classes: Vec<u64> = rows.iter().map(|r| r["class"].as_u64().unwrap()).collect();
    classes.sort();
    classes.dedup();
    assert!(
        outputs.len() >= VECTORS / 2 && classes.len() >= 2,
        "random graph {SEED} no longer tells its inputs apart ({} distinct outputs, classes \
         {classes:?}): pick another seed, or these tests would not see a corrupted weight",
        outputs.len()
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("rtl/manifest.json")).unwrap(),
    )
    .unwrap();
    let top = manifest["top"].as_str().unwrap().to_string();
    Design { dir, top }
}

fn read_jsonl(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn fusesoc(venv: &Path, cores: &Path, build: &Path, args: &[&str]) -> Output {
    let t = Instant::now();
    let o = run(tool(venv, "fusesoc")
        .arg("--cores-root")
        .arg(cores)
        .arg("run")
        .arg("--build-root")
        .arg(build)
        .args(args)
        .current_dir(build.parent().unwrap()));
    eprintln!(
        "fusesoc run {args:?}: {:.1} s, {}",
        t.elapsed().as_secs_f64(),
        o.status
    );
    o
}

#[test]
fn fusesoc_core_lints_simulates_and_sets_up_synthesis() {
    let Some(venv) = venv() else { return };
    let d = small_cnn();
    let vlnv = format!("ratflow:generated:{}:{}", d.top, env!("CARGO_PKG_VERSION"));
    let core = std::fs::read_to_string(d.rtl().join(format!("{}.core", d.top))).unwrap();
    assert!(core.starts_with("CAPI=2:"));
    let work = d.dir.path();

    // lint: Verilator with -Wall over the whole design, clean.
    let o = fusesoc(
        venv,
        &d.rtl(),
        &work.join("fs-lint"),
        &["--target", "lint", &vlnv],
    );
    assert!(o.status.success(), "fusesoc lint:\n{}", text(&o));
    let vc = std::fs::read_to_string(
        work.join("fs-lint")
            .join(vlnv.replace(':', "_"))
            .join("lint")
            .join(format!("{}.vc", vlnv.replace(':', "_"))),
    )
    .unwrap();
    assert!(vc.contains("--lint-only") && vc.contains("-Wall"), "{vc}");
    assert!(vc.contains(&format!("--top-module {}", d.top)), "{vc}");

    // The same target fails on a design with one -Wall warning (a driven, unread signal).
    let bad = work.join("rtl-bad");
    copy_dir(&d.rtl(), &bad);
    let top_v = bad.join(format!("{}.v", d.top));
    let src = std::fs::read_to_string(&top_v).unwrap();
    let at = src.rfind("endmodule").unwrap();
    let planted = format!(
        "{}  wire [3:0] planted_signal = 4'd3;\n{}",
        &src[..at],
        &src[at..]
    );
    std::fs::write(&top_v, planted).unwrap();
    let o = fusesoc(
        venv,
        &bad,
        &work.join("fs-bad"),
        &["--target", "lint", &vlnv],
    );
    let out = text(&o);
    assert!(!o.status.success(), "lint passed a planted warning:\n{out}");
    assert!(
        out.contains("UNUSEDSIGNAL") && out.contains("planted_signal"),
        "{out}"
    );

    // sim: the cocotb testbench on Icarus against golden vectors, through FuseSoC.
    let sim = |vectors: &Path, build: &str| {
        fusesoc(
            venv,
            &d.rtl(),
            &work.join(build),
            &[
                "--target",
                "sim",
                &vlnv,
                &format!("--vectors={}", vectors.display()),
                "--count=8",
            ],
        )
    };
    let o = sim(&d.vectors(), "fs-sim");
    let out = text(&o);
    assert!(o.status.success(), "fusesoc sim:\n{out}");
    assert!(out.contains("8 passed, 0 failed"), "{out}");
    assert!(!out.contains("warning:"), "iverilog -Wall warned:\n{out}");
    // A wrong expectation makes the FuseSoC run fail (vvp exits 1 after a failed test).
    let mut rows = read_jsonl(&d.vectors());
    let want = rows[2]["output"][1].as_i64().unwrap();
    let planted = if want == 127 { 126 } else { want + 1 };
    rows[2]["output"][1] = planted.into();
    let wrong = work.join("wrong.jsonl");
    let lines: Vec<String> = rows.iter().map(|r| r.to_string() + "\n").collect();
    std::fs::write(&wrong, lines.concat()).unwrap();
    let o = sim(&wrong, "fs-sim-wrong");
    let out = text(&o);
    assert!(
        !o.status.success(),
        "fusesoc sim passed a wrong vector:\n{out}"
    );
    assert!(
        out.contains(&format!(
            "vector 2: output element 1: expected {planted}, got {want}"
        )),
        "{out}"
    );

    // synth: set up only (yosys synth_ice40 of this design takes minutes): the script reads
    // every Verilog file and synthesizes for iCE40; the ROM images are in its working folder.
    let o = fusesoc(
        venv,
        &d.rtl(),
        &work.join("fs-synth"),
        &["--setup", "--target", "synth", &vlnv],
    );
    assert!(o.status.success(), "fusesoc synth --setup:\n{}", text(&o));
    let wr = work
        .join("fs-synth")
        .join(vlnv.replace(':', "_"))
        .join("synth");
    let procs = std::fs::read_to_string(wr.join("edalize_yosys_procs.tcl")).unwrap();
    assert!(procs.contains("synth_ice40"), "{procs}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.rtl().join("manifest.json")).unwrap())
            .unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        assert!(procs.contains(&format!("/{f}}}")), "{f} not read:\n{procs}");
    }
    for r in manifest["roms"].as_array().unwrap() {
        assert!(wr.join(r.as_str().unwrap()).is_file(), "{r} not copied");
    }
}

/// `cocotb/run.py` on an RTL folder; returns whether it passed and its output.
fn cocotb(venv: &Path, rtl: &Path, vectors: Option<&Path>, build: &Path) -> (bool, String) {
    let t = Instant::now();
    let mut c = tool(venv, "python");
    c.arg(root().join("cocotb/run.py"))
        .arg("--rtl")
        .arg(rtl)
        .arg("--build")
        .arg(build)
        .args(["--seed", "7", "--gap", "0.3", "--stall", "0.4"]);
    if let Some(v) = vectors {
        c.arg("--vectors").arg(v);
    }
    let o = run(&mut c);
    eprintln!(
        "cocotb/run.py {}: {:.1} s, {}",
        rtl.display(),
        t.elapsed().as_secs_f64(),
        o.status
    );
    let out = text(&o);
    match o.status.code() {
        Some(0) => (true, out),
        Some(1) => (false, out),
        _ => panic!("cocotb/run.py did not run the test:\n{out}"),
    }
}

/// The first mismatch line the testbench logged.
fn first_error(out: &str) -> &str {
    out.lines()
        .find(|l| l.contains(" ERROR ") && l.contains("vector "))
        .unwrap_or_else(|| panic!("no mismatch line in:\n{out}"))
}

#[test]
fn cocotb_testbench_checks_every_output_and_catches_planted_bugs() {
    let Some(venv) = venv() else { return };
    let d = small_cnn();
    let work = d.dir.path();

    // Every output element and class of every vector, with 30% input gaps and 40% stalls.
    let (ok, out) = cocotb(venv, &d.rtl(), Some(&d.vectors()), &work.join("cb"));
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{VECTORS} passed, 0 failed")),
        "{out}"
    );
    assert!(!out.contains("warning:"), "iverilog -Wall warned:\n{out}");

    // Without vectors: the smoke test (framing, handshakes, class = argmax of the tensor).
    let (ok, out) = cocotb(venv, &d.rtl(), None, &work.join("cb-smoke"));
    assert!(
        ok && out.contains("smoke test") && out.contains("4 passed, 0 failed"),
        "{out}"
    );

    // Planted bug 1: one expected output element of vector 5 off by one.
    let mut rows = read_jsonl(&d.vectors());
    let got = rows[5]["output"][2].as_i64().unwrap();
    let want = if got == 127 { 126 } else { got + 1 };
    rows[5]["output"][2] = want.into();
    let wrong = work.join("wrong.jsonl");
    let lines: Vec<String> = rows.iter().map(|r| r.to_string() + "\n").collect();
    std::fs::write(&wrong, lines.concat()).unwrap();
    let (ok, out) = cocotb(venv, &d.rtl(), Some(&wrong), &work.join("cb-wrong"));
    assert!(!ok, "a wrong expectation passed:\n{out}");
    assert!(
        first_error(&out).ends_with(&format!(
            "vector 5: output element 2: expected {want}, got {got}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} passed, 1 failed", VECTORS - 1)),
        "{out}"
    );

    // Planted bug 2: the first word of the dense layer's weight ROM with every nibble's top
    // bit flipped (the hardware is wrong, the vectors right).
    let bad = work.join("rtl-bad");
    copy_dir(&d.rtl(), &bad);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bad.join("manifest.json")).unwrap()).unwrap();
    let dense = manifest["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "dense")
        .expect("a dense op");
    let rom = dense["roms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .find(|r| r.ends_with("_w.hex"))
        .expect("the dense op's weight ROM");
    let path = bad.join(rom);
    let image = std::fs::read_to_string(&path).unwrap();
    let mut flipped = false;
    let lines: Vec<String> = image
        .lines()
        .map(|l| {
            if flipped || l.is_empty() || l.starts_with("//") {
                return format!("{l}\n");
            }
            flipped = true;
            let w: String = l
                .chars()
                .map(|c| {
                    let v = c.to_digit(16).expect("hex digit") ^ 8;
                    char::from_digit(v, 16).unwrap()
                })
                .collect();
            format!("{w}\n")
        })
        .collect();
    assert!(flipped, "{rom} has no data word");
    std::fs::write(&path, lines.concat()).unwrap();
    let (ok, out) = cocotb(venv, &bad, Some(&d.vectors()), &work.join("cb-rom"));
    assert!(!ok, "a corrupted weight ROM passed:\n{out}");
    assert!(first_error(&out).contains("output element"), "{out}");
}
