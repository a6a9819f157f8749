//! Co-simulation: builds a generated design into a Verilator model (cached by content) and
//! runs it against golden vectors.
//!
//! A build folder's name is a hash of everything that goes into the binary — every RTL file,
//! ROM image, harness source, the Verilator version and flags — so a changed model, P, top name,
//! template or ratflow version can never reuse a stale build, and an unchanged one never
//! rebuilds. The folder also starts with the model hash and P, for people reading the cache.

pub mod harness;

use crate::error::input;
use crate::fsio;
use crate::golden::vectors::Vectors;
use crate::rtl::{Design, Plan};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Parallel jobs for the C++ compile (the CI machines have 2 cores).
pub const BUILD_JOBS: u32 = 2;

/// Where builds are cached: `--cache`, else `$RATFLOW_CACHE`, else `$XDG_CACHE_HOME/ratflow`,
/// else `~/.cache/ratflow`, else `.ratflow-cache` in the working folder.
pub fn cache_root(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("RATFLOW_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("ratflow");
    }
    if let Some(p) = std::env::var_os("HOME") {
        return PathBuf::from(p).join(".cache").join("ratflow");
    }
    PathBuf::from(".ratflow-cache")
}

/// The `verilator` executable, or exit code 3 with the install hint.
pub fn verilator() -> Result<PathBuf> {
    crate::tools::require("verilator", "verilator")
}

fn verilator_version(exe: &Path) -> Result<String> {
    let out = Command::new(exe)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", exe.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Everything a Verilator build compiles: files by relative path inside the build folder.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Top module.
    pub top: String,
    /// (path relative to the build folder, contents); Verilog under `rtl/`, C++ under `tb/`.
    pub files: Vec<(String, Vec<u8>)>,
    /// Verilog sources in dependency order (relative paths).
    pub verilog: Vec<String>,
    /// Verilator control files (relative paths).
    pub control: Vec<String>,
    /// The C++ harness (relative path).
    pub harness: String,
    /// Human-readable start of the cache folder name.
    pub tag: String,
    /// Build with FST waveform support.
    pub trace: bool,
    /// Include folders (`-I`), relative to the build folder.
    pub include: Vec<String>,
}

/// A built simulator.
#[derive(Clone, Debug)]
pub struct Built {
    pub dir: PathBuf,
    pub exe: PathBuf,
    /// Wall time of this build (0 when it came from the cache).
    pub build_seconds: f64,
    pub cached: bool,
}

impl Built {
    /// Folder the simulator runs in, so that `$readmemh` finds the ROM images.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("rtl")
    }
}

