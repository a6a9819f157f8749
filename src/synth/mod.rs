//! Hardware cost of generated RTL: yosys synthesis of the whole top with its hierarchy (every
//! library module's share: window, MAC, requantizer, add, ...), the requantizers and adds one
//! by one (what the rescale width k acts on), Fmax from nextpnr-ice40 when installed, and an
//! analytical estimate to compare against.
//!
//! A library module instantiated with the same parameters twice is synthesized once (yosys
//! derives one module per parameter set); the shares multiply each derived module's cells,
//! its submodules included, by its instance count.

pub mod estimate;
pub mod yosys;

use crate::rtl::{Design, LibModule, Unit, Val};
use anyhow::Result;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use yosys::{CellStats, Target};

/// What to synthesize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole top (total and per-module shares).
    Design,
    /// The requantizers and adds only, each on its own (fast: what a k sweep needs).
    Requant,
}

/// One synthesized unit (a requantizer or an add on its own), or one library module's share
/// of the whole design.
#[derive(Clone, Debug)]
pub struct ModuleCost {
    /// Instance name, or the library module for a share.
    pub name: String,
    /// `requant`, `add` (units), or the share's library module role.
    pub role: String,
    /// The op it belongs to.
    pub layer: Option<usize>,
    pub stats: CellStats,
    pub fmax_mhz: Option<f64>,
    /// How a requantizer multiplies (`mul-const`, `mul-rom`, `csd-const`, `csd-rom`, `add-mul`,
    /// `add-csd`).
    pub form: Option<&'static str>,
    /// Analytical iCE40 LUT estimate (requantizers).
    pub estimate_luts: Option<f64>,
    /// Instances it stands for (shares).
    pub instances: u64,
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
    /// Folding rule and cycle target, and the design's interval.
    pub folding: String,
    pub interval: u64,
    /// Requantizer and add units ([`Scope::Requant`]) or library-module shares
    /// ([`Scope::Design`]).
    pub modules: Vec<ModuleCost>,
    /// The whole design (absent in [`Scope::Requant`]).
    pub total: Option<CellStats>,
    /// The requantizers' cells (the rescalers of accumulating ops).
    pub requant_total: CellStats,
    /// The adds' cells (three rescalers per lane).
    pub add_total: CellStats,
}

/// The library module a yosys-derived module name stands for (`$paramod$..\\rf_requant`,
/// `$paramod\\rf_window\\H=..`, or a plain name).
pub fn base_module(derived: &str) -> &str {
    let s = derived.trim_start_matches('\\');
    let s = match s.find("rf_") {
        Some(i) => &s[i..],
        None => return s,
    };
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
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
    let plan = &design.plan;
    let mut cost = DesignCost {
        model: plan.model_name.clone(),
        hash: plan.model_hash.clone(),
        target,
        k_bits: plan.k,
        multiplier: plan.multiplier,
        acc: plan.acc,
        folding: format!("{} at {} cycles", plan.folding.rule, plan.folding.target),
        interval: plan.interval,
        modules: Vec::new(),
        total: None,
        requant_total: CellStats::default(),
        add_total: CellStats::default(),
    };
    match scope {
        Scope::Design => {
            let files: Vec<String> = design.verilog.iter().map(|f| f.name.clone()).collect();
            let run = yosys::run(&yosys::Job {
                srcdir: rtl_dir,
                files: &files,
                top: &plan.top,
                target,
                flatten: false,
                no_bram: false,
                params: &[],
                workdir: &work.join("design"),
            })?;
            check_latches(run.latches, &plan.top)?;
            // Inclusive cells of every derived module, then the top's instances by library module.
            let mut memo: BTreeMap<String, CellStats> = BTreeMap::new();
            fn inclusive(
                m: &str,
                run: &yosys::SynthRun,
                memo: &mut BTreeMap<String, CellStats>,
            ) -> CellStats {
                if let Some(s) = memo.get(m) {
                    return s.clone();
                }
                let mut s = run.modules.get(m).cloned().unwrap_or_default();
                if let Some(kids) = run.children.get(m) {
                    for (k, &n) in kids {
                        let c = inclusive(k, run, memo);
                        for _ in 0..n {
                            s.add(&c);
                        }
                    }
                }
                memo.insert(m.to_string(), s.clone());
                s
            }
            let mut shares: BTreeMap<String, (CellStats, u64)> = BTreeMap::new();
            if let Some(kids) = run.children.get(&plan.top) {
                for (k, &n) in kids {
                    let c = inclusive(k, &run, &mut memo);
                    let e = shares.entry(base_module(k).to_string()).or_default();
                    for _ in 0..n {
                        e.0.add(&c);
                    }
                    e.1 += n;
                }
            }
            let own = run.modules.get(&plan.top).cloned().unwrap_or_default();
            if own.cells > 0 {
                shares.insert(plan.top.clone(), (own, 1));
            }
            for (name, (stats, n)) in shares {
                let role = role_of(&name);
                if name == "rf_requant" {
                    cost.requant_total = stats.clone();
                }
                if name == "rf_add" {
                    cost.add_total = stats.clone();
                }
                cost.modules.push(ModuleCost {
                    name,
                    role: role.to_string(),
                    layer: None,
                    stats,
                    fmax_mhz: None,
                    form: None,
                    estimate_luts: None,
                    instances: n,
                });
            }
            cost.total = Some(run.design);
        }
        Scope::Requant => {
            let jobs: Vec<&Unit> = plan
                .units
                .iter()
                .filter(|u| matches!(u.module, LibModule::Requant | LibModule::Add))
                .collect();
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let results = par_map(&jobs, workers, |u| {
                unit_cost(design, u, rtl_dir, work, target, fmax)
            });
            for r in results {
                let c = r?;
                if c.role == "add" {
                    cost.add_total.add(&c.stats);
                } else {
                    cost.requant_total.add(&c.stats);
                }
                cost.modules.push(c);
            }
        }
    }
    Ok(cost)
}

