//! The soundness rules the type system enforces, each as a doctest that must not compile,
//! beside a twin that differs only in the rule and must compile, so that a `compile_fail`
//! cannot pass because of some unrelated mistake. Compiled only by `cargo test --doc`.
//!
//! # A scoped task cannot borrow what dies before the scope ends
//!
//! A task's future may outlive the body that submitted it (the scope waits for the task, not
//! for its future), so the task may borrow only what outlives the whole scope:
//!
//! ```compile_fail,E0373
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! pool.scope(|s| {
//!     let inner = 5;
//!     s.submit(|| inner + 1);
//! });
//! ```
//!
//! ```
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let outer = 5;
//! pool.scope(|s| {
//!     s.submit(|| outer + 1);
//! });
//! ```
//!
//! # A scope cannot escape its `scope` call
//!
//! ```compile_fail,E0521
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let mut leaked = None;
//! pool.scope(|s| leaked = Some(s));
//! ```
//!
//! ```
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let mut workers = None;
//! pool.scope(|s| workers = Some(format!("{s:?}")));
//! assert!(workers.is_some());
//! ```
//!
//! # A scoped map cannot escape its scope
//!
//! Its chunks borrow the caller's stack, and the scope waits for them only until it returns:
//!
//! ```compile_fail,E0521
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let table = vec![1, 2, 3];
//! let mut leaked = None;
//! pool.scope(|s| leaked = Some(s.map(|i: usize| table[i], 0..3)));
//! ```
//!
//! ```
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let table = vec![1, 2, 3];
//! let mut collected = None;
//! pool.scope(|s| collected = Some(s.map(|i: usize| table[i], 0..3).collect_vec()));
//! assert_eq!(collected.unwrap().unwrap(), [1, 2, 3]);
//! ```
//!
//! # A scoped map's function cannot borrow what dies before the scope ends
//!
//! A chunk that has started keeps running after its map is dropped, until the scope ends:
//!
//! ```compile_fail,E0373
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! pool.scope(|s| {
//!     let offset = 5;
//!     let _ = s.map(|x: u32| x + offset, 0..3).collect_vec();
//! });
//! ```
//!
//! ```
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let offset = 5;
//! pool.scope(|s| {
//!     assert_eq!(s.map(|x: u32| x + offset, 0..3).collect_vec().unwrap(), [5, 6, 7]);
//! });
//! ```
//!
//! # A map is `Send` only when its input is
//!
//! The consuming thread pulls items from the input, so moving the map moves the input:
//!
//! ```compile_fail,E0277
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let shared = std::rc::Rc::new(vec![1_u32, 2, 3]);
//! let map = pool.map(|x: u32| x + 1, (0..3).map(move |i| shared[i]));
//! std::thread::scope(|s| {
//!     s.spawn(move || map.count());
//! });
//! ```
//!
//! ```
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let shared = std::sync::Arc::new(vec![1_u32, 2, 3]);
//! let map = pool.map(|x: u32| x + 1, (0..3).map(move |i| shared[i]));
//! std::thread::scope(|s| {
//!     assert_eq!(s.spawn(move || map.count()).join().unwrap(), 3);
//! });
//! ```
//!
//! # A process pool takes plain functions, never capturing closures
//!
//! A task crosses to the worker as a code offset; captured state would stay behind.
//!
//! ```compile_fail,E0308
//! let pool = parexec::ProcessPool::new(1).unwrap();
//! let offset = 10_u32;
//! let _ = pool.submit(move |x: u32| x + offset, 1);
//! ```
//!
//! ```no_run
//! let pool = parexec::ProcessPool::new(1).unwrap();
//! let _ = pool.submit(|x: u32| x + 10, 1);
//! ```
//!
//! # A thread-pool task must be `Send`
//!
//! ```compile_fail,E0277
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let shared = std::rc::Rc::new(1);
//! let _ = pool.submit(move || *shared + 1);
//! ```
//!
//! ```
//! let pool = parexec::ThreadPool::new(1).unwrap();
//! let shared = std::sync::Arc::new(1);
//! assert_eq!(pool.submit(move || *shared + 1).result().unwrap(), 2);
//! ```
//!
//! # `Executor` is sealed
//!
//! Only the crate's pools implement it, so it can grow methods without breaking anyone:
//!
//! ```compile_fail,E0277
//! use parexec::{Executor, ExecutorKind, Future, Map, Payload, Stats};
//!
//! #[derive(Debug)]
//! struct Mine;
//!
//! impl Executor for Mine {
//!     fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
//!         unimplemented!()
//!     }
//!     fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
//!     where
//!         A: Payload,
//!         R: Payload,
//!         I: IntoIterator<Item = A>,
//!     {
//!         unimplemented!()
//!     }
//!     fn workers(&self) -> usize { 1 }
//!     fn stats(&self) -> Stats { Stats::default() }
//!     fn kind(&self) -> ExecutorKind { ExecutorKind::Threads }
//!     fn shutdown(&self) {}
//! }
//! ```
//!
//! ```
//! use parexec::{Executor, ThreadPool};
//!
//! fn workers_of(executor: &impl Executor) -> usize {
//!     executor.workers()
//! }
//! assert_eq!(workers_of(&ThreadPool::new(1).unwrap()), 1);
//! ```
