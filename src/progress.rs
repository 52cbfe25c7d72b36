//! Progress bars (feature `progress`): the one type maps and `as_completed` keep their bar in.
//!
//! Without the feature [`Progress`] is empty and every method compiles to nothing; with it but
//! no bar attached, each method is one `None` check, made per chunk or per future, never per
//! item.

#[cfg(feature = "progress")]
use indicatif::ProgressBar;

use crate::Future;

/// The bar to advance, if any.
#[derive(Default)]
pub(crate) struct Progress {
    #[cfg(feature = "progress")]
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Holds `bar`, giving it `exact_len` as its length if it has none.
    #[cfg(feature = "progress")]
    pub(crate) fn attach(bar: ProgressBar, exact_len: Option<usize>) -> Self {
        if let (None, Some(len)) = (bar.length(), exact_len) {
            bar.set_length(len as u64);
        }
        Progress { bar: Some(bar) }
    }

    /// The bar held, for tests.
    #[cfg(all(test, feature = "progress"))]
    pub(crate) fn bar(&self) -> Option<&ProgressBar> {
        self.bar.as_ref()
    }

    /// Advances the bar by `items` once `future` resolves, on the thread that resolves it,
    /// unless it is cancelled (which for a map's chunk happens only when the map is dropped).
    #[inline]
    pub(crate) fn advance_when_done<T>(&self, future: &Future<T>, items: usize) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            let bar = bar.clone();
            future.add_done_callback(move |outcome| {
                if !matches!(outcome, Err(crate::Error::Cancelled)) {
                    bar.inc(items as u64);
                }
            });
        }
        #[cfg(not(feature = "progress"))]
        let _ = (future, items);
    }

    /// Advances the bar by `items` now.
    #[inline]
    pub(crate) fn advance(&self, items: usize) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.inc(items as u64);
        }
        #[cfg(not(feature = "progress"))]
        let _ = items;
    }

    /// Marks the bar finished (with its style's finish) once everything has been yielded.
    #[inline]
    pub(crate) fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(bar) = self.bar.as_ref().filter(|bar| !bar.is_finished()) {
            bar.finish_using_style();
        }
    }
}

/// `Some(n)` when a `size_hint` says exactly `n`.
#[cfg(feature = "progress")]
pub(crate) fn exact_len((low, high): (usize, Option<usize>)) -> Option<usize> {
    (high == Some(low)).then_some(low)
}
