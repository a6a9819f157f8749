//! The report's SVG figures (plotters): rescaler cost against k, the accuracy/area trade-off,
//! and a block picture of the generated datapath.

use crate::rtl::Plan;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

/// Measured requantizer LUT4s (all layers) against k, with the analytical estimate.
pub fn rescaler_vs_k(rows: &[Value]) -> Result<String> {
    let ks: Vec<u64> = rows.iter().filter_map(|r| r["k"].as_u64()).collect();
    let luts: Vec<f64> = rows
        .iter()
        .map(|r| r["requant_total"]["luts"].as_f64().unwrap_or(0.0))
        .collect();
    let est: Vec<f64> = rows
        .iter()
        .map(|r| {
            r["modules"]
                .as_array()
                .map(|m| m.iter().filter_map(|x| x["estimate_luts"].as_f64()).sum())
                .unwrap_or(0.0)
        })
        .collect();
    let dff: Vec<f64> = rows
        .iter()
        .map(|r| r["requant_total"]["ffs"].as_f64().unwrap_or(0.0))
        .collect();
    let n = ks.len() as i32;
    let top = luts.iter().chain(&est).cloned().fold(1.0f64, f64::max) * 1.1;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (820, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Rescaler cost vs multiplicand width k (iCE40, all layers)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0i32..(n - 1).max(1), 0f64..top)
            .map_err(err)?;
        let labels = ks.clone();
        chart
            .configure_mesh()
            .x_labels(n.max(2) as usize)
            .x_label_formatter(&|i| {
                labels
                    .get(*i as usize)
                    .map(|k| k.to_string())
                    .unwrap_or_default()
            })
            .x_desc("k (bits of m)")
            .y_desc("cells")
            .draw()
            .map_err(err)?;
        let series: [(&str, RGBColor, &Vec<f64>); 3] = [
            ("LUT4 (yosys)", BLUE, &luts),
            ("LUT4 (analytical estimate)", RGBColor(230, 120, 0), &est),
            ("flip-flops (yosys)", RGBColor(0, 150, 0), &dff),
        ];
        for (name, color, ys) in series {
            let pts: Vec<(i32, f64)> = ys.iter().enumerate().map(|(i, &y)| (i as i32, y)).collect();
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
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Accuracy of the RAT variant against the rescaler LUT4s it needs, one point per k.
pub fn tradeoff(rows: &[Value], sweep: &Value, variant: &str) -> Result<String> {
    let acc_of = |k: u64, col: &str| {
        sweep["rows"]
            .as_array()
            .and_then(|rs| {
                rs.iter()
                    .find(|r| r["k"].as_u64() == Some(k) && r["csd_digits"].is_null())
            })
            .and_then(|r| r[col].as_f64())
    };
    let pts: Vec<(u64, f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let k = r["k"].as_u64()?;
            let luts = r["requant_total"]["luts"].as_f64()?;
            Some((k, luts, acc_of(k, variant)?, acc_of(k, "ptq")?))
        })
        .collect();
    let xmax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let (lo, hi) = pts
        .iter()
        .flat_map(|p| [p.2, p.3])
        .fold((100f64, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let y_lo = (((lo - 0.3) * 2.0).floor() / 2.0).clamp(0.0, 99.5);
    let y_hi = (((hi + 0.3) * 2.0).ceil() / 2.0).clamp(y_lo + 0.5, 100.0);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (820, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Accuracy vs rescaler area: one point per k",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("rescaler LUT4s, all layers (iCE40, yosys)")
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(err)?;
        let rat_name = if variant == "rat_a" { "RAT-a" } else { "RAT-b" };
        for (name, color, idx) in [(rat_name, BLUE, 2usize), ("PTQ", RED, 3)] {
            chart
                .draw_series(pts.iter().map(|p| {
                    let y = if idx == 2 { p.2 } else { p.3 };
                    Circle::new((p.1, y), 4, color.filled())
                }))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        chart
            .draw_series(pts.iter().map(|p| {
                Text::new(
                    format!("k={}", p.0),
                    (p.1, p.2),
                    ("sans-serif", 13).into_font().color(&BLACK),
                )
            }))
            .map_err(err)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
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
