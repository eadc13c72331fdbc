//! Turns the bytes of one file into records: splits lines, cuts records that
//! exceed the maximum size (marking them), unwraps a container runtime's
//! lines and joins the parts it cut a line into, and joins continuation lines
//! when a multiline start pattern is set.
//!
//! [`RecordReader`] knows the file offset of every byte it holds, so each record
//! carries the offset of its first byte, and [`RecordReader::settled_offset`]
//! says up to where every byte is accounted for by an emitted record (the most a
//! checkpoint may ever reach).

use super::container::{self, ContainerFormat, IoStream};
use crate::sources::Record;
use memchr::memchr;
use regex::bytes::Regex;
use std::collections::BTreeMap;
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

/// A container line's part waits this long for the rest of its line (the
/// runtime writes the parts of one line back to back).
const PART_TIMEOUT: Duration = Duration::from_secs(5);

/// What a container runtime's wrapper says about a line.
#[derive(Debug, Clone, Copy)]
struct Wrapper {
    time_ms: i64,
    stream: IoStream,
}

#[derive(Debug)]
struct Pending {
    offset: u64,
    text: Vec<u8>,
    truncated: bool,
    last_line_at: Instant,
    wrapper: Option<Wrapper>,
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
    container: Option<ContainerFormat>,
    /// The parts of a container line joined so far.
    parts: Option<Pending>,
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
            container: None,
            parts: None,
        }
    }

    /// Reads the lines as a container runtime's (`format = "docker"` or
    /// `"cri"`).
    pub fn with_container(mut self, container: Option<ContainerFormat>) -> RecordReader {
        self.container = container;
        self
    }

    /// Where the next read from the file must start.
    pub fn read_offset(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    /// Every byte before this offset belongs to an emitted record (or to
    /// nothing, like a blank line); bytes after it may still join a record.
    pub fn settled_offset(&self) -> u64 {
        [&self.pending, &self.parts]
            .into_iter()
            .flatten()
            .map(|pending| pending.offset)
            .min()
            .unwrap_or(self.buf_offset)
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

    /// Emits a multiline record that has waited longer than its timeout,
    /// and container line parts whose rest has not come.
    pub fn flush_stale(&mut self, now: Instant, out: &mut Vec<Record>) {
        if self
            .parts
            .as_ref()
            .is_some_and(|parts| now.duration_since(parts.last_line_at) >= PART_TIMEOUT)
        {
            self.end_parts(now, out);
        }
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
                self.take_line(offset, &line, false, Instant::now(), out);
            }
        }
        self.end_parts(Instant::now(), out);
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
                self.take_line(offset, &buf[consumed..line_end], false, now, out);
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
            self.take_line(offset, &buf[consumed..], true, now, out);
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

    /// Handles one line (without its `\n`) that starts at `offset`; `cut`
    /// when it is only the head of a line longer than the maximum size.
    fn take_line(&mut self, offset: u64, line: &[u8], cut: bool, now: Instant, out: &mut Vec<Record>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(part) = self.container.and_then(|format| container::unwrap(format, line)) else {
            // Not a container file, or a line not in the runtime's format:
            // kept as it is, after the parts of a line joined so far (records
            // leave in file order).
            self.end_parts(now, out);
            let (text, truncated) = cap(line, self.max_record);
            self.take_logical(offset, text, truncated || cut, None, now, out);
            return;
        };
        let wrapper = Wrapper {
            time_ms: part.time_ms,
            stream: part.stream,
        };
        // The parts of one line on one stream; a part of the other stream
        // ends them (joined as far as they came: records leave in file order).
        if self
            .parts
            .as_ref()
            .is_some_and(|parts| parts.wrapper.is_some_and(|joined| joined.stream != part.stream))
        {
            self.end_parts(now, out);
        }
        match &mut self.parts {
            Some(parts) => {
                let room = self.max_record - parts.text.len();
                let (text, truncated) = cap(&part.text, room);
                parts.text.extend_from_slice(text);
                parts.truncated |= truncated;
                parts.last_line_at = now;
            }
            None => {
                let (text, truncated) = cap(&part.text, self.max_record);
                self.parts = Some(Pending {
                    offset,
                    text: text.to_vec(),
                    truncated,
                    last_line_at: now,
                    wrapper: Some(wrapper),
                });
            }
        }
        if cut {
            // The rest of this part is skipped: the line ends here, marked.
            if let Some(parts) = self.parts.as_mut() {
                parts.truncated = true;
            }
        }
        if !part.partial || cut {
            self.end_parts(now, out);
        }
    }

    /// The container line joined so far goes on as one logical line.
    fn end_parts(&mut self, now: Instant, out: &mut Vec<Record>) {
        if let Some(parts) = self.parts.take() {
            self.take_logical(parts.offset, &parts.text, parts.truncated, parts.wrapper, now, out);
        }
    }

    /// Handles one logical line (a file's line, or a container's line
    /// unwrapped and joined): a record, or part of a multiline one.
    fn take_logical(
        &mut self,
        offset: u64,
        line: &[u8],
        truncated: bool,
        wrapper: Option<Wrapper>,
        now: Instant,
        out: &mut Vec<Record>,
    ) {
        let Some(multiline) = &self.multiline else {
            out.push(record(offset, line, truncated, wrapper));
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
                    let (text, cut) = cap(line, room);
                    pending.text.push(b'\n');
                    pending.text.extend_from_slice(text);
                    pending.truncated = cut || truncated;
                }
                pending.last_line_at = now;
            }
            _ => {
                self.emit_pending(out);
                self.pending = Some(Pending {
                    offset,
                    text: line.to_vec(),
                    truncated,
                    last_line_at: now,
                    wrapper,
                });
            }
        }
    }

    fn emit_pending(&mut self, out: &mut Vec<Record>) {
        if let Some(pending) = self.pending.take() {
            out.push(record(
                pending.offset,
                &pending.text,
                pending.truncated,
                pending.wrapper,
            ));
        }
    }
}

