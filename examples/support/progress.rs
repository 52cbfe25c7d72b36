//! The look of the example pipelines' progress bars: drawn on stderr only when stderr is a
//! terminal, so logs and pipes keep just the summaries. The library advances them as items
//! complete (`Map::progress_with`, `AsCompleted::progress_with`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` items (`None` when the count is unknown, as for a file being streamed),
/// labelled `label` and counting `unit`s.
pub fn bar(len: Option<u64>, label: &str, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            format!("{{msg:<24}} [{{bar:32}}] {{pos}}/{{len}} {unit}, {{elapsed}} (eta {{eta}})"),
        ),
        None => (
            ProgressBar::new_spinner(),
            format!("{{msg:<24}} {{spinner}} {{pos}} {unit}, {{per_sec}}, {{elapsed}}"),
        ),
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.with_style(style).with_message(label.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bar_counts_what_completes_even_when_hidden() {
        let bar = super::bar(Some(3), "test", "items");
        bar.inc(2);
        assert_eq!(bar.position(), 2);
        let spinner = super::bar(None, "test", "rows");
        spinner.inc(5);
        assert_eq!(spinner.position(), 5);
    }
}
