//! The opt-in check of a parallel run against a serial one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use parexec::Plan;

/// A 64-bit digest of one output, so that a long run can be compared item by item without
/// keeping its outputs.
pub fn fingerprint<T: Hash + ?Sized>(output: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    output.hash(&mut hasher);
    hasher.finish()
}

/// Positions where `a` and `b` differ, including those present in only one of them.
fn differing<T: PartialEq>(a: &[T], b: &[T]) -> Vec<usize> {
    let common = a.len().min(b.len());
    (0..common)
        .filter(|&i| a[i] != b[i])
        .chain(common..a.len().max(b.len()))
        .collect()
}

/// Checks the serial run's fingerprints against the planned run's: prints that they match, or
/// fails naming how many `what` differ and, through `name`, the first of them.
pub fn check_identical(
    serial: &[u64],
    planned: &[u64],
    what: &str,
    name: impl Fn(usize) -> String,
) -> Result<(), String> {
    let differing = differing(serial, planned);
    if let Some(&first) = differing.first() {
        return Err(format!(
            "{} {what} differ from the serial run (first: {})",
            differing.len(),
            name(first)
        ));
    }
    println!("{what} identical to the serial run: yes ({})", serial.len());
    Ok(())
}

/// Prints the serial and planned times, and the speedup measured against the one `plan`
/// predicted for the run it made. The prediction is the plan's, from its pilot; the
/// measured ratio is this run's alone.
pub fn report_speedup(plan: &Plan, serial: Duration, planned: Duration) {
    let workers = if plan.parallel { plan.workers } else { 1 };
    let predicted = plan
        .curve
        .iter()
        .find(|point| point.workers == workers)
        .map_or(plan.speedup, |point| point.speedup);
    let ran = if plan.parallel {
        format!("{} x{workers}", plan.kind)
    } else {
        "serial".to_owned()
    };
    let measured = serial.as_secs_f64() / planned.as_secs_f64();
    println!(
        "serial {:.2} s, planned ({ran}) {:.2} s: speedup {measured:.2}x measured, {predicted:.2}x predicted; efficiency {:.0}%",
        serial.as_secs_f64(),
        planned.as_secs_f64(),
        100.0 * measured / workers as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_names_changed_and_missing_positions() {
        assert_eq!(differing(&[1, 2, 3], &[1, 2, 3]), Vec::<usize>::new());
        assert_eq!(differing(&[1, 2, 3], &[1, 5, 3, 4]), [1, 3]);
        assert_eq!(differing(&[1, 5, 3, 4], &[1, 2]), [1, 2, 3]);
        assert_eq!(fingerprint("row"), fingerprint("row"));
        assert_ne!(fingerprint("row"), fingerprint("rows"));
        assert!(check_identical(&[1, 2], &[1, 2], "rows", |i| i.to_string()).is_ok());
        let error = check_identical(&[1, 2], &[1, 3], "rows", |i| format!("row {i}")).unwrap_err();
        assert_eq!(error, "1 rows differ from the serial run (first: row 1)");
    }
}
