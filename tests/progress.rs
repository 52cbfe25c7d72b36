//! Progress bars (feature `progress`): they count finished items, not yielded ones.
#![cfg(feature = "progress")]

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget};
use parexec::ThreadPool;

/// Polls `bar` until its position reaches `target` or a generous deadline passes; returns the
/// last position seen. A bounded wait, not a timing assertion: it ends early once reached.
fn position_reached(bar: &ProgressBar, target: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while bar.position() < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    bar.position()
}

#[test]
fn an_ordered_maps_bar_counts_items_finished_behind_a_blocked_first_item() {
    const ITEMS: u64 = 20;
    let pool = ThreadPool::new(2).unwrap();
    let (release, gate) = crossbeam_channel::bounded::<()>(1);
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let map = pool
        .map(
            move |x: u64| {
                if x == 0 {
                    gate.recv().unwrap();
                }
                x * 2
            },
            0..ITEMS,
        )
        .chunksize(1)
        .buffersize(ITEMS as usize)
        .progress_with(bar.clone());
    assert_eq!(bar.length(), Some(ITEMS));
    let watcher = {
        let bar = bar.clone();
        std::thread::spawn(move || {
            // Item 0 cannot finish before this: whatever the bar shows now, it counted
            // items that finished while the first one was still blocked.
            let seen = position_reached(&bar, ITEMS - 1);
            release.send(()).unwrap();
            seen
        })
    };
    // The consumer waits for item 0 the whole time the watcher looks at the bar.
    let out: Vec<u64> = map.collect::<Result<_, _>>().unwrap();
    assert_eq!(watcher.join().unwrap(), ITEMS - 1);
    assert_eq!(out, (0..ITEMS).map(|x| x * 2).collect::<Vec<_>>());
    assert_eq!(bar.position(), ITEMS);
    assert!(bar.is_finished());
}

#[test]
fn a_bar_counts_items_not_chunks() {
    let pool = ThreadPool::new(2).unwrap();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let n = pool
        .map(|x: u32| x, 0..1000)
        .chunksize(64)
        .unordered()
        .progress_with(bar.clone())
        .count();
    assert_eq!((n, bar.position(), bar.length()), (1000, 1000, Some(1000)));
}

#[test]
fn a_dropped_map_leaves_its_bar_unfinished() {
    let pool = ThreadPool::new(1).unwrap();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let mut map = pool
        .map(|x: u32| x, 0..1000)
        .chunksize(10)
        .progress_with(bar.clone());
    assert_eq!(map.next().unwrap().unwrap(), 0);
    drop(map);
    assert!(!bar.is_finished());
    assert!(bar.position() < 1000);
}
