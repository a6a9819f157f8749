//! Hardware cost of generated RTL: yosys synthesis per module and in total, Fmax from
//! nextpnr-ice40 when installed, and an analytical estimate to compare against.
//!
//! The requantizers are what the rescale width k acts on, so they are always reported on their
//! own: each is synthesized as its own top (flattened, case ROMs kept in LUTs), which is also
//! what nextpnr can place for an Fmax figure. The whole design is synthesized once keeping its hierarchy, which gives
//! every module's own cells and the total in one run.

pub mod estimate;
pub mod yosys;

use crate::rtl::Design;
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::path::Path;
use yosys::{CellStats, Target};

/// What to synthesize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every module and the total.
    Design,
    /// The requantizers only (fast: what a k sweep needs).
    Requant,
}

/// One module's figures.
#[derive(Clone, Debug)]
pub struct ModuleCost {
    pub name: String,
    /// `requant`, `dense`, `argmax` or `top`, from the RTL manifest.
    pub role: String,
    pub layer: Option<usize>,
    pub stats: CellStats,
    pub fmax_mhz: Option<f64>,
    /// How a requantizer multiplies (`mul-const`, `mul-rom`, `csd-const`, `csd-rom`).
    pub form: Option<&'static str>,
    /// Analytical iCE40 LUT estimate (requantizers only).
    pub estimate_luts: Option<f64>,
}

/// A synthesized design.
#[derive(Clone, Debug)]
pub struct DesignCost {
    pub model: String,
    pub hash: String,
    pub target: Target,
    pub k_bits: u32,
    /// The RTL options the figures belong to.
    pub multiplier: crate::rtl::MulForm,
    pub acc: crate::rtl::AccWidth,
    pub parallel: Vec<usize>,
    pub modules: Vec<ModuleCost>,
    /// The whole design (absent in [`Scope::Requant`]).
    pub total: Option<CellStats>,
    /// Sum over the requantizers.
    pub requant_total: CellStats,
}

/// Synthesizes a design whose files have been written to `rtl_dir`; logs go under `work`.
pub fn synthesize(
    design: &Design,
    rtl_dir: &Path,
    work: &Path,
    target: Target,
    scope: Scope,
    fmax: bool,
) -> Result<DesignCost> {
    let manifest_modules = design.manifest["modules"]
        .as_array()
        .context("RTL manifest without modules")?;
    let mut modules = Vec::new();
    let mut total = None;
    if scope == Scope::Design {
        let files: Vec<String> = design.verilog.iter().map(|f| f.name.clone()).collect();
        let run = yosys::run(&yosys::Job {
            srcdir: rtl_dir,
            files: &files,
            top: &design.plan.top,
            target,
            flatten: false,
            no_bram: false,
            workdir: &work.join("design"),
        })?;
        check_latches(run.latches, &design.plan.top)?;
        for m in manifest_modules {
            let name = m["name"].as_str().unwrap_or_default().to_string();
            if m["role"] == "requant" {
                // Reported from the stand-alone run below.
                continue;
            }
            let layer = m["layer"].as_u64().map(|l| l as usize);
            let role = m["role"].as_str().unwrap_or_default().to_string();
            let estimate_luts = match (target, role.as_str(), layer) {
                (Target::Ice40, "dense", Some(l)) => {
                    Some(estimate::dense_luts(&design.plan.layers[l]))
                }
                _ => None,
            };
            modules.push(ModuleCost {
                stats: run.modules.get(&name).cloned().unwrap_or_default(),
                role,
                layer,
                name,
                fmax_mhz: None,
                form: None,
                estimate_luts,
            });
        }
        total = Some(run.design);
    }
    // The requantizers synthesize independently: one yosys (and nextpnr) per core.
    let jobs: Vec<&Value> = manifest_modules
        .iter()
        .filter(|m| m["role"] == "requant")
        .collect();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results = par_map(&jobs, workers, |m| {
        requant_cost(design, m, rtl_dir, work, target, fmax)
    });
    let mut requant_total = CellStats::default();
    for r in results {
        let cost = r?;
        requant_total.add(&cost.stats);
        modules.push(cost);
    }
    // Manifest order (dependency order) reads best: requantizer before its dense layer.
    let order: Vec<&str> = manifest_modules
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    modules.sort_by_key(|m| order.iter().position(|n| *n == m.name));
    Ok(DesignCost {
        model: design.plan.model_name.clone(),
        hash: design.plan.model_hash.clone(),
        target,
        k_bits: design.plan.k,
        multiplier: design.plan.multiplier,
        acc: design.plan.acc,
        parallel: design.plan.parallel(),
        modules,
        total,
        requant_total,
    })
}

