//! The long soak: a million tasks on a thread pool and a process pool at once, mixing results,
//! panics, cancellations, futures dropped unobserved, per-task timeouts and workers killed
//! with `SIGKILL`. Every future must resolve exactly once, with an outcome its task allows; the run prints the count per
//! outcome and the number of workers replaced, and exits non-zero on any violation.
//!
//! ```text
//! cargo run --release --example soak                  # 1,000,000 tasks
//! cargo run --release --example soak -- --tasks 50000 --seed 7
//! ```
//!
//! The test suite runs the same code with 20,000 tasks (`tests/reliability.rs`).

#[path = "../tests/support/deliberate.rs"]
mod deliberate;
#[path = "../tests/support/soak.rs"]
mod soak;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Soak both pools with a mix of results and faults.
#[derive(Debug, Parser)]
struct Args {
    /// Tasks in all; half run on the process pool.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u64,
    /// Seeds the mix of tasks, cancellations and kills.
    #[arg(long, default_value_t = 0x50a6)]
    seed: u64,
    /// Seconds after which no new batch is submitted (the run then fails, saying so).
    #[arg(long, default_value_t = 240)]
    time_budget: u64,
}

fn main() -> ExitCode {
    parexec::init();
    let args = Args::parse();
    let mut config = soak::Config::total(args.tasks, args.seed);
    config.time_budget = Duration::from_secs(args.time_budget);
    config.progress = true;
    println!(
        "soak: {} thread tasks, {} process tasks, {} kills, {} stalls (timeout {:?}), seed {}",
        config.thread_tasks,
        config.process_tasks,
        config.kills,
        config.stalls,
        config.task_timeout,
        config.seed
    );
    let report = match soak::run(&config) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("soak: the pools could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{report}");
    let violations = report.violations();
    if violations.is_empty() {
        println!("every future resolved exactly once, as its task allows");
        ExitCode::SUCCESS
    } else {
        for violation in &violations {
            eprintln!("violation: {violation}");
        }
        ExitCode::FAILURE
    }
}
