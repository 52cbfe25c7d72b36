//! [`Plan::to_svg`]: the plan as a picture (feature `plot`).
//!
//! # Design
//!
//! One chart, speedup over workers on a logarithmic axis (the curve's worker counts double):
//! the predicted curve on this machine as a solid line with filled dots, its modelled part
//! (a machine with that many cores) dashed with hollow dots, the runs given to
//! [`Plan::record`] as dots of their own, the Amdahl and imbalance bounds as horizontal lines
//! when they fall within sight of the curve, and the usable cores as a vertical line. Every
//! series has its own colour and a legend label, so the picture reads without the report
//! and a test can find each series in the SVG.

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use super::Plan;
use super::report::speedup;
use crate::Error;

/// Size of the picture in pixels.
const SIZE: (u32, u32) = (800, 500);
/// Colours of the series: the predicted curve, its modelled part, the recorded runs, the
/// bounds and the usable cores.
pub(super) const PREDICTED: RGBColor = RGBColor(0x1F, 0x77, 0xB4);
pub(super) const MODELLED: RGBColor = RGBColor(0x7F, 0xB2, 0xD9);
pub(super) const MEASURED: RGBColor = RGBColor(0xD6, 0x27, 0x28);
pub(super) const AMDAHL: RGBColor = RGBColor(0x2C, 0xA0, 0x2C);
pub(super) const IMBALANCE: RGBColor = RGBColor(0x94, 0x67, 0xBD);
pub(super) const CORES: RGBColor = RGBColor(0x44, 0x44, 0x44);
/// A bound is drawn when it is at most this many times the highest speedup shown; higher,
/// it would squash the curve into the bottom of the chart, and the report still states it.
const BOUND_IN_SIGHT: f64 = 3.0;
/// Dot radius and the dash pattern of the modelled part, in pixels.
const DOT: u32 = 4;
const DASH: (u32, u32) = (8, 5);

impl Plan {
    /// The plan as an SVG picture: the predicted speedup curve (its modelled part, for more
    /// workers than this machine runs usefully, dashed), the runs recorded with
    /// [`record`](Plan::record), the Amdahl and imbalance bounds (when within three times the
    /// highest speedup shown) and a vertical line at the machine's usable cores. Available
    /// with the cargo feature `plot`.
    ///
    /// Saving it takes one line, for example behind a `--plot FILE.svg` option:
    /// `std::fs::write(path, plan.to_svg()?)?`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the chart cannot be drawn (plotters reports a drawing failure).
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::{Machine, WorkloadProfile};
    /// use parexec::Planner;
    ///
    /// let profile = WorkloadProfile::uniform(100_000, Duration::from_micros(100));
    /// let mut plan = Planner::new().profile(profile).machine(Machine::with_cores(2)).plan()?;
    /// plan.record_serial(Duration::from_secs(10));
    /// plan.record(2, Duration::from_secs(6))?;
    /// let svg = plan.to_svg()?;
    /// assert!(svg.starts_with("<svg") && svg.contains("measured (1 run)"));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn to_svg(&self) -> Result<String, Error> {
        let mut svg = String::new();
        draw(self, &mut svg).map_err(|e| Error::from(std::io::Error::other(e.to_string())))?;
        Ok(svg)
    }

    /// `(workers, measured speedup)` of every recorded run.
    fn measured(&self) -> Vec<(f64, f64)> {
        let serial = self.serial_time.as_secs_f64();
        self.runs
            .iter()
            .map(|&(workers, elapsed)| (workers as f64, serial / elapsed.as_secs_f64()))
            .collect()
    }

    /// The bounds worth drawing under a chart `top` high, with their legend labels.
    fn bounds_in_sight(&self, top: f64) -> Vec<(f64, String, RGBColor)> {
        [
            (self.amdahl_bound, "Amdahl bound", AMDAHL),
            (self.imbalance_bound, "imbalance bound", IMBALANCE),
        ]
        .into_iter()
        .filter(|&(bound, _, _)| bound.is_finite() && bound <= top)
        .map(|(bound, name, colour)| (bound, format!("{name} {}", speedup(bound)), colour))
        .collect()
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(plan: &Plan, svg: &mut String) -> DrawResult {
    let measured = plan.measured();
    let highest = plan
        .curve
        .iter()
        .map(|p| p.speedup)
        .chain(measured.iter().map(|&(_, s)| s))
        .fold(1.0, f64::max);
    let in_sight = plan.bounds_in_sight(BOUND_IN_SIGHT * highest);
    let top = 1.15 * in_sight.iter().map(|b| b.0).fold(highest, f64::max);
    let cores = plan.machine.usable_cores.max(1) as f64;
    let widest = plan
        .curve
        .iter()
        .map(|p| p.workers as f64)
        .chain(measured.iter().map(|&(w, _)| w))
        .fold(cores, f64::max);

    // Ticks at the curve's worker counts and the usable cores, not at 3, 5, 6, 7, 9.
    let mut ticks: Vec<f64> = plan.curve.iter().map(|p| p.workers as f64).collect();
    ticks.push(cores);
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let decision = if plan.parallel {
        format!("{} x{}", plan.kind, plan.workers)
    } else {
        "serial".to_owned()
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("predicted speedup (plan: {decision})"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (0.9..widest * 1.25).log_scale().with_key_points(ticks),
            0.0..top,
        )?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc("speedup over serial")
        .x_label_formatter(&|workers| format!("{workers:.0}"))
        .y_label_formatter(&|speedup| format!("{speedup:.1}x"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;

    let points = |modelled: bool| -> Vec<(f64, f64)> {
        plan.curve
            .iter()
            .filter(|p| p.modelled == modelled)
            .map(|p| (p.workers as f64, p.speedup))
            .collect()
    };
    let (here, modelled) = (points(false), points(true));

    chart
        .draw_series(LineSeries::new(
            here.iter().copied(),
            PREDICTED.stroke_width(2),
        ))?
        .label("predicted on this machine")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], PREDICTED.stroke_width(2)));
    chart.draw_series(dots(&here, PREDICTED.filled()))?;
    if !modelled.is_empty() {
        // The dashes start at the last point on this machine, so the curve stays connected.
        let dashed = here.last().into_iter().chain(&modelled).copied();
        chart
            .draw_series(DashedLineSeries::new(
                dashed,
                DASH.0,
                DASH.1,
                MODELLED.stroke_width(2),
            ))?
            .label("modelled: a machine with that many cores")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MODELLED.stroke_width(2)));
        chart.draw_series(dots(&modelled, MODELLED.stroke_width(2)))?;
    }
    if !measured.is_empty() {
        let plural = if measured.len() == 1 { "" } else { "s" };
        chart
            .draw_series(dots(&measured, MEASURED.filled()))?
            .label(format!("measured ({} run{plural})", measured.len()))
            .legend(|(x, y)| Circle::new((x + 10, y), DOT, MEASURED.filled()));
    }
    for (bound, label, colour) in in_sight {
        chart
            .draw_series(LineSeries::new(
                [(0.9, bound), (widest * 1.25, bound)],
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new(
            [(cores, 0.0), (cores, top)],
            CORES.stroke_width(2),
        ))?
        .label(format!("usable cores: {}", plan.machine.usable_cores))
        .legend(|(x, y)| {
            PathElement::new([(x + 10, y - 6), (x + 10, y + 6)], CORES.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn dots<'a>(
    points: &'a [(f64, f64)],
    style: ShapeStyle,
) -> impl Iterator<Item = Circle<(f64, f64), u32>> + 'a {
    points.iter().map(move |&p| Circle::new(p, DOT, style))
}

#[cfg(test)]
mod test;
