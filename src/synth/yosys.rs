//! Running yosys (and nextpnr-ice40 when installed) on generated Verilog and reading back cell
//! counts from `stat -json`.
//!
//! Each call synthesizes one top module in its own work folder with a generated script, so a
//! failure names the module and leaves the log beside the script for inspection.

use crate::tools;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which cell library yosys maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// yosys' internal gate library (`synth -flatten`): technology-independent gate counts.
    Generic,
    /// Lattice iCE40: LUT4, carry and flip-flop cells (`synth_ice40`).
    Ice40,
    /// Xilinx 7-series: LUT1-6, DSP48E1, flip-flops (`synth_xilinx`).
    Xilinx,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "generic" => Some(Target::Generic),
            "ice40" => Some(Target::Ice40),
            "xilinx" => Some(Target::Xilinx),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Generic => "generic",
            Target::Ice40 => "ice40",
            Target::Xilinx => "xilinx",
        }
    }
}

/// Cell counts of one synthesized module.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellStats {
    pub cells: u64,
    pub by_type: BTreeMap<String, u64>,
}

/// Approximate area of yosys' internal gates in NAND2 equivalents (GE), from a typical
/// standard-cell library's relative sizes. Only the generic target uses it; it makes gate mixes
/// comparable, not a sign-off area.
pub const GATE_AREA_GE: &[(&str, f64)] = &[
    ("$_NOT_", 0.67),
    ("$_BUF_", 1.0),
    ("$_NAND_", 1.0),
    ("$_NOR_", 1.0),
    ("$_AND_", 1.33),
    ("$_OR_", 1.33),
    ("$_ANDNOT_", 1.33),
    ("$_ORNOT_", 1.33),
    ("$_AOI3_", 1.67),
    ("$_OAI3_", 1.67),
    ("$_AOI4_", 2.0),
    ("$_OAI4_", 2.0),
    ("$_XOR_", 2.33),
    ("$_XNOR_", 2.33),
    ("$_MUX_", 2.33),
    ("$_NMUX_", 2.0),
];

/// Area of any flip-flop cell (`$_DFF*`, `$_SDFF*`, ...), in GE.
pub const FLOP_AREA_GE: f64 = 4.67;

impl CellStats {
    /// Adds another module's cells.
    pub fn add(&mut self, other: &CellStats) {
        self.cells += other.cells;
        for (t, n) in &other.by_type {
            *self.by_type.entry(t.clone()).or_insert(0) += n;
        }
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.by_type
            .iter()
            .filter(|(t, _)| pred(t))
            .map(|(_, n)| n)
            .sum()
    }

    /// Look-up tables (iCE40 `SB_LUT4`, Xilinx `LUT1`..`LUT6`).
    pub fn luts(&self) -> u64 {
        self.count(|t| t == "SB_LUT4" || (t.starts_with("LUT") && t.len() == 4))
    }

    pub fn carries(&self) -> u64 {
        self.count(|t| t == "SB_CARRY" || t == "CARRY4" || t == "CARRY8")
    }

    /// Flip-flops of every flavour (iCE40 `SB_DFF*`, Xilinx `FD*`, generic `$_DFF*`/`$_SDFF*`).
    pub fn ffs(&self) -> u64 {
        self.count(is_flop)
    }

    pub fn dsps(&self) -> u64 {
        self.count(|t| t.starts_with("DSP48") || t == "SB_MAC16")
    }

    /// Block RAM cells (iCE40 `SB_RAM40_4K`, Xilinx `RAMB*`).
    pub fn brams(&self) -> u64 {
        self.count(|t| t.starts_with("SB_RAM") || t.starts_with("RAMB"))
    }

    /// Generic-gate area in NAND2 equivalents (see [`GATE_AREA_GE`]).
    pub fn area_ge(&self) -> f64 {
        self.by_type
            .iter()
            .map(|(t, &n)| {
                let w = if is_flop(t) {
                    FLOP_AREA_GE
                } else {
                    GATE_AREA_GE
                        .iter()
                        .find(|(name, _)| name == t)
                        .map_or(2.0, |(_, w)| *w)
                };
                w * n as f64
            })
            .sum()
    }
}

