//! The report's SVG figures (plotters): rescaler cost against k, the accuracy/area trade-off,
//! and a block picture of the generated datapath.

use super::artifacts::{AccuracyRow, AccuracySweep, RescalerRow};
use crate::rtl::Plan;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// Measured rescaler LUT4s against k: the requantizers, ADD's rescalers, and the analytical
/// estimate of the requantizers.
pub fn rescaler_vs_k(rows: &[RescalerRow]) -> Result<String> {
    let rows: Vec<&RescalerRow> = rows.iter().filter(|r| r.csd.is_none()).collect();
    let ks: Vec<u32> = rows.iter().map(|r| r.k).collect();
    let luts: Vec<f64> = rows.iter().map(|r| r.requant.luts as f64).collect();
    let add: Vec<f64> = rows.iter().map(|r| r.add.luts as f64).collect();
    let est: Vec<f64> = rows
        .iter()
        .map(|r| r.units.iter().filter_map(|u| u.estimate_luts).sum())
        .collect();
    let mut series: Vec<(&str, RGBColor, &Vec<f64>)> = vec![
        ("requantizers, LUT4 (yosys)", BLUE, &luts),
        (
            "requantizers, LUT4 (analytical estimate)",
            RGBColor(230, 120, 0),
            &est,
        ),
    ];
    if add.iter().any(|&a| a > 0.0) {
        series.push(("ADD rescalers, LUT4 (yosys)", RGBColor(0, 150, 0), &add));
    }
    line_chart(
        "Rescaler cost vs multiplicand width k (iCE40)",
        "LUT4",
        &ks,
        &series,
        &[],
    )
}

/// Accuracy (or agreement with k = 31) against k: PTQ and RAT, with 95% intervals.
pub fn accuracy_vs_k(acc: &AccuracySweep) -> Result<String> {
    let rows: Vec<&AccuracyRow> = acc.rows.iter().filter(|r| r.csd.is_none()).collect();
    let ks: Vec<u32> = rows.iter().map(|r| r.k).collect();
    let ptq: Vec<f64> = rows.iter().map(|r| r.ptq).collect();
    let rat: Vec<f64> = rows.iter().map(|r| r.rat.unwrap_or(f64::NAN)).collect();
    let mut whiskers: Vec<(usize, f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.ptq_ci.0, r.ptq_ci.1))
        .collect();
    whiskers.extend(
        rows.iter()
            .enumerate()
            .filter_map(|(i, r)| r.rat_ci.map(|c| (i, c.0, c.1))),
    );
    let label = format!("RAT ({})", acc.rat_variant.as_deref().unwrap_or("-"));
    let mut series: Vec<(&str, RGBColor, &Vec<f64>)> = vec![("PTQ", RED, &ptq)];
    if rat.iter().any(|v| v.is_finite()) {
        series.push((label.as_str(), BLUE, &rat));
    }
    let what = if acc.metric == "accuracy" {
        "top-1 accuracy (%)"
    } else {
        "top-1 agreement with k = 31 (%)"
    };
    line_chart(
        &format!("{what} vs k, 95% intervals ({} inputs)", acc.count),
        what,
        &ks,
        &series,
        &whiskers,
    )
}