/// The role a library module plays, for reports.
fn role_of(module: &str) -> &'static str {
    match module {
        "rf_window" => "window",
        "rf_mac" => "mac",
        "rf_dwmac" => "dwmac",
        "rf_requant" => "requant",
        "rf_add" => "add",
        "rf_avgpool" | "rf_maxpool" => "pool",
        "rf_fifo" => "fifo",
        "rf_fork" => "fork",
        "rf_dwc" => "dwc",
        "rf_argmax" => "argmax",
        _ => "top",
    }
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

/// One requantizer or add synthesized as its own top with the unit's parameters (and placed
/// for Fmax when asked). Its ROM stays in LUTs: yosys' block-RAM inference for a ROM depends
/// on its width and contents, which would make requantizers of different k incomparable.
fn unit_cost(
    design: &Design,
    u: &Unit,
    rtl_dir: &Path,
    work: &Path,
    target: Target,
    fmax: bool,
) -> Result<ModuleCost> {
    let module = u.module.name();
    let mut files: Vec<String> = u
        .module
        .children()
        .iter()
        .map(|c| format!("{}.v", c.name()))
        .collect();
    files.push(format!("{module}.v"));
    let params: Vec<(String, String)> = u
        .params
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                match &p.value {
                    // yosys' chparam takes no minus sign: a negative integer as its 32 bits.
                    Val::Int(v) if *v < 0 => format!("32'h{:08x}", *v as i32 as u32),
                    Val::Int(v) => v.to_string(),
                    Val::Str(s) => format!("\"{s}\""),
                },
            )
        })
        .collect();
    let dir = work.join(&u.instance);
    let run = yosys::run(&yosys::Job {
        srcdir: rtl_dir,
        files: &files,
        top: module,
        target,
        flatten: true,
        no_bram: true,
        params: &params,
        workdir: &dir,
    })?;
    check_latches(run.latches, &u.instance)?;
    let fmax_mhz = match (&run.netlist, fmax) {
        (Some(net), true) => yosys::ice40_fmax(net, &dir)?,
        _ => None,
    };
    let op = u.op.map(|i| &design.plan.ops[i]);
    let estimate_luts = match (target, op, u.module) {
        (Target::Ice40, Some(o), LibModule::Requant) => estimate::requant_luts(&design.plan, o),
        _ => None,
    };
    Ok(ModuleCost {
        name: u.instance.clone(),
        role: if u.module == LibModule::Add {
            "add"
        } else {
            "requant"
        }
        .into(),
        layer: u.op,
        stats: run.design,
        fmax_mhz,
        form: op.map(|o| o.requant_form),
        estimate_luts,
        instances: 1,
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
        let total_luts = self.total.as_ref().map(|t| headline(t, self.target));
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
                if m.instances != 1 || self.total.is_some() {
                    o.insert("instances".into(), json!(m.instances));
                }
                o.extend(figures(&m.stats, self.target));
                if let Some(t) = total_luts.filter(|&t| t > 0.0) {
                    let share = headline(&m.stats, self.target) / t;
                    o.insert("share".into(), json!((share * 10000.0).round() / 10000.0));
                }
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
            "acc": self.acc.to_string(), "folding": self.folding, "interval": self.interval,
            "modules": modules,
            "requant_total": figures(&self.requant_total, self.target),
            "add_total": figures(&self.add_total, self.target),
        });
        if let Some(t) = &self.total {
            out["total"] = Value::Object(figures(t, self.target));
        }
        if let Some((est, real)) = self.requant_estimate() {
            out["requant_estimate"] = json!({
                "luts": est.round() as u64, "measured_luts": real as u64,
                "error_pct": ((est - real) / real * 1000.0).round() / 10.0,
            });
        }
        out
    }

    /// The analytical estimate of the requantizers with the measured LUT4s of the same units
    /// (iCE40 runs of each requantizer on its own).
    pub fn requant_estimate(&self) -> Option<(f64, f64)> {
        let parts: Vec<&ModuleCost> = self
            .modules
            .iter()
            .filter(|m| m.role == "requant" && m.instances == 1 && m.layer.is_some())
            .collect();
        if parts.is_empty() {
            return None;
        }
        let est: f64 = parts.iter().map(|m| m.estimate_luts).sum::<Option<f64>>()?;
        let real: f64 = parts.iter().map(|m| m.stats.luts() as f64).sum();
        (real > 0.0).then_some((est, real))
    }

    /// A human table.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "synth: model {} (hash {}), k = {}, target {}, folding {} ({} cycles/inference), multiplier {}, accumulators {}\n",
            self.model,
            self.hash,
            self.k_bits,
            self.target.as_str(),
            self.folding,
            self.interval,
            self.multiplier,
            self.acc
        );
        let head = match self.target {
            Target::Generic => "      cells   area(GE)     FFs   share",
            Target::Ice40 => {
                "      cells    LUT4   CARRY     DFF   BRAM   share   Fmax(MHz)   est.LUT"
            }
            Target::Xilinx => "      cells     LUT   CARRY      FF    DSP   BRAM   share",
        };
        let label = |m: &ModuleCost| match (m.form, m.instances) {
            (Some(f), _) => format!("{} ({}, {f})", m.name, m.role),
            (None, n) if n > 1 => format!("{} x{n} ({})", m.name, m.role),
            (None, _) => format!("{} ({})", m.name, m.role),
        };
        let w = self
            .modules
            .iter()
            .map(|m| label(m).len() + 1)
            .max()
            .unwrap_or(0)
            .max(24);
        s.push_str(&format!("{:<w$}{head}\n", "module (role)"));
        let total = self.total.as_ref().map(|t| headline(t, self.target));
        let row = |name: &str, st: &CellStats, fmax: Option<f64>, est: Option<f64>| -> String {
            let share = match total {
                Some(t) if t > 0.0 => format!("{:.1}%", 100.0 * headline(st, self.target) / t),
                _ => "-".into(),
            };
            let body = match self.target {
                Target::Generic => format!(
                    "{:>11} {:>10.0} {:>7} {:>7}",
                    st.cells,
                    st.area_ge(),
                    st.ffs(),
                    share
                ),
                Target::Ice40 => format!(
                    "{:>11} {:>7} {:>7} {:>7} {:>6} {:>7} {:>11} {:>9}",
                    st.cells,
                    st.luts(),
                    st.carries(),
                    st.ffs(),
                    st.brams(),
                    share,
                    fmax.map_or("-".into(), |f| format!("{f:.1}")),
                    est.map_or("-".into(), |e| format!("{e:.0}"))
                ),
                Target::Xilinx => format!(
                    "{:>11} {:>7} {:>7} {:>7} {:>6} {:>6} {:>7}",
                    st.cells,
                    st.luts(),
                    st.carries(),
                    st.ffs(),
                    st.dsps(),
                    st.brams(),
                    share
                ),
            };
            format!("{name:<w$}{body}\n")
        };
        for m in &self.modules {
            s.push_str(&row(&label(m), &m.stats, m.fmax_mhz, m.estimate_luts));
        }
        if self.total.is_none() {
            let est: Option<f64> = self
                .modules
                .iter()
                .filter(|m| m.role == "requant")
                .map(|m| m.estimate_luts)
                .sum();
            s.push_str(&row("requantizers", &self.requant_total, None, est));
            if self.add_total.cells > 0 {
                s.push_str(&row("adds", &self.add_total, None, None));
            }
        }
        if let Some(t) = &self.total {
            s.push_str(&row("total", t, None, None));
            if self.target == Target::Ice40 {
                s.push_str(&ice40_fit(t));
            }
        }
        if let Some((est, real)) = self.requant_estimate() {
            s.push_str(&format!(
                "estimate, requantizers: {est:.0} LUT4s vs {real:.0} measured ({:+.1}%)\n",
                100.0 * (est - real) / real
            ));
        }
        s
    }
}

/// iCE40 parts a design fits (logic cells: a LUT4 and its flip-flop and carry share one;
/// 4 kbit block RAMs), or that it fits none.
pub fn ice40_fit(t: &CellStats) -> String {
    const PARTS: [(&str, u64, u64); 3] =
        [("UP5K", 5280, 30), ("HX8K", 7680, 32), ("LP8K", 7680, 32)];
    let lcs = t.luts().max(t.ffs());
    let fits: Vec<&str> = PARTS
        .iter()
        .filter(|(_, lc, bram)| lcs <= *lc && t.brams() <= *bram)
        .map(|p| p.0)
        .collect();
    if fits.is_empty() {
        format!(
            "iCE40: needs at least {lcs} logic cells and {} block RAMs: fits no iCE40 part (largest: HX8K, 7680 logic cells, 32 block RAMs)\n",
            t.brams()
        )
    } else {
        format!(
            "iCE40: fits {} (logic cells {lcs}, block RAMs {})\n",
            fits.join(", "),
            t.brams()
        )
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