fn is_flop(t: &str) -> bool {
    t.starts_with("SB_DFF")
        || t.starts_with("$_DFF")
        || t.starts_with("$_SDFF")
        || t.starts_with("$_DFFE")
        || t.starts_with("$_SDFFE")
        || t.starts_with("$_SDFFCE")
        || t.starts_with("$_ALDFF")
        || t.starts_with("$_DLATCH")
        || matches!(t, "FDRE" | "FDSE" | "FDCE" | "FDPE")
}

/// Result of one yosys run.
pub struct SynthRun {
    /// The whole design (hierarchy expanded).
    pub design: CellStats,
    /// Each module's own cells (instances of other modules excluded), by module name.
    pub modules: BTreeMap<String, CellStats>,
    /// Each module's instances of the design's other modules: module name -> count.
    pub children: BTreeMap<String, BTreeMap<String, u64>>,
    /// Set for a flattened iCE40 run: the mapped netlist nextpnr can place and route.
    pub netlist: Option<PathBuf>,
    pub latches: u64,
}

/// One synthesis: `files` (paths relative to `srcdir`, where `$readmemh` images are found),
/// `top`, flattened or keeping the hierarchy, outputs and logs in `workdir`.
pub struct Job<'a> {
    pub srcdir: &'a Path,
    pub files: &'a [String],
    pub top: &'a str,
    pub target: Target,
    pub flatten: bool,
    /// Keep memories out of block RAM (iCE40 `-nobram`, Xilinx `-nobram`).
    pub no_bram: bool,
    /// Parameters of the top (`chparam -set NAME VALUE`; strings quoted).
    pub params: &'a [(String, String)],
    pub workdir: &'a Path,
}

/// Runs yosys on one job.
pub fn run(job: &Job) -> Result<SynthRun> {
    let yosys = tools::require("yosys", "yosys")?;
    let work = job.workdir;
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let work = work
        .canonicalize()
        .with_context(|| format!("resolving {}", work.display()))?;
    let mut script = String::new();
    for f in job.files {
        // `-I.`: the library's include files sit beside its modules. `-defer`: a module is
        // elaborated only with the parameters it is used with (its default ROM file names
        // do not exist).
        script.push_str(&format!("read_verilog -defer -I. {f}\n"));
    }
    let top = job.top;
    if !job.params.is_empty() {
        let sets: Vec<String> = job
            .params
            .iter()
            .map(|(n, v)| format!("-set {n} {v}"))
            .collect();
        script.push_str(&format!("chparam {} {top}\n", sets.join(" ")));
    }
    let netlist = work.join("netlist.json");
    let nobram = if job.no_bram { " -nobram" } else { "" };
    let synth = match (job.target, job.flatten) {
        (Target::Generic, flat) => {
            // The `fine` stage without memory_map: ROMs stay memory cells (their bits are
            // reported from the plan) instead of exploding into gates for minutes.
            format!(
                "synth -top {top} -run begin:fine\n{}opt -fast -full\ntechmap\nopt -fast\nabc -fast\nopt -fast\n",
                if flat { "flatten\n" } else { "" }
            )
        }
        (Target::Ice40, true) => format!(
            "synth_ice40 -top {top}{nobram} -json {}\n",
            netlist.display()
        ),
        (Target::Ice40, false) => format!("synth_ice40 -noflatten -top {top}{nobram}\n"),
        (Target::Xilinx, true) => format!("synth_xilinx -flatten -top {top}{nobram}\n"),
        (Target::Xilinx, false) => format!("synth_xilinx -top {top}{nobram}\n"),
    };
    script.push_str(&synth);
    script.push_str(&format!(
        "tee -q -o {} stat -json\n",
        work.join("stat.json").display()
    ));
    std::fs::write(work.join("synth.ys"), &script)?;
    let log = work.join("yosys.log");
    let out = Command::new(&yosys)
        .current_dir(job.srcdir)
        .arg("-q")
        .arg("-l")
        .arg(&log)
        .arg("-s")
        .arg(work.join("synth.ys"))
        .output()
        .with_context(|| format!("running {}", yosys.display()))?;
    if !out.status.success() {
        bail!(
            "yosys failed on {top} (log: {}): {}",
            log.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(work.join("stat.json"))?;
    let (design, modules, children) = parse_stat(&text)?;
    // proc_dlatch reports every inferred latch; ratflow's RTL must have none.
    let latches = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Latch inferred for signal"))
        .count() as u64;
    Ok(SynthRun {
        design,
        modules,
        children,
        netlist: (job.target == Target::Ice40 && job.flatten).then_some(netlist),
        latches,
    })
}

/// Parses `stat -json`. yosys 0.23 prints the hierarchy summary (`name  count` lines) into
/// the middle of its JSON when the design has submodules; those lines are dropped first.
type Children = BTreeMap<String, BTreeMap<String, u64>>;

fn parse_stat(text: &str) -> Result<(CellStats, BTreeMap<String, CellStats>, Children)> {
    let clean: String = text
        .lines()
        .filter(|l| l.contains('"') || l.chars().all(|c| " {}[],".contains(c)))
        .collect::<Vec<_>>()
        .join("\n");
    let stat: Value = serde_json::from_str(&clean).context("parsing yosys stat -json")?;
    let names: Vec<String> = stat["modules"]
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| k.trim_start_matches('\\').to_string())
                .collect()
        })
        .unwrap_or_default();
    let read = |v: &Value| {
        let mut s = CellStats::default();
        if let Some(types) = v["num_cells_by_type"].as_object() {
            for (t, n) in types {
                // Instances of the design's own modules are not cells of this module.
                if !names.iter().any(|m| m == t.trim_start_matches('\\')) {
                    let n = n.as_u64().unwrap_or(0);
                    s.cells += n;
                    s.by_type.insert(t.clone(), n);
                }
            }
        }
        s
    };
    let mut modules = BTreeMap::new();
    let mut children: Children = BTreeMap::new();
    if let Some(m) = stat["modules"].as_object() {
        for (name, v) in m {
            let name = name.trim_start_matches('\\').to_string();
            modules.insert(name.clone(), read(v));
            let mut kids = BTreeMap::new();
            if let Some(types) = v["num_cells_by_type"].as_object() {
                for (t, n) in types {
                    let t = t.trim_start_matches('\\');
                    if names.iter().any(|m| m == t) {
                        kids.insert(t.to_string(), n.as_u64().unwrap_or(0));
                    }
                }
            }
            children.insert(name, kids);
        }
    }
    Ok((read(&stat["design"]), modules, children))
}

