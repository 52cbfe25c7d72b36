//! The test log stays readable: deliberate panics print no report, and the raw bytes tasks
//! print stay out of it. The tests that cause them run again in a child process of this
//! harness, whose output is checked.

use std::process::Command;

/// Tests whose tasks panic on purpose or print raw bytes.
const NOISY: [&str; 4] = [
    "a_panic_fails_only_its_task_and_the_worker_survives",
    "an_unserializable_result_fails_only_its_task",
    "a_panicking_initializer_fails_the_build",
    "printing_tasks_do_not_corrupt_the_protocol",
];

pub fn noisy_tests_leave_the_log_clean() {
    let harness = std::env::current_exe().expect("the harness knows its path");
    for test in NOISY {
        let run = Command::new(&harness)
            .args([test, "--exact", "--color", "never"])
            // A panic report that got through would bring its backtrace along.
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("the harness runs");
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        let log = format!("{test}:\n{stdout}{stderr}");
        assert!(run.status.success() && stdout.contains("1 passed"), "{log}");
        assert!(
            !run.stdout.contains(&0) && !run.stderr.contains(&0),
            "NUL in {log}"
        );
        for noise in ["panicked at", "stack backtrace"] {
            assert!(!log.contains(noise), "{noise:?} in {log}");
        }
    }
}
