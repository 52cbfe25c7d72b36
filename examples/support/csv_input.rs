//! Reading CSV rows for a pipeline, one at a time: from a real file (header or not, ragged or
//! not, UTF-8 or Latin-1), or generated.
//!
//! Every row comes with its line number, and every problem with a row is an item of the
//! stream ([`RowError`]), so that it reaches the output side in input order and is reported
//! there, where the pipeline decides whether to stop or to skip.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// The text encoding of an input file (the output is always UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Encoding {
    /// UTF-8; a leading byte-order mark is dropped.
    #[default]
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
}

/// How to read the input.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    /// The first row names the columns.
    pub has_header: bool,
    /// Rows may have more or fewer fields than the first.
    pub flexible: bool,
    pub encoding: Encoding,
}

/// A row that cannot be used, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Line of the file where the row starts (1 for the first line).
    pub line: u64,
    pub reason: String,
    /// No later row can be trusted either (an I/O error, a file in another encoding): the
    /// run must stop even when bad rows are skipped.
    pub fatal: bool,
}

/// A row's fields as text, the way `read_csv(dtype=str)` keeps them, and its line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fields {
    pub line: u64,
    pub values: Vec<String>,
}

/// One item of the input stream.
pub type Item = Result<Fields, RowError>;

/// A CSV file read row by row; the header, if any, is read on opening.
pub struct CsvInput<R> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    encoding: Encoding,
    finished: bool,
}

impl CsvInput<File> {
    /// Opens `path` and reads its header row (`None` without one, or for an empty file).
    pub fn open(path: &Path, options: CsvOptions) -> io::Result<(Self, Option<Vec<String>>)> {
        let file = File::open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        Self::new(file, options).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {}", path.display(), e.reason),
            )
        })
    }
}

impl<R: Read> CsvInput<R> {
    pub fn new(input: R, options: CsvOptions) -> Result<(Self, Option<Vec<String>>), RowError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(options.has_header)
            .flexible(options.flexible)
            .from_reader(input);
        let mut header = None;
        if options.has_header {
            let record = reader.byte_headers().map_err(|e| row_error(1, &e))?;
            if !record.is_empty() {
                header = Some(decode(record, options.encoding, 1)?);
            }
        }
        let input = CsvInput {
            reader,
            record: csv::ByteRecord::new(),
            encoding: options.encoding,
            finished: false,
        };
        Ok((input, header))
    }
}

impl<R: Read> Iterator for CsvInput<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.finished {
            return None;
        }
        let item = match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(
                    decode(&self.record, self.encoding, line).map(|values| Fields { line, values }),
                )
            }
            Err(error) => {
                let line = error
                    .position()
                    .map_or(self.reader.position().line(), csv::Position::line);
                Some(Err(row_error(line, &error)))
            }
        };
        self.finished = matches!(item, None | Some(Err(RowError { fatal: true, .. })));
        item
    }
}

fn row_error(line: u64, error: &csv::Error) -> RowError {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => RowError {
            line,
            reason: format!(
                "expected {expected_len} fields, found {len} (--flexible accepts ragged rows)"
            ),
            fatal: false,
        },
        _ => RowError {
            line,
            reason: error.to_string(),
            fatal: true,
        },
    }
}

fn decode(
    record: &csv::ByteRecord,
    encoding: Encoding,
    line: u64,
) -> Result<Vec<String>, RowError> {
    record
        .iter()
        .enumerate()
        .map(|(column, bytes)| match encoding {
            Encoding::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Encoding::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|e| RowError {
                line,
                reason: format!(
                    "field {} is not valid UTF-8 (byte 0x{:02X} at offset {}); if the file is \
                     Latin-1 (ISO-8859-1), pass --encoding latin1",
                    column + 1,
                    bytes[e.utf8_error().valid_up_to()],
                    e.utf8_error().valid_up_to()
                ),
                fatal: true,
            }),
        })
        .collect()
}

