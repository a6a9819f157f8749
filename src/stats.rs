//! Paired statistics of two classifiers on the same test images: is a narrow-rescaler model
//! really worse (or better) than the k = 31 model, or is the difference the noise of 2,000
//! images?
//!
//! Both models see the same images, so the comparison is paired: only the discordant images
//! matter (`b`: the reference right and the model wrong; `c`: the other way round). The exact
//! McNemar test is the two-sided binomial test of `b` against `b + c` trials at 1/2. The 95%
//! interval of the accuracy difference is the normal interval of the mean per-image
//! difference `d_i = correct_model(i) - correct_ref(i)`; for several runs of a stochastic
//! method (RAT with seeds s, s+1, ...), `d_i` averages the runs, so the interval covers the
//! test-set sampling of the seed-averaged difference (the spread between seeds is reported
//! beside it, not folded into it).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A model against the reference on the same images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub n: usize,
    /// Images the reference gets right and the model wrong.
    pub lost: usize,
    /// Images the model gets right and the reference wrong.
    pub gained: usize,
    /// Accuracy difference, model minus reference, in points.
    pub diff: f64,
    /// 95% interval of `diff` (points).
    pub ci95: (f64, f64),
    /// Exact two-sided McNemar p-value.
    pub p: f64,
}

impl Paired {
    pub fn to_json(&self) -> Value {
        json!({ "n": self.n, "lost": self.lost, "gained": self.gained, "diff": self.diff,
                "ci95": [self.ci95.0, self.ci95.1], "mcnemar_p": self.p })
    }

    /// Whether the difference is not test-set noise at 95%: the interval excludes zero and
    /// the exact McNemar test agrees (p < 0.05). The normal interval alone is too eager when
    /// only a few images are discordant (4 lost, 0 gained: interval [-0.40, -0.00], p = 0.125).
    pub fn significant(&self) -> bool {
        (self.ci95.0 > 0.0 || self.ci95.1 < 0.0) && self.p < 0.05
    }
}

/// `ln C(n, k)` by summing logarithms (n is at most a few thousand).
fn ln_choose(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (0..k)
        .map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln())
        .sum()
}

/// Exact two-sided binomial test of `x` successes in `n` trials at p = 1/2:
/// `min(1, 2 P(X <= min(x, n - x)))`.
pub fn binomial_two_sided(x: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let lo = x.min(n - x);
    let ln_half_n = n as f64 * 0.5f64.ln();
    let tail: f64 = (0..=lo).map(|i| (ln_choose(n, i) + ln_half_n).exp()).sum();
    (2.0 * tail).min(1.0)
}

/// Wilson score 95% interval of a proportion `x / n`, in percent: unlike the normal interval it
/// stays inside [0, 100] and is not empty at 0 or n (an agreement of 200/200 is
/// [98.1, 100], not a certainty). `(0, 100)` when `n = 0`.
pub fn wilson95(x: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 100.0);
    }
    let (z, nf) = (1.96f64, n as f64);
    let p = x as f64 / nf;
    let denom = 1.0 + z * z / nf;
    let centre = (p + z * z / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / denom;
    (
        100.0 * (centre - half).max(0.0),
        100.0 * (centre + half).min(1.0),
    )
}

/// Mean and normal 95% interval of per-image differences (points).
fn mean_interval(d: &[f64]) -> (f64, (f64, f64)) {
    let n = d.len() as f64;
    if d.is_empty() {
        return (0.0, (0.0, 0.0));
    }
    let mean = d.iter().sum::<f64>() / n;
    let var = if d.len() > 1 {
        d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let half = 1.96 * (var / n).sqrt();
    (100.0 * mean, (100.0 * (mean - half), 100.0 * (mean + half)))
}

/// `model` against `reference`: per-image correctness of each, same images.
pub fn paired(reference: &[bool], model: &[bool]) -> Paired {
    assert_eq!(
        reference.len(),
        model.len(),
        "paired: different image counts"
    );
    let lost = reference
        .iter()
        .zip(model)
        .filter(|(r, m)| **r && !**m)
        .count();
    let gained = reference
        .iter()
        .zip(model)
        .filter(|(r, m)| !**r && **m)
        .count();
    let d: Vec<f64> = reference
        .iter()
        .zip(model)
        .map(|(&r, &m)| m as i32 as f64 - r as i32 as f64)
        .collect();
    let (diff, ci95) = mean_interval(&d);
    Paired {
        n: reference.len(),
        lost,
        gained,
        diff,
        ci95,
        p: binomial_two_sided(gained, lost + gained),
    }
}

/// Several runs of one method against the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Runs {
    /// Each run on its own.
    pub each: Vec<Paired>,
    /// Mean difference over the runs (points) and its 95% interval over test images.
    pub diff: f64,
    pub ci95: (f64, f64),
    /// Sample standard deviation of the runs' differences (points): the seed-to-seed spread.
    pub spread: f64,
}

