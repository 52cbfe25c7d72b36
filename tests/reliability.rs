//! The short soak and leak runs. Their long versions are `examples/soak.rs` and
//! `examples/leak_check.rs`; both share their code with this target through `tests/support`.
//!
//! Process-pool workers re-execute this binary, so it has `harness = false` and its own
//! `main`, which calls `parexec::init()` before anything else and then hands over to
//! `libtest-mimic`. Tests run one at a time: each counts the whole process's threads, file
//! descriptors and children, which a test running beside it would change.

#[path = "support/census.rs"]
mod census;
#[path = "support/deliberate.rs"]
mod deliberate;
#[path = "support/leak.rs"]
mod leak;
#[path = "support/soak.rs"]
mod soak;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Tasks in the short soak: enough for every outcome to occur several times.
const SOAK_TASKS: u64 = 20_000;

fn main() {
    parexec::init();
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test(
            "soak_every_future_resolves_exactly_once",
            soak_every_future_resolves_exactly_once,
        ),
        Trial::ignorable_test(
            "pools_leak_no_fds_threads_or_children",
            pools_leak_no_fds_threads_or_children,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}

fn soak_every_future_resolves_exactly_once() -> Result<(), Failed> {
    let config = soak::Config::total(SOAK_TASKS, 0x50a6);
    let report = soak::run(&config).expect("the pools start");
    println!("{report}");
    let violations = report.violations();
    if !violations.is_empty() {
        return Err(violations.join("\n").into());
    }
    Ok(())
}

/// The long version's steps with a tenth of the cycles and panics; resident memory is left
/// to the long version, where growth per cycle stands out from allocator noise.
fn pools_leak_no_fds_threads_or_children() -> Result<Completion, Failed> {
    let config = leak::Config {
        cycles: 100,
        panics: 100,
        kills: 10,
        rss_growth_limit: None,
        progress: false,
    };
    let Some(report) = leak::run(&config).expect("the pools start") else {
        return Ok(Completion::ignored_with("needs /proc"));
    };
    println!("{report}");
    if report.violations.is_empty() {
        Ok(Completion::Completed)
    } else {
        Err(report.violations.join("\n").into())
    }
}
