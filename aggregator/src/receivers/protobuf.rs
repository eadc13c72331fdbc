//! A count of the messages a protobuf body holds, taken from the wire
//! format before prost decodes it.
//!
//! prost decodes a repeated message field into a `Vec` of structs: an empty
//! OTLP `LogRecord` is 2 bytes on the wire and about 200 in memory, so a
//! 64 MiB body could take gigabytes. [`count_messages`] walks the body by
//! a [`Schema`] of the message fields the receiver's types declare (fields
//! it does not declare are skipped by prost without being kept, so they
//! cost nothing) and refuses a body with more than [`MAX_ELEMENTS`]
//! messages, or nested deeper than [`MAX_DEPTH`].

use super::{MAX_ELEMENTS, ReadError};

/// Nesting of messages followed at most.
pub const MAX_DEPTH: usize = 32;

/// Per message type, its declared message fields: `(field number, type)`,
/// a type being an index into the schema.
pub type Schema = [&'static [(u64, usize)]];

/// Refuses `body` (of type 0 of `schema`) when it holds more than
/// [`MAX_ELEMENTS`] messages of the declared fields, nests them deeper than
/// [`MAX_DEPTH`], or is not protobuf's wire format.
pub fn count_messages(body: &[u8], schema: &Schema) -> Result<(), ReadError> {
    let mut count = 0;
    walk(body, schema, 0, 0, &mut count)
}

fn walk(mut buf: &[u8], schema: &Schema, message: usize, depth: usize, count: &mut usize) -> Result<(), ReadError> {
    let invalid = |why: &str| ReadError::Invalid(format!("not a protobuf message: {why}"));
    let fields = schema.get(message).copied().unwrap_or_default();
    while !buf.is_empty() {
        let key = varint(&mut buf).ok_or_else(|| invalid("a field key is cut short"))?;
        let (number, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                varint(&mut buf).ok_or_else(|| invalid("a varint is cut short"))?;
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                buf = buf
                    .get(width..)
                    .ok_or_else(|| invalid("a fixed-width value is cut short"))?;
            }
            2 => {
                let length = varint(&mut buf).ok_or_else(|| invalid("a length is cut short"))?;
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                let (inner, rest) = buf
                    .split_at_checked(length)
                    .ok_or_else(|| invalid("a length-delimited field runs past the end"))?;
                buf = rest;
                if let Some(&(_, kind)) = fields.iter().find(|(n, _)| *n == number) {
                    *count += 1;
                    if *count > MAX_ELEMENTS {
                        return Err(ReadError::TooLarge(format!(
                            "the request holds more than {MAX_ELEMENTS} protobuf messages; send smaller requests"
                        )));
                    }
                    if depth >= MAX_DEPTH {
                        return Err(invalid("messages nested too deep"));
                    }
                    walk(inner, schema, kind, depth + 1, count)?;
                }
            }
            _ => return Err(invalid("groups and unknown wire types are not read")),
        }
    }
    Ok(())
}

/// A base-128 varint at the start of `buf` (at most 10 bytes), consumed.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of (field 1: a list of (field 2: empty messages)).
    const SCHEMA: &Schema = &[&[(1, 1)], &[(2, 2)], &[]];

    #[test]
    fn messages_are_counted_before_decoding() {
        // Field 1 holding two empty messages of field 2, a varint and a string.
        let inner = [0x12, 0x00, 0x12, 0x00, 0x18, 0x96, 0x01, 0x22, 0x01, b'x'];
        let mut body = vec![0x0a, inner.len() as u8];
        body.extend_from_slice(&inner);
        assert_eq!(count_messages(&body, SCHEMA), Ok(()));
        let mut many = Vec::new();
        for _ in 0..=MAX_ELEMENTS {
            many.extend_from_slice(&[0x0a, 0x00]);
        }
        assert!(matches!(count_messages(&many, SCHEMA), Err(ReadError::TooLarge(_))));
    }

    #[test]
    fn broken_wire_format_is_an_error() {
        for bad in [&[0x0a, 0x05, 0x00][..], &[0x80], &[0x0b], &[0x09, 0x00]] {
            assert!(
                matches!(count_messages(bad, SCHEMA), Err(ReadError::Invalid(_))),
                "{bad:?}"
            );
        }
        // Self-nesting deeper than the bound.
        let nested: &Schema = &[&[(1, 0)]];
        let mut body: Vec<u8> = Vec::new();
        for _ in 0..40 {
            let mut outer = vec![0x0a];
            outer.push(body.len() as u8);
            outer.extend_from_slice(&body);
            body = outer;
        }
        assert!(count_messages(&body, nested).is_err());
    }
}
