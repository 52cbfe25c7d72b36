//! The picture is checked by reading it back: every series is found in the SVG by its colour
//! and compared with the plan's fields.

use std::time::Duration;

use super::*;
use crate::Planner;
use crate::planner::{Machine, WorkloadProfile};

/// What the SVG holds: text, dots and lines.
struct Picture {
    texts: Vec<String>,
    /// `(cx, cy, fill, stroke)`.
    dots: Vec<(f64, f64, String, String)>,
    /// `(stroke, points)`.
    lines: Vec<(String, Vec<(f64, f64)>)>,
}

fn hex(colour: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
}

fn read(svg: &str) -> Picture {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    let attr = |n: roxmltree::Node<'_, '_>, name: &str| n.attribute(name).unwrap_or("").to_owned();
    let number = |n: roxmltree::Node<'_, '_>, name: &str| attr(n, name).parse::<f64>().unwrap();
    let mut picture = Picture {
        texts: Vec::new(),
        dots: Vec::new(),
        lines: Vec::new(),
    };
    for node in doc.descendants() {
        match node.tag_name().name() {
            "text" => picture
                .texts
                .push(node.text().unwrap_or("").trim().to_owned()),
            "circle" => picture.dots.push((
                number(node, "cx"),
                number(node, "cy"),
                attr(node, "fill"),
                attr(node, "stroke"),
            )),
            "polyline" => {
                let points = attr(node, "points")
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                picture.lines.push((attr(node, "stroke"), points));
            }
            _ => {}
        }
    }
    picture
}

impl Picture {
    fn has_text(&self, text: &str) -> bool {
        self.texts.iter().any(|t| t == text)
    }

    /// Centres of the dots filled with `colour` (`filled`) or drawn in outline.
    fn dots_of(&self, colour: RGBColor, filled: bool) -> Vec<(f64, f64)> {
        let colour = hex(colour);
        self.dots
            .iter()
            .filter(|d| if filled { d.2 == colour } else { d.3 == colour })
            .map(|d| (d.0, d.1))
            .collect()
    }

    fn lines_of(&self, colour: RGBColor) -> Vec<&[(f64, f64)]> {
        let colour = hex(colour);
        self.lines
            .iter()
            .filter(|l| l.0 == colour)
            .map(|l| l.1.as_slice())
            .collect()
    }

    /// The longest line of `colour`: the chart's own, not the legend's sample.
    fn longest(&self, colour: RGBColor) -> Vec<(f64, f64)> {
        let length = |l: &&[(f64, f64)]| {
            let ((x0, y0), (x1, y1)) = (l[0], l[l.len() - 1]);
            (x1 - x0).hypot(y1 - y0)
        };
        let lines = self.lines_of(colour);
        let longest = lines.iter().max_by(|a, b| length(a).total_cmp(&length(b)));
        longest.expect("a line of that colour").to_vec()
    }
}

/// A plan with a serial part and an outlier, on 2 cores, with two recorded runs: every
/// series is present.
fn recorded_plan() -> Plan {
    let mut profile = WorkloadProfile::uniform(1000, Duration::from_millis(1));
    profile.serial = Duration::from_millis(100);
    profile.largest_item = Duration::from_millis(80);
    let mut plan = Planner::new()
        .profile(profile)
        .machine(Machine::with_cores(2))
        .plan()
        .unwrap();
    plan.record_serial(Duration::from_millis(1100));
    plan.record(2, Duration::from_millis(640)).unwrap();
    plan.record(1, Duration::from_millis(1150)).unwrap();
    plan
}

#[test]
fn every_series_matches_the_plan() {
    let plan = recorded_plan();
    let picture = read(&plan.to_svg().unwrap());
    let here = plan.curve.iter().filter(|p| !p.modelled).count();
    let modelled = plan.curve.len() - here;
    assert!(here == 2 && modelled == 3, "{plan}");

    // The predicted curve: one dot per point, joined by one line through them all.
    let dots = picture.dots_of(PREDICTED, true);
    assert_eq!(dots.len(), here);
    assert!(picture.lines_of(PREDICTED).contains(&dots.as_slice()));
    // Higher speedups sit higher up (SVG y grows downwards).
    let speedups: Vec<f64> = plan.curve.iter().map(|p| p.speedup).collect();
    assert_eq!(dots[0].1 > dots[1].1, speedups[0] < speedups[1]);
    // The modelled part: hollow dots, dashes (many short lines).
    assert_eq!(picture.dots_of(MODELLED, false).len(), modelled);
    assert!(picture.lines_of(MODELLED).len() > modelled);
    // The recorded runs, plus the legend's sample dot.
    let measured = picture.dots_of(MEASURED, true);
    assert_eq!(measured.len(), 2 + 1);
    // The usable cores: a vertical line through the curve's point at 2 workers, where the run
    // on 2 workers also sits.
    let marker = picture.longest(CORES);
    assert_eq!(marker.len(), 2);
    assert_eq!(marker[0].0, marker[1].0);
    assert_eq!(marker[0].0, dots[1].0);
    assert!(measured.iter().any(|m| m.0 == marker[0].0));
    // Both bounds are within sight: horizontal lines, the lower bound drawn lower.
    let amdahl = picture.longest(AMDAHL);
    let imbalance = picture.longest(IMBALANCE);
    assert_eq!(amdahl[0].1, amdahl[1].1);
    assert_eq!(
        amdahl[0].1 > imbalance[0].1,
        plan.amdahl_bound < plan.imbalance_bound
    );

    for label in [
        "predicted on this machine".to_owned(),
        "modelled: a machine with that many cores".to_owned(),
        "measured (2 runs)".to_owned(),
        format!("Amdahl bound {}", speedup(plan.amdahl_bound)),
        format!("imbalance bound {}", speedup(plan.imbalance_bound)),
        "usable cores: 2".to_owned(),
    ] {
        assert!(picture.has_text(&label), "no legend label {label:?}");
    }
}

#[test]
fn series_absent_from_the_plan_are_absent_from_the_picture() {
    // Waiting work on 2 cores: every curve point runs on this machine; no serial part, no
    // recorded run, and an imbalance bound far above the curve.
    let mut calls = WorkloadProfile::uniform(10_000, Duration::from_millis(70));
    calls.cpu_share = 0.01;
    let plan = Planner::new()
        .profile(calls)
        .machine(Machine::with_cores(2))
        .plan()
        .unwrap();
    assert!(plan.curve.iter().all(|p| !p.modelled), "{plan}");
    let picture = read(&plan.to_svg().unwrap());
    assert_eq!(picture.dots_of(PREDICTED, true).len(), plan.curve.len());
    assert!(picture.dots_of(MODELLED, false).is_empty());
    assert!(picture.dots_of(MEASURED, true).is_empty());
    assert!(picture.lines_of(AMDAHL).is_empty() && picture.lines_of(IMBALANCE).is_empty());
    assert!(picture.has_text("predicted on this machine"));
    assert!(
        !picture
            .texts
            .iter()
            .any(|t| t.contains("bound") || t.contains("measured"))
    );
    assert!(picture.has_text(&format!(
        "predicted speedup (plan: threads x{})",
        plan.workers
    )));
}