fn verilator_flags(src: &Sources, tb_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "--cc",
        "--exe",
        "--build",
        "-j",
        &BUILD_JOBS.to_string(),
        "--top-module",
        &src.top,
        "--prefix",
        &format!("V{}", src.top),
        "-Mdir",
        "obj",
        "-o",
        "Vtb",
        "-O3",
        // Registers without reset start random (`+verilator+rand+reset+2` at run time), so a
        // datapath register read before it is written cannot hide behind a zero.
        "--x-assign",
        "unique",
        "--x-initial",
        "unique",
        "--noassert",
        "-MAKEFLAGS",
        "OPT_FAST=-O2 OPT_SLOW=-O1 OPT_GLOBAL=-O1",
        "-CFLAGS",
        &format!("-I{}", tb_dir.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in &src.include {
        v.push(format!("-I{i}"));
    }
    if src.trace {
        v.push("--trace-fst".into());
    }
    v
}

/// Builds (or finds in the cache) the simulator for `src`.
pub fn build(src: &Sources, cache: &Path) -> Result<Built> {
    let exe = verilator()?;
    let version = verilator_version(&exe)?;
    // The key: Verilator version, flags (with a placeholder for the folder-dependent include
    // path) and every file.
    let mut key_text = format!("{version}\n{:?}\n", verilator_flags(src, Path::new("TB")));
    let mut files = src.files.clone();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, bytes) in &files {
        key_text.push_str(name);
        key_text.push('\n');
        key_text.push_str(&fsio::sha256_hex(bytes));
        key_text.push('\n');
    }
    let key = &fsio::sha256_hex(key_text.as_bytes())[..16];
    let dir = cache.join(format!("{}-{key}", src.tag));
    let done = dir.join("obj").join("Vtb");
    if done.is_file() {
        return Ok(Built {
            exe: done,
            dir,
            build_seconds: 0.0,
            cached: true,
        });
    }
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the build cache {}", cache.display()))?;
    // One build at a time per cache, across processes: each build already uses
    // BUILD_JOBS cores, and a concurrent build of the same key would be wasted work.
    let lock = std::fs::File::create(cache.join(".build.lock"))
        .with_context(|| format!("cannot create a lock file in {}", cache.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", cache.join(".build.lock").display()))?;
    if done.is_file() {
        return Ok(Built {
            exe: done,
            dir,
            build_seconds: 0.0,
            cached: true,
        });
    }
    let tmp = cache.join(format!(
        ".{}-{key}.tmp{}-{}",
        src.tag,
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("main")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(40)
            .collect::<String>()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).ok();
    }
    for (name, bytes) in &files {
        fsio::write_atomic(tmp.join(name), bytes)?;
    }
    std::fs::write(tmp.join("key.txt"), &key_text)?;
    let tb_dir = tmp.join("tb").canonicalize()?;
    let mut cmd = Command::new(&exe);
    cmd.current_dir(&tmp).args(verilator_flags(src, &tb_dir));
    cmd.args(&src.control).args(&src.verilog);
    cmd.arg(tmp.join(&src.harness).canonicalize()?);
    let t0 = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut log = out.stdout.clone();
    log.extend_from_slice(&out.stderr);
    std::fs::write(tmp.join("build.log"), &log)?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&log);
        let tail: Vec<&str> = text
            .lines()
            .filter(|l| l.contains('%') || l.contains("error"))
            .take(30)
            .collect();
        bail!(
            "verilator build failed (log: {}):\n{}",
            tmp.join("build.log").display(),
            tail.join("\n")
        );
    }
    // Publish atomically (a folder without a simulator is a damaged leftover: replace it).
    if dir.exists() && !done.is_file() {
        std::fs::remove_dir_all(&dir).ok();
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        Err(_) if dir.join("obj").join("Vtb").is_file() => {
            std::fs::remove_dir_all(&tmp).ok();
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot move the build into {}", dir.display()));
        }
    }
    Ok(Built {
        exe: dir.join("obj").join("Vtb"),
        dir,
        build_seconds: seconds,
        cached: false,
    })
}

/// How to drive a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    pub bubble: f64,
    pub stall: f64,
    pub max_report: usize,
    pub trace: Option<PathBuf>,
    /// Echo the harness's output while it runs.
    pub echo: bool,
    /// Accumulators are checked for the first this many vectors (that carry them).
    pub acc_vectors: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 1,
            bubble: 0.1,
            stall: 0.2,
            max_report: 10,
            trace: None,
            echo: false,
            acc_vectors: 16,
        }
    }
}

/// What a harness run reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub passed: u64,
    pub failed: u64,
    pub cycles: u64,
    pub wall_seconds: f64,
    /// CPU time of the simulation loop (what a loaded machine does not inflate).
    pub cpu_seconds: f64,
    pub latency: u64,
    /// Mean cycles between the last output beats (over up to 8 inferences).
    pub interval: f64,
    /// Everything the harness printed.
    pub output: String,
    /// The harness's exit status.
    pub success: bool,
}

impl Outcome {
    pub fn mismatches(&self) -> Vec<&str> {
        self.output
            .lines()
            .filter(|l| {
                l.starts_with("mismatch:") || l.starts_with("error:") || l.starts_with("  blocked:")
            })
            .collect()
    }
}

