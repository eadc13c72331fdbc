//! Syslog messages as devices and relays send them: RFC 5424
//! (`<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [sd@32473 k="v"] msg`)
//! and the older BSD form of RFC 3164 (`<34>Oct 11 22:14:15 host su[42]: msg`),
//! read from one frame (framing is the listener's job).
//!
//! Pure policy, no I/O: [`parse`] turns bytes into a [`SyslogMessage`] or an
//! error that says what is wrong; it never panics and allocates only for
//! structured data and text that is not valid UTF-8. [`SyslogMessage::into_line`]
//! makes it a record's line. [`framing`] splits a TCP stream into messages;
//! [`listen`] serves TCP, TLS and UDP.

pub mod framing;
pub mod listen;

use super::{Line, add_field};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use lookout_shared::parse::Level;
use lookout_shared::parse::fields::MAX_FIELDS_PER_LINE;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One syslog message.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogMessage<'a> {
    /// The facility (PRI / 8): 0 kernel, 1 user, … 23 local7.
    pub facility: u8,
    /// The severity (PRI % 8): 0 emergency … 7 debug.
    pub severity: u8,
    /// The time the message states, if any (`-` in RFC 5424, or one that
    /// does not read as a time, gives none).
    pub timestamp: Option<Timestamp>,
    /// The sender's host name, if stated.
    pub hostname: Option<Cow<'a, str>>,
    /// RFC 5424 APP-NAME, or the RFC 3164 tag (`sshd` of `sshd[42]:`).
    pub app_name: Option<Cow<'a, str>>,
    /// RFC 5424 PROCID, or the RFC 3164 tag's `[pid]`.
    pub proc_id: Option<Cow<'a, str>>,
    /// RFC 5424 MSGID.
    pub msg_id: Option<Cow<'a, str>>,
    /// RFC 5424 structured data as `(sd-id.param-name, value)` pairs, escapes
    /// resolved.
    pub structured_data: SdPairs,
    /// The message text (a UTF-8 byte order mark removed, invalid UTF-8
    /// replaced).
    pub message: Cow<'a, str>,
}

/// Why bytes are not a syslog message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    /// No `<PRI>` at the start, or one outside 0..=191.
    #[error("no <PRI> (0 to 191) at the start of the message")]
    NoPri,
    /// An RFC 5424 header cut short or malformed.
    #[error("RFC 5424 header: {0}")]
    Header(&'static str),
    /// RFC 5424 structured data that does not close or is malformed.
    #[error("RFC 5424 structured data: {0}")]
    StructuredData(&'static str),
}

/// Reads one message. `received` and `zone` complete an RFC 3164 time,
/// which states neither year nor zone.
pub fn parse<'a>(bytes: &'a [u8], received: Timestamp, zone: &TimeZone) -> Result<SyslogMessage<'a>, SyslogError> {
    let bytes = trim_end(bytes);
    let (pri, rest) = pri(bytes).ok_or(SyslogError::NoPri)?;
    let (facility, severity) = (pri / 8, pri % 8);
    match rest {
        [b'1', b' ', header @ ..] => rfc5424(facility, severity, header),
        _ => Ok(rfc3164(facility, severity, rest, received, zone)),
    }
}

/// Facility names (RFC 5424 table 1, as rsyslog and Vector name them).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names (RFC 5424 table 2, as rsyslog and Vector name them).
const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

impl SyslogMessage<'_> {
    /// The message as a line to store: its host (else `peer`'s address),
    /// time, level from the severity, and as fields `facility`, `severity`,
    /// `appname`, `procid`, `msgid` and the structured data's
    /// `<sd-id>.<param>` pairs (Vector's names).
    pub fn into_line(self, peer: IpAddr, truncated: bool) -> Line {
        let host = match self.hostname {
            Some(name) if !name.is_empty() => name.into_owned(),
            _ => peer.to_string(),
        };
        let mut fields = BTreeMap::new();
        let facility = FACILITIES.get(usize::from(self.facility)).copied();
        let severity = SEVERITIES.get(usize::from(self.severity)).copied();
        let stated = [
            ("facility", facility.map(Cow::Borrowed)),
            ("severity", severity.map(Cow::Borrowed)),
            ("appname", self.app_name),
            ("procid", self.proc_id),
            ("msgid", self.msg_id),
        ];
        for (name, value) in stated {
            if let Some(value) = value {
                add_field(&mut fields, name, &value);
            }
        }
        for (name, value) in &self.structured_data {
            add_field(&mut fields, name, value);
        }
        Line {
            host,
            message: self.message.into_owned(),
            truncated,
            time_ms: self.timestamp.map(|t| t.as_millisecond()),
            level: Level::from_syslog_severity(self.severity),
            fields,
        }
    }
}

