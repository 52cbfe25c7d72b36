//! Peak memory of a streaming pipeline against its input size: each size runs in a fresh
//! child process (this same executable), which reports its own peak resident set size (the
//! kernel's high-water mark, `VmHWM`), so that no run inherits another's peak.

use std::error::Error;
use std::ffi::OsString;
use std::process::Command;

/// The line a child prints its peak with.
const MARKER: &str = "peak-rss-bytes:";

/// This process's peak resident set size, in bytes.
#[cfg(target_os = "linux")]
pub fn own_peak() -> Result<u64, Box<dyn Error>> {
    let status = procfs::process::Process::myself()?.status()?;
    let kib = status.vmhwm.ok_or("the kernel does not report VmHWM")?;
    Ok(kib * 1024)
}

#[cfg(not(target_os = "linux"))]
pub fn own_peak() -> Result<u64, Box<dyn Error>> {
    Err("measuring peak memory needs Linux's /proc".into())
}

/// Prints the marker line that [`child_peak`] looks for.
pub fn report_own_peak() -> Result<(), Box<dyn Error>> {
    println!("{MARKER} {}", own_peak()?);
    Ok(())
}

/// Runs this executable with `args` and returns the peak it reports.
pub fn child_peak(args: &[OsString]) -> Result<u64, Box<dyn Error>> {
    let output = Command::new(std::env::current_exe()?).args(args).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the child run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(MARKER))
        .ok_or("the child run did not report its peak")?
        .trim()
        .parse()
        .map_err(Into::into)
}

/// Runs `measure` for each size (it returns the input's bytes and the run's peak), prints a
/// table, and fails if a peak exceeds twice the first: memory that grows with the input.
pub fn table(
    sizes: &[usize],
    mut measure: impl FnMut(usize) -> Result<(u64, u64), Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    println!(
        "{:>9} {:>10} {:>14} {:>8}",
        "rows", "input MB", "peak RSS MB", "vs first"
    );
    let mut first = None;
    for &size in sizes {
        let (input, peak) = measure(size)?;
        let ratio = peak as f64 / *first.get_or_insert(peak) as f64;
        let mb = |bytes: u64| bytes as f64 / 1e6;
        println!(
            "{size:>9} {:>10.1} {:>14.1} {ratio:>7.2}x",
            mb(input),
            mb(peak)
        );
        if ratio > 2.0 {
            return Err(format!("peak memory grows with the input: {ratio:.2}x at {size}").into());
        }
    }
    println!("peak memory stays within 2x of the smallest run's: the pipeline streams");
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_peak_covers_what_was_touched() {
        let before = super::own_peak().unwrap();
        let block = vec![1_u8; 64 << 20];
        std::hint::black_box(&block);
        assert!(super::own_peak().unwrap() >= before.max(64 << 20));
    }
}
