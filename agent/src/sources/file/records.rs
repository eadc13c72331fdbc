//! Turns the bytes of one file into records: splits lines, cuts records that
//! exceed the maximum size (marking them), and joins continuation lines when a
//! multiline start pattern is set.
//!
//! [`RecordReader`] knows the file offset of every byte it holds, so each record
//! carries the offset of its first byte, and [`RecordReader::settled_offset`]
//! says up to where every byte is accounted for by an emitted record (the most a
//! checkpoint may ever reach).

use crate::sources::Record;
use memchr::memchr;
use regex::bytes::Regex;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// Multiline joining: a line matching `start` begins a record.
#[derive(Debug, Clone)]
pub struct Multiline {
    /// The start pattern.
    pub start: Regex,
    /// A record with no new line for this long is emitted.
    pub timeout: Duration,
}

#[derive(Debug)]
struct Pending {
    offset: u64,
    text: Vec<u8>,
    truncated: bool,
    last_line_at: Instant,
}

/// Splits one file's bytes into records.
#[derive(Debug)]
pub struct RecordReader {
    /// Bytes read but not yet turned into records; `buf[0]` is at `buf_offset`.
    buf: Vec<u8>,
    buf_offset: u64,
    /// Bytes of `buf` already searched for a newline without finding one.
    scanned: usize,
    max_record: usize,
    /// Inside a line longer than `max_record`: skip to its end.
    discarding: bool,
    multiline: Option<Multiline>,
    pending: Option<Pending>,
}

impl RecordReader {
    /// A reader whose next byte is at `offset` of the file.
    pub fn new(offset: u64, max_record: usize, multiline: Option<Multiline>) -> RecordReader {
        RecordReader {
            buf: Vec::new(),
            buf_offset: offset,
            scanned: 0,
            max_record,
            discarding: false,
            multiline,
            pending: None,
        }
    }

