//! CSV with a header row as the body arrives (`csv-core`'s push reader, the parser the
//! `csv` crate is built on): each row an object of typed cells.

use bytes::BytesMut;
use csv_core::{ReadRecordResult, Reader};

use super::{put_typed, Columns, Decoded};
use crate::{Error, Rejected};
use stream_contracts::RecordWriter;

/// A CSV decoder fed piece by piece.
#[derive(Debug)]
pub(super) struct CsvDecoder {
    core: Reader,
    /// The record being read: its fields' bytes and where each ends.
    fields: Vec<u8>,
    ends: Vec<usize>,
    outlen: usize,
    endlen: usize,
    header: Option<(Columns, usize)>,
    /// Records read (the header is the first).
    rows: u64,
    w: RecordWriter,
}

impl Default for CsvDecoder {
    fn default() -> Self {
        Self {
            core: Reader::new(),
            fields: vec![0; 4096],
            ends: vec![0; 64],
            outlen: 0,
            endlen: 0,
            header: None,
            rows: 0,
            w: RecordWriter::default(),
        }
    }
}

impl CsvDecoder {
    /// Reads `input` (empty: the body ended).
    pub(super) fn feed(&mut self, mut input: &[u8], out: &mut Decoded) -> Result<(), Error> {
        let eof = input.is_empty();
        loop {
            let (res, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.fields[self.outlen..],
                &mut self.ends[self.endlen..],
            );
            input = &input[nin..];
            self.outlen += nout;
            self.endlen += nend;
            match res {
                ReadRecordResult::InputEmpty if !eof => return Ok(()),
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return Ok(()),
                ReadRecordResult::OutputFull => {
                    let n = self.fields.len() * 2;
                    self.fields.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    let done = self.record(out);
                    self.outlen = 0;
                    self.endlen = 0;
                    done?;
                }
            }
        }
    }

    fn record(&mut self, out: &mut Decoded) -> Result<(), Error> {
        self.rows += 1;
        let bytes = &self.fields[..self.outlen];
        let ends = &self.ends[..self.endlen];
        let cell = |i: usize| {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &bytes[start..ends[i]]
        };
        let text = std::str::from_utf8(bytes);
        let Some((columns, count)) = &self.header else {
            let text = text.map_err(|e| {
                Error::Decode(format!(
                    "CSV header row: invalid UTF-8 at byte {} of its fields",
                    e.valid_up_to()
                ))
            })?;
            let names = (0..ends.len()).map(|i| {
                let start = if i == 0 { 0 } else { ends[i - 1] };
                &text[start..ends[i]]
            });
            self.header = Some((Columns::new(names), ends.len()));
            return Ok(());
        };
        let row = self.rows;
        if let Err(e) = text {
            out.rejected.push(Rejected::new(
                format!(
                    "CSV row {row}: invalid UTF-8 at byte {} of its fields",
                    e.valid_up_to()
                ),
                b"",
            ));
        } else if ends.len() != *count {
            out.rejected.push(Rejected::new(
                format!(
                    "CSV row {row} has {} fields, the header has {count}",
                    ends.len()
                ),
                bytes,
            ));
        } else {
            let record = columns.object(
                &mut self.w,
                2 * bytes.len(),
                (0..ends.len()).map(cell),
                |b: &mut BytesMut, c: &[u8]| {
                    // Checked as UTF-8 above, as a whole.
                    put_typed(b, std::str::from_utf8(c).unwrap_or_default())
                },
            );
            out.push(record);
        }
        Ok(())
    }
}
