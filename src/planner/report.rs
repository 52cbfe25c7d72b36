//! The human-readable report of a [`Plan`]: five lines, workload, executor, predicted speedup
//! curve, limit and decision.

use std::fmt;
use std::time::Duration;

use super::{Limit, Plan};

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.workload;
        write!(
            f,
            "workload: {} items, {}/item (cv {:.1}), {} of the time waiting, largest item {}",
            count(w.items),
            duration(w.mean_item),
            w.cv,
            percent(w.wait_share()),
            duration(w.largest_item),
        )?;
        if !w.serial.is_zero() {
            write!(f, ", serial part {}", duration(w.serial))?;
        }
        if w.payload_bytes > 0.0 {
            write!(
                f,
                ", {} bytes moved per item",
                count(w.payload_bytes.round() as usize)
            )?;
        }
        let configuration = format!(
            "{} x{}, chunksize {} (≈ {} per chunk; overhead {})",
            self.kind,
            self.workers,
            count(self.chunksize),
            duration(self.chunk_duration),
            percent(self.overhead_share),
        );
        if self.parallel {
            write!(f, "\nexecutor: {configuration}")?;
        } else {
            write!(
                f,
                "\nexecutor: serial, on the calling thread (best parallel option: {configuration})"
            )?;
        }
        f.write_str("\npredicted speedup: ")?;
        for (i, point) in self.curve.iter().enumerate() {
            let separator = if i == 0 { "" } else { " | " };
            let star = if point.modelled { "*" } else { "" };
            write!(
                f,
                "{separator}{}w {}{star}",
                point.workers,
                speedup(point.speedup)
            )?;
        }
        if self.curve.iter().any(|p| p.modelled) {
            let cores = self.machine.usable_cores;
            let plural = if cores == 1 { "" } else { "s" };
            write!(
                f,
                "   (* beyond this machine's {cores} core{plural}: modelled)"
            )?;
        }
        write!(f, "\nlimit: {}", self.limit_detail())?;
        if self.limit != Limit::SerialPart && self.serial_share > 0.0 {
            write!(f, "; serial part {}", self.serial_detail())?;
        }
        if self.limit != Limit::Imbalance && self.imbalance_bound < 100.0 {
            write!(f, "; {}", self.imbalance_detail())?;
        }
        if self.limit != Limit::StartUp {
            write!(f, "; pool start-up {}", duration(self.startup))?;
        }
        if self.parallel {
            write!(
                f,
                "\ndecision: parallel (efficiency {:.2} >= {:.2})",
                self.efficiency, self.threshold
            )
        } else if self.speedup <= 1.0 {
            let reason = match self.limit {
                Limit::Cores => format!(
                    "{} usable core(s) leave nothing to gain",
                    self.machine.usable_cores
                ),
                other => format!("{other} costs more than it saves"),
            };
            write!(
                f,
                "\ndecision: serial (a pool would be slower, {}: {reason})",
                speedup(self.speedup)
            )
        } else {
            write!(
                f,
                "\ndecision: serial (efficiency {:.2} < {:.2})",
                self.efficiency, self.threshold
            )
        }
    }
}

impl Plan {
    fn limit_detail(&self) -> String {
        match self.limit {
            Limit::Cores => format!(
                "the {} usable cores (work spread evenly, losses under 5%)",
                self.machine.usable_cores
            ),
            Limit::SerialPart => format!("serial part {}", self.serial_detail()),
            Limit::StartUp => format!("pool start-up {}", duration(self.startup)),
            Limit::ChunkOverhead => format!("per-chunk overhead {}", percent(self.overhead_share)),
            Limit::Imbalance => format!("uneven items: {}", self.imbalance_detail()),
            Limit::Transfer => "payload transfer to and from the workers".to_owned(),
        }
    }

    fn serial_detail(&self) -> String {
        format!(
            "{} of the work (Amdahl bound {})",
            percent(self.serial_share),
            speedup(self.amdahl_bound)
        )
    }

    fn imbalance_detail(&self) -> String {
        format!(
            "largest item {} of the work (bound {})",
            percent(self.largest_share),
            speedup(self.imbalance_bound)
        )
    }
}

/// `1234567` as `1,234,567`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Two or three significant digits in the largest unit that keeps the value at least 1.
fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    let (value, unit) = if s >= 1.0 {
        (s, "s")
    } else if s >= 1e-3 {
        (s * 1e3, "ms")
    } else if s >= 1e-6 {
        (s * 1e6, "µs")
    } else {
        (s * 1e9, "ns")
    };
    format!("{} {unit}", significant(value))
}

fn significant(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn speedup(x: f64) -> String {
    if x.is_infinite() {
        "unbounded".to_owned()
    } else if x >= 10.0 {
        format!("{x:.1}x")
    } else {
        format!("{x:.2}x")
    }
}

fn percent(share: f64) -> String {
    if share > 0.0 && share < 0.01 {
        format!("{:.2}%", 100.0 * share)
    } else {
        format!("{:.1}%", 100.0 * share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration(Duration::from_nanos(250)), "250 ns");
        assert_eq!(duration(Duration::from_micros(38)), "38.0 µs");
        assert_eq!(duration(Duration::from_micros(200)), "200 µs");
        assert_eq!(duration(Duration::from_micros(4200)), "4.20 ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.50 s");
    }

    #[test]
    fn speedups_keep_three_digits() {
        assert_eq!(speedup(1.0), "1.00x");
        assert_eq!(speedup(12.54), "12.5x");
        assert_eq!(speedup(f64::INFINITY), "unbounded");
    }
}