/// Synthesizes `top` from absolute `files` for `target` in `workdir`, flattened.
pub fn synthesize(
    files: &[PathBuf],
    top: &str,
    target: Target,
    workdir: &Path,
) -> Result<SynthRun> {
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.canonicalize()
                .map(|p| p.display().to_string())
                .with_context(|| format!("Verilog file {}", f.display()))
        })
        .collect::<Result<_>>()?;
    run(&Job {
        srcdir: workdir.parent().unwrap_or(Path::new(".")),
        files: &names,
        top,
        target,
        flatten: true,
        no_bram: false,
        params: &[],
        workdir,
    })
}

/// Places and routes an iCE40 netlist on an HX8K and returns the achieved Fmax of its clock,
/// or `None` when nextpnr-ice40 is not installed (the figure is then omitted, not zeroed).
pub fn ice40_fmax(netlist: &Path, workdir: &Path) -> Result<Option<f64>> {
    let Some(nextpnr) = tools::find("nextpnr-ice40") else {
        return Ok(None);
    };
    // nextpnr runs inside `workdir`: a relative netlist path (a relative --out) would not
    // resolve there.
    let netlist =
        std::path::absolute(netlist).with_context(|| format!("resolving {}", netlist.display()))?;
    let out = Command::new(nextpnr)
        .current_dir(workdir)
        .args(["--hx8k", "--package", "ct256", "--json"])
        .arg(&netlist)
        // Without a target the router stops at the default 12 MHz; timing misses must not fail.
        .args([
            "--freq",
            "100",
            "--timing-allow-fail",
            "--seed",
            "1",
            "-q",
            "-l",
            "nextpnr.log",
        ])
        .output()
        .context("running nextpnr-ice40")?;
    if !out.status.success() {
        // Designs that exceed the device (e.g. big ROMs) simply have no Fmax figure.
        return Ok(None);
    }
    let log = std::fs::read_to_string(workdir.join("nextpnr.log")).unwrap_or_default();
    Ok(parse_fmax(&log))
}