    /// Where the next read from the file must start.
    pub fn read_offset(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    /// Every byte before this offset belongs to an emitted record (or to
    /// nothing, like a blank line); bytes after it may still join a record.
    pub fn settled_offset(&self) -> u64 {
        self.pending.as_ref().map_or(self.buf_offset, |pending| pending.offset)
    }

    /// Whether bytes without a final newline wait to become a line.
    pub fn holds_partial_line(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads at most `limit` bytes from `file` (positioned at
    /// [`read_offset`](Self::read_offset)) and emits the records completed.
    /// Returns how many bytes were read.
    pub fn fill_from(
        &mut self,
        file: &mut impl Read,
        limit: usize,
        now: Instant,
        out: &mut Vec<Record>,
    ) -> io::Result<usize> {
        let old_len = self.buf.len();
        self.buf.resize(old_len + limit, 0);
        let read = match file.read(&mut self.buf[old_len..]) {
            Ok(read) => read,
            Err(err) => {
                self.buf.truncate(old_len);
                return Err(err);
            }
        };
        self.buf.truncate(old_len + read);
        if read > 0 {
            self.split(now, out);
        }
        Ok(read)
    }

    /// Appends bytes that follow what the reader holds (tests and the copy rescue).
    pub fn feed(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Record>) {
        self.buf.extend_from_slice(bytes);
        self.split(now, out);
    }

    /// Emits a multiline record that has waited longer than its timeout.
    pub fn flush_stale(&mut self, now: Instant, out: &mut Vec<Record>) {
        let stale = match (&self.pending, &self.multiline) {
            (Some(pending), Some(multiline)) => now.duration_since(pending.last_line_at) >= multiline.timeout,
            _ => false,
        };
        if stale {
            self.emit_pending(out);
        }
    }

    /// The file will not grow any more: emits the pending record and a last
    /// line that has no newline.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            let offset = self.buf_offset;
            self.buf_offset += line.len() as u64;
            self.scanned = 0;
            if !std::mem::take(&mut self.discarding) {
                self.take_line(offset, &line, Instant::now(), out);
            }
        }
        self.emit_pending(out);
    }

    fn split(&mut self, now: Instant, out: &mut Vec<Record>) {
        // Taken out so that lines can be borrowed from it while `self` changes.
        let mut buf = std::mem::take(&mut self.buf);
        let mut consumed = 0;
        while let Some(found) = memchr(b'\n', &buf[consumed + self.scanned..]) {
            let line_end = consumed + self.scanned + found;
            let offset = self.buf_offset + consumed as u64;
            // In the tail of an over-long line, whose head was already emitted.
            if !std::mem::take(&mut self.discarding) {
                self.take_line(offset, &buf[consumed..line_end], now, out);
            }
            consumed = line_end + 1;
            self.scanned = 0;
        }
        let rest = buf.len() - consumed;
        if self.discarding {
            consumed = buf.len();
            self.scanned = 0;
        } else if rest >= self.max_record {
            // No newline within the maximum size: emit the head, skip to the line's end.
            let offset = self.buf_offset + consumed as u64;
            self.take_line(offset, &buf[consumed..], now, out);
            self.discarding = true;
            consumed = buf.len();
            self.scanned = 0;
        } else {
            self.scanned = rest;
        }
        if consumed > 0 {
            buf.drain(..consumed);
            self.buf_offset += consumed as u64;
        }
        self.buf = buf;
    }

    /// Handles one line (without its `\n`) that starts at `offset`.
    fn take_line(&mut self, offset: u64, line: &[u8], now: Instant, out: &mut Vec<Record>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(multiline) = &self.multiline else {
            let (text, truncated) = cap(line, self.max_record);
            out.push(Record {
                offset,
                message: String::from_utf8_lossy(text).into_owned(),
                truncated,
                ..Record::default()
            });
            return;
        };
        let starts_record = multiline.start.is_match(line);
        match &mut self.pending {
            Some(pending) if !starts_record => {
                if pending.text.len() >= self.max_record {
                    // Not even the line break fits (an empty line would add one
                    // byte each, without bound: found by the `records` fuzz target).
                    pending.truncated = true;
                } else if !pending.truncated {
                    let room = self.max_record - pending.text.len() - 1;
                    let (text, truncated) = cap(line, room);
                    pending.text.push(b'\n');
                    pending.text.extend_from_slice(text);
                    pending.truncated = truncated;
                }
                pending.last_line_at = now;
            }
            _ => {
                self.emit_pending(out);
                let (text, truncated) = cap(line, self.max_record);
                self.pending = Some(Pending {
                    offset,
                    text: text.to_vec(),
                    truncated,
                    last_line_at: now,
                });
            }
        }
    }

    fn emit_pending(&mut self, out: &mut Vec<Record>) {
        if let Some(pending) = self.pending.take() {
            out.push(Record {
                offset: pending.offset,
                message: String::from_utf8_lossy(&pending.text).into_owned(),
                truncated: pending.truncated,
                ..Record::default()
            });
        }
    }
}

fn cap(line: &[u8], max: usize) -> (&[u8], bool) {
    if line.len() > max {
        (&line[..max], true)
    } else {
        (line, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(reader: &mut RecordReader, chunks: &[&[u8]]) -> Vec<Record> {
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, Instant::now(), &mut out);
        }
        out
    }

    fn messages(records: &[Record]) -> Vec<&str> {
        records.iter().map(|record| record.message.as_str()).collect()
    }

    #[test]
    fn blank_continuation_lines_cannot_grow_a_full_record() {
        // The `records` fuzz target's crash: a multiline record at its maximum
        // size, then blank lines, each of which added a line break.
        let multiline = Multiline {
            start: regex::bytes::Regex::new(r"^\d").unwrap(),
            timeout: std::time::Duration::from_secs(1),
        };
        let mut reader = RecordReader::new(0, 16, Some(multiline));
        let mut input = b"0123456789abcdefXYZ\n".to_vec();
        input.extend(std::iter::repeat_n(b'\n', 1000));
        input.extend_from_slice(b"1 next\n");
        let records = read_all(&mut reader, &[&input]);
        assert_eq!(records[0].message, "0123456789abcdef");
        assert!(records[0].truncated);
        let mut reader = RecordReader::new(0, 16, None);
        assert!(read_all(&mut reader, &[&input]).iter().all(|r| r.message.len() <= 16));
    }

    #[test]
    fn lines_split_across_reads_keep_their_offsets() {
        let mut reader = RecordReader::new(100, 1024, None);
        let records = read_all(&mut reader, &[b"one\ntw", b"o\r\n\nthree", b"\n"]);
        assert_eq!(messages(&records), ["one", "two", "", "three"]);
        let offsets: Vec<u64> = records.iter().map(|record| record.offset).collect();
        assert_eq!(offsets, [100, 104, 109, 110]);
        assert_eq!(reader.settled_offset(), 116);
    }

    #[test]
    fn partial_last_line_waits_until_finish() {
        let mut reader = RecordReader::new(0, 1024, None);
        let records = read_all(&mut reader, &[b"done\nhalf"]);
        assert_eq!(messages(&records), ["done"]);
        assert_eq!(reader.settled_offset(), 5);
        let mut out = Vec::new();
        reader.finish(&mut out);
        assert_eq!(messages(&out), ["half"]);
        assert_eq!(reader.settled_offset(), 9);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let mut reader = RecordReader::new(0, 1024, None);
        let records = read_all(&mut reader, &[b"ok \xff\xfe bytes\n"]);
        assert_eq!(messages(&records), ["ok \u{fffd}\u{fffd} bytes"]);
    }

    #[test]
    fn over_long_lines_are_cut_marked_and_skipped_to_their_end() {
        let mut reader = RecordReader::new(0, 8, None);
        let records = read_all(&mut reader, &[b"0123456789", b"abcdef", b"ghi\nnext\n"]);
        assert_eq!(messages(&records), ["01234567", "next"]);
        assert!(records[0].truncated);
        assert!(!records[1].truncated);
        assert_eq!(records[1].offset, 20);
        let mut reader = RecordReader::new(0, 8, None);
        let records = read_all(&mut reader, &[b"0123456789\nok\n"]);
        assert_eq!(messages(&records), ["01234567", "ok"]);
        assert!(records[0].truncated);
    }

    #[test]
    fn multiline_joins_stack_traces() {
        let multiline = Multiline {
            start: Regex::new(r"^\d{4}-").unwrap(),
            timeout: Duration::from_secs(1),
        };
        let mut reader = RecordReader::new(0, 1024, Some(multiline));
        let text = b"2024-01-01 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)\n2024-01-01 INFO fine\n";
        let records = read_all(&mut reader, &[text]);
        assert_eq!(
            messages(&records),
            ["2024-01-01 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)"]
        );
        assert_eq!(reader.settled_offset(), 55, "the pending record is not settled");
        let mut out = Vec::new();
        reader.flush_stale(Instant::now(), &mut out);
        assert!(out.is_empty(), "not stale yet");
        reader.flush_stale(Instant::now() + Duration::from_secs(2), &mut out);
        assert_eq!(messages(&out), ["2024-01-01 INFO fine"]);
        assert_eq!(out[0].offset, 55);
    }

    #[test]
    fn multiline_records_respect_the_maximum_size() {
        let multiline = Multiline {
            start: Regex::new("^S").unwrap(),
            timeout: Duration::from_secs(1),
        };
        let mut reader = RecordReader::new(0, 10, Some(multiline));
        let mut out = read_all(&mut reader, &[b"S12345\ncontinued\nmore\nS2\n"]);
        reader.finish(&mut out);
        assert_eq!(messages(&out), ["S12345\ncon", "S2"]);
        assert!(out[0].truncated);
    }
}
