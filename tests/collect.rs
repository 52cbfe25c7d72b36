//! `Map::collect` into anything but `Result<Vec<_>, _>`: the same results as
//! `Iterator::collect`, and the maps whose `collect` is `Iterator::collect` itself (scoped maps,
//! whose results may borrow, and unordered maps).

#[path = "support/deliberate.rs"]
mod deliberate;

use std::collections::{BTreeSet, HashMap, VecDeque};

use parexec::{Error, ThreadPool};

/// Fails on multiples of 4 after the first, so a collection sees errors among values.
fn every_fourth_fails(x: u64) -> u64 {
    if x > 0 && x % 4 == 0 {
        deliberate::panic_with(format_args!("item {x} fails"));
    }
    x * 10
}

#[test]
fn a_vector_of_results_keeps_every_item_and_every_error() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let got: Vec<Result<u64, Error>> = pool.map(every_fourth_fails, 0..50).chunksize(3).collect();
    assert_eq!(got.len(), 50);
    for (x, result) in (0_u64..).zip(&got) {
        match result {
            Ok(value) => assert_eq!(*value, x * 10),
            Err(Error::Panicked { message, .. }) => {
                assert!(
                    x % 4 == 0 && message.contains(&format!("item {x} ")),
                    "{message}"
                )
            }
            Err(other) => panic!("item {x}: {other}"),
        }
    }
    assert_eq!(got.iter().filter(|r| r.is_err()).count(), 12);
}

#[test]
fn other_collections_collect_as_iterator_collect_does() {
    let pool = ThreadPool::new(2).unwrap();
    let by_rest: HashMap<u64, u64> = pool
        .map(|x: u64| (x % 7, x), 0..1_000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(by_rest.len(), 7);
    assert_eq!(by_rest[&3], 997);

    let rests: BTreeSet<u64> = pool
        .map(|x: u64| x % 5, 0..1_000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rests.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);

    let letters: String = pool
        .map(|b: u8| char::from(b'a' + b), 0..5)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(letters, "abcde");

    let queue: VecDeque<u64> = pool
        .map(|x: u64| x + 1, 0..3)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(queue, [1, 2, 3]);
}

#[test]
fn the_first_error_in_input_order_fails_any_result_collection() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let outcome = pool
        .map(every_fourth_fails, 0..1_000)
        .chunksize(16)
        .collect::<Result<BTreeSet<u64>, _>>();
    match outcome {
        Err(Error::Panicked { message, .. }) => assert!(message.contains("item 4 "), "{message}"),
        other => panic!("expected the panic of item 4, got {other:?}"),
    }
}

#[test]
fn a_scoped_map_collects_results_that_borrow() {
    let pool = ThreadPool::new(2).unwrap();
    let text = String::from("alpha beta gamma delta");
    let firsts: Vec<&str> = pool
        .scope(|s| {
            s.map(|w: &str| &w[..2], text.split(' '))
                .collect::<Result<_, _>>()
        })
        .unwrap();
    assert_eq!(firsts, ["al", "be", "ga", "de"]);
}

#[test]
fn a_scoped_map_over_borrowed_items_collects_owned_results() {
    let pool = ThreadPool::new(2).unwrap();
    let table: Vec<u64> = (0..10_000).collect();
    let doubled: Vec<u64> = pool
        .scope(|s| {
            s.map(|x: &u64| x * 2, &table)
                .chunksize(100)
                .collect::<Result<_, _>>()
        })
        .unwrap();
    assert_eq!(doubled.len(), 10_000);
    assert_eq!(doubled[9_999], 19_998);
}

#[test]
fn an_unordered_map_collects_every_index_once() {
    let pool = ThreadPool::new(2).unwrap();
    let mut got: Vec<(usize, u64)> = pool
        .map(|x: u64| x * x, 0..500)
        .chunksize(7)
        .unordered()
        .map(|(i, r)| r.map(|v| (i, v)))
        .collect::<Result<_, _>>()
        .unwrap();
    got.sort_unstable();
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, &(j, v))| i == j && v == (i * i) as u64)
    );
}

#[test]
fn iterator_collect_stays_reachable_on_any_map() {
    let pool = ThreadPool::new(2).unwrap();
    let map = pool.map(|x: u64| x + 1, 0..4);
    let got: Result<Vec<u64>, Error> = Iterator::collect(map);
    assert_eq!(got.unwrap(), [1, 2, 3, 4]);
}
