//! A check, for the pipelines' tests, that `--help` names every option it should.

use clap::Command;

/// Panics naming the first of `options` that the long help of `command` leaves out.
pub fn assert_lists(mut command: Command, options: &[&str]) {
    let help = command.render_long_help().to_string();
    for option in options {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}
