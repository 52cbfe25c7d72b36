//! The pipeline on the committed fixtures in tests/fixtures/csv: real-world shapes (BOM, CRLF,
//! quoted commas and newlines, unicode) and deliberately broken files.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csv")
        .join(name)
}

fn options(args: &[&str]) -> Options {
    Options::try_parse_from(std::iter::once("csv_classify").chain(args.iter().copied())).unwrap()
}

/// Runs the pipeline on `input` into a fresh directory and returns the output's text.
fn classify_file(input: &str, args: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.csv");
    let (input, output_arg) = (fixture(input), output.display().to_string());
    let mut all = vec![
        "--input",
        input.to_str().unwrap(),
        "--output",
        &output_arg,
        "--executor",
        "threads",
    ];
    all.extend_from_slice(args);
    run(&options(&all)).map_err(|e| e.to_string())?;
    Ok(std::fs::read_to_string(&output).unwrap())
}

/// The output a plain serial loop writes for `input`.
fn serial_output(input: &str, csv_options: CsvOptions) -> String {
    let (rows, header) = CsvInput::open(&fixture(input), csv_options).unwrap();
    let mut sink = Sink::new(Vec::new(), false, false);
    if let Some(header) = header {
        sink.header(&header).unwrap();
    }
    for row in rows {
        sink.take(classify_item(row)).unwrap();
    }
    String::from_utf8(sink.finish().unwrap()).unwrap()
}

const UTF8_WITH_HEADER: CsvOptions = CsvOptions {
    has_header: true,
    flexible: false,
    encoding: Encoding::Utf8,
};

#[test]
fn a_pool_writes_what_the_serial_loop_writes_for_a_real_world_file() {
    let (rows, _) = CsvInput::open(&fixture("real.csv"), UTF8_WITH_HEADER).unwrap();
    let items: Vec<Item> = rows.collect();
    assert_eq!(items.len(), 4);
    let pool = parexec::ThreadPool::new(2).unwrap();
    let mut sink = Sink::new(Vec::new(), false, false);
    sink.header(&["id", "customer", "city", "amount", "notes"].map(String::from))
        .unwrap();
    drain(pool.map(classify_item, items).chunksize(1), &mut sink).unwrap();
    let parallel = String::from_utf8(sink.finish().unwrap()).unwrap();
    assert_eq!(parallel, serial_output("real.csv", UTF8_WITH_HEADER));
    assert!(
        parallel.starts_with("id,customer,"),
        "the BOM is not part of the first column"
    );
    assert!(
        parallel.contains("\"Smith, Jane\""),
        "quoted commas stay quoted"
    );
    assert!(
        parallel.contains("\"line one\r\nline two\""),
        "quoted newlines survive"
    );
    assert!(parallel.contains("Zoë Ångström,Tōkyō") && parallel.contains("🚀"));
}

#[test]
fn the_whole_run_matches_the_serial_loop_and_its_own_comparison() {
    let output = classify_file("real.csv", &["--compare-serial", "--workers", "2"]).unwrap();
    assert_eq!(output, serial_output("real.csv", UTF8_WITH_HEADER));
}

#[test]
fn a_header_only_file_gives_a_header_only_output() {
    assert_eq!(
        classify_file("header_only.csv", &[]).unwrap(),
        "id,name,city,class,score\n"
    );
}

#[test]
fn a_headerless_file_keeps_its_first_row() {
    let output = classify_file("headerless.csv", &["--no-header"]).unwrap();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("1,ann,Lisbon,"), "{output}");
    let with_header = classify_file("headerless.csv", &[]).unwrap();
    assert!(
        with_header.starts_with("1,ann,Lisbon,class,score\n"),
        "{with_header}"
    );
}

#[test]
fn a_malformed_row_stops_the_run_with_its_line_and_leaves_no_output() {
    let error = classify_file("malformed.csv", &[]).unwrap_err();
    assert!(
        error.contains("line 4") && error.contains("expected 3 fields, found 2"),
        "{error}"
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    std::fs::write(&target, "previous run\n").unwrap();
    let input = fixture("malformed.csv");
    let args = [
        "--input",
        input.to_str().unwrap(),
        "--output",
        target.to_str().unwrap(),
        "--executor",
        "threads",
    ];
    assert!(run(&options(&args)).is_err());
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "previous run\n",
        "no torn output"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no partial file left"
    );
}

#[test]
fn bad_rows_can_be_skipped_and_counted() {
    let output = classify_file("malformed.csv", &["--skip-bad-rows"]).unwrap();
    let keys: Vec<&str> = output.lines().skip(1).map(|l| &l[..1]).collect();
    assert_eq!(keys, ["1", "2", "4"]);
}

#[test]
fn ragged_rows_need_flexible() {
    let error = classify_file("ragged.csv", &[]).unwrap_err();
    assert!(
        error.contains("line 2") && error.contains("--flexible"),
        "{error}"
    );
    let output = classify_file("ragged.csv", &["--flexible"]).unwrap();
    assert!(output.contains("\n2,bob,Osaka,extra,more,"), "{output}");
    let flexible = CsvOptions {
        flexible: true,
        ..UTF8_WITH_HEADER
    };
    assert_eq!(output, serial_output("ragged.csv", flexible));
}

#[test]
fn latin1_input_is_named_by_line_and_decoded_on_request() {
    let error = classify_file("latin1.csv", &[]).unwrap_err();
    assert!(
        error.contains("line 3") && error.contains("--encoding latin1"),
        "{error}"
    );
    let error = classify_file("latin1.csv", &["--skip-bad-rows"]).unwrap_err();
    assert!(
        error.contains("line 3"),
        "an encoding error is never skipped: {error}"
    );
    let output = classify_file("latin1.csv", &["--encoding", "latin1"]).unwrap();
    assert!(
        output.contains("José,São Paulo") && output.contains("François,Montréal"),
        "{output}"
    );
}

#[test]
fn an_unwritable_output_is_reported_before_the_input_is_read() {
    let args = [
        "--input",
        "/nonexistent/in.csv",
        "--output",
        "/nonexistent/out.csv",
    ];
    let error = run(&options(&args)).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/out.csv"), "{error}");
}

#[test]
fn help_lists_every_option() {
    crate::help::assert_lists(
        Options::command(),
        &[
            "--input",
            "--output",
            "--rows",
            "--no-header",
            "--flexible",
            "--skip-bad-rows",
            "--encoding",
            "--executor",
            "--workers",
            "--threshold",
            "--compare-serial",
            "--bench-rss",
        ],
    );
}
