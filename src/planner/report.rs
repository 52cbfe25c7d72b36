//! The human-readable report of a [`Plan`]: workload, executor, predicted speedup curve,
//! limit, the load from elsewhere when calibration saw some, and the decision.
//!
//! Every figure is printed once, from the same field the decision used, and a comparison is
//! printed with enough digits that it reads true (never "0.80 < 0.80").

use std::fmt;
use std::time::Duration;

use super::model::CostModel;
use super::{Limit, Machine, Plan};
use crate::ExecutorKind;

/// Most decimals a comparison with the threshold is printed with.
const MAX_DECIMALS: usize = 6;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_workload(f)?;
        self.write_executor(f)?;
        self.write_curve(f)?;
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
        if self.machine.busy_elsewhere > 0.0 {
            write!(
                f,
                "\nmachine: other processes used {} of the CPU during calibration; the plan \
                 assumes {:.1} free cores",
                whole_percent(self.machine.busy_elsewhere),
                self.machine.free_cores
            )?;
        }
        self.write_decision(f)
    }
}

impl Plan {
    fn write_workload(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.workload;
        write!(
            f,
            "workload: {} items, {}/item (coefficient of variation {:.2}), {} of the time \
             waiting, largest item {}",
            count(w.items),
            duration(w.mean_item),
            w.cv,
            percent(w.wait_share()),
            duration(w.largest_item),
        )?;
        if !w.serial.is_zero() {
            write!(f, ", serial part {}", duration(w.serial))?;
        }
        // Threads move values; only a process pool encodes and sends them.
        if self.kind == ExecutorKind::Processes && w.payload_bytes > 0.0 {
            write!(
                f,
                ", {} bytes sent to and from a worker per item",
                count(w.payload_bytes.round() as usize)
            )?;
        }
        Ok(())
    }

    fn write_executor(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let configuration = format!(
            "{} x{}, chunksize {} (≈ {} per chunk; overhead {})",
            self.kind,
            self.parallel_workers,
            count(self.chunksize),
            duration(self.chunk_duration),
            percent(self.overhead_share),
        );
        if self.parallel {
            write!(f, "\nexecutor: {configuration}")
        } else {
            write!(
                f,
                "\nexecutor: serial, on the calling thread; the best parallel option would be \
                 {configuration}"
            )
        }
    }

    fn write_curve(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\npredicted speedup")?;
        if let Some(runs) = self.fit.map(|_| self.runs.len()) {
            let plural = if runs == 1 { "" } else { "s" };
            write!(f, " (fitted to {runs} recorded run{plural})")?;
        }
        f.write_str(": ")?;
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
        if let (Some((workers, hosts)), true) =
            (self.cluster(), self.curve.iter().any(|p| p.modelled))
        {
            let plural = if hosts == 1 { "" } else { "s" };
            write!(
                f,
                "   (* beyond the MPI job's {workers} workers on {hosts} host{plural}: modelled)"
            )?;
        } else if self.curve.iter().any(|p| p.modelled) {
            write!(
                f,
                "   (* beyond this machine's {}: modelled on a machine with that many cores)",
                cores(self.machine.usable_cores)
            )?;
        }
        Ok(())
    }

    /// The decision with its reason: speedup per core in use against the threshold, or what
    /// makes a pool slower than the calling thread.
    fn write_decision(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let in_use = self
            .parallel_workers
            .clamp(1, self.reach().usable_cores.max(1));
        if !self.parallel && self.speedup <= 1.0 {
            let reason = match self.limit {
                Limit::Cores => self.cores_detail(),
                other => format!("{other} costs more than it saves"),
            };
            return write!(
                f,
                "\ndecision: serial: a pool would be slower ({}): {reason}",
                speedup(self.speedup)
            );
        }
        let decimals = if self.parallel {
            2
        } else {
            decimals_to_tell_apart(self.efficiency, self.threshold)
        };
        let (verdict, only) = if self.parallel {
            ("parallel", "")
        } else {
            ("serial", "only ")
        };
        write!(
            f,
            "\ndecision: {verdict}: {} on {} is {only}{:.decimals$}x per core (at least \
             {:.decimals$}x needed)",
            if decimals == 2 {
                speedup(self.speedup)
            } else {
                format!("{:.decimals$}x", self.speedup)
            },
            cores(in_use),
            self.efficiency,
            self.threshold,
        )?;
        if self.parallel_workers > in_use {
            write!(
                f,
                "; the threads wait {} of the time, so more threads than cores pay",
                percent(self.workload.wait_share())
            )?;
            self.write_knee(f)?;
        }
        Ok(())
    }