/// `<N>` with 1 to 3 digits, N ≤ 191.
fn pri(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let rest = bytes.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|b| *b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let value: u16 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (value <= 191).then_some((value as u8, &rest[close + 1..]))
}

fn rfc5424(facility: u8, severity: u8, header: &[u8]) -> Result<SyslogMessage<'_>, SyslogError> {
    let mut rest = header;
    let mut field = |what: &'static str| -> Result<&[u8], SyslogError> {
        let end = rest.iter().position(|b| *b == b' ').ok_or(SyslogError::Header(what))?;
        let value = &rest[..end];
        rest = &rest[end + 1..];
        Ok(value)
    };
    let time = field("no TIMESTAMP")?;
    let hostname = nil_or_text(field("no HOSTNAME")?);
    let app_name = nil_or_text(field("no APP-NAME")?);
    let proc_id = nil_or_text(field("no PROCID")?);
    // MSGID may end the message when structured data follows; it cannot
    // hold a space, so split on the next one.
    let msg_id_end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
    let msg_id = nil_or_text(&rest[..msg_id_end]);
    rest = rest.get(msg_id_end + 1..).unwrap_or_default();
    let timestamp = match time {
        b"-" => None,
        text => std::str::from_utf8(text).ok().and_then(|t| t.parse::<Timestamp>().ok()),
    };
    let (structured_data, after) = structured_data(rest)?;
    let message = after.strip_prefix(b" ").unwrap_or(after);
    Ok(SyslogMessage {
        facility,
        severity,
        timestamp,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        message: text(message.strip_prefix("\u{feff}".as_bytes()).unwrap_or(message)),
    })
}

/// Structured data as `(sd-id.param-name, value)` pairs.
pub type SdPairs = Vec<(String, String)>;

/// `-`, or one or more `[id param="value" …]` elements; returns the pairs
/// and what follows.
fn structured_data(bytes: &[u8]) -> Result<(SdPairs, &[u8]), SyslogError> {
    if bytes.is_empty() {
        return Ok((Vec::new(), bytes));
    }
    if let Some(rest) = bytes.strip_prefix(b"-") {
        return Ok((Vec::new(), rest));
    }
    let mut pairs = Vec::new();
    let mut rest = bytes;
    while let Some(element) = rest.strip_prefix(b"[") {
        let id_end = element
            .iter()
            .position(|b| matches!(b, b' ' | b']'))
            .ok_or(SyslogError::StructuredData("an element does not close"))?;
        let id = sd_name(&element[..id_end]).ok_or(SyslogError::StructuredData(
            "an SD-ID is not 1 to 32 printable characters",
        ))?;
        rest = &element[id_end..];
        loop {
            match rest {
                [b']', after @ ..] => {
                    rest = after;
                    break;
                }
                [b' ', after @ ..] => {
                    let eq = after
                        .iter()
                        .position(|b| *b == b'=')
                        .ok_or(SyslogError::StructuredData("a parameter has no `=`"))?;
                    let name = sd_name(&after[..eq]).ok_or(SyslogError::StructuredData(
                        "a PARAM-NAME is not 1 to 32 printable characters",
                    ))?;
                    let value = after[eq + 1..]
                        .strip_prefix(b"\"")
                        .ok_or(SyslogError::StructuredData("a parameter value is not quoted"))?;
                    let (value, after_value) = quoted(value)?;
                    // As many as a line may have fields; the rest are read past.
                    if pairs.len() < MAX_FIELDS_PER_LINE {
                        pairs.push((format!("{id}.{name}"), value));
                    }
                    rest = after_value;
                }
                _ => return Err(SyslogError::StructuredData("an element does not close")),
            }
        }
    }
    if pairs.is_empty() && rest.len() == bytes.len() {
        return Err(SyslogError::StructuredData("neither `-` nor `[`"));
    }
    Ok((pairs, rest))
}

