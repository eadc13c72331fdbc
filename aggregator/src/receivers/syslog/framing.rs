//! Splitting a syslog TCP stream into messages (RFC 6587): octet counting
//! (`<length> <message>`, what rsyslog sends with
//! `TCP_Framing="octet-counted"` and RFC 5425 prescribes for TLS) and
//! non-transparent framing (a message per line, the traditional default).
//! Each frame is told apart by its first byte, as rsyslog's own receiver
//! does: a digit starts a length, anything else a line.
//!
//! Pure and bounded: a message longer than the maximum is cut to it (the
//! rest of it skipped as it arrives), so a sender cannot make the
//! receiver hold more than one maximum of a message.

/// Splits one connection's bytes into messages.
#[derive(Debug)]
pub struct Framer {
    max: usize,
    skipping: Skip,
    /// Bytes of an unfinished line already searched for its newline, so
    /// that a line arriving in small pieces is searched once, not once per
    /// piece.
    scanned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of an over-long line, up to and including its newline.
    ToNewline,
    /// The rest of an over-long counted message.
    Bytes(usize),
}

/// One message's bytes, as framed.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The message (without its length prefix or line end).
    pub bytes: &'a [u8],
    /// Whether the sender's message was longer and was cut to the maximum.
    pub truncated: bool,
}

/// Most digits of an octet count (a count this long is far past any maximum).
const MAX_COUNT_DIGITS: usize = 10;

impl Framer {
    /// A framer for messages of at most `max` bytes (at least 1).
    pub fn new(max: usize) -> Framer {
        Framer {
            max: max.max(1),
            skipping: Skip::Nothing,
            scanned: 0,
        }
    }

    /// The next message at the start of `buf`, and how many bytes of `buf`
    /// to drop (the message's, and any skipped); `None` when `buf` holds no
    /// complete message yet. Call again on what is left until `None`.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        let mut used = 0;
        let buf = match self.skipping {
            Skip::Nothing => buf,
            Skip::ToNewline => match memchr::memchr(b'\n', buf) {
                Some(end) => {
                    self.skipping = Skip::Nothing;
                    used = end + 1;
                    &buf[used..]
                }
                None => return (buf.len(), None),
            },
            Skip::Bytes(left) => {
                if buf.len() < left {
                    self.skipping = Skip::Bytes(left - buf.len());
                    return (buf.len(), None);
                }
                self.skipping = Skip::Nothing;
                used = left;
                &buf[left..]
            }
        };
        // Line ends between frames (some senders end counted frames with one too).
        let blank = buf.iter().take_while(|b| matches!(b, b'\n' | b'\r' | b'\0')).count();
        used += blank;
        let buf = &buf[blank..];
        let (more, frame) = match buf.first() {
            None => (0, None),
            Some(b'1'..=b'9') => self.counted(buf),
            Some(_) => self.line(buf),
        };
        (used + more, frame)
    }

    /// What is left when the stream ends: a last line without its newline.
    pub fn finish<'a>(&self, buf: &'a [u8]) -> Option<Frame<'a>> {
        let rest = buf.trim_ascii();
        (self.skipping == Skip::Nothing && !rest.is_empty()).then(|| Frame {
            bytes: &rest[..rest.len().min(self.max)],
            truncated: rest.len() > self.max,
        })
    }

    fn counted<'a>(&mut self, buf: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_COUNT_DIGITS {
            // No length of ours: read it as a line of garbage.
            return self.line(buf);
        }
        match buf.get(digits) {
            None => return (0, None),
            Some(b' ') => {}
            Some(_) => return self.line(buf),
        }
        let Some(count) = std::str::from_utf8(&buf[..digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
        else {
            return self.line(buf);
        };
        let body = &buf[digits + 1..];
        if count <= self.max {
            if body.len() < count {
                return (0, None);
            }
            let frame = Frame {
                bytes: &body[..count],
                truncated: false,
            };
            return (digits + 1 + count, Some(frame));
        }
        if body.len() < self.max {
            return (0, None);
        }
        self.skipping = Skip::Bytes(count - self.max);
        let frame = Frame {
            bytes: &body[..self.max],
            truncated: true,
        };
        (digits + 1 + self.max, Some(frame))
    }

    fn line<'a>(&mut self, buf: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        let window = &buf[..buf.len().min(self.max + 1)];
        let from = self.scanned.min(window.len());
        let newline = memchr::memchr(b'\n', &window[from..]).map(|at| from + at);
        self.scanned = 0;
        if let Some(end) = newline {
            let line = &buf[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let frame = Frame {
                bytes: line,
                truncated: false,
            };
            return (end + 1, Some(frame));
        }
        if buf.len() <= self.max {
            // The next call starts at this same line, with more bytes.
            self.scanned = window.len();
            return (0, None);
        }
        self.skipping = Skip::ToNewline;
        let frame = Frame {
            bytes: &buf[..self.max],
            truncated: true,
        };
        (self.max, Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, as reads would deliver it.
    fn frames(max: usize, input: &[u8], step: usize) -> Vec<(String, bool)> {
        let mut framer = Framer::new(max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let (used, frame) = framer.next(&buf);
                let frame = frame.map(|f| (String::from_utf8_lossy(f.bytes).into_owned(), f.truncated));
                buf.drain(..used);
                match frame {
                    Some(frame) => out.push(frame),
                    None => break,
                }
            }
        }
        if let Some(frame) = framer.finish(&buf) {
            out.push((String::from_utf8_lossy(frame.bytes).into_owned(), frame.truncated));
        }
        out
    }

    fn plain(messages: &[&str]) -> Vec<(String, bool)> {
        messages.iter().map(|m| ((*m).to_owned(), false)).collect()
    }

    #[test]
    fn lines_and_counted_frames_mix_however_the_bytes_arrive() {
        let input = b"<13>first line\r\n\n17 <14>counted\nframe<15>third line\n<13>no newline";
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(
                frames(100, input, step),
                plain(&[
                    "<13>first line",
                    "<14>counted\nframe",
                    "<15>third line",
                    "<13>no newline"
                ]),
                "step {step}"
            );
        }
    }

    #[test]
    fn over_long_messages_are_cut_and_the_rest_skipped() {
        let input = b"<13>aaaaaaaaaaaaaaaaaaaa\n<13>ok\n30 <13>bbbbbbbbbbbbbbbbbbbbbbbbbb<13>after\n";
        for step in [1, 4, 1000] {
            assert_eq!(
                frames(10, input, step),
                vec![
                    ("<13>aaaaaa".to_owned(), true),
                    ("<13>ok".to_owned(), false),
                    ("<13>bbbbbb".to_owned(), true),
                    ("<13>after".to_owned(), false),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn what_is_not_a_count_is_read_as_a_line() {
        assert_eq!(
            frames(100, b"12345678901234 not a count\n42x\n", 1000),
            plain(&["12345678901234 not a count", "42x"])
        );
    }
}
