//! Accuracy against rescale width k as an SVG (plotters), for the sweep report.
//!
//! k is plotted on evenly spaced categories, widest first, because the interesting part
//! (k <= 8) would be squeezed into a corner on a linear axis running to 31.

use super::sweep::SweepResult;
use anyhow::{Result, anyhow};
use plotters::prelude::*;

pub fn svg(r: &SweepResult) -> Result<String> {
    let n = r.rows.len() as i32;
    let ks: Vec<u32> = r.rows.iter().map(|row| row.k).collect();
    let all = r
        .rows
        .iter()
        .flat_map(|row| [row.ptq, row.rat_a, row.rat_b])
        .chain([r.float_accuracy, r.qat_accuracy]);
    let (lo, hi) = all.fold((100f64, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Half-point grid around the data: the differences that matter are tenths of a point.
    let y_lo = (((lo - 0.3) * 2.0).floor() / 2.0).clamp(0.0, 99.5);
    let y_hi = (((hi + 0.3) * 2.0).ceil() / 2.0).clamp(y_lo + 0.5, 100.0);
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
                r.rows.iter().map(|x| x.ptq).collect(),
            ),
            (
                "RAT-a (paper: m re-derived per step)",
                BLUE,
                r.rows.iter().map(|x| x.rat_a).collect(),
            ),
            (
                "RAT-b (learned rescale)",
                RGBColor(0, 150, 0),
                r.rows.iter().map(|x| x.rat_b).collect(),
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
