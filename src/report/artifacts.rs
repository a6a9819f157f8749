//! What the flow's stages write and the report reads back: serde types, one JSON file each.

use crate::synth::yosys::CellStats;
use crate::synth::{DesignCost, yosys::Target};
use serde::{Deserialize, Serialize};

/// Where the network came from, and its ops.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `tflite` (imported), `int-model` (a JSON file), or `trained` (here, from `--arch`).
    pub kind: String,
    pub path: String,
    pub name: String,
    /// The architecture string, for trained networks.
    pub arch: Option<String>,
    /// Float and k = 31 accuracies of a trained network (golden for the int8 one).
    pub float_accuracy: Option<f64>,
    pub k31_accuracy: Option<f64>,
}

/// The accuracy (or, without labels, top-1 agreement with k = 31) of the network at one k.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccuracyRow {
    pub k: u32,
    pub csd: Option<u32>,
    /// PTQ: the k = 31 network re-derived at k.
    pub ptq: f64,
    /// 95% interval of `ptq` (paired difference to k = 31, shifted to the value; agreement:
    /// Wilson interval).
    pub ptq_ci: (f64, f64),
    /// Exact McNemar p of PTQ against k = 31 (with labels).
    pub ptq_p: Option<f64>,
    /// RAT at k (mean over repeats), when this k was fine-tuned.
    pub rat: Option<f64>,
    pub rat_ci: Option<(f64, f64)>,
    /// Seed-to-seed standard deviation of RAT (points).
    pub rat_spread: Option<f64>,
}

/// The accuracy side of the trade-off, whatever the source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccuracySweep {
    /// `accuracy` (labels) or `agreement` (top-1 agreement with the k = 31 network).
    pub metric: String,
    /// What was measured on (test split, .npy file, random inputs) and how many.
    pub data: String,
    pub count: usize,
    pub k31: f64,
    /// Which RAT variant the RAT column shows (`rat-a`, `rat-b`), if any.
    pub rat_variant: Option<String>,
    pub rows: Vec<AccuracyRow>,
    /// The widest k at which PTQ is significantly below k = 31, if any.
    pub ptq_breaks_at: Option<u32>,
    /// Markdown table written by the sweep stage itself (every column it has).
    pub table: String,
}

/// Cells of one synthesized thing, in the units hardware engineers read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cells {
    pub luts: u64,
    pub carries: u64,
    pub ffs: u64,
    pub brams: u64,
    pub dsps: u64,
    pub cells: u64,
}

impl From<&CellStats> for Cells {
    fn from(s: &CellStats) -> Cells {
        Cells {
            luts: s.luts(),
            carries: s.carries(),
            ffs: s.ffs(),
            brams: s.brams(),
            dsps: s.dsps(),
            cells: s.cells,
        }
    }
}

/// One requantizer or ADD unit synthesized on its own.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitCells {
    pub op: Option<usize>,
    pub instance: String,
    /// `requant` or `add`.
    pub role: String,
    pub form: Option<String>,
    pub luts: u64,
    pub fmax_mhz: Option<f64>,
    pub estimate_luts: Option<f64>,
}

/// The rescalers of the network at one k (iCE40, each unit on its own).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RescalerRow {
    pub k: u32,
    pub csd: Option<u32>,
    /// Requantizers of the accumulating ops.
    pub requant: Cells,
    /// ADD's three rescalers per lane.
    pub add: Cells,
    pub units: Vec<UnitCells>,
}

impl RescalerRow {
    pub fn from_cost(k: u32, csd: Option<u32>, c: &DesignCost) -> RescalerRow {
        RescalerRow {
            k,
            csd,
            requant: Cells::from(&c.requant_total),
            add: Cells::from(&c.add_total),
            units: c
                .modules
                .iter()
                .map(|m| UnitCells {
                    op: m.layer,
                    instance: m.name.clone(),
                    role: m.role.clone(),
                    form: m.form.map(str::to_string),
                    luts: m.stats.luts(),
                    fmax_mhz: m.fmax_mhz,
                    estimate_luts: m.estimate_luts,
                })
                .collect(),
        }
    }
}

/// A whole design synthesized for one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DesignRow {
    /// `final` (the hardware model) or `k31`.
    pub label: String,
    pub k: u32,
    pub target: String,
    pub total: Cells,
    pub requant: Cells,
    pub add: Cells,
    /// Per library module: role, instances and LUTs (or GE on the generic target).
    pub shares: Vec<Share>,
    /// Which iCE40 parts it fits (iCE40 rows).
    pub fit: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Share {
    pub module: String,
    pub role: String,
    pub instances: u64,
    pub luts: u64,
    pub ffs: u64,
    pub brams: u64,
    pub dsps: u64,
}

impl DesignRow {
    pub fn from_cost(label: &str, c: &DesignCost) -> DesignRow {
        let total = c.total.clone().unwrap_or_default();
        DesignRow {
            label: label.to_string(),
            k: c.k_bits,
            target: c.target.as_str().to_string(),
            total: Cells::from(&total),
            requant: Cells::from(&c.requant_total),
            add: Cells::from(&c.add_total),
            shares: c
                .modules
                .iter()
                .map(|m| Share {
                    module: m.name.clone(),
                    role: m.role.clone(),
                    instances: m.instances,
                    luts: m.stats.luts(),
                    ffs: m.stats.ffs(),
                    brams: m.stats.brams(),
                    dsps: m.stats.dsps(),
                })
                .collect(),
            fit: (c.target == Target::Ice40)
                .then(|| crate::synth::ice40_fit(&total).trim().to_string()),
        }
    }
}

/// The co-simulation of the final design against the golden vectors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cosim {
    pub model: String,
    pub hash: String,
    pub folding: String,
    pub vectors: usize,
    pub passed: u64,
    pub failed: u64,
    pub cycles: u64,
    /// The manifest's cycles per inference (the static schedule's interval).
    pub manifest_interval: u64,
    /// Measured cycles between consecutive outputs, under the random bubbles and stalls.
    pub measured_interval: f64,
    /// The same with every input beat offered and every output beat taken at once.
    pub clean_interval: f64,
    pub latency: u64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub build_seconds: f64,
    pub build_cached: bool,
    pub bubble: f64,
    pub stall: f64,
}

/// Place-and-route Fmax of one rescaler unit (nextpnr-ice40, HX8K).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fmax {
    pub k: u32,
    pub unit: String,
    pub luts: u64,
    pub fmax_mhz: Option<f64>,
}