/// `f` over `items` on up to `workers` threads (synthesis tools are single-threaded
/// processes), results in `items`' order.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(item) = items.get(i) else { break };
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("synthesis worker panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// One requantizer synthesized as its own top (and placed for Fmax when asked).
fn requant_cost(
    design: &Design,
    m: &Value,
    rtl_dir: &Path,
    work: &Path,
    target: Target,
    fmax: bool,
) -> Result<ModuleCost> {
    let name = m["name"].as_str().unwrap_or_default().to_string();
    let layer = m["layer"].as_u64().map(|l| l as usize);
    let files = vec![format!("{name}.v")];
    let dir = work.join(&name);
    let run = yosys::run(&yosys::Job {
        srcdir: rtl_dir,
        files: &files,
        top: &name,
        target,
        flatten: true,
        // Case ROMs stay in LUTs: yosys' block-RAM inference for a ROM depends on its
        // width and contents, which would make requantizers of different k incomparable.
        no_bram: true,
        workdir: &dir,
    })?;
    check_latches(run.latches, &name)?;
    let fmax_mhz = match (&run.netlist, fmax) {
        (Some(net), true) => yosys::ice40_fmax(net, &dir)?,
        _ => None,
    };
    let estimate_luts = (target == Target::Ice40)
        .then(|| layer.and_then(|l| estimate::requant_luts(&design.plan.layers[l])))
        .flatten();
    Ok(ModuleCost {
        name,
        role: "requant".into(),
        layer,
        stats: run.design,
        fmax_mhz,
        form: layer.map(|l| design.plan.layers[l].requant_form()),
        estimate_luts,
    })
}

fn check_latches(latches: u64, what: &str) -> Result<()> {
    if latches > 0 {
        anyhow::bail!("yosys inferred {latches} latch(es) in {what}: the generated RTL is wrong");
    }
    Ok(())
}

/// The figures a target actually has, absent ones omitted (never zero-filled).
fn figures(stats: &CellStats, target: Target) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("cells".into(), json!(stats.cells));
    match target {
        Target::Generic => {
            o.insert(
                "area_ge".into(),
                json!((stats.area_ge() * 10.0).round() / 10.0),
            );
            o.insert("ffs".into(), json!(stats.ffs()));
        }
        Target::Ice40 => {
            o.insert("luts".into(), json!(stats.luts()));
            o.insert("carries".into(), json!(stats.carries()));
            o.insert("ffs".into(), json!(stats.ffs()));
            o.insert("brams".into(), json!(stats.brams()));
        }
        Target::Xilinx => {
            o.insert("luts".into(), json!(stats.luts()));
            o.insert("carries".into(), json!(stats.carries()));
            o.insert("ffs".into(), json!(stats.ffs()));
            o.insert("dsps".into(), json!(stats.dsps()));
            o.insert("brams".into(), json!(stats.brams()));
        }
    }
    o
}

