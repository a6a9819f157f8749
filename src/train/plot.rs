//! Accuracy against rescale width k as an SVG (plotters), for the sweep report, and accuracy
//! against the CSD digit budget D for the multiplierless rows.
//!
//! k is plotted on evenly spaced categories, widest first, because the interesting part
//! (k <= 8) would be squeezed into a corner on a linear axis running to 31.

use super::sweep_result::{Row, SweepResult};
use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// Half-point grid around the data: the differences that matter are tenths of a point.
fn y_range<'a>(rows: impl Iterator<Item = &'a Row>, r: &SweepResult) -> (f64, f64) {
    let all = rows
        .flat_map(|row| [row.ptq, row.rat_a, row.rat_b])
        .chain([r.float_accuracy, r.qat_accuracy]);
    let (lo, hi) = all.fold((100f64, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y_lo = (((lo - 0.3) * 2.0).floor() / 2.0).clamp(0.0, 99.5);
    let y_hi = (((hi + 0.3) * 2.0).ceil() / 2.0).clamp(y_lo + 0.5, 100.0);
    (y_lo, y_hi)
}

/// One accuracy series of the sweep: name, colour, accessor.
type Series = (&'static str, RGBColor, fn(&Row) -> f64);

const SERIES: [Series; 3] = [
    ("PTQ", RED, |r| r.ptq),
    ("RAT-a", BLUE, |r| r.rat_a),
    ("RAT-b", RGBColor(0, 150, 0), |r| r.rat_b),
];

pub fn svg(r: &SweepResult) -> Result<String> {
    let rows: Vec<&Row> = r.plain().collect();
    let n = rows.len() as i32;
    let ks: Vec<u32> = rows.iter().map(|row| row.k).collect();
    let (y_lo, y_hi) = y_range(rows.iter().copied(), r);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (820, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "MNIST MLP: test accuracy vs rescale multiplicand width k",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0i32..(n - 1).max(1), y_lo..y_hi)
            .map_err(|e| anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_labels(n.max(2) as usize)
            .x_label_formatter(&|i| {
                ks.get(*i as usize)
                    .map(|k| k.to_string())
                    .unwrap_or_default()
            })
            .x_desc("k (bits of the rescale multiplicand m)")
            .y_desc("accuracy on the test split (%)")
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        let series: [(&str, RGBColor, Vec<f64>); 3] = [
            (
                "PTQ (re-derived m, no training)",
                RED,
                rows.iter().map(|x| x.ptq).collect(),
            ),
            (
                "RAT-a (paper: m re-derived per step)",
                BLUE,
                rows.iter().map(|x| x.rat_a).collect(),
            ),
            (
                "RAT-b (learned rescale)",
                RGBColor(0, 150, 0),
                rows.iter().map(|x| x.rat_b).collect(),
            ),
        ];
        for (name, color, ys) in series {
            let pts: Vec<(i32, f64)> = ys.iter().enumerate().map(|(i, &y)| (i as i32, y)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| anyhow!("plot: {e}"))?;
        }
        let flat = |y: f64| vec![(0, y), ((n - 1).max(1), y)];
        chart
            .draw_series(LineSeries::new(
                flat(r.float_accuracy),
                BLACK.stroke_width(1),
            ))
            .map_err(|e| anyhow!("plot: {e}"))?
            .label("float")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    Ok(buf)
}

/// Accuracy against the CSD digit budget, one panel per width k of the CSD rows: x runs from
/// the unconstrained k-bit row of that width (where the sweep has one) through D = max .. 1.
pub fn svg_csd(r: &SweepResult) -> Result<String> {
    let mut ds: Vec<u32> = r.constrained().filter_map(|row| row.csd).collect();
    ds.sort_unstable_by(|a, b| b.cmp(a));
    ds.dedup();
    let mut widths: Vec<u32> = Vec::new();
    for row in r.constrained() {
        if !widths.contains(&row.k) {
            widths.push(row.k);
        }
    }
    // Category 0 is "no digit limit"; D sits at 1 + its index in `ds`.
    let cats: Vec<String> = std::iter::once("k-bit".to_string())
        .chain(ds.iter().map(|d| format!("D = {d}")))
        .collect();
    let x_of = |row: &Row| match row.csd {
        None => Some(0),
        Some(d) => ds.iter().position(|&x| x == d).map(|i| i as i32 + 1),
    };
    let used: Vec<&Row> = r
        .rows
        .iter()
        .filter(|row| widths.contains(&row.k))
        .collect();
    let (y_lo, y_hi) = y_range(used.iter().copied(), r);
    let n = cats.len() as i32;
    let x_range = -0.3f64..(n - 1) as f64 + 0.3;
    let panel_w = 330u32;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (panel_w * widths.len() as u32 + 20, 480))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let root = root
            .titled(
                "MNIST MLP: test accuracy vs non-zero CSD digits D of every rescale multiplicand m",
                ("sans-serif", 18),
            )
            .map_err(|e| anyhow!("plot: {e}"))?;
        let panels = root.split_evenly((1, widths.len()));
        for (wi, (&k, area)) in widths.iter().zip(&panels).enumerate() {
            let mut chart = ChartBuilder::on(area)
                .caption(format!("k = {k}"), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(45)
                .y_label_area_size(if wi == 0 { 55 } else { 35 })
                .build_cartesian_2d(x_range.clone(), y_lo..y_hi)
                .map_err(|e| anyhow!("plot: {e}"))?;
            let label = |x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    cats.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            let mut mesh = chart.configure_mesh();
            mesh.x_labels(n as usize)
                .x_label_formatter(&label)
                .x_desc("D (a baked m costs D - 1 adders)");
            if wi == 0 {
                mesh.y_desc("accuracy on the test split (%)");
            }
            mesh.draw().map_err(|e| anyhow!("plot: {e}"))?;
            for (name, color, acc) in SERIES {
                let mut pts: Vec<(f64, f64)> = used
                    .iter()
                    .filter(|row| row.k == k)
                    .filter_map(|row| x_of(row).map(|x| (x as f64, acc(row))))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|e| anyhow!("plot: {e}"))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| anyhow!("plot: {e}"))?;
            }
            let flat = |y: f64| vec![(x_range.start, y), (x_range.end, y)];
            chart
                .draw_series(LineSeries::new(
                    flat(r.float_accuracy),
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label("float")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
            chart
                .draw_series(DashedLineSeries::new(
                    flat(r.qat_accuracy),
                    4,
                    3,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label("QAT, k = 31")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], BLACK));
            if wi == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::LowerLeft)
                    .background_style(WHITE.mix(0.9))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| anyhow!("plot: {e}"))?;
            }
        }
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    Ok(buf)
}