/// An SD-NAME (SD-ID or PARAM-NAME): 1 to 32 printable US-ASCII
/// characters other than `=`, space, `]` and `"` (RFC 5424 section 6).
fn sd_name(bytes: &[u8]) -> Option<&str> {
    let valid = (1..=32).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'));
    valid.then(|| std::str::from_utf8(bytes).ok()).flatten()
}

/// A PARAM-VALUE after its opening quote, `\"`, `\\` and `\]` resolved;
/// returns it and what follows the closing quote.
fn quoted(bytes: &[u8]) -> Result<(String, &[u8]), SyslogError> {
    let mut value = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((String::from_utf8_lossy(&value).into_owned(), &bytes[i + 1..])),
            b'\\' if matches!(bytes.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                value.push(bytes[i + 1]);
                i += 2;
            }
            byte => {
                value.push(byte);
                i += 1;
            }
        }
    }
    Err(SyslogError::StructuredData("a parameter value is not closed"))
}

/// The BSD form: an optional `Mmm dd hh:mm:ss` (or an RFC 3339 time, as
/// rsyslog's forwarding templates write), an optional host name, a tag with
/// an optional `[pid]`, then the text. Whatever does not fit is text: RFC
/// 3164 is a description of practice, and devices differ.
fn rfc3164<'a>(facility: u8, severity: u8, rest: &'a [u8], received: Timestamp, zone: &TimeZone) -> SyslogMessage<'a> {
    let mut message = SyslogMessage {
        facility,
        severity,
        timestamp: None,
        hostname: None,
        app_name: None,
        proc_id: None,
        msg_id: None,
        structured_data: Vec::new(),
        message: Cow::Borrowed(""),
    };
    let mut rest = rest;
    if let Some((timestamp, after)) = bsd_time(rest, received, zone) {
        message.timestamp = Some(timestamp);
        rest = after;
        // After a time: the host name, when a tag follows it.
        if let Some(space) = rest.iter().position(|b| *b == b' ') {
            let word = &rest[..space];
            let next = &rest[space + 1..];
            if !word.is_empty() && !word.ends_with(b":") && tag(next).is_some() {
                message.hostname = Some(text(word));
                rest = next;
            }
        }
    }
    if let Some(tag) = tag(rest) {
        message.app_name = Some(text(tag.app));
        message.proc_id = tag.pid.map(text);
        rest = tag.rest;
    }
    message.message = text(rest);
    message
}

/// A time at the start: `Mmm dd hh:mm:ss` (year and zone from `received`
/// and `zone`) or an RFC 3339 one; returns it and what follows its space.
fn bsd_time<'a>(bytes: &'a [u8], received: Timestamp, zone: &TimeZone) -> Option<(Timestamp, &'a [u8])> {
    let month_form = bytes.len() >= 15 && bytes[3] == b' ' && bytes[6] == b' ' && bytes[9] == b':' && bytes[12] == b':';
    let end = if month_form {
        15
    } else {
        bytes.iter().position(|b| *b == b' ')?
    };
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let timestamp = if month_form {
        lookout_shared::parse::parse_timestamp(head, received, zone)?
    } else {
        head.parse::<Timestamp>().ok()?
    };
    let after = &bytes[end..];
    Some((timestamp, after.strip_prefix(b" ").unwrap_or(after)))
}