impl DesignCost {
    /// The `ratflow synth --json` object.
    pub fn to_json(&self) -> Value {
        let modules: Vec<Value> = self
            .modules
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("name".into(), json!(m.name));
                o.insert("role".into(), json!(m.role));
                if let Some(l) = m.layer {
                    o.insert("layer".into(), json!(l));
                }
                if let Some(f) = m.form {
                    o.insert("form".into(), json!(f));
                }
                o.extend(figures(&m.stats, self.target));
                if let Some(f) = m.fmax_mhz {
                    o.insert("fmax_mhz".into(), json!(f));
                }
                if let Some(e) = m.estimate_luts {
                    o.insert("estimate_luts".into(), json!(e.round()));
                    let real = m.stats.luts() as f64;
                    if real > 0.0 {
                        let err = 100.0 * (e - real) / real;
                        o.insert(
                            "estimate_error_pct".into(),
                            json!((err * 10.0).round() / 10.0),
                        );
                    }
                }
                Value::Object(o)
            })
            .collect();
        let mut out = json!({
            "model": self.model, "hash": self.hash, "target": self.target.as_str(),
            "k_bits": self.k_bits, "multiplier": self.multiplier.as_str(),
            "acc": self.acc.to_string(), "parallel": self.parallel, "modules": modules,
            "requant_total": figures(&self.requant_total, self.target),
        });
        if let Some(t) = &self.total {
            out["total"] = Value::Object(figures(t, self.target));
        }
        if let Some((est, real)) = self.datapath_estimate() {
            out["datapath_estimate"] = json!({
                "luts": est.round() as u64, "measured_luts": real as u64,
                "error_pct": ((est - real) / real * 1000.0).round() / 10.0,
            });
        }
        out
    }

    /// The analytical estimate of the dense layers and requantizers together, with the
    /// measured LUT4s of the same modules (whole-design iCE40 runs only).
    pub fn datapath_estimate(&self) -> Option<(f64, f64)> {
        let parts: Vec<&ModuleCost> = self
            .modules
            .iter()
            .filter(|m| m.role == "dense" || m.role == "requant")
            .collect();
        if self.total.is_none() || parts.is_empty() {
            return None;
        }
        let est: f64 = parts.iter().map(|m| m.estimate_luts).sum::<Option<f64>>()?;
        let real: f64 = parts.iter().map(|m| m.stats.luts() as f64).sum();
        (real > 0.0).then_some((est, real))
    }

    /// A human table.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "synth: model {} (hash {}), k = {}, target {}, P = {:?}, multiplier {}, accumulators {}\n",
            self.model,
            self.hash,
            self.k_bits,
            self.target.as_str(),
            self.parallel,
            self.multiplier,
            self.acc
        );
        let head = match self.target {
            Target::Generic => "      cells   area(GE)     FFs",
            Target::Ice40 => "      cells    LUT4   CARRY     DFF   BRAM   Fmax(MHz)   est.LUT",
            Target::Xilinx => "      cells     LUT   CARRY      FF    DSP   BRAM",
        };
        let label = |m: &ModuleCost| match m.form {
            Some(f) => format!("{} ({}, {f})", m.name, m.role),
            None => format!("{} ({})", m.name, m.role),
        };
        let w = self
            .modules
            .iter()
            .map(|m| label(m).len() + 1)
            .max()
            .unwrap_or(0)
            .max(24);
        s.push_str(&format!("{:<w$}{head}\n", "module (role)"));
        let row = |name: &str, st: &CellStats, fmax: Option<f64>, est: Option<f64>| -> String {
            let body = match self.target {
                Target::Generic => {
                    format!("{:>11} {:>10.0} {:>7}", st.cells, st.area_ge(), st.ffs())
                }
                Target::Ice40 => format!(
                    "{:>11} {:>7} {:>7} {:>7} {:>6} {:>11} {:>9}",
                    st.cells,
                    st.luts(),
                    st.carries(),
                    st.ffs(),
                    st.brams(),
                    fmax.map_or("-".into(), |f| format!("{f:.1}")),
                    est.map_or("-".into(), |e| format!("{e:.0}"))
                ),
                Target::Xilinx => format!(
                    "{:>11} {:>7} {:>7} {:>7} {:>6} {:>6}",
                    st.cells,
                    st.luts(),
                    st.carries(),
                    st.ffs(),
                    st.dsps(),
                    st.brams()
                ),
            };
            format!("{name:<w$}{body}\n")
        };
        for m in &self.modules {
            s.push_str(&row(&label(m), &m.stats, m.fmax_mhz, m.estimate_luts));
        }
        let est: Option<f64> = self
            .modules
            .iter()
            .filter(|m| m.role == "requant")
            .map(|m| m.estimate_luts)
            .sum();
        s.push_str(&row("requantizers", &self.requant_total, None, est));
        if let Some(t) = &self.total {
            s.push_str(&row("total", t, None, None));
        }
        if let Some((est, real)) = self.datapath_estimate() {
            s.push_str(&format!(
                "estimate, dense layers and requantizers: {est:.0} LUT4s vs {real:.0} measured ({:+.1}%)\n",
                100.0 * (est - real) / real
            ));
        }
        s
    }
}

/// The figure two forms are compared on: LUTs, or NAND2 equivalents on the generic library.
fn headline(stats: &CellStats, target: Target) -> f64 {
    match target {
        Target::Generic => stats.area_ge(),
        Target::Ice40 | Target::Xilinx => stats.luts() as f64,
    }
}

