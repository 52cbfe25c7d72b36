//! Maps and `as_completed` as async streams: same results, and a pending poll never blocks
//! the runtime's thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use futures_util::StreamExt;
use parexec::{Error, ThreadPool, as_completed};
use tokio::runtime::{Builder, Runtime};

/// Returned by a gated item whose gate was never opened.
const NOT_RELEASED: u64 = u64::MAX;

/// Item 0 waits at the gate until a task on the same runtime opens it. On a current-thread
/// runtime that task runs only while the stream is pending: if a poll blocked the thread
/// instead, the gate would stay shut and item 0 would give up with [`NOT_RELEASED`].
#[derive(Clone)]
struct Gate {
    started: Arc<AtomicBool>,
    open: Sender<()>,
    opened: Receiver<()>,
}

impl Gate {
    fn new() -> Self {
        let (open, opened) = crossbeam_channel::bounded(1);
        Gate {
            started: Arc::default(),
            open,
            opened,
        }
    }

    /// Runs item `x`: item 0 waits at the gate, for a bounded time.
    fn item(&self, x: u64) -> u64 {
        if x != 0 {
            return x * 2;
        }
        self.started.store(true, Ordering::SeqCst);
        match self.opened.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => 0,
            Err(_) => NOT_RELEASED,
        }
    }

    /// A task that opens the gate once item 0 has started, waiting asynchronously.
    fn spawn_opener(&self, runtime: &Runtime) -> tokio::task::JoinHandle<()> {
        let gate = self.clone();
        runtime.spawn(async move {
            while !gate.started.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            gate.open.send(()).unwrap();
        })
    }
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_time().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn expected(n: u64) -> Vec<u64> {
    (0..n).map(|x| x * 2).collect()
}

#[test]
fn an_ordered_stream_leaves_a_current_thread_runtime_free_while_it_waits() {
    let pool = ThreadPool::new(2).unwrap();
    let runtime = current_thread();
    let gate = Gate::new();
    let opener = gate.spawn_opener(&runtime);
    let item = gate.clone();
    let mut stream = pool
        .map(move |x: u64| item.item(x), 0..50)
        .chunksize(1)
        .into_stream();
    let out: Vec<u64> = runtime.block_on(async {
        let mut out = Vec::new();
        while let Some(result) = stream.next().await {
            out.push(result.unwrap());
        }
        out
    });
    assert_ne!(
        out[0], NOT_RELEASED,
        "the stream blocked the runtime's only thread"
    );
    assert_eq!(out, expected(50));
    runtime.block_on(opener).unwrap();
}

#[test]
fn an_unordered_stream_leaves_a_current_thread_runtime_free_while_it_waits() {
    let pool = ThreadPool::new(2).unwrap();
    let runtime = current_thread();
    let gate = Gate::new();
    let opener = gate.spawn_opener(&runtime);
    let item = gate.clone();
    let stream = pool
        .map(move |x: u64| item.item(x), 0..50)
        .chunksize(1)
        .unordered()
        .into_stream();
    let mut out: Vec<(usize, u64)> = runtime.block_on(
        stream
            .map(|(index, result)| (index, result.unwrap()))
            .collect(),
    );
    out.sort_unstable();
    assert_ne!(
        out[0].1, NOT_RELEASED,
        "the stream blocked the runtime's only thread"
    );
    assert_eq!(
        out.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        expected(50)
    );
    runtime.block_on(opener).unwrap();
}

#[test]
fn an_as_completed_stream_leaves_a_current_thread_runtime_free_while_it_waits() {
    let pool = ThreadPool::new(2).unwrap();
    let runtime = current_thread();
    let gate = Gate::new();
    let opener = gate.spawn_opener(&runtime);
    let futures: Vec<_> = (0..10_u64)
        .map(|x| {
            let gate = gate.clone();
            pool.submit(move || gate.item(x))
        })
        .collect();
    let mut out: Vec<u64> = runtime.block_on(
        as_completed(futures)
            .into_stream()
            .then(|future| async move { future.await.unwrap() })
            .collect(),
    );
    out.sort_unstable();
    assert_ne!(
        out[0], NOT_RELEASED,
        "the stream blocked the runtime's only thread"
    );
    assert_eq!(out, expected(10));
    runtime.block_on(opener).unwrap();
}

#[test]
fn an_ordered_stream_on_a_multi_thread_runtime_yields_every_result_in_order() {
    let pool = ThreadPool::new(2).unwrap();
    let runtime = multi_thread();
    let results: Vec<Result<u64, Error>> =
        runtime.block_on(pool.map(|x: u64| x * 2, 0..10_000).into_stream().collect());
    let out: Vec<u64> = results.into_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(out, expected(10_000));
}

#[test]
fn an_as_completed_stream_moves_to_a_task_on_a_multi_thread_runtime() {
    let pool = ThreadPool::new(2).unwrap();
    let runtime = multi_thread();
    let gate = Gate::new();
    let opener = gate.spawn_opener(&runtime);
    let futures: Vec<_> = (0..100_u64)
        .map(|x| {
            let gate = gate.clone();
            pool.submit(move || gate.item(x))
        })
        .collect();
    let consumer = runtime.spawn(async move {
        let mut done = as_completed(futures).into_stream();
        let mut out = Vec::new();
        while let Some(future) = done.next().await {
            out.push(future.await.unwrap());
        }
        out
    });
    let mut out = runtime.block_on(consumer).unwrap();
    out.sort_unstable();
    assert_eq!(out, expected(100));
    runtime.block_on(opener).unwrap();
}

/// A server keeps one pool for the process: a `'static` pool lets a map's stream move into a
/// spawned task, where the runtime may poll it from either of its threads.
static SHARED_POOL: LazyLock<ThreadPool> = LazyLock::new(|| ThreadPool::new(2).unwrap());

#[test]
fn map_streams_move_into_spawned_tasks_on_a_multi_thread_runtime() {
    let runtime = multi_thread();
    let gate = Gate::new();
    let opener = gate.spawn_opener(&runtime);
    let ordered_gate = gate.clone();
    let ordered = runtime.spawn(async move {
        let results: Vec<Result<u64, Error>> = SHARED_POOL
            .map(move |x: u64| ordered_gate.item(x), 0..1_000)
            .into_stream()
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<u64>, Error>>()
    });
    let unordered = runtime.spawn(async move {
        let mut out = Vec::new();
        let mut stream = SHARED_POOL
            .map(|x: u64| x * 2, 0..1_000)
            .unordered()
            .into_stream();
        while let Some((index, result)) = stream.next().await {
            out.push((index, result?));
        }
        Ok::<_, Error>(out)
    });
    assert_eq!(runtime.block_on(ordered).unwrap().unwrap(), expected(1_000));
    let mut out = runtime.block_on(unordered).unwrap().unwrap();
    out.sort_unstable();
    let indices: Vec<usize> = out.iter().map(|&(index, _)| index).collect();
    let values: Vec<u64> = out.into_iter().map(|(_, value)| value).collect();
    assert_eq!(indices, (0..1_000).collect::<Vec<usize>>());
    assert_eq!(values, expected(1_000));
    runtime.block_on(opener).unwrap();
}

#[test]
fn a_configuration_error_ends_the_stream_after_one_error() {
    let pool = ThreadPool::new(1).unwrap();
    let runtime = current_thread();
    let results: Vec<Result<u8, Error>> = runtime.block_on(
        pool.map(|x: u8| x, 0..10)
            .buffersize(0)
            .into_stream()
            .collect(),
    );
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(Error::InvalidArgument(_))));
}
