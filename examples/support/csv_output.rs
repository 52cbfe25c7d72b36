//! The output side of the CSV pipeline.

use std::error::Error;
use std::io::{self, Write};

use super::classifier::Classified;
use super::compare;
use super::csv_input::RowError;

/// The output side: writes classified rows in input order, skips or stops on bad rows, and
/// keeps a fingerprint of each row written when a serial comparison will follow.
pub struct Sink<W: Write> {
    writer: csv::Writer<W>,
    skip_bad_rows: bool,
    pub written: u64,
    pub skipped: u64,
    pub fingerprints: Option<Vec<u64>>,
}

impl<W: Write> Sink<W> {
    pub fn new(output: W, skip_bad_rows: bool, keep_fingerprints: bool) -> Self {
        Sink {
            // Flexible so that --flexible rows are written as they are.
            writer: csv::WriterBuilder::new().flexible(true).from_writer(output),
            skip_bad_rows,
            written: 0,
            skipped: 0,
            fingerprints: keep_fingerprints.then(Vec::new),
        }
    }

    pub fn header(&mut self, header: &[String]) -> csv::Result<()> {
        self.writer
            .write_record(header.iter().map(String::as_str).chain(["class", "score"]))
    }

    pub fn take(&mut self, outcome: Result<Classified, RowError>) -> Result<(), Box<dyn Error>> {
        match outcome {
            Ok(done) => {
                let score = done.score.to_string();
                let fields = done.row.values.iter().map(String::as_str);
                self.writer
                    .write_record(fields.chain([done.class.label(), &score]))?;
                self.written += 1;
                if let Some(fingerprints) = &mut self.fingerprints {
                    fingerprints.push(compare::fingerprint(&done));
                }
            }
            Err(bad) if self.skip_bad_rows && !bad.fatal => {
                eprintln!("skipped line {}: {}", bad.line, bad.reason);
                self.skipped += 1;
            }
            Err(bad) => return Err(format!("line {}: {}", bad.line, bad.reason).into()),
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.writer.flush()?;
        self.writer
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

/// Streams every result into `sink`; the first failure stops the run.
pub fn drain<W: Write>(
    results: impl Iterator<Item = Result<Result<Classified, RowError>, parexec::Error>>,
    sink: &mut Sink<W>,
) -> Result<(), Box<dyn Error>> {
    for result in results {
        sink.take(result?)?;
    }
    Ok(())
}