    /// Why the plan goes past the knee: what the cores would do there and on the plan.
    fn write_knee(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(costs) = self.costs.iter().find(|c| c.kind == self.kind) else {
            return Ok(());
        };
        let reach = self.reach();
        let model = CostModel {
            profile: &self.workload,
            machine: &reach,
            costs,
        };
        let Some((knee, busy)) = model.knee(self.parallel_workers) else {
            return Ok(());
        };
        let knee_workers = knee.round().max(1.0) as usize;
        if knee_workers >= self.parallel_workers {
            return Ok(());
        }
        let at_knee = model.knee(knee_workers).map_or(busy, |(_, b)| b);
        write!(
            f,
            "; at the knee, {knee:.1} threads, bursts of computing bunch up and the cores \
             would be busy {} of the time, on {} threads {}",
            percent(at_knee),
            self.parallel_workers,
            percent(busy)
        )
    }

    /// The workers and hosts of the planned executor, if it reaches beyond this machine.
    fn cluster(&self) -> Option<(usize, usize)> {
        self.costs
            .iter()
            .find(|c| c.kind == self.kind)
            .and_then(|c| c.cluster)
    }

    /// The machine the planned executor's workers run on: this one, or the MPI job's.
    fn reach(&self) -> Machine {
        self.costs
            .iter()
            .find(|c| c.kind == self.kind)
            .map_or_else(|| self.machine.clone(), |c| c.machine(&self.machine))
    }

    fn limit_detail(&self) -> String {
        match self.limit {
            Limit::Cores => self.cores_detail(),
            Limit::SerialPart => format!("serial part {}", self.serial_detail()),
            Limit::StartUp => format!("pool start-up {}", duration(self.startup)),
            Limit::ChunkOverhead => format!("per-chunk overhead {}", percent(self.overhead_share)),
            Limit::Imbalance => format!("uneven items: {}", self.imbalance_detail()),
            Limit::Transfer => "payload transfer to and from the workers".to_owned(),
        }
    }

    /// What the cores in use deliver together: all of them, or less because they slow each
    /// other down or other processes take some.
    fn cores_detail(&self) -> String {
        if let Some((workers, hosts)) = self.cluster() {
            let plural = if hosts == 1 { "" } else { "s" };
            return format!(
                "the MPI job's {} workers on {hosts} host{plural}, all kept busy",
                count(workers)
            );
        }
        let m = &self.machine;
        let usable = m.usable_cores.max(1);
        let in_use = self.parallel_workers.clamp(1, usable);
        let capacity = m.capacity(in_use);
        if m.busy_elsewhere > 0.0 && m.free_cores < in_use as f64 {
            format!(
                "the usable cores: other processes leave {:.1} of {} free",
                m.free_cores,
                cores(usable)
            )
        } else if capacity < in_use as f64 - 0.005 {
            format!(
                "the usable cores: {} busy at once do the work of {capacity:.2} (measured core \
                 efficiency {:.2})",
                cores(in_use),
                m.core_efficiency
            )
        } else if usable == 1 {
            "the single usable core".to_owned()
        } else {
            format!("the {} usable cores, all kept busy", count(usable))
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

/// The fewest decimals, from 2, at which `value` and `threshold` print differently, so that a
/// value just under the threshold never prints equal to it.
fn decimals_to_tell_apart(value: f64, threshold: f64) -> usize {
    (2..MAX_DECIMALS)
        .find(|&d| format!("{value:.d$}") != format!("{threshold:.d$}"))
        .unwrap_or(MAX_DECIMALS)
}

/// `2 cores`, `1 core`.
fn cores(n: usize) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{} core{plural}", count(n))
}

fn whole_percent(share: f64) -> String {
    format!("{:.0}%", 100.0 * share)
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

pub(super) fn speedup(x: f64) -> String {
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
    fn comparisons_print_with_the_digits_that_tell_them_apart() {
        assert_eq!(decimals_to_tell_apart(0.7996, 0.8), 4);
        assert_eq!(decimals_to_tell_apart(0.75, 0.8), 2);
        assert_eq!(decimals_to_tell_apart(0.8, 0.8), MAX_DECIMALS);
    }

    #[test]
    fn speedups_keep_three_digits() {
        assert_eq!(speedup(1.0), "1.00x");
        assert_eq!(speedup(12.54), "12.5x");
        assert_eq!(speedup(f64::INFINITY), "unbounded");
    }
}

#[cfg(test)]
mod test;