fn parse_outcome(output: String, success: bool) -> Result<Outcome> {
    let mut o = Outcome {
        success,
        ..Outcome::default()
    };
    let last = output.lines().last().unwrap_or("").to_string();
    let parsed = last
        .strip_suffix(" failed")
        .and_then(|s| s.split_once(" passed, "))
        .and_then(|(p, f)| Some((p.parse().ok()?, f.parse().ok()?)));
    let Some((p, f)) = parsed else {
        bail!("the testbench ended without its summary line; its output:\n{output}");
    };
    o.passed = p;
    o.failed = f;
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("stats ") {
            for kv in rest.split_whitespace() {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                match k {
                    "cycles" => o.cycles = v.parse().unwrap_or(0),
                    "wall_s" => o.wall_seconds = v.parse().unwrap_or(0.0),
                    "cpu_s" => o.cpu_seconds = v.parse().unwrap_or(0.0),
                    "latency" => o.latency = v.parse().unwrap_or(0),
                    "interval_sum" => sum = v.parse().unwrap_or(0.0),
                    "interval_n" => n = v.parse().unwrap_or(0.0),
                    _ => {}
                }
            }
        }
    }
    if n > 0.0 {
        o.interval = sum / n;
    }
    o.output = output;
    Ok(o)
}

/// Runs a built harness with `args` in its run folder.
pub fn run_harness(built: &Built, args: &[String], echo: bool) -> Result<Outcome> {
    let mut child = Command::new(&built.exe)
        .current_dir(built.run_dir())
        .args(args)
        .args(["+verilator+rand+reset+2", "+verilator+seed+7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", built.exe.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let mut output = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        // The caller prints its own summary: echo everything but the machine-readable lines.
        let summary = line.ends_with(" failed") && line.contains(" passed, ");
        if echo && !line.starts_with("stats ") && !summary {
            println!("{line}");
        }
        output.push_str(&line);
        output.push('\n');
    }
    let result = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&result.stderr).to_string();
    if !stderr.trim().is_empty() {
        if echo {
            eprint!("{stderr}");
        }
        output.push_str(&stderr);
    }
    if result.status.code() == Some(2) && stderr.contains("testbench error") {
        bail!("{}", stderr.trim());
    }
    parse_outcome(output, result.status.success())
}

/// The build sources of a design.
pub fn network_sources(design: &Design, trace: bool) -> Result<Sources> {
    let plan = &design.plan;
    let (cpp, vlt) = harness::render(plan)?;
    let mut files: Vec<(String, Vec<u8>)> = design
        .files()
        .map(|f| (format!("rtl/{}", f.name), f.text.as_bytes().to_vec()))
        .collect();
    files.push(("tb/tb_graph.cpp".into(), cpp.into_bytes()));
    files.push(("tb/taps.vlt".into(), vlt.into_bytes()));
    files.push((
        "tb/ratflow_tb.h".into(),
        harness::SUPPORT_HEADER.as_bytes().to_vec(),
    ));
    let fold: Vec<String> = plan
        .ops
        .iter()
        .filter(|o| o.kind != "reshape")
        .map(|o| format!("{}x{}", o.fold.simd, o.fold.pe))
        .collect();
    let mut tag = format!(
        "{}-{}-{}-a{}{}",
        plan.model_hash,
        fold.join("_"),
        plan.multiplier,
        plan.acc,
        if trace { "-fst" } else { "" }
    );
    if tag.len() > 80 {
        // The key that follows makes the folder unique; the tag is for people.
        tag.truncate(80);
    }
    Ok(Sources {
        top: plan.top.clone(),
        verilog: design
            .verilog
            .iter()
            .map(|f| format!("rtl/{}", f.name))
            .collect(),
        control: vec!["tb/taps.vlt".into()],
        harness: "tb/tb_graph.cpp".into(),
        tag,
        trace,
        include: vec!["rtl".into()],
        files,
    })
}

/// The `manifest.json` of a `ratflow rtl` folder (`--rtl DIR`), and its path for messages.
fn read_rtl_manifest(dir: &Path) -> Result<(std::path::PathBuf, serde_json::Value)> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        input(format!(
            "--rtl {}: cannot read manifest.json ({e}); point --rtl at a folder written by `ratflow rtl`",
            dir.display()
        ))
    })?;
    let m = serde_json::from_str(&text)
        .map_err(|e| input(format!("{}: not valid JSON: {e}", path.display())))?;
    Ok((path, m))
}

