//! Reach over time as an SVG line chart: one line per strategy, the share of appointment
//! notices acknowledged by each hour after they were made.
//!
//! Written by hand: plotters needs a font backend (ttf or ab_glyph, and fonts on the machine)
//! to lay out its labels even for SVG, which is more than three lines and two axes are worth.

use super::SimReport;
use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Colour-blind-safe (Okabe–Ito) and distinguishable in grey by the dash pattern as well, in
/// the strategies' order: kontaktvei solid, the baselines dashed and dotted.
const STYLES: [(&str, &str); 3] = [("#009E73", ""), ("#E69F00", "6 4"), ("#56B4E9", "2 3")];

pub fn svg(report: &SimReport) -> Result<String, String> {
    let max_hours = report
        .strategies
        .values()
        .flat_map(|r| r.reach_curve.iter().map(|(h, _)| *h))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |h: f64| LEFT + h / max_hours * plot_w;
    let y = |share: f64| TOP + (1.0 - share) * plot_h;
    let mut s = String::new();
    let w = |e: std::fmt::Error| e.to_string();
    writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12" role="img" aria-labelledby="title">"#
    )
    .map_err(w)?;
    writeln!(
        s,
        r#"<title id="title">Reach over time: share of notices acknowledged, by hours since the notice ({} patients, scenario {})</title>"#,
        report.patients, report.scenario
    )
    .map_err(w)?;
    writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#).map_err(w)?;
    writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">Share of notices acknowledged, by hours after the notice</text>"#
    )
    .map_err(w)?;
    for i in 0..=10 {
        let share = f64::from(i) / 10.0;
        let yy = y(share);
        writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}%</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            i * 10
        )
        .map_err(w)?;
    }
    let step = if max_hours > 200.0 { 48.0 } else { 24.0 };
    let mut h = 0.0;
    while h <= max_hours {
        let xx = x(h);
        writeln!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{h}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        )
        .map_err(w)?;
        h += step;
    }
    writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">hours after the notice was made</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0
    )
    .map_err(w)?;
    writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    )
    .map_err(w)?;
    for (i, (name, result)) in report.strategies.iter().enumerate() {
        let (colour, dash) = STYLES[i % STYLES.len()];
        let points: Vec<String> = result
            .reach_curve
            .iter()
            .map(|(h, share)| format!("{:.1},{:.1}", x(f64::from(*h)), y(*share)))
            .collect();
        writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}" points="{}"/>"#,
            points.join(" ")
        )
        .map_err(w)?;
        let ly = TOP + 20.0 + i as f64 * 22.0;
        let lx = LEFT + plot_w + 14.0;
        writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}"/><text x="{}" y="{}">{name}</text>"#,
            lx + 26.0,
            lx + 32.0,
            ly + 4.0
        )
        .map_err(w)?;
    }
    writeln!(s, "</svg>").map_err(w)?;
    Ok(s)
}
