//! Post-training sweep of an int-model over the rescaler width k: every rescaler (ADD's three
//! included) re-derived at each k from its real factor ([`Model::rederived`], each op keeping
//! its rounding), run on the golden engine, and compared with the k = 31 model on the same
//! inputs. What narrowing the multipliers of an imported model costs before any RAT
//! fine-tuning.

use super::{Engine, Scratch, argmax};
use crate::data::InputSet;
use crate::error::input;
use crate::model::Model;
use crate::quant::{MAX_K_BITS, Rescale};
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// One width of the sweep, compared with the k = 31 model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub k: u32,
    /// Why this k has no model (a factor no `(m, s)` at k expresses under the op's rounding,
    /// an ADD whose rescaled sum leaves i32); the figures below are then absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Inputs whose top-1 class (argmax of the final tensor, ties to the lowest index) equals
    /// the k = 31 model's.
    pub top1_agree: Option<usize>,
    /// The same, percent.
    pub top1_agreement: Option<f64>,
    /// Wilson 95% interval of the agreement (percent): what the input count supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_ci95: Option<(f64, f64)>,
    /// Largest and mean `|q_k - q_31|` over every element of the final tensor, int8 codes.
    pub max_abs_diff: Option<u32>,
    pub mean_abs_diff: Option<f64>,
    /// `10 log10(sum (S (q_31 - Z))^2 / sum (S (q_k - q_31))^2)` of the dequantized final
    /// tensor over all inputs; `None` when the outputs are identical (infinite SNR).
    pub snr_db: Option<f64>,
    /// Whether every output element equals the k = 31 model's.
    pub identical: Option<bool>,
    /// Top-1 accuracy in percent, with labels.
    pub accuracy: Option<f64>,
    pub correct: Option<usize>,
    /// With labels: accuracy against the k = 31 model's, paired on the same inputs (points,
    /// 95% interval, exact McNemar p).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_k31: Option<crate::stats::Paired>,
}

/// A sweep: the model, the inputs, and one row per k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub model: String,
    /// Where the inputs came from (a file, or "random int8 codes, seed S").
    pub inputs: String,
    pub count: usize,
    /// The final tensor compared (the model's first output).
    pub output: String,
    /// Accuracy of the k = 31 model, with labels.
    pub reference_accuracy: Option<f64>,
    pub rows: Vec<SweepRow>,
}

/// Runs the sweep of `model` on `inputs` at every width of `ks`. The reference is the model
/// re-derived at k = 31 (so the file's own k does not matter). Errors: the model cannot be
/// re-derived at k = 31 (no `weight_scale`: a hand-written or version 1 model), or an input
/// has the wrong length.
pub fn run(model: &Model, inputs: &InputSet, ks: &[u32]) -> Result<Sweep> {
    if inputs.is_empty() {
        return Err(input(format!("{}: no inputs", inputs.source)));
    }
    if let Some(bad) = inputs
        .codes
        .iter()
        .position(|x| x.len() != model.input_len())
    {
        return Err(input(format!(
            "{}: input {bad} has {} values but model {} takes {}",
            inputs.source,
            inputs.codes[bad].len(),
            model.name,
            model.input_len()
        )));
    }
    let at = |k: u32| model.rederived(Rescale::plain(k, model.rescale.rounding));
    let reference = at(MAX_K_BITS).map_err(|e| {
        input(format!(
            "model {}: cannot re-derive its rescalers at k = 31: {e}",
            model.name
        ))
    })?;
    let out = reference.output();
    let (scale, zp) = (out.q.scale, out.q.zero_point as i64);
    let q31 = outputs(&reference, inputs);
    let classes31: Vec<usize> = q31.iter().map(|y| argmax(y)).collect();
    let hits = |classes: &[usize]| -> Option<Vec<bool>> {
        inputs
            .labels
            .as_ref()
            .map(|l| classes.iter().zip(l).map(|(c, l)| c == l).collect())
    };
    let correct = |classes: &[usize]| hits(classes).map(|h| h.iter().filter(|&&x| x).count());
    let hits31 = hits(&classes31);
    let percent = |n: usize| 100.0 * n as f64 / inputs.len() as f64;
    let reference_correct = correct(&classes31);

    let mut rows = Vec::new();
    for &k in ks {
        let mk = match at(k) {
            Ok(m) => m,
            Err(e) => {
                rows.push(SweepRow {
                    k,
                    error: Some(e),
                    top1_agree: None,
                    top1_agreement: None,
                    agreement_ci95: None,
                    max_abs_diff: None,
                    mean_abs_diff: None,
                    snr_db: None,
                    identical: None,
                    accuracy: None,
                    correct: None,
                    vs_k31: None,
                });
                continue;
            }
        };
        let qk = if k == MAX_K_BITS {
            q31.clone()
        } else {
            outputs(&mk, inputs)
        };
        let classes: Vec<usize> = qk.iter().map(|y| argmax(y)).collect();
        let agree = classes
            .iter()
            .zip(&classes31)
            .filter(|(a, b)| a == b)
            .count();
        let (mut max, mut sum_abs, mut signal, mut noise, mut n) = (0u32, 0u64, 0f64, 0f64, 0u64);
        for (a, b) in qk.iter().zip(&q31) {
            for (&x, &r) in a.iter().zip(b) {
                let d = (x as i64 - r as i64).unsigned_abs() as u32;
                max = max.max(d);
                sum_abs += d as u64;
                let s = scale * (r as i64 - zp) as f64;
                signal += s * s;
                let e = scale * d as f64;
                noise += e * e;
                n += 1;
            }
        }
        let c = correct(&classes);
        let vs_k31 = hits31
            .as_ref()
            .zip(hits(&classes))
            .map(|(r, m)| crate::stats::paired(r, &m));
        rows.push(SweepRow {
            k,
            error: None,
            top1_agree: Some(agree),
            top1_agreement: Some(percent(agree)),
            agreement_ci95: Some(crate::stats::wilson95(agree, inputs.len())),
            max_abs_diff: Some(max),
            mean_abs_diff: Some(sum_abs as f64 / n as f64),
            snr_db: (noise > 0.0).then(|| 10.0 * (signal / noise).log10()),
            identical: Some(noise == 0.0),
            accuracy: c.map(percent),
            correct: c,
            vs_k31,
        });
    }
    Ok(Sweep {
        model: model.name.clone(),
        inputs: inputs.source.clone(),
        count: inputs.len(),
        output: out.name.clone(),
        reference_accuracy: reference_correct.map(percent),
        rows,
    })
}