/// The last "Max frequency for clock ...: F MHz" line: nextpnr prints it after placement and
/// again after routing; the routed figure comes last.
fn parse_fmax(log: &str) -> Option<f64> {
    log.lines()
        .filter(|l| l.contains("Max frequency for clock"))
        .filter_map(|l| {
            let after = l.rsplit_once("': ")?.1;
            after.split_whitespace().next()?.parse::<f64>().ok()
        })
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlist named by a path relative to the process (a relative `--out`) is still found
    /// although nextpnr runs inside the work folder.
    #[test]
    fn fmax_of_a_netlist_given_by_a_relative_path() {
        let (Some(yosys), Some(_)) = (tools::find("yosys"), tools::find("nextpnr-ice40")) else {
            eprintln!("skipped: yosys or nextpnr-ice40 not installed");
            return;
        };
        let base = std::env::current_dir().unwrap().join("target").join("tmp");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(&base).unwrap();
        std::fs::write(
            dir.path().join("c.v"),
            "module c(input wire clk_i, output reg [7:0] q_o);\n\
             always @(posedge clk_i) q_o <= q_o + 8'd1;\nendmodule\n",
        )
        .unwrap();
        let ok = Command::new(yosys)
            .current_dir(dir.path())
            .args([
                "-q",
                "-p",
                "read_verilog c.v; synth_ice40 -top c -json net.json",
            ])
            .status()
            .unwrap();
        assert!(ok.success());
        let rel = dir
            .path()
            .strip_prefix(std::env::current_dir().unwrap())
            .unwrap()
            .join("net.json");
        assert!(rel.is_relative());
        let f = ice40_fmax(&rel, dir.path()).unwrap();
        assert!(f.is_some_and(|mhz| mhz > 10.0), "{f:?}");
    }

    #[test]
    fn fmax_line_parsing() {
        let log = "Info: Max frequency for clock 'clk_i$SB_IO_IN_$glb_clk': 25.10 MHz (FAIL at 100.00 MHz)\n\
                   Info: Max frequency for clock 'clk_i$SB_IO_IN_$glb_clk': 31.25 MHz (FAIL at 100.00 MHz)\n";
        assert_eq!(parse_fmax(log), Some(31.25));
        assert_eq!(parse_fmax("nothing"), None);
    }

    #[test]
    fn stat_json_with_hierarchy_lines() {
        let text = "{\n \"modules\": {\n  \"\\\\top\": {\"num_cells\": 2, \"num_cells_by_type\": {\n   \"SB_LUT4\": 1,\n   \"sub\": 1\n  }},\n  \"\\\\sub\": {\"num_cells\": 3, \"num_cells_by_type\": {\"SB_LUT4\": 3}}\n },\n     sub          1\n \"design\": {\"num_cells\": 4, \"num_cells_by_type\": {\"SB_LUT4\": 4}}\n}\n";
        let (design, modules, children) = parse_stat(text).unwrap();
        assert_eq!(children["top"]["sub"], 1);
        assert_eq!(design.luts(), 4);
        assert_eq!(
            modules["top"].cells, 1,
            "the instance of `sub` is not a cell of top"
        );
        assert_eq!(modules["sub"].luts(), 3);
    }

    #[test]
    fn counts_by_family() {
        let mut s = CellStats::default();
        for (t, n) in [
            ("SB_LUT4", 10),
            ("SB_CARRY", 3),
            ("SB_DFFER", 2),
            ("SB_DFF", 1),
        ] {
            s.by_type.insert(t.into(), n);
        }
        assert_eq!((s.luts(), s.carries(), s.ffs(), s.dsps()), (10, 3, 3, 0));
        let mut x = CellStats::default();
        for (t, n) in [
            ("LUT6", 4),
            ("LUT2", 1),
            ("DSP48E1", 2),
            ("FDRE", 7),
            ("IBUF", 9),
        ] {
            x.by_type.insert(t.into(), n);
        }
        assert_eq!((x.luts(), x.ffs(), x.dsps()), (5, 7, 2));
    }
}