/// Rows `(name, mul form, csd form, mul figure, csd figure)` for the modules and totals that
/// both syntheses have, in `mul`'s order.
fn form_rows(mul: &DesignCost, csd: &DesignCost) -> Vec<(String, String, String, f64, f64)> {
    let t = mul.target;
    let mut rows: Vec<(String, String, String, f64, f64)> = mul
        .modules
        .iter()
        .filter_map(|a| {
            let b = csd.modules.iter().find(|b| b.name == a.name)?;
            Some((
                a.name.clone(),
                a.form.unwrap_or(a.role.as_str()).to_string(),
                b.form.unwrap_or(b.role.as_str()).to_string(),
                headline(&a.stats, t),
                headline(&b.stats, t),
            ))
        })
        .collect();
    let (rm, rc) = (&mul.requant_total, &csd.requant_total);
    rows.push((
        "requantizers".into(),
        String::new(),
        String::new(),
        headline(rm, t),
        headline(rc, t),
    ));
    if let (Some(a), Some(b)) = (&mul.total, &csd.total) {
        rows.push((
            "total".into(),
            String::new(),
            String::new(),
            headline(a, t),
            headline(b, t),
        ));
    }
    rows
}

/// `ratflow synth --multiplier both --json`: the side-by-side figures.
pub fn compare_forms(mul: &DesignCost, csd: &DesignCost) -> Value {
    let unit = match mul.target {
        Target::Generic => "area_ge",
        _ => "luts",
    };
    let rows: Vec<Value> = form_rows(mul, csd)
        .into_iter()
        .map(|(name, fm, fc, a, b)| {
            let fig = |x: f64| match unit {
                "luts" => json!(x.round() as u64),
                _ => json!((x * 10.0).round() / 10.0),
            };
            let mut o = json!({ "name": name, "mul": fig(a), "csd": fig(b) });
            if !fm.is_empty() {
                o["mul_form"] = json!(fm);
                o["csd_form"] = json!(fc);
            }
            if a > 0.0 {
                o["csd_over_mul"] = json!((b / a * 1000.0).round() / 1000.0);
            }
            o
        })
        .collect();
    json!({ "unit": unit, "rows": rows })
}

/// The side-by-side table of `ratflow synth --multiplier both`.
pub fn compare_text(mul: &DesignCost, csd: &DesignCost) -> String {
    let unit = match mul.target {
        Target::Generic => "area (GE)",
        _ => "LUTs",
    };
    let rows = form_rows(mul, csd);
    let w = rows
        .iter()
        .map(|r| r.0.len() + 1)
        .max()
        .unwrap_or(0)
        .max(16);
    let mut s = format!(
        "{unit}, multiplier forms side by side\n{:<w$}{:>10} {:>10} {:>10} {:>10}  csd/mul\n",
        "module", "form", "mul", "form", "csd"
    );
    for (name, fm, fc, a, b) in rows {
        let ratio = if a > 0.0 {
            format!("{:.3}", b / a)
        } else {
            "-".into()
        };
        s.push_str(&format!(
            "{name:<w$}{fm:>10} {a:>10.0} {fc:>10} {b:>10.0}  {ratio:>7}\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::yosys::{Target, synthesize as synth_files};

    #[test]
    fn par_map_keeps_order_and_visits_every_item_once() {
        let items: Vec<u64> = (0..37).collect();
        for workers in [0, 1, 2, 5, 100] {
            let out = super::par_map(&items, workers, |x| x * x);
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert!(super::par_map(&[] as &[u8], 2, |x| *x).is_empty());
    }

    /// Needs yosys (installed by `make test`): a real run on two tiny modules.
    #[test]
    fn yosys_counts_cells_and_flags_latches() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("t.v");
        std::fs::write(
            &v,
            "module mul8 (input wire clk_i, input wire [7:0] a_i, input wire [7:0] b_i,\n\
             output reg [15:0] y_o);\n  always @(posedge clk_i) y_o <= a_i * b_i;\nendmodule\n\
             module latchy (input wire en_i, input wire d_i, output reg q_o);\n\
             always @* if (en_i) q_o = d_i;\nendmodule\n",
        )
        .unwrap();
        let files = vec![v];
        let ice = synth_files(&files, "mul8", Target::Ice40, &dir.path().join("ice")).unwrap();
        assert!(ice.design.luts() > 20, "{:?}", ice.design);
        assert_eq!(ice.design.ffs(), 16);
        assert_eq!(ice.latches, 0);
        let generic =
            synth_files(&files, "mul8", Target::Generic, &dir.path().join("gen")).unwrap();
        assert!(generic.design.area_ge() > 100.0, "{:?}", generic.design);
        let x = synth_files(&files, "mul8", Target::Xilinx, &dir.path().join("x")).unwrap();
        assert_eq!(x.design.dsps(), 1, "{:?}", x.design);
        let l = synth_files(&files, "latchy", Target::Generic, &dir.path().join("l")).unwrap();
        assert_eq!(l.latches, 1);
    }
}