/// The final tensor of `model` on every input, on all cores.
fn outputs(model: &Model, inputs: &InputSet) -> Vec<Vec<i8>> {
    use rayon::prelude::*;
    let engine = Engine::new(model);
    inputs
        .codes
        .par_iter()
        .map_init(Scratch::default, |s, x| engine.infer(x, s).to_vec())
        .collect()
}

/// The sweep as a markdown table (one row per k).
pub fn markdown(s: &Sweep) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "PTQ sweep of `{}` against its k = 31 rescalers: {} inputs ({}), final tensor `{}`{}\n",
        s.model,
        s.count,
        s.inputs,
        s.output,
        s.reference_accuracy
            .map(|a| format!(", accuracy at k = 31 {a:.2} %"))
            .unwrap_or_default()
    );
    let labels = s.rows.iter().any(|r| r.accuracy.is_some());
    let _ = write!(
        out,
        "| k | top-1 agreement with k = 31 | max abs diff | mean abs diff | SNR (dB) | agreement 95% interval |"
    );
    if labels {
        out.push_str(" accuracy | vs k = 31, points [95% interval] | McNemar p |");
    }
    out.push_str("\n|---:|---:|---:|---:|---:|---|");
    if labels {
        out.push_str("---:|---|---:|");
    }
    out.push('\n');
    for r in &s.rows {
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "| {} | not expressible: {} |",
                r.k,
                e.replace('|', "/")
            );
            continue;
        }
        let snr = match (r.identical, r.snr_db) {
            (Some(true), _) => "identical".to_string(),
            (_, Some(db)) if db.is_finite() => format!("{db:.1}"),
            _ => "-inf".to_string(),
        };
        let _ = write!(
            out,
            "| {} | {:.2} % ({}/{}) | {} | {:.4} | {} |",
            r.k,
            r.top1_agreement.unwrap_or(0.0),
            r.top1_agree.unwrap_or(0),
            s.count,
            r.max_abs_diff.unwrap_or(0),
            r.mean_abs_diff.unwrap_or(0.0),
            snr
        );
        if let Some((lo, hi)) = r.agreement_ci95 {
            let _ = write!(out, " [{lo:.1}, {hi:.1}] |");
        } else {
            out.push_str(" - |");
        }
        if labels {
            let _ = write!(out, " {:.2} % |", r.accuracy.unwrap_or(0.0));
            match &r.vs_k31 {
                Some(p) => {
                    let star = if p.significant() { "*" } else { "" };
                    let _ = write!(
                        out,
                        " {:+.2} [{:+.2}, {:+.2}]{star} | {:.3} |",
                        p.diff, p.ci95.0, p.ci95.1, p.p
                    );
                }
                None => out.push_str(" - | - |"),
            }
        }
        out.push('\n');
    }
    if labels {
        out.push_str(
            "\n`*`: the 95% interval of the paired accuracy difference excludes 0 (not the noise of this many inputs).\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::{RandomSpec, random_model};

    fn model_with_weight_scales() -> Model {
        let mut m = random_model(&RandomSpec {
            seed: 3,
            layers: Some(vec![24, 10]),
            k_bits: Some(31),
            rounding: Some(crate::quant::Rounding::Single),
            ..Default::default()
        });
        // Real factors consistent with the (m, s) the random model carries: S_w such that
        // S_x S_w / S_y equals the dyadic value, so k = 31 re-derives the same model.
        for i in 0..m.ops.len() {
            let io = m.io(&m.ops[i]);
            let (sx, sy) = (io.input().q.scale, io.output.q.scale);
            let ws: Vec<f64> = m.ops[i]
                .kind
                .dyadics()
                .iter()
                // A dead channel (m = 0) gets a factor that underflows to (0, 0) again.
                .map(|d| (d.value() * sy / sx).max(1e-30))
                .collect();
            m.ops[i].weight_scale = Some(ws);
        }
        m.version = 2;
        m
    }

    #[test]
    fn k31_row_is_identical_and_narrow_k_degrades() {
        let m = model_with_weight_scales();
        let mut inputs = InputSet::random(9, 64, m.input_len(), Vec::new());
        inputs.labels = Some((0..64).map(|i| i % 10).collect());
        let s = run(&m, &inputs, &[31, 8, 2]).unwrap();
        assert_eq!(s.rows.len(), 3);
        let r31 = &s.rows[0];
        assert_eq!(r31.identical, Some(true));
        assert_eq!(r31.snr_db, None);
        assert_eq!(r31.top1_agree, Some(64));
        assert_eq!(r31.max_abs_diff, Some(0));
        assert_eq!(r31.accuracy, s.reference_accuracy);
        let p31 = r31.vs_k31.as_ref().unwrap();
        assert_eq!((p31.lost, p31.gained, p31.diff), (0, 0, 0.0));
        assert_eq!(r31.agreement_ci95, Some(crate::stats::wilson95(64, 64)));
        let r2 = &s.rows[2];
        // The paired difference is the accuracy difference, and its counts explain it.
        let p2 = r2.vs_k31.as_ref().unwrap();
        assert_eq!(p2.n, 64);
        assert_eq!(
            r2.correct.unwrap() as i64 - s.rows[0].correct.unwrap() as i64,
            p2.gained as i64 - p2.lost as i64
        );
        assert!((p2.diff - (r2.accuracy.unwrap() - r31.accuracy.unwrap())).abs() < 1e-9);
        let ci = r2.agreement_ci95.unwrap();
        let a = r2.top1_agreement.unwrap();
        assert!(ci.0 <= a && a <= ci.1, "{ci:?} {a}");
        assert!(r2.max_abs_diff.unwrap() > 0, "{r2:?}");
        let snr2 = r2.snr_db.unwrap();
        let snr8 = s.rows[1].snr_db.unwrap_or(f64::INFINITY);
        assert!(
            snr8 > snr2,
            "k = 8 ({snr8}) is closer to k = 31 than k = 2 ({snr2})"
        );
        let md = markdown(&s);
        assert!(
            md.contains("| 31 | 100.00 % (64/64) | 0 | 0.0000 | identical |"),
            "{md}"
        );
        assert!(md.lines().count() >= 6);
        let json = serde_json::to_string(&s).unwrap();
        let back: Sweep = serde_json::from_str(&json).unwrap();
        assert_eq!(back.rows.len(), 3);
        assert_eq!(back.rows[0].k, 31);
        assert_eq!(back, s);
    }

    #[test]
    fn a_model_without_weight_scales_is_refused() {
        let mut m = model_with_weight_scales();
        m.ops[0].weight_scale = None;
        let inputs = InputSet::random(1, 4, m.input_len(), Vec::new());
        let e = run(&m, &inputs, &[8]).unwrap_err().to_string();
        assert!(e.contains("weight_scale is missing"), "{e}");
    }
}