/// Replaces the generated files of `design` with the files of the same names in `dir`
/// (`ratflow sim --rtl DIR`): the harness still comes from the plan, the hardware from `dir`.
pub fn use_rtl_dir(design: &mut Design, dir: &Path) -> Result<()> {
    let (_, m) = read_rtl_manifest(dir)?;
    let hash = m["model"]["hash"].as_str().unwrap_or("");
    if hash != design.plan.model_hash {
        return Err(input(format!(
            "--rtl {} was generated from model hash {hash:?}, but the model's hash is {}",
            dir.display(),
            design.plan.model_hash
        )));
    }
    let files = design.verilog.iter_mut().chain(design.data.iter_mut());
    for f in files {
        let p = dir.join(&f.name);
        f.text = std::fs::read_to_string(&p).map_err(|e| {
            input(format!(
                "--rtl {}: cannot read {} ({e})",
                dir.display(),
                f.name
            ))
        })?;
    }
    Ok(())
}

/// The top, folding, multiplier form and accumulator widths of an RTL folder, to regenerate
/// its plan (and so its harness).
pub fn rtl_dir_options(dir: &Path) -> Result<crate::rtl::Options> {
    let (path, m) = read_rtl_manifest(dir)?;
    if m["format"] != "ratflow.rtl-manifest" || m["version"] != 2 {
        return Err(input(format!(
            "{}: not a version 2 RTL manifest (regenerate the folder with this ratflow)",
            path.display()
        )));
    }
    let top = m["top"]
        .as_str()
        .ok_or_else(|| input(format!("{}: no \"top\"", path.display())))?
        .to_string();
    let folding = crate::rtl::FoldingFile::parse(
        &m["folding"].to_string(),
        &format!("{} (folding)", path.display()),
    )?;
    let multiplier = crate::rtl::MulForm::parse(m["multiplier"].as_str().unwrap_or(""))
        .map_err(|e| input(format!("{}: {e}", path.display())))?;
    let acc = crate::rtl::AccWidth::parse(m["acc"].as_str().unwrap_or(""))
        .map_err(|e| input(format!("{}: {e}", path.display())))?;
    Ok(crate::rtl::Options {
        top: Some(top),
        folding: crate::rtl::Spec::File(folding),
        multiplier,
        acc,
        ..Default::default()
    })
}

/// Cycles without any observed beat after which the harness declares a deadlock: generous for
/// the slowest legal pattern (every beat delayed by bubbles and stalls).
pub fn idle_limit(plan: &Plan, opts: &RunOptions) -> u64 {
    let slow = 1.0 / ((1.0 - opts.bubble) * (1.0 - opts.stall)).max(1e-3);
    // No observed stream moves while a window fills its first rows or a MAC folds (at most an
    // interval), so a few intervals of silence mean nothing can move any more.
    ((4 * plan.interval + 1000) as f64 * slow) as u64 + 10_000
}

/// Runs `vectors` through a built simulator.
pub fn run_network(
    built: &Built,
    plan: &Plan,
    vectors: &Vectors,
    opts: &RunOptions,
) -> Result<Outcome> {
    let vec_path = built.dir.join(
        format!(
            "vectors-{}-{:?}.hex",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], ""),
    );
    fsio::write_atomic(
        &vec_path,
        harness::vectors_hex(plan, vectors, opts.acc_vectors).as_bytes(),
    )?;
    let mut args = vec![
        "--vectors".to_string(),
        vec_path.display().to_string(),
        "--seed".into(),
        opts.seed.to_string(),
        "--bubble".into(),
        opts.bubble.to_string(),
        "--stall".into(),
        opts.stall.to_string(),
        "--max-report".into(),
        opts.max_report.to_string(),
        "--idle-limit".into(),
        idle_limit(plan, opts).to_string(),
    ];
    if let Some(t) = &opts.trace {
        let abs = if t.is_absolute() {
            t.clone()
        } else {
            std::env::current_dir()?.join(t)
        };
        args.push("--trace".into());
        args.push(abs.display().to_string());
    }
    let result = run_harness(built, &args, opts.echo);
    std::fs::remove_file(&vec_path).ok();
    result
}