/// `app:` or `app[pid]:` then a space: the tag of a BSD message. An app
/// name is up to 48 letters, digits and `-_./@`, starting with a letter,
/// digit or `_` (so a Cisco `%LINK-3-UPDOWN:` stays text).
fn tag(bytes: &[u8]) -> Option<Tag<'_>> {
    let end = bytes.iter().take(64).position(|b| matches!(b, b':' | b'[' | b' '))?;
    let app = &bytes[..end];
    let name_like = app.first().is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && app.iter().all(|b| b.is_ascii_alphanumeric() || b"-_./@".contains(b));
    if !name_like || app.len() > 48 {
        return None;
    }
    let (pid, rest) = match bytes[end] {
        b'[' => {
            let close = bytes[end..].iter().take(24).position(|b| *b == b']')? + end;
            (Some(&bytes[end + 1..close]), bytes[close + 1..].strip_prefix(b":")?)
        }
        b':' => (None, &bytes[end + 1..]),
        _ => return None,
    };
    Some(Tag {
        app,
        pid,
        rest: rest.strip_prefix(b" ").unwrap_or(rest),
    })
}

/// A BSD message's tag and what follows it.
struct Tag<'a> {
    app: &'a [u8],
    pid: Option<&'a [u8]>,
    /// The text after `: `.
    rest: &'a [u8],
}

