//! The journal export format (`journalctl --output=export`), read as a
//! stream: each entry is a run of fields, `NAME=value\n` for text or `NAME\n`,
//! a 64-bit little-endian length, the bytes and `\n` for a binary value, and
//! an empty line ends it (systemd's "Journal Export Formats").
//!
//! Pure policy, no I/O: [`ExportReader::feed`] takes whatever the pipe gave
//! and returns the entries it completed. Values are kept up to a bound and
//! the rest skipped while still being consumed, so an entry of any size
//! costs bounded memory.

use memchr::memchr2;

/// Longest field name accepted; journal names are at most 64 bytes.
const MAX_NAME_BYTES: usize = 256;
/// Most fields kept per entry; `journalctl --output-fields` asks for a few.
const MAX_FIELDS: usize = 64;
/// The longest value journald stores (`DATA_SIZE_MAX`); a longer length is
/// not the export format.
const MAX_DATA_BYTES: u64 = 768 * 1024 * 1024;

/// One field of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name (`MESSAGE`, `_SYSTEMD_UNIT`, `__CURSOR`).
    pub name: String,
    /// Its value, at most the reader's bound.
    pub value: Vec<u8>,
    /// Whether the value was longer than the bound.
    pub cut: bool,
}

/// One journal entry: its fields in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The fields.
    pub fields: Vec<Field>,
}

impl Entry {
    /// The field called `name`, if the entry has it.
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// The value of `name` as text, when it is valid UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|field| std::str::from_utf8(&field.value).ok())
    }
}

/// Why the stream cannot be read as export format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// A field name that no journal writes.
    #[error("not journal export format: a field name {0}")]
    BadName(&'static str),
    /// A binary value not followed by its newline.
    #[error("not journal export format: a binary value is not followed by a newline")]
    BadBinaryEnd,
    /// A binary value longer than journald stores.
    #[error("not journal export format: a binary value of {0} bytes")]
    BadBinaryLength(u64),
}

#[derive(Debug)]
enum State {
    /// Reading a field name (or the empty line that ends an entry).
    Name,
    /// Reading a text value up to its newline.
    Text,
    /// Reading the 8 length bytes of a binary value.
    BinaryLength { got: usize, bytes: [u8; 8] },
    /// Reading the bytes of a binary value.
    BinaryData { left: u64 },
    /// Expecting the newline after a binary value.
    BinaryEnd,
}

/// Reads the export format from a stream of bytes.
#[derive(Debug)]
pub struct ExportReader {
    state: State,
    max_message: usize,
    max_other: usize,
    /// The bound of the value being read.
    limit: usize,
    name: Vec<u8>,
    value: Vec<u8>,
    cut: bool,
    entry: Entry,
}

impl ExportReader {
    /// A reader that keeps at most `max_message` bytes of `MESSAGE` and
    /// `max_other` bytes of any other value.
    pub fn new(max_message: usize, max_other: usize) -> ExportReader {
        ExportReader {
            state: State::Name,
            max_message,
            max_other,
            limit: max_other,
            name: Vec::new(),
            value: Vec::new(),
            cut: false,
            entry: Entry::default(),
        }
    }