/// The header and the rows of `count` generated rows shaped like a customer table: key,
/// name, city, amount, free text. The same seed gives the same rows on every platform.
pub fn generated(count: usize, seed: u64) -> (Vec<String>, impl Iterator<Item = Item>) {
    const CITIES: [&str; 6] = ["Lisbon", "Osaka", "Denver", "Nairobi", "Turku", "Recife"];
    const WORDS: [&str; 8] = [
        "late", "refund", "upgrade", "bulk", "priority", "repeat", "promo", "review",
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    let header = ["id", "customer", "city", "amount", "notes"].map(String::from);
    let rows = (0..count).map(move |id| {
        let notes: Vec<&str> = (0..rng.usize(1..=4))
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect();
        Ok(Fields {
            // Line 1 is the header.
            line: id as u64 + 2,
            values: vec![
                id.to_string(),
                format!("customer-{:05}", rng.u32(..50_000)),
                CITIES[rng.usize(..CITIES.len())].to_string(),
                format!("{}.{:02}", rng.u32(..5_000), rng.u32(..100)),
                notes.join(" "),
            ],
        })
    });
    (header.to_vec(), rows)
}

/// Writes `count` generated rows, with their header, as a CSV file at `path`.
pub fn write_generated(path: &Path, count: usize, seed: u64) -> csv::Result<()> {
    let (header, rows) = generated(count, seed);
    let mut writer = csv::Writer::from_path(path)?;
    writer.write_record(&header)?;
    for row in rows.flatten() {
        writer.write_record(&row.values)?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], options: CsvOptions) -> (Option<Vec<String>>, Vec<Item>) {
        let (input, header) = CsvInput::new(text, options).unwrap();
        (header, input.collect())
    }

    const WITH_HEADER: CsvOptions = CsvOptions {
        has_header: true,
        flexible: false,
        encoding: Encoding::Utf8,
    };

    #[test]
    fn rows_carry_their_line_even_across_quoted_newlines() {
        let (header, rows) = read(b"a,b\n1,\"x\ny\"\n2,z\n", WITH_HEADER);
        assert_eq!(header.unwrap(), ["a", "b"]);
        let lines: Vec<u64> = rows.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [2, 4]);
    }

    #[test]
    fn a_ragged_row_is_an_error_unless_flexible() {
        let (_, rows) = read(b"a,b\n1,2\n3,4,5\n6,7\n", WITH_HEADER);
        let error = rows[1].as_ref().unwrap_err();
        assert_eq!((error.line, error.fatal), (3, false), "{error:?}");
        assert!(rows[2].is_ok(), "reading goes on after a ragged row");
        let (_, rows) = read(
            b"a,b\n1,2\n3,4,5\n",
            CsvOptions {
                flexible: true,
                ..WITH_HEADER
            },
        );
        assert_eq!(rows[1].as_ref().unwrap().values, ["3", "4", "5"]);
    }

    #[test]
    fn latin1_bytes_stop_utf8_reading_and_decode_as_latin1() {
        let (_, rows) = read(b"a\nok\ncaf\xe9\nnever\n", WITH_HEADER);
        assert_eq!(rows.len(), 2, "nothing is read after a fatal error");
        let error = rows[1].as_ref().unwrap_err();
        assert!(
            error.fatal && error.line == 3 && error.reason.contains("latin1"),
            "{error:?}"
        );
        let (_, rows) = read(
            b"a\ncaf\xe9\n",
            CsvOptions {
                encoding: Encoding::Latin1,
                ..WITH_HEADER
            },
        );
        assert_eq!(rows[0].as_ref().unwrap().values, ["café"]);
    }

    #[test]
    fn written_rows_read_back_as_generated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        write_generated(&path, 5, 3).unwrap();
        let (input, header) = CsvInput::open(&path, WITH_HEADER).unwrap();
        let (expected_header, expected) = generated(5, 3);
        assert_eq!(header.unwrap(), expected_header);
        assert_eq!(input.collect::<Vec<_>>(), expected.collect::<Vec<_>>());
    }

    #[test]
    fn generated_rows_repeat_and_are_keyed() {
        let (header, rows) = generated(20, 7);
        let rows: Vec<Item> = rows.collect();
        assert_eq!(rows, generated(20, 7).1.collect::<Vec<_>>());
        assert_ne!(rows, generated(20, 8).1.collect::<Vec<_>>());
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref().unwrap();
            assert_eq!(
                (row.values.len(), row.values[0].clone()),
                (header.len(), i.to_string())
            );
        }
    }
}