fn nil_or_text(bytes: &[u8]) -> Option<Cow<'_, str>> {
    (bytes != b"-" && !bytes.is_empty()).then(|| text(bytes))
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Without the trailing newline, carriage return or NUL some senders add.
fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> Timestamp {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn read(line: &str) -> SyslogMessage<'_> {
        parse(line.as_bytes(), received(), &TimeZone::UTC).unwrap_or_else(|err| panic!("{line}: {err}"))
    }

    /// The four examples of RFC 5424, section 6.5.
    #[test]
    fn rfc5424_examples() {
        let one = read(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!((one.facility, one.severity), (4, 2));
        assert_eq!(one.timestamp, Some("2003-10-11T22:14:15.003Z".parse().unwrap()));
        assert_eq!(one.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(one.app_name.as_deref(), Some("su"));
        assert_eq!((one.proc_id, one.msg_id.as_deref()), (None, Some("ID47")));
        assert_eq!(one.message, "'su root' failed for lonvick on /dev/pts/8");

        let two =
            read("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
        assert_eq!((two.facility, two.severity), (20, 5));
        assert_eq!(two.timestamp, Some("2003-08-24T12:14:15.000003Z".parse().unwrap()));
        assert_eq!(two.proc_id.as_deref(), Some("8710"));
        assert_eq!(two.message, "%% It's time to make the do-nuts.");

        let three = read(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
        );
        assert_eq!(
            three.structured_data,
            [
                ("exampleSDID@32473.iut".to_owned(), "3".to_owned()),
                ("exampleSDID@32473.eventSource".to_owned(), "Application".to_owned()),
                ("exampleSDID@32473.eventID".to_owned(), "1011".to_owned()),
            ]
        );
        assert_eq!(three.message, "An application event log entry...");

        let four = read(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        );
        assert_eq!(four.structured_data.len(), 4);
        assert_eq!(
            four.structured_data[3],
            ("examplePriority@32473.class".to_owned(), "high".to_owned())
        );
        assert_eq!(four.message, "");
    }

    #[test]
    fn structured_data_escapes_and_errors() {
        let escaped = read(r#"<13>1 - - - - - [a@1 q="say \"hi\" \\ \]"] text"#);
        assert_eq!(
            escaped.structured_data,
            [("a@1.q".to_owned(), r#"say "hi" \ ]"#.to_owned())]
        );
        assert_eq!((escaped.timestamp, escaped.hostname.clone()), (None, None));
        let long_id = format!("<13>1 - - - - - [{} a=\"\"] text", "i".repeat(33));
        let long_name = format!("<13>1 - - - - - [id {}=\"\"] text", "n".repeat(33));
        let many: String = (0..200).map(|i| format!(" p{i}=\"v\"")).collect();
        let many = read(&format!("<13>1 - - - - - [id{many}] text")).into_line("192.0.2.1".parse().unwrap(), false);
        assert_eq!(many.fields.len(), MAX_FIELDS_PER_LINE, "structured data is bounded");
        for bad in [
            long_id.as_str(),
            long_name.as_str(),
            r#"<13>1 - - - - - [a@1 q="open"#,
            r#"<13>1 - - - - - [a@1 q=unquoted]"#,
            "<13>1 - - - - - junk",
            "<13>1 2003-10-11T22:14:15Z host",
        ] {
            assert!(parse(bad.as_bytes(), received(), &TimeZone::UTC).is_err(), "{bad}");
        }
    }

    /// RFC 3164 as Linux, network devices and rsyslog send it.
    #[test]
    fn bsd_messages() {
        let su = read("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!((su.facility, su.severity), (4, 2));
        assert_eq!(su.timestamp, Some("2026-10-11T22:14:15Z".parse().unwrap()));
        assert_eq!(su.hostname.as_deref(), Some("mymachine"));
        assert_eq!(su.app_name.as_deref(), Some("su"));
        assert_eq!(su.message, "'su root' failed for lonvick on /dev/pts/8");

        let sshd =
            read("<38>Nov 27 11:59:01 web-1 sshd[4242]: Accepted publickey for ann from 10.0.0.7 port 50022 ssh2\n");
        assert_eq!(sshd.proc_id.as_deref(), Some("4242"));
        assert_eq!(sshd.message, "Accepted publickey for ann from 10.0.0.7 port 50022 ssh2");

        // `logger` on the local socket leaves the host out.
        let local = read("<13>Nov 27 11:59:01 ann: hello");
        assert_eq!((local.hostname, local.app_name.as_deref()), (None, Some("ann")));
        assert_eq!(local.message, "hello");

        // rsyslog's RFC 3339 forwarding template.
        let precise =
            read("<86>2026-11-27T11:59:01.123456+01:00 db-2 CRON[77]: pam_unix(cron:session): session opened");
        assert_eq!(precise.timestamp, Some("2026-11-27T10:59:01.123456Z".parse().unwrap()));
        assert_eq!(precise.hostname.as_deref(), Some("db-2"));
        assert_eq!(precise.app_name.as_deref(), Some("CRON"));

        // A device that sends only a PRI and text.
        let bare = read("<190>%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down");
        assert_eq!((bare.timestamp, bare.hostname.clone()), (None, None));
        assert_eq!(
            bare.message,
            "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
        );
    }

    #[test]
    fn a_message_becomes_a_line_with_its_parts_as_fields() {
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let line = read(r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#)
            .into_line(peer, false);
        assert_eq!(line.host, "mymachine.example.com");
        assert_eq!(line.time_ms, Some(1_065_910_455_003));
        assert_eq!(line.level, Some(Level::Info), "notice");
        assert_eq!(line.message, "An application event");
        let field = |name: &str| line.fields.get(name).map(String::as_str);
        assert_eq!(field("facility"), Some("local4"));
        assert_eq!(field("severity"), Some("notice"));
        assert_eq!(field("appname"), Some("evntslog"));
        assert_eq!(field("procid"), Some("77"));
        assert_eq!(field("msgid"), Some("ID47"));
        assert_eq!(field("exampleSDID@32473.eventSource"), Some("Application"));
        let line = read("<11>1 - - app - - - disk failed").into_line(peer, true);
        assert_eq!(
            (line.host.as_str(), line.level, line.truncated),
            ("192.0.2.7", Some(Level::Error), true)
        );
        assert_eq!(line.time_ms, None);
    }

    #[test]
    fn garbage_gets_an_error_or_text_never_a_panic() {
        for bad in ["", "no pri", "<>x", "<192>x", "<012>x", "<1234>x", "<13"] {
            assert_eq!(
                parse(bad.as_bytes(), received(), &TimeZone::UTC),
                Err(SyslogError::NoPri),
                "{bad:?}"
            );
        }
        let odd = parse(b"<13>\xff\xfe bytes [", received(), &TimeZone::UTC).unwrap();
        assert_eq!(odd.message, "\u{fffd}\u{fffd} bytes [");
        // Every prefix of a full message reads or fails cleanly.
        let full = "<165>1 2003-10-11T22:14:15.003Z host app 1 ID [a@1 k=\"v\"][b@2 x=\"\\]\"] msg";
        for end in 0..full.len() {
            let _ = parse(&full.as_bytes()[..end], received(), &TimeZone::UTC);
        }
    }
}