    /// Reads `input`, the next bytes of the stream, and appends the entries
    /// it completes to `out`. After an error the stream cannot be trusted.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<Entry>) -> Result<(), ExportError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Name => {
                    let Some(at) = memchr2(b'=', b'\n', input) else {
                        self.push_name(input)?;
                        input = &[];
                        continue;
                    };
                    self.push_name(&input[..at])?;
                    let separator = input[at];
                    input = &input[at + 1..];
                    self.limit = if self.name == b"MESSAGE" {
                        self.max_message
                    } else {
                        self.max_other
                    };
                    if separator == b'=' {
                        if self.name.is_empty() {
                            return Err(ExportError::BadName("is empty"));
                        }
                        self.state = State::Text;
                    } else if self.name.is_empty() {
                        // The empty line: the entry is complete.
                        let entry = std::mem::take(&mut self.entry);
                        if !entry.fields.is_empty() {
                            out.push(entry);
                        }
                    } else {
                        self.state = State::BinaryLength { got: 0, bytes: [0; 8] };
                    }
                }
                State::Text => match memchr::memchr(b'\n', input) {
                    Some(at) => {
                        self.push_value(&input[..at]);
                        input = &input[at + 1..];
                        self.end_field();
                    }
                    None => {
                        self.push_value(input);
                        input = &[];
                    }
                },
                State::BinaryLength { got, bytes } => {
                    let take = (8 - *got).min(input.len());
                    bytes[*got..*got + take].copy_from_slice(&input[..take]);
                    *got += take;
                    input = &input[take..];
                    if *got == 8 {
                        let left = u64::from_le_bytes(*bytes);
                        if left > MAX_DATA_BYTES {
                            return Err(ExportError::BadBinaryLength(left));
                        }
                        self.state = if left == 0 {
                            State::BinaryEnd
                        } else {
                            State::BinaryData { left }
                        };
                    }
                }
                State::BinaryData { left } => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(input.len());
                    *left -= take as u64;
                    let done = *left == 0;
                    self.push_value(&input[..take]);
                    input = &input[take..];
                    if done {
                        self.state = State::BinaryEnd;
                    }
                }
                State::BinaryEnd => {
                    if input[0] != b'\n' {
                        return Err(ExportError::BadBinaryEnd);
                    }
                    input = &input[1..];
                    self.end_field();
                }
            }
        }
        Ok(())
    }

    fn push_name(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        if self.name.len() + bytes.len() > MAX_NAME_BYTES {
            return Err(ExportError::BadName("is longer than 256 bytes"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        {
            return Err(ExportError::BadName("has a character other than A-Z, 0-9 and _"));
        }
        self.name.extend_from_slice(bytes);
        Ok(())
    }

    fn push_value(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.value.len());
        if bytes.len() > room {
            self.cut = true;
        }
        self.value.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_field(&mut self) {
        let name = String::from_utf8(std::mem::take(&mut self.name)).unwrap_or_default();
        let value = std::mem::take(&mut self.value);
        let cut = std::mem::take(&mut self.cut);
        // Only the first of a name is read; repeats and extras cost nothing.
        if self.entry.fields.len() < MAX_FIELDS && self.entry.get(&name).is_none() {
            self.entry.fields.push(Field { name, value, cut });
        }
        self.state = State::Name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]], max_value: usize) -> Result<Vec<Entry>, ExportError> {
        let mut reader = ExportReader::new(max_value, max_value);
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn text_and_binary_fields_split_anywhere() {
        let mut stream = b"__CURSOR=s=ab;i=1\nMESSAGE=hello\nPRIORITY=3\n\n".to_vec();
        stream.extend_from_slice(b"__CURSOR=s=ab;i=2\nMESSAGE\n");
        stream.extend_from_slice(&5u64.to_le_bytes());
        stream.extend_from_slice(b"a\nb\x00c\n\n");
        let whole = read(&[&stream], 1024).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].text("MESSAGE"), Some("hello"));
        assert_eq!(whole[0].text("PRIORITY"), Some("3"));
        assert_eq!(whole[1].get("MESSAGE").unwrap().value, b"a\nb\x00c");
        // Byte by byte gives the same entries.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read(&bytes, 1024).unwrap(), whole);
    }

    #[test]
    fn long_values_are_cut_but_consumed() {
        let mut stream = format!("MESSAGE={}\nX=1\n\n", "m".repeat(100)).into_bytes();
        stream.extend_from_slice(b"BIN\n");
        stream.extend_from_slice(&50u64.to_le_bytes());
        stream.extend_from_slice(&[7; 50]);
        stream.extend_from_slice(b"\n\n");
        let entries = read(&[&stream], 10).unwrap();
        let message = entries[0].get("MESSAGE").unwrap();
        assert_eq!((message.value.len(), message.cut), (10, true));
        assert_eq!(entries[0].text("X"), Some("1"));
        assert_eq!(entries[1].get("BIN").unwrap().value, [7; 10]);
    }

    #[test]
    fn message_and_other_fields_have_their_own_bounds_and_repeats_are_ignored() {
        let stream = format!("MESSAGE={}\nOTHER={}\nOTHER=again\n\n", "m".repeat(50), "o".repeat(50));
        let mut out = Vec::new();
        ExportReader::new(40, 8).feed(stream.as_bytes(), &mut out).unwrap();
        assert_eq!(out[0].get("MESSAGE").unwrap().value.len(), 40);
        assert_eq!(out[0].get("OTHER").unwrap().value.len(), 8);
        assert_eq!(out[0].fields.len(), 2, "the repeated OTHER is not kept");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read(&[b"lower=case\n\n"], 10).is_err());
        assert!(read(&[b"=x\n\n"], 10).is_err());
        let mut bad_end = b"B\n".to_vec();
        bad_end.extend_from_slice(&1u64.to_le_bytes());
        bad_end.extend_from_slice(b"xy");
        assert_eq!(read(&[&bad_end], 10), Err(ExportError::BadBinaryEnd));
        let mut huge = b"B\n".to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(read(&[&huge], 10), Err(ExportError::BadBinaryLength(u64::MAX)));
        let mut big = b"B\n".to_vec();
        big.extend_from_slice(&(1u64 << 20).to_le_bytes());
        big.extend_from_slice(b"data");
        assert!(
            read(&[&big], 10).unwrap().is_empty(),
            "waits for the rest, holding at most 10 bytes"
        );
        assert!(read(&[&[b'A'; 300]], 10).is_err());
    }
}