/// One chart with k on the x axis (in the given order) and vertical 95% whiskers.
fn line_chart(
    caption: &str,
    y_desc: &str,
    ks: &[u32],
    series: &[(&str, RGBColor, &Vec<f64>)],
    whiskers: &[(usize, f64, f64)],
) -> Result<String> {
    let n = ks.len() as i32;
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.2.iter().cloned())
        .chain(whiskers.iter().flat_map(|w| [w.1, w.2]))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(0.5);
    let (y0, y1) = if y_desc == "LUT4" {
        (0.0, hi * 1.1 + 1.0)
    } else {
        (lo - pad, hi + pad)
    };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (820, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.3f64..(n - 1).max(1) as f64 + 0.3, y0..y1)
            .map_err(err)?;
        let labels = ks.to_vec();
        chart
            .configure_mesh()
            .x_labels(n.max(2) as usize)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                labels
                    .get(i as usize)
                    .map(|k| k.to_string())
                    .unwrap_or_default()
            })
            .x_desc("k (bits of m)")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for &(i, a, b) in whiskers {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(i as f64, a), (i as f64, b)],
                    BLACK.mix(0.5).stroke_width(1),
                )))
                .map_err(err)?;
        }
        for &(name, color, ys) in series {
            let pts: Vec<(f64, f64)> = ys
                .iter()
                .enumerate()
                .filter(|(_, y)| y.is_finite())
                .map(|(i, &y)| (i as f64, y))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A block picture of the generated design: the stream through each layer's MAC array and
/// requantizer to the argmax, with the sizes that matter.
pub fn datapath(plan: &Plan) -> Result<String> {
    let ops: Vec<&crate::rtl::OpPlan> = plan.ops.iter().filter(|o| o.kind != "reshape").collect();
    let n = ops.len();
    let w = 240 + 250 * n as u32;
    let h = 330u32;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = ("sans-serif", 17).into_font().color(&BLACK);
        let body = ("sans-serif", 12).into_font().color(&BLACK);
        let centre = body.pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            format!(
                "{} (model {}, hash {}): {} cycles/inference, {} library units",
                plan.top,
                plan.model_name,
                plan.model_hash,
                plan.interval,
                plan.units.len()
            ),
            (12, 10),
            title,
        ))
        .map_err(err)?;
        let boxed = |x: i32, y: i32, bw: i32, bh: i32, fill: RGBColor, lines: &[String]| {
            root.draw(&Rectangle::new([(x, y), (x + bw, y + bh)], fill.filled()))
                .map_err(err)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + bw, y + bh)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
            let step = 16;
            let y0 = y + bh / 2 - (lines.len() as i32 - 1) * step / 2;
            for (i, l) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    l.clone(),
                    (x + bw / 2, y0 + i as i32 * step),
                    centre.clone(),
                ))
                .map_err(err)?;
            }
            Ok::<(), anyhow::Error>(())
        };
        let arrow = |x0: i32, x1: i32, y: i32, label: &str| {
            root.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
            root.draw(&Polygon::new(
                vec![(x1, y), (x1 - 8, y - 5), (x1 - 8, y + 5)],
                BLACK.filled(),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                label.to_string(),
                ((x0 + x1) / 2, y - 12),
                ("sans-serif", 11)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(err)?;
            Ok::<(), anyhow::Error>(())
        };
        let mid = 150;
        boxed(
            10,
            mid - 40,
            90,
            80,
            RGBColor(235, 235, 235),
            &[
                "s_axis".into(),
                format!("{} x int8", plan.input_len),
                "1 per beat".into(),
            ],
        )?;
        let mut x = 100;
        for o in ops {
            arrow(x, x + 30, mid, "axis")?;
            let dx = x + 30;
            let name: String = o.name.chars().take(26).collect();
            boxed(
                dx,
                mid - 110,
                200,
                100,
                RGBColor(210, 228, 250),
                &[
                    format!("{}: {}", o.index, o.kind),
                    name,
                    format!("SIMD {} PE {}", o.fold.simd, o.fold.pe),
                    format!("{} cycles", o.cycles),
                ],
            )?;
            let low = if o.acc_bits > 0 {
                vec![
                    format!("requant: {} lane(s)", o.fold.rq),
                    o.requant_form.to_string(),
                    format!("acc {} b", o.acc_bits),
                ]
            } else {
                vec![o.requant_form.to_string()]
            };
            boxed(dx, mid + 10, 200, 100, RGBColor(250, 225, 200), &low)?;
            root.draw(&PathElement::new(
                vec![(dx + 100, mid - 10), (dx + 100, mid + 10)],
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
            x = dx + 200;
        }
        arrow(x, x + 30, mid, "axis")?;
        boxed(
            x + 30,
            mid - 40,
            90,
            80,
            RGBColor(220, 240, 220),
            &[
                "argmax".into(),
                format!("{} outputs", plan.classes),
                "then class".into(),
            ],
        )?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}
