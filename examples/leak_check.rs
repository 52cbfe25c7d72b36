//! The long leak check: counts this process's file descriptors, threads, child processes and
//! resident memory before and after 1,000 create/use/drop cycles of each pool, then around
//! live pools running 1,000 panicking tasks each and losing 100 workers to `SIGKILL`.
//! Prints each step and exits non-zero if anything grew beyond its bound.
//!
//! ```text
//! cargo run --release --example leak_check
//! cargo run --release --example leak_check -- --cycles 200 --kills 20
//! ```
//!
//! The test suite runs the same code with 100 cycles (`tests/reliability.rs`).

#[path = "../tests/support/census.rs"]
mod census;
#[path = "../tests/support/deliberate.rs"]
mod deliberate;
#[path = "../tests/support/leak.rs"]
mod leak;

use std::process::ExitCode;

use clap::Parser;

/// Check both pools for leaked fds, threads, child processes and memory.
#[derive(Debug, Parser)]
struct Args {
    /// Create/use/drop cycles of each pool.
    #[arg(long, default_value_t = 1_000)]
    cycles: usize,
    /// Panicking tasks on each live pool.
    #[arg(long, default_value_t = 1_000)]
    panics: usize,
    /// Process workers killed.
    #[arg(long, default_value_t = 100)]
    kills: usize,
    /// Largest growth of the resident set allowed, in MiB.
    #[arg(long, default_value_t = 16)]
    rss_limit_mib: u64,
}

fn main() -> ExitCode {
    parexec::init();
    let args = Args::parse();
    let config = leak::Config {
        cycles: args.cycles,
        panics: args.panics,
        kills: args.kills,
        rss_growth_limit: Some(args.rss_limit_mib << 20),
        progress: true,
    };
    let started = std::time::Instant::now();
    let report = match leak::run(&config) {
        Ok(Some(report)) => report,
        Ok(None) => {
            eprintln!("leak_check: /proc is not available, so nothing can be counted");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("leak_check: a pool failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("in {:.1} s", started.elapsed().as_secs_f64());
    if report.violations.is_empty() {
        println!(
            "no growth beyond +{} fds, +{} threads, 0 children, {} MiB resident",
            leak::SLACK,
            leak::SLACK,
            args.rss_limit_mib
        );
        ExitCode::SUCCESS
    } else {
        for violation in &report.violations {
            eprintln!("violation: {violation}");
        }
        ExitCode::FAILURE
    }
}
