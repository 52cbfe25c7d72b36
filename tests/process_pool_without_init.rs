//! A program that never calls `parexec::init()`: its workers must serve anyway, and its
//! `main` (with a side effect) must run once, in the parent, never in a worker.
//!
//! `harness = false`: this `main` is the whole test, as in a user's binary.

use std::io::Write;

/// Names the file every run of `main` appends a line to.
const SIDE_EFFECT: &str = "PAREXEC_TEST_SIDE_EFFECT";

fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        // cargo nextest asks for the tests first.
        if !args.iter().any(|a| a == "--ignored") {
            println!("workers_serve_without_init_and_main_runs_once: test");
        }
        return;
    }
    let path = std::env::var(SIDE_EFFECT).unwrap_or_else(|_| {
        std::env::temp_dir()
            .join(format!("parexec-side-effect-{}", std::process::id()))
            .display()
            .to_string()
    });
    let _ = std::fs::remove_file(&path);
    append_line(&path);

    let pool = parexec::ProcessPool::builder()
        .workers(2)
        // Were `main` to run in a worker, it would append to the same file.
        .env(SIDE_EFFECT, &path)
        .build()
        .unwrap_or_else(|e| fail(&path, &format!("the pool did not start: {e}")));
    let squares: Vec<u64> = pool
        .map(square, 0..100)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| fail(&path, &format!("the map failed: {e}")));
    assert_eq!(squares[99], 9_801);
    assert_eq!(pool.submit(square, 12).result().ok(), Some(144));
    pool.shutdown();

    let runs = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .count();
    let _ = std::fs::remove_file(&path);
    assert_eq!(runs, 1, "main ran {runs} times; workers must never run it");
    println!("test workers_serve_without_init_and_main_runs_once ... ok");
    println!("1 passed, 0 failed");
}

fn append_line(path: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the side-effect file opens");
    writeln!(file, "main ran in process {}", std::process::id()).expect("the line is written");
}

fn fail(path: &str, why: &str) -> ! {
    let _ = std::fs::remove_file(path);
    eprintln!("{why}");
    std::process::exit(1);
}