fn record(offset: u64, text: &[u8], truncated: bool, wrapper: Option<Wrapper>) -> Record {
    let mut fields = BTreeMap::new();
    if let Some(wrapper) = wrapper {
        fields.insert("log.iostream".to_owned(), wrapper.stream.as_str().to_owned());
    }
    Record {
        offset,
        message: String::from_utf8_lossy(text).into_owned(),
        truncated,
        time_ms: wrapper.map(|wrapper| wrapper.time_ms),
        level: None,
        fields,
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

    #[test]
    fn docker_parts_are_joined_into_one_record() {
        let mut reader = RecordReader::new(0, 1024, None).with_container(Some(ContainerFormat::Docker));
        let first = br#"{"log":"first half, ","stream":"stdout","time":"2024-05-01T10:11:12.001Z"}"#;
        let second = br#"{"log":"second half\n","stream":"stdout","time":"2024-05-01T10:11:12.002Z"}"#;
        let mut input = Vec::new();
        for line in [&first[..], &second[..]] {
            input.extend_from_slice(line);
            input.push(b'\n');
        }
        let records = read_all(&mut reader, &[&input[..first.len() + 1]]);
        assert!(records.is_empty(), "the first part waits for the rest");
        assert_eq!(reader.settled_offset(), 0, "its bytes are not settled");
        let records = read_all(&mut reader, &[&input[first.len() + 1..]]);
        assert_eq!(messages(&records), ["first half, second half"]);
        assert_eq!(records[0].offset, 0);
        assert_eq!(records[0].time_ms, Some(1_714_558_272_001), "the first part's time");
        assert_eq!(records[0].fields["log.iostream"], "stdout");
        assert_eq!(reader.settled_offset(), input.len() as u64);
    }

    #[test]
    fn cri_parts_join_and_other_lines_pass_through() {
        let mut reader = RecordReader::new(0, 1024, None).with_container(Some(ContainerFormat::Cri));
        let text = b"2024-05-01T10:11:12Z stdout P aaa\n2024-05-01T10:11:12Z stdout P bbb\n\
2024-05-01T10:11:12Z stdout F ccc\nnot cri at all\n2024-05-01T10:11:13Z stderr P ddd\n\
2024-05-01T10:11:13Z stdout F eee\n";
        let mut records = read_all(&mut reader, &[text]);
        reader.finish(&mut records);
        assert_eq!(messages(&records), ["aaabbbccc", "not cri at all", "ddd", "eee"]);
        assert!(records[1].time_ms.is_none() && records[1].fields.is_empty());
        assert_eq!(records[2].fields["log.iostream"], "stderr");
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert!(
            offsets.windows(2).all(|pair| pair[0] < pair[1]),
            "file order: {offsets:?}"
        );
    }

    #[test]
    fn joined_parts_respect_the_maximum_size_and_multiline_applies_after() {
        let mut reader = RecordReader::new(0, 8, None).with_container(Some(ContainerFormat::Cri));
        let records = read_all(
            &mut reader,
            &[b"2024-05-01T10:11:12Z stdout P 12345\n2024-05-01T10:11:12Z stdout F 67890\n"],
        );
        assert_eq!(messages(&records), ["12345678"]);
        assert!(records[0].truncated);

        let multiline = Multiline {
            start: Regex::new(r"^\d{4}-").unwrap(),
            timeout: Duration::from_secs(1),
        };
        let mut reader = RecordReader::new(0, 1024, Some(multiline)).with_container(Some(ContainerFormat::Cri));
        let mut records = read_all(
            &mut reader,
            &[b"2024-05-01T10:11:12Z stderr F 2024-05-01 ERROR boom\n2024-05-01T10:11:12Z stderr F \tat a.b(C.java:1)\n"],
        );
        reader.finish(&mut records);
        assert_eq!(messages(&records), ["2024-05-01 ERROR boom\n\tat a.b(C.java:1)"]);
        assert_eq!(records[0].fields["log.iostream"], "stderr");
    }

    #[test]
    fn a_foreign_line_ends_the_parts_joined_so_far() {
        let mut reader = RecordReader::new(0, 1024, None).with_container(Some(ContainerFormat::Cri));
        let text = b"2024-05-01T10:11:12Z stdout P aaa\ngarbage\n2024-05-01T10:11:12Z stdout F bbb\n";
        let records = read_all(&mut reader, &[text]);
        assert_eq!(messages(&records), ["aaa", "garbage", "bbb"]);
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert!(
            offsets.windows(2).all(|pair| pair[0] < pair[1]),
            "file order: {offsets:?}"
        );
        assert_eq!(reader.settled_offset(), text.len() as u64);
    }

    #[test]
    fn the_cut_head_of_an_over_long_container_line_is_marked() {
        let mut reader = RecordReader::new(0, 40, None).with_container(Some(ContainerFormat::Cri));
        let mut text = b"2024-05-01T10:11:12Z stdout F ".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100));
        text.extend_from_slice(b"\n2024-05-01T10:11:12Z stdout F next\n");
        let records = read_all(&mut reader, &[&text]);
        assert_eq!(records.len(), 2);
        assert!(records[0].truncated, "the rest of the line was skipped");
        assert_eq!(records[1].message, "next");
    }
}
