//! `progress` and `progress_with` on maps (feature `progress`). The bar advances by a chunk's
//! item count when the chunk finishes, on whichever thread resolves it (see `fill`), so an
//! ordered map's bar is not pinned by one slow item at the head of the input.

use indicatif::ProgressBar;

use super::{Map, MapUnordered};
use crate::progress::{Progress, exact_len};

impl<I: Iterator, R, K> Map<'_, I, R, K> {
    /// Shows a progress bar on stderr that counts finished items; see
    /// [`progress_with`](Map::progress_with). Its length is the input's length when the
    /// input's `size_hint` is exact. It is hidden when stderr is not a terminal.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let out: Vec<u32> = pool.map(|x: u32| x * 2, 0..100).progress().collect::<Result<_, _>>()?;
    /// assert_eq!(out[99], 198);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn progress(self) -> Self {
        self.progress_with(ProgressBar::no_length())
    }

    /// Advances `bar` as items finish: by a chunk's item count when the chunk finishes on its
    /// worker, not as results are yielded, so in an ordered map one slow item at the head does
    /// not hold the bar at 0%. A bar without a length gets the input's length when the input's
    /// `size_hint` is exact. The bar is finished (with its style's finish) once the map has
    /// yielded everything. It counts only items the map dispatches from now on: attach it
    /// before iterating.
    ///
    /// ```
    /// use indicatif::{ProgressBar, ProgressDrawTarget};
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    /// let n = pool.map(|x: u32| x + 1, 0..500).progress_with(bar.clone()).count();
    /// assert_eq!((n as u64, bar.position(), bar.length()), (500, 500, Some(500)));
    /// assert!(bar.is_finished());
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn progress_with(mut self, bar: ProgressBar) -> Self {
        self.progress = Progress::attach(bar, exact_len(self.size_hint()));
        self
    }
}

impl<I: Iterator, R, K> MapUnordered<'_, I, R, K> {
    /// Shows a progress bar on stderr that counts finished items, hidden when stderr is not a
    /// terminal; see [`Map::progress`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let n = pool.map(|x: u32| x, 0..100).unordered().progress().count();
    /// assert_eq!(n, 100);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn progress(self) -> Self {
        self.progress_with(ProgressBar::no_length())
    }

    /// Advances `bar` as items finish; see [`Map::progress_with`].
    ///
    /// ```
    /// use indicatif::{ProgressBar, ProgressDrawTarget};
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::hidden());
    /// let n = pool.map(|x: u32| x, 0..100).unordered().progress_with(bar.clone()).count();
    /// assert_eq!((n, bar.position()), (100, 100));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn progress_with(self, bar: ProgressBar) -> Self {
        MapUnordered {
            inner: self.inner.progress_with(bar),
        }
    }
}

#[cfg(test)]
mod test {
    use std::io::IsTerminal;

    use crate::ThreadPool;

    #[test]
    fn the_default_bar_draws_only_on_a_terminal_and_takes_the_exact_length() {
        let pool = ThreadPool::new(1).unwrap();
        let map = pool.map(|x: u8| x, 0..10).progress();
        let bar = map.progress.bar().unwrap();
        assert_eq!(bar.is_hidden(), !std::io::stderr().is_terminal());
        assert_eq!(bar.length(), Some(10));
    }

    #[test]
    fn an_input_of_unknown_length_leaves_the_bar_without_one() {
        let pool = ThreadPool::new(1).unwrap();
        let map = pool
            .map(|x: u8| x, (0..10).filter(|x| x % 2 == 0))
            .progress();
        assert_eq!(map.progress.bar().unwrap().length(), None);
    }
}
