//! `Scope::map`: a map whose function and items borrow the caller's stack, with `Map`'s
//! ordering, laziness and collection, and a scope that never ends while a chunk may still touch
//! what it borrows: not when the map is dropped early, nor when the body panics.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use parexec::{Error, ThreadPool};

/// A value that counts how many of its kind are alive through a counter on the test's stack.
struct Borrowed<'a> {
    value: usize,
    alive: &'a AtomicUsize,
}

impl<'a> Borrowed<'a> {
    fn new(value: usize, alive: &'a AtomicUsize) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Borrowed { value, alive }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn results_follow_the_input_over_a_borrowed_table() {
    let pool = ThreadPool::new(2).unwrap();
    let table: Vec<u64> = (0..5_000).map(|i| i * 3).collect();
    let expected: Vec<u64> = table.iter().map(|x| x + 1).collect();
    let (ordered, collected, mut unordered) = pool.scope(|s| {
        let ordered: Vec<u64> = s
            .map(|i: usize| table[i] + 1, 0..table.len())
            .chunksize(7)
            .collect::<Result<_, _>>()
            .unwrap();
        let collected = s.map(|x: &u64| x + 1, &table).collect_vec().unwrap();
        let unordered: Vec<(usize, u64)> = s
            .map(|i: usize| table[i] + 1, 0..table.len())
            .unordered()
            .map(|(i, r)| (i, r.unwrap()))
            .collect();
        (ordered, collected, unordered)
    });
    assert_eq!(ordered, expected);
    assert_eq!(collected, expected);
    unordered.sort_unstable();
    assert!(
        unordered
            .iter()
            .enumerate()
            .all(|(i, &(j, v))| i == j && v == expected[i])
    );
}

#[test]
fn an_endless_input_is_read_only_as_far_as_the_window() {
    let pool = ThreadPool::new(2).unwrap();
    let pulled = AtomicUsize::new(0);
    let first: Vec<usize> = pool.scope(|s| {
        let input = (0..).inspect(|_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        });
        s.map(|x: usize| x * 2, input)
            .chunksize(4)
            .buffersize(2)
            .take(10)
            .collect::<Result<_, _>>()
            .unwrap()
    });
    assert_eq!(first, (0..10).map(|x| x * 2).collect::<Vec<_>>());
    // Ten taken, at most two chunks of four in flight beyond them, plus the chunk being read.
    assert!(pulled.load(Ordering::SeqCst) <= 10 + 3 * 4);
}

#[test]
fn a_panic_in_the_function_fails_only_its_item() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let unlucky = 13;
    let out: Vec<Result<usize, Error>> = pool.scope(|s| {
        s.map(
            |x: usize| {
                if x == unlucky {
                    deliberate::panic_with("unlucky item");
                }
                x
            },
            0..40,
        )
        .collect()
    });
    for (i, r) in out.into_iter().enumerate() {
        assert_eq!(r.is_err(), i == unlucky, "item {i}");
    }
}

#[test]
fn borrowed_items_and_results_are_all_dropped_whatever_the_ending() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let alive = AtomicUsize::new(0);
    let double = |b: Borrowed<'_>| Borrowed::new(b.value * 2, &alive);
    pool.scope(|s| {
        let items = (0..10_000).map(|i| Borrowed::new(i, &alive));
        let mut map = s.map(double, items).chunksize(16);
        assert_eq!(map.next().unwrap().unwrap().value, 0);
        // Dropped with chunks queued, running and done.
    });
    assert_eq!(alive.load(Ordering::SeqCst), 0, "early drop");

    let failed = pool.scope(|s| {
        let items = (0..10_000).map(|i| Borrowed::new(i, &alive));
        s.map(
            |b: Borrowed<'_>| {
                if b.value == 5_000 {
                    deliberate::panic_with("fails the collection");
                }
                double(b)
            },
            items,
        )
        .collect_vec()
    });
    assert!(matches!(failed, Err(Error::Panicked { .. })));
    assert_eq!(alive.load(Ordering::SeqCst), 0, "failed collection");

    let kept = pool.scope(|s| {
        let items = (0..1_000).map(|i| Borrowed::new(i, &alive));
        s.map(double, items).collect_vec().unwrap()
    });
    assert_eq!(alive.load(Ordering::SeqCst), 1_000);
    assert_eq!(kept[999].value, 1_998);
    drop(kept);
    assert_eq!(alive.load(Ordering::SeqCst), 0, "collected");
}

/// Ends a scope (by dropping its map, or by a panic of the body) while a chunk of the map is
/// running, and releases that chunk only afterwards: the scope must still wait for it.
fn end_the_scope_while_a_chunk_runs(panic: bool) {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let finished = AtomicBool::new(false);
    let (started, wait_started) = mpsc::channel();
    let (open_gate, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (ended, wait_ended) = mpsc::channel::<()>();
    std::thread::scope(|threads| {
        threads.spawn(move || {
            wait_ended.recv().unwrap();
            open_gate.send(()).unwrap();
        });
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let blocking = |x: u32| {
                    if x == 0 {
                        started.send(()).unwrap();
                        gate.lock().unwrap().recv().unwrap();
                        finished.store(true, Ordering::SeqCst);
                    }
                    x
                };
                let mut map = s.map(blocking, 0..2).chunksize(1).unordered();
                // Item 1 finishes while item 0 waits for the gate on the other worker.
                assert_eq!(map.next().unwrap().0, 1);
                wait_started.recv().unwrap();
                ended.send(()).unwrap();
                if panic {
                    deliberate::panic_with("the body fails");
                }
                drop(map);
            })
        }));
        assert_eq!(outcome.is_err(), panic);
        assert!(
            finished.load(Ordering::SeqCst),
            "the scope returned while a chunk was running"
        );
    });
}

#[test]
fn the_scope_waits_for_a_running_chunk_of_a_dropped_map() {
    end_the_scope_while_a_chunk_runs(false);
}

#[test]
fn the_scope_waits_for_a_running_chunk_when_the_body_panics() {
    end_the_scope_while_a_chunk_runs(true);
}
