//! The auto traits of every public type, checked at compile time: this file compiles only if
//! each bound below holds. The generic functions prove a bound for every type parameter that
//! meets their own bounds, not just for one instance; `const _` blocks make sure they are
//! instantiated. The negatives (a map over a non-`Send` input is not `Send`, a scoped map
//! cannot leave its scope) are `compile_fail` doctests in `src/compile_fail.rs`.

use parexec::planner::{
    Calibration, CurvePoint, ExecutorCosts, Feedback, Limit, Machine, UslFit, WorkloadProfile,
};
use parexec::{
    AsCompleted, AsCompletedTimeout, Cores, Error, ExecutorKind, Future, Map, MapSettings,
    MapUnordered, Plan, Planner, ProcessPool, ProcessPoolBuilder, ReturnWhen, Scope, Stats,
    Streaming, ThreadPool, ThreadPoolBuilder, WorkerExit,
};

const fn send<T: Send + ?Sized>() {}
const fn sync<T: Sync + ?Sized>() {}
const fn send_sync<T: Send + Sync + ?Sized>() {}
const fn error_object<T: std::error::Error + Send + Sync + 'static>() {}

/// A future can be waited on, or shared, from any thread, whatever its result type, as long
/// as that can be sent.
const fn futures<T: Send>() {
    send_sync::<Future<T>>();
    send::<AsCompleted<T>>();
    send::<AsCompletedTimeout<T>>();
    send::<Streaming<AsCompleted<T>>>();
}

/// A map can move to another thread (into `std::thread::spawn`, a scoped thread, a consumer
/// thread) whenever its input and results can.
const fn maps<I: Iterator + Send, R: Send>() {
    send::<Map<'_, I, R>>();
    send::<MapUnordered<'_, I, R>>();
    send::<Streaming<Map<'_, I, R>>>();
    send::<Streaming<MapUnordered<'_, I, R>>>();
}

/// Scopes are shared with the tasks they run, so they are `Sync`.
const fn scopes<'scope, 'env: 'scope>() {
    send_sync::<Scope<'scope, 'env>>();
}

/// The planner can gather its inputs on one thread and plan on another.
const fn planners() {
    send::<Planner<'_>>();
}

const _: () = {
    futures::<u64>();
    futures::<Vec<String>>();
    futures::<std::cell::Cell<u8>>();
    maps::<std::vec::IntoIter<std::sync::Arc<str>>, String>();
    maps::<std::ops::Range<u32>, std::cell::Cell<u8>>();
    scopes();
    planners();

    send_sync::<ThreadPool>();
    send_sync::<ProcessPool>();
    send_sync::<Plan>();
    send::<ThreadPoolBuilder>();
    send::<ProcessPoolBuilder>();

    error_object::<Error>();
    send_sync::<WorkerExit>();

    send_sync::<MapSettings>();
    send_sync::<Cores>();
    send_sync::<Stats>();
    send_sync::<ExecutorKind>();
    send_sync::<ReturnWhen>();
    send_sync::<WorkloadProfile>();
    send_sync::<Machine>();
    send_sync::<ExecutorCosts>();
    send_sync::<Calibration>();
    send_sync::<UslFit>();
    send_sync::<CurvePoint>();
    send_sync::<Feedback>();
    send_sync::<Limit>();
    sync::<Plan>();
};

/// The compile-time checks above, held to what they promise at run time: a map made on one
/// thread is consumed on another.
#[test]
fn a_map_is_consumed_on_another_thread() {
    let pool = ThreadPool::new(2).unwrap();
    let squares = pool.map(|x: u64| x * x, 0..1_000);
    let consumed = std::thread::scope(|s| s.spawn(move || squares.collect_vec()).join());
    let squares = consumed.unwrap().unwrap();
    assert_eq!(squares[999], 999 * 999);

    let unordered = pool.map(|x: u64| x + 1, 0..100).unordered();
    let total = std::thread::scope(|s| {
        s.spawn(move || unordered.map(|(_, r)| r.unwrap()).sum::<u64>())
            .join()
    });
    assert_eq!(total.unwrap(), 5_050);
}