impl Runs {
    pub fn significant(&self) -> bool {
        self.ci95.0 > 0.0 || self.ci95.1 < 0.0
    }

    pub fn to_json(&self) -> Value {
        json!({ "diff": self.diff, "ci95": [self.ci95.0, self.ci95.1], "spread": self.spread,
                "runs": self.each.iter().map(Paired::to_json).collect::<Vec<_>>() })
    }
}

pub fn runs(reference: &[bool], models: &[Vec<bool>]) -> Runs {
    let each: Vec<Paired> = models.iter().map(|m| paired(reference, m)).collect();
    let r = models.len().max(1) as f64;
    let d: Vec<f64> = (0..reference.len())
        .map(|i| {
            models.iter().map(|m| m[i] as i32 as f64).sum::<f64>() / r - reference[i] as i32 as f64
        })
        .collect();
    let (diff, ci95) = mean_interval(&d);
    let diffs: Vec<f64> = each.iter().map(|p| p.diff).collect();
    let spread = if diffs.len() > 1 {
        let m = diffs.iter().sum::<f64>() / diffs.len() as f64;
        (diffs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Runs {
        each,
        diff,
        ci95,
        spread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_values() {
        // Reference values from the closed form (Wilson 1927), z = 1.96.
        let close = |a: (f64, f64), b: (f64, f64)| {
            assert!(
                (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6,
                "{a:?} vs {b:?}"
            )
        };
        close(wilson95(0, 10), (0.0, 27.754016876661));
        close(wilson95(200, 200), (98.115399408168, 100.0));
        close(wilson95(47, 50), (83.782656629123, 97.938540363537));
        assert_eq!(wilson95(0, 0), (0.0, 100.0));
    }

    #[test]
    fn few_discordant_images_are_not_significant() {
        // 4 lost, 0 gained of 2,000: the normal interval just excludes 0, McNemar does not.
        let reference = vec![true; 2000];
        let mut model = reference.clone();
        model[..4].fill(false);
        let p = paired(&reference, &model);
        assert!(p.ci95.1 < 0.0 && (p.p - 0.125).abs() < 1e-12, "{p:?}");
        assert!(!p.significant());
        model[..12].fill(false);
        assert!(paired(&reference, &model).significant());
    }

    #[test]
    fn binomial_tail_values() {
        // Known values: 0 of 10 -> 2/1024; 2 of 10 -> 2 * 56/1024; 5 of 10 -> 1.
        assert!((binomial_two_sided(0, 10) - 2.0 / 1024.0).abs() < 1e-12);
        assert!((binomial_two_sided(2, 10) - 112.0 / 1024.0).abs() < 1e-12);
        assert_eq!(binomial_two_sided(5, 10), 1.0);
        assert_eq!(binomial_two_sided(8, 10), binomial_two_sided(2, 10));
        assert_eq!(binomial_two_sided(0, 0), 1.0);
        // Large n stays finite: 900 of 2000 is far in the tail.
        let p = binomial_two_sided(900, 2000);
        assert!(p > 0.0 && p < 1e-5, "{p}");
    }

    #[test]
    fn paired_counts_and_interval() {
        let r = vec![true, true, false, true, false, true, true, true];
        let m = vec![true, false, true, true, true, true, false, true];
        let p = paired(&r, &m);
        assert_eq!((p.lost, p.gained), (2, 2));
        assert_eq!(p.diff, 0.0);
        assert!(p.ci95.0 < 0.0 && p.ci95.1 > 0.0);
        assert_eq!(p.p, 1.0);
        assert!(!p.significant());
        // 30 images lost, none gained, out of 2000: -1.5 points, significant.
        let r = vec![true; 2000];
        let mut m = vec![true; 2000];
        m[..30].iter_mut().for_each(|v| *v = false);
        let p = paired(&r, &m);
        assert!((p.diff + 1.5).abs() < 1e-12);
        assert!(p.significant() && p.p < 1e-6);
        let rs = runs(&r, &[m.clone(), vec![true; 2000]]);
        assert!((rs.diff + 0.75).abs() < 1e-12);
        assert!((rs.spread - (1.5f64 * 1.5 / 2.0).sqrt()).abs() < 1e-9);
    }
}
