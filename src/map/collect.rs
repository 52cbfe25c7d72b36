//! `collect` on a map: what users write, routed to the in-place path when the target is the
//! vector `collect_vec` builds, and `Iterator::collect` for every other collection.
//!
//! # Why an inherent method
//!
//! `Iterator::collect` cannot be fast here: `Result<Vec<R>, E>` collects through an adapter
//! whose `size_hint` has a lower bound of 0, so the vector grows from nothing on the
//! consuming thread, which alone moves every result and page-faults all the fresh memory. An
//! inherent `collect` wins method resolution over the trait's and can hand that one target to
//! [`Map::collect_vec`], where the workers write in place.
//!
//! # Why only for unscoped maps
//!
//! Telling the target apart takes `TypeId`, so both the target and `R` must be `'static`.
//! Method resolution ignores lifetimes: a `collect` bounded by `R: 'static` would also be
//! picked for a scoped map whose results borrow the caller's stack, and then fail to compile.
//! So the kind of map is in its type: [`Scoped`] maps (whose results may borrow) keep
//! `Iterator::collect`, and only [`Unscoped`] ones, whose results are always `'static`, get
//! this method.

use std::any::{Any, TypeId};

use super::Map;
use crate::Error;

/// Marks a [`Map`] made by a pool, an executor or a plan (the default kind): its results are
/// `'static`, so its [`collect`](Map::collect) routes `Result<Vec<R>, Error>` to the in-place
/// path.
///
/// ```
/// use parexec::{Map, ThreadPool, Unscoped};
///
/// let pool = ThreadPool::new(2)?;
/// let map: Map<'_, std::ops::Range<u32>, u32, Unscoped> = pool.map(|x: u32| x + 1, 0..3);
/// assert_eq!(map.collect::<Result<Vec<_>, _>>()?, [1, 2, 3]);
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug)]
pub enum Unscoped {}

/// Marks a [`Map`] made by [`Scope::map`](crate::Scope::map): its results may borrow the
/// caller's stack, so `collect` is [`Iterator::collect`]; [`collect_vec`](Map::collect_vec)
/// still writes in place.
///
/// ```
/// let pool = parexec::ThreadPool::new(2)?;
/// let text = String::from("alpha beta");
/// let firsts: Vec<&str> = pool.scope(|s| {
///     let map: parexec::Map<'_, _, &str, parexec::Scoped> =
///         s.map(|w: &str| &w[..1], text.split(' '));
///     map.collect::<Result<_, _>>()
/// })?;
/// assert_eq!(firsts, ["a", "b"]);
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug)]
pub enum Scoped {}

impl<I: Iterator, R: 'static> Map<'_, I, R, Unscoped> {
    /// Runs the map and gathers its results into `B`, as [`Iterator::collect`] does, with the
    /// same results. Into `Result<Vec<R>, Error>`, what `collect::<Result<Vec<_>, _>>()`
    /// means, it is [`collect_vec`](Map::collect_vec): on an input of known length the
    /// workers write straight into a vector allocated once. Any other `B` (`HashMap`,
    /// `Vec<Result<R, Error>>`, `Result<BTreeSet<R>, Error>`, ...) is gathered item by item.
    /// [`Scoped`] maps, whose results may borrow, use [`Iterator::collect`] itself.
    ///
    /// A panic in `f` becomes that item's [`Error::Panicked`]; the worker keeps serving. Into a
    /// `Result`, the first error in input order is returned, the chunks that have not started
    /// are cancelled, and the values already computed are dropped. Into
    /// `Result<Vec<R>, Error>` the rest of the failing chunk does not run either, and the call
    /// returns only after the chunks that were running have finished, since they write into
    /// its vector.
    ///
    /// # Errors
    ///
    /// Into `Result<_, Error>`: the first error in input order, which is a panic in `f`, a
    /// chunk that failed as a whole (the pool shut down, say), an invalid
    /// [`chunksize`](Map::chunksize) or [`buffersize`](Map::buffersize), or
    /// [`Error::InvalidArgument`] if the input's exact length is more than a vector can hold.
    /// Into other collections the errors are items like any other.
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let squares = pool.map(|x: u64| x * x, 0..10_000).collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(squares[9_999], 99_980_001);
    ///
    /// let by_key: HashMap<u64, u64> = pool
    ///     .map(|x: u64| (x % 3, x), 0..3)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(by_key[&2], 2);
    ///
    /// let failed = pool.map(|x: u64| 10 / x, 0..10).collect::<Result<Vec<_>, _>>();
    /// assert!(matches!(failed, Err(parexec::Error::Panicked { .. })));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn collect<B>(self) -> B
    where
        B: FromIterator<Result<R, Error>> + 'static,
    {
        if TypeId::of::<B>() != TypeId::of::<Result<Vec<R>, Error>>() {
            return Iterator::collect(self);
        }
        let collected: Box<dyn Any> = Box::new(self.collect_vec());
        match collected.downcast::<B>() {
            Ok(collected) => *collected,
            Err(_) => unreachable!("`B` is `Result<Vec<R>, Error>`: their type ids are equal"),
        }
    }
}
