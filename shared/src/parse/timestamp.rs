//! Timestamp detection: a scan of the start of a line for the layouts that
//! log formats write times in.
//!
//! Hand-written byte matchers rather than regexes: this runs on every
//! ingested line, and each matcher fails on the first byte that does not fit,
//! so a line costs little more than one pass over its head.
//!
//! Order of the attempts:
//! 1. a JSON line's time key (`time`, `ts`, `@timestamp`, `t.$date`, ...);
//! 2. BGL/Thunderbird's `- <epoch> <yyyy.mm.dd> ...` (the epoch is the instant);
//! 3. forms only recognised at the start of the line (after a syslog `<PRI>`
//!    and version, or a `[`), where their shape is too loose to trust
//!    elsewhere: two-digit years (Spark, HDFS, MySQL 5), year-less
//!    `MM-DD` / `MM.DD` (Android logcat, Proxifier), klog's `I0102`;
//! 4. the first position within [`SCAN_WINDOW`] bytes, at the start of a
//!    token, where a full date and time match: ISO 8601 and its relatives,
//!    month names, weekdays, day-first and month-first numeric dates, and
//!    (within [`EPOCH_WINDOW`]) a Unix time in seconds, milliseconds,
//!    microseconds or nanoseconds;
//! 5. `time`/`ts` keys further into a logfmt or JSON line.
//!
//! A time that states no zone is read in the source's zone; one that states
//! an offset, `Z`, a zone abbreviation (`CET`, `PST`: fixed offsets, see
//! [`abbreviation`]) or an IANA name (`Europe/Berlin`, from the system's zone
//! database) is read in that. Nothing before 1990 is returned: such a value is
//! a misread number, not a log line's time.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use std::cell::Cell;
use std::ops::Range;

/// How far into a line a date may start.
const SCAN_WINDOW: usize = 320;

/// How far into a line a bare Unix time may start. Further in, a 10-digit
/// number is more often an id or a byte count than a time.
const EPOCH_WINDOW: usize = 128;

/// How far into a JSON or logfmt line a `time` key is looked for.
const KEY_WINDOW: usize = 1024;

const SECONDS_PER_DAY: i64 = 86_400;

/// How far after the read time a year-less time may be and still be this
/// year's, in seconds. A file is read on the host that writes it, by the
/// same clock, so only small skews (a syslog sender's clock) are allowed.
const YEARLESS_SLACK: i64 = 600;

/// The earliest year a written date is believed: before it, a date is a
/// clock that was never set (`1970-01-01 00:00:05`) or a misread number,
/// and the read time places the line better.
const EARLIEST_YEAR: u32 = 1990;

/// 1990-01-01T00:00:00Z: the earliest time a line is believed to state.
const EARLIEST: i64 = 631_152_000;

/// The reading context: when the line was read and the source's zone.
pub(super) struct Context<'a> {
    reference: Timestamp,
    zone: &'a TimeZone,
    /// How many bytes of the line followed the last date a matcher read
    /// whole (every matcher reads a suffix of the line, so the date ends
    /// that far from the line's end): where a leading time ends.
    rest_after: Cell<Option<usize>>,
    /// The zone's offset when it has no transitions (UTC, fixed offsets):
    /// the common case, converted without a zone lookup.
    fixed: Option<i32>,
}

impl<'a> Context<'a> {
    pub(super) fn new(reference: Timestamp, zone: &'a TimeZone) -> Self {
        Self::with_fixed(reference, zone, fixed_offset(zone))
    }

    /// A context whose zone's [`fixed_offset`] is already known (a source's
    /// rules compute it once, not per line).
    pub(super) fn with_fixed(reference: Timestamp, zone: &'a TimeZone, fixed: Option<i32>) -> Self {
        Context {
            reference,
            zone,
            rest_after: Cell::new(None),
            fixed,
        }
    }

    /// Records that a date was read whole and `rest` follows it.
    fn read_up_to(&self, rest: &[u8]) {
        self.rest_after.set(Some(rest.len()));
    }

    /// Where in `text` the last date read whole ends (`text` being what the
    /// matchers were given).
    pub(super) fn end_in(&self, text: &str) -> Option<usize> {
        self.rest_after.get().map(|rest| text.len().saturating_sub(rest))
    }
}

/// How far into a line its time may start to count as the line's own (and
/// be left out of the message proper): further in, it is part of what the
/// message says.
const HEAD_WINDOW: usize = 64;

/// [`parse`], and where the line's time is written when it starts within
/// [`HEAD_WINDOW`] bytes (not for a time under a JSON or logfmt key): the
/// rest of the line, before and after it, is the message proper.
pub(super) fn parse_head(line: &str, ctx: &Context) -> Option<(Timestamp, Option<Range<usize>>)> {
    let b = line.as_bytes();
    let json = b.trim_ascii_start().first() == Some(&b'{');
    if json && let Some(t) = keyed(b, ctx) {
        return Some((t, None)).filter(|(t, _)| t.as_second() >= EARLIEST);
    }
    let head = skip_syslog_header(b);
    let span = |t: Timestamp, start: usize| {
        let span = ctx.end_in(line).filter(|end| start < HEAD_WINDOW && start <= *end);
        (t, span.map(|end| start..end))
    };
    ctx.rest_after.set(None);
    let found = if let Some((t, end)) = bgl(b) {
        Some((t, Some(0..end)))
    } else if let Some(t) = at_start(head, ctx) {
        // `at_start` reads past an opening `[`.
        let start = b.len() - head.len() + usize::from(head.first() == Some(&b'['));
        Some(span(t, start))
    } else if let Some((t, start)) = scan(b, ctx) {
        Some(span(t, start))
    } else if json {
        None
    } else {
        keyed(b, ctx).map(|t| (t, None))
    };
    found.filter(|(t, _)| t.as_second() >= EARLIEST)
}

/// The zone's offset in seconds when it never changes (UTC, fixed offsets).
pub(super) fn fixed_offset(zone: &TimeZone) -> Option<i32> {
    zone.to_fixed_offset().ok().map(|o| o.seconds())
}

/// See [`super::parse_timestamp`].
pub(super) fn parse(line: &str, ctx: &Context) -> Option<Timestamp> {
    parse_head(line, ctx).map(|(t, _)| t)
}

/// The start of `text` (a line, or a key's value) as a time written in
/// `format` (jiff's `strftime` directives), read in the context's zone when
/// it states none. For the per-source `timestamp = { format = ... }`.
pub(super) fn with_format(text: &str, format: &str, ctx: &Context) -> Option<Timestamp> {
    ctx.rest_after.set(None);
    let (parsed, read) = jiff::fmt::strtime::BrokenDownTime::parse_prefix(format, text).ok()?;
    ctx.read_up_to(text.as_bytes().get(read..).unwrap_or_default());
    let found = if parsed.offset().is_some() {
        parsed.to_timestamp().ok()
    } else {
        let dt = parsed.to_datetime().ok()?;
        ctx.zone.to_ambiguous_timestamp(dt).compatible().ok()
    };
    found.filter(|t| t.as_second() >= EARLIEST)
}

/// Parses a field's value: an RFC 3339-like string, any layout [`scan`]
/// knows, or a Unix time by its number of digits. For the per-source
/// `timestamp = { field = ... }` override and JSON time keys.
pub(super) fn value(value: &str, ctx: &Context) -> Option<Timestamp> {
    let b = value.trim().as_bytes();
    let found = if b.first().is_some_and(u8::is_ascii_digit) && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        unix_time(b).map(|(t, _)| t)
    } else {
        date_at(b, ctx).or_else(|| at_start(b, ctx))
    };
    found.filter(|t| t.as_second() >= EARLIEST)
}

/// Keys that carry a JSON line's time, in the order they are tried: ECS and
/// Logstash, the common loggers (`time`, `ts`, Serilog's `@t`, MongoDB's
/// `t.$date`), cloud and journald exports.
const JSON_TIME_KEYS: [&str; 14] = [
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "@t",
    "t",
    "date",
    "datetime",
    "eventTime",
    "event_time",
    "timeMillis",
    "time_local",
    "__REALTIME_TIMESTAMP",
    "EdgeStartTimestamp",
];

/// The time a JSON object states under one of [`JSON_TIME_KEYS`] (or as
/// log4j2's `instant: {epochSecond, nanoOfSecond}`).
pub(super) fn from_json(object: &serde_json::Map<String, serde_json::Value>, ctx: &Context) -> Option<Timestamp> {
    if let Some(instant) = super::fields::lookup(object, "instant").and_then(|v| v.as_object())
        && let Some(second) = instant.get("epochSecond").and_then(serde_json::Value::as_i64)
    {
        let nanos = instant
            .get("nanoOfSecond")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if let Ok(t) = Timestamp::new(second, i32::try_from(nanos).unwrap_or(0)) {
            return Some(t).filter(|t| t.as_second() >= EARLIEST);
        }
    }
    JSON_TIME_KEYS.iter().find_map(|key| {
        let raw = super::fields::lookup(object, key)?;
        value(&super::fields::scalar(raw)?, ctx)
    })
}

/// Skips an RFC 3164 / 5424 priority `<34>` and the RFC 5424 version `1 `
/// (after an octet count, `215 <86>1 `, when the framing left one).
fn skip_syslog_header(b: &[u8]) -> &[u8] {
    let counted = b.iter().take(6).take_while(|c| c.is_ascii_digit()).count();
    let b = match b.get(counted) {
        Some(b' ') if counted > 0 && b.get(counted + 1) == Some(&b'<') => &b[counted + 1..],
        _ => b,
    };
    let Some(rest) = b.strip_prefix(b"<") else {
        return b;
    };
    let Some(close) = rest.iter().take(4).position(|&c| c == b'>') else {
        return b;
    };
    if close == 0 || !rest[..close].iter().all(u8::is_ascii_digit) {
        return b;
    }
    let rest = &rest[close + 1..];
    rest.strip_prefix(b"1 ").unwrap_or(rest)
}

/// The forms trusted only at the very start of a line (or just inside an
/// opening `[`): their digits alone would match too much elsewhere.
fn at_start(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let b = b.strip_prefix(b"[").unwrap_or(b);
    match *b.first()? {
        b'0'..=b'9' => yy_mm_dd(b, ctx)
            .or_else(|| yymmdd(b, ctx))
            .or_else(|| month_day(b, ctx))
            .or_else(|| snort(b, ctx)),
        b'I' | b'W' | b'E' | b'F' => klog(b, ctx),
        _ => None,
    }
}

/// Candidate starts: the first byte of a token, within [`SCAN_WINDOW`].
/// A digit may not follow `.`, `-`, `/` or `_` (the date inside a file name
/// such as `nova-api.log.1.2017-05-16_13:53:08` is not the line's time), and
/// nothing may follow a letter or digit.
/// Answers the time and where it starts.
fn scan(b: &[u8], ctx: &Context) -> Option<(Timestamp, usize)> {
    let window = b.len().min(SCAN_WINDOW);
    (0..window).find_map(|i| {
        let c = b[i];
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| b.get(p)) {
            if prev.is_ascii_alphanumeric() || prev >= 0x80 {
                return None;
            }
            if c.is_ascii_digit() && matches!(prev, b'.' | b'-' | b'/' | b'_' | b'+') {
                return None;
            }
        }
        let rest = &b[i..];
        date_at(rest, ctx)
            .or_else(|| {
                (i < EPOCH_WINDOW && c.is_ascii_digit())
                    .then(|| epoch_token(rest, ctx))
                    .flatten()
            })
            .map(|t| (t, i))
    })
}

/// A full date and time starting exactly at `b[0]`.
fn date_at(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    match *b.first()? {
        b'0'..=b'9' => ymd(b, ctx).or_else(|| dmy(b, ctx)),
        c if c.is_ascii_alphabetic() => month_first(b, ctx).or_else(|| weekday_first(b, ctx)),
        _ => None,
    }
}

/// The calendar fields of a date and time as written.
#[derive(Clone, Copy)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

impl Civil {
    /// A date and a time of day, without a fraction yet.
    fn new(year: i32, month: u32, day: u32, (hour, minute, second): (u32, u32, u32)) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos: 0,
        }
    }
}

/// What a line says about the zone of its time.
enum Zone {
    /// Nothing: the source's zone applies.
    Unstated,
    /// An offset, seconds east of UTC.
    Offset(i32),
    /// A named zone from the database.
    Named(TimeZone),
}

/// The instant of `civil` in `zone`, or in the source's zone when the line
/// states none. Impossible dates and times give `None`.
fn resolve(civil: Civil, zone: Zone, ctx: &Context) -> Option<Timestamp> {
    let Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    } = civil;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let offset = match zone {
        Zone::Offset(offset) => offset,
        Zone::Unstated if ctx.fixed.is_some() => ctx.fixed.unwrap_or(0),
        Zone::Unstated | Zone::Named(_) => {
            let tz = match &zone {
                Zone::Named(tz) => tz,
                _ => ctx.zone,
            };
            let dt = DateTime::new(
                i16::try_from(year).ok()?,
                month as i8,
                day as i8,
                hour as i8,
                minute as i8,
                second.min(59) as i8,
                nanos as i32,
            )
            .ok()?;
            return tz.to_ambiguous_timestamp(dt).compatible().ok();
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * SECONDS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second.min(59)) - i64::from(offset);
    Timestamp::new(seconds, nanos as i32).ok()
}

/// A time from a format that leaves out the year (syslog, klog, logcat): the
/// year that puts it nearest to, and not after, `reference` (a December line
/// read in January is last year's). [`YEARLESS_SLACK`] allows for the clocks
/// of a sender and a receiver that differ a little.
fn without_year(mut civil: Civil, zone: Zone, ctx: &Context) -> Option<Timestamp> {
    let year = civil_year(ctx.reference.as_second());
    civil.year = year;
    let (this_year, zone) = match zone {
        Zone::Named(tz) => (resolve(civil, Zone::Named(tz.clone()), ctx), Zone::Named(tz)),
        Zone::Offset(o) => (resolve(civil, Zone::Offset(o), ctx), Zone::Offset(o)),
        Zone::Unstated => (resolve(civil, Zone::Unstated, ctx), Zone::Unstated),
    };
    this_year
        .filter(|t| t.as_second() <= ctx.reference.as_second() + YEARLESS_SLACK)
        // Also reached for 29 February when `year` is not a leap year.
        .or_else(|| {
            civil.year = year - 1;
            resolve(civil, zone, ctx)
        })
}

/// Four-digit year first: `2015-10-18 18:01:47,978`, RFC 3339
/// `2024-01-01T12:00:00.5+01:00`, `2024/01/01 12:00:00` (nginx),
/// `2016/9/27:20:30:31.455` (Windows CBS), `2005-06-03-15.42.50.675872`
/// (BGL), `20171223-22:15:29:606` (HealthApp), `20240101T120000Z` (ISO
/// basic), each with an optional fraction, AM/PM and zone.
fn ymd(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let year = c.number(4)?;
    if !(EARLIEST_YEAR..=2100).contains(&year) {
        return None;
    }
    if let Some(t) = ordinal(&mut c, year, ctx) {
        return Some(t);
    }
    let sep = c.peek()?;
    let compact = sep.is_ascii_digit();
    let (month, day) = if compact {
        (c.number(2)?, c.number(2)?)
    } else {
        if !matches!(sep, b'-' | b'/' | b'.') {
            return None;
        }
        c.pos += 1;
        let month = c.digits(1, 2)?;
        c.expect(sep)?;
        (month, c.digits(1, 2)?)
    };
    let joint = c.next()?;
    let (hour, minute, second) = match joint {
        b'T' | b't' if compact && c.rest().get(..6).is_some_and(|d| d.iter().all(u8::is_ascii_digit)) => {
            (c.number(2)?, c.number(2)?, c.number(2)?)
        }
        b'T' | b't' | b'-' | b':' | b'\t' => c.clock(joint == b'-')?,
        b' ' => {
            c.eat(b' ');
            c.clock(false)?
        }
        _ => return None,
    };
    finish(&mut c, Civil::new(year as i32, month, day, (hour, minute, second)), ctx)
}

/// ISO 8601's ordinal date after the year: `2012-025T10:22:40,672` (day 25
/// of the year). Leaves the cursor alone when it is not one.
fn ordinal(c: &mut Cursor, year: u32, ctx: &Context) -> Option<Timestamp> {
    let rest = c.rest();
    let is_ordinal = rest.len() > 5
        && rest[0] == b'-'
        && rest[1..4].iter().all(u8::is_ascii_digit)
        && matches!(rest[4], b'T' | b't');
    if !is_ordinal {
        return None;
    }
    let mut o = Cursor::new(rest);
    o.pos = 1;
    let day_of_year = o.number(3)?;
    o.pos += 1;
    let (hour, minute, second) = o.clock(false)?;
    let date = jiff::civil::Date::new(i16::try_from(year).ok()?, 1, 1)
        .ok()?
        .with()
        .day_of_year(i16::try_from(day_of_year).ok()?)
        .build()
        .ok()?;
    finish(
        &mut o,
        Civil::new(
            year as i32,
            date.month() as u32,
            date.day() as u32,
            (hour, minute, second),
        ),
        ctx,
    )
}

/// Day (or month) first, four-digit year: `10/Oct/2000:13:55:36 -0700`
/// (Common Log Format), `14 Jan 2019 20:12:32.116` (Redis),
/// `09-Jan-2019 10:58:59.360` (Tomcat), `27.09.2016 20:30:31` (day first),
/// `09/27/2016 20:30:31` (month first, as US formats write it, unless the
/// first number cannot be a month).
fn dmy(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let first = c.digits(1, 2)?;
    let sep = c.next()?;
    let (day, month) = if c.peek().is_some_and(|x| x.is_ascii_alphabetic()) {
        if !matches!(sep, b' ' | b'-' | b'/') {
            return None;
        }
        let month = c.month()?;
        (first, month)
    } else {
        if !matches!(sep, b'.' | b'/' | b'-') {
            return None;
        }
        let second = c.digits(1, 2)?;
        match sep {
            b'/' if first <= 12 => (second, first),
            _ => (first, second),
        }
    };
    let before_year = c.pos;
    if sep == b' '
        && c.eat(b' ')
        && let Some((hour, minute, second)) = c.clock(false)
    {
        // `30 May 12:23:52.442` (Redis before 5.0): no year.
        return finish_without_year(&mut c, Civil::new(0, month, day, (hour, minute, second)), ctx);
    }
    c.pos = before_year;
    c.expect(sep)?;
    let year = c.number(4)?;
    if !(EARLIEST_YEAR..=2100).contains(&year) {
        return None;
    }
    // RabbitMQ writes `8-Mar-2018::14:09:27`, NestJS `08/02/2023, 7:32:47 PM`.
    c.eat(b',');
    if !(c.eat(b' ') || c.eat(b':') || c.eat(b'T')) {
        return None;
    }
    c.eat(b' ');
    c.eat(b':');
    let (hour, minute, second) = c.clock(false)?;
    finish(&mut c, Civil::new(year as i32, month, day, (hour, minute, second)), ctx)
}

/// Month name first: `Jun 14 15:16:01` (BSD syslog, no year), `Jan 14
/// 20:12:32 2019`, `Jan 14 2019 20:12:32`, `Jan 9, 2019 10:58:59 AM` (Java).
fn month_first(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let month = c.month()?;
    c.expect(b' ')?;
    let day = c.padded_day()?;
    let comma = c.eat(b',');
    c.expect(b' ')?;
    let mut civil = Civil {
        year: 0,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
    };
    let save = c.pos;
    if let Some(year) = c.number(4).filter(|y| (EARLIEST_YEAR..=2100).contains(y))
        && c.eat(b' ')
    {
        civil.year = year as i32;
        (civil.hour, civil.minute, civil.second) = c.clock(false)?;
        return finish(&mut c, civil, ctx);
    }
    if comma {
        return None;
    }
    c.pos = save;
    (civil.hour, civil.minute, civil.second) = c.clock(false)?;
    year_after_time(&mut c, civil, ctx)
}

/// Weekday first: `Sun Dec 04 04:47:44 2005` (C `ctime`, Apache's error
/// log, with microseconds in 2.4), `Thu Jan 14 20:12:32 UTC 2019` (date(1)),
/// `Mon, 14 Jan 2019 20:12:32 GMT` (RFC 2822).
fn weekday_first(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    c.weekday()?;
    c.eat(b',');
    c.expect(b' ')?;
    let rest = c.rest();
    match rest.first()? {
        b'0'..=b'9' => dmy(rest, ctx),
        _ => {
            let month = c.month()?;
            c.expect(b' ')?;
            let day = c.padded_day()?;
            c.expect(b' ')?;
            let (hour, minute, second) = c.clock(false)?;
            let civil = Civil::new(0, month, day, (hour, minute, second));
            year_after_time(&mut c, civil, ctx)
        }
    }
}

/// After a month-first time: an optional zone and a four-digit year
/// (`04:47:44 2005`, `20:12:32 UTC 2019`), or nothing (year-less syslog).
fn year_after_time(c: &mut Cursor, mut civil: Civil, ctx: &Context) -> Option<Timestamp> {
    let before_fraction = c.pos;
    civil.nanos = c.fraction();
    let zone = c.zone();
    if c.eat(b' ')
        && let Some(year) = c.number(4).filter(|y| (EARLIEST_YEAR..=2100).contains(y))
        && c.boundary()
    {
        civil.year = year as i32;
        let t = resolve(civil, zone, ctx)?;
        ctx.read_up_to(c.rest());
        return Some(t);
    }
    c.pos = before_fraction;
    finish_without_year(c, civil, ctx)
}

/// The end of a date-time: fraction, AM/PM, zone, and a boundary so that
/// `081109 2036150` is not read as `081109 203615`.
fn finish(c: &mut Cursor, mut civil: Civil, ctx: &Context) -> Option<Timestamp> {
    civil.nanos = c.fraction();
    c.meridiem(&mut civil.hour)?;
    let zone = c.zone();
    if !c.boundary() {
        return None;
    }
    let t = resolve(civil, zone, ctx)?;
    ctx.read_up_to(c.rest());
    Some(t)
}

/// [`finish`] for a time without a year: the year comes from the read time.
fn finish_without_year(c: &mut Cursor, mut civil: Civil, ctx: &Context) -> Option<Timestamp> {
    civil.nanos = c.fraction();
    let zone = c.zone();
    if !c.boundary() {
        return None;
    }
    let t = without_year(civil, zone, ctx)?;
    ctx.read_up_to(c.rest());
    Some(t)
}

/// `17/06/09 20:10:40` (Spark's `yy/MM/dd HH:mm:ss`).
fn yy_mm_dd(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let year = c.number(2)?;
    c.expect(b'/')?;
    let month = c.number(2)?;
    c.expect(b'/')?;
    let day = c.number(2)?;
    c.expect(b' ')?;
    let (hour, minute, second) = c.clock(false)?;
    finish(
        &mut c,
        Civil::new(two_digit_year(year), month, day, (hour, minute, second)),
        ctx,
    )
}

/// `081109 203615` (HDFS's `yyMMdd HHmmss`) and `190214 13:08:22` /
/// `190214  3:08:22` (MySQL 5's error log, hour padded with a space).
fn yymmdd(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let year = c.number(2)?;
    let month = c.number(2)?;
    let day = c.number(2)?;
    c.expect(b' ')?;
    let (hour, minute, second) = if let Some(hms) = c.rest().get(..6)
        && hms.iter().all(u8::is_ascii_digit)
    {
        (c.number(2)?, c.number(2)?, c.number(2)?)
    } else {
        c.eat(b' ');
        c.clock(false)?
    };
    finish(
        &mut c,
        Civil::new(two_digit_year(year), month, day, (hour, minute, second)),
        ctx,
    )
}

/// Month first: `03-17 16:13:38.811` (Android logcat's threadtime, no
/// year), `10.30 16:49:06` (Proxifier, no year), `08-12-13,01:10:08.882`
/// (OneDrive, two-digit year last).
fn month_day(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let month = c.number(2)?;
    let sep = c.next()?;
    if !matches!(sep, b'-' | b'.') {
        return None;
    }
    let day = c.number(2)?;
    // OneDrive writes `08-12-13,01:10:08.882`: a two-digit year, a comma.
    let year = if sep == b'-' && c.eat(b'-') {
        let year = c.number(2)?;
        c.expect(b',')?;
        Some(two_digit_year(year))
    } else {
        c.expect(b' ')?;
        None
    };
    let clock = c.clock(false)?;
    match year {
        Some(year) => finish(&mut c, Civil::new(year, month, day, clock), ctx),
        None => finish_without_year(&mut c, Civil::new(0, month, day, clock), ctx),
    }
}

/// Snort's alert files: `12/28-12:55:38.765402` (month, day, no year) or
/// with `-y`, `21/12/28-12:55:38.765402` (two-digit year first).
fn snort(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let first = c.number(2)?;
    c.expect(b'/')?;
    let second_part = c.number(2)?;
    let (year, month, day) = if c.eat(b'/') {
        (Some(first), second_part, c.number(2)?)
    } else {
        (None, first, second_part)
    };
    c.expect(b'-')?;
    let clock = c.clock(false)?;
    match year {
        Some(year) => finish(&mut c, Civil::new(two_digit_year(year), month, day, clock), ctx),
        None => finish_without_year(&mut c, Civil::new(0, month, day, clock), ctx),
    }
}

/// POSIX `%y`: 69-99 are 1969-1999, 00-68 are 2000-2068.
fn two_digit_year(yy: u32) -> i32 {
    if yy >= 69 { 1900 + yy as i32 } else { 2000 + yy as i32 }
}

/// Go glog/klog `I0102 15:04:05.123456` (level letter, month, day; no year)
/// and C++ glog's `I20210131 14:48:54.411655` (with the year).
fn klog(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    c.next()?;
    if c.rest().get(8) == Some(&b' ') {
        let year = c.number(4)?;
        let month = c.number(2)?;
        let day = c.number(2)?;
        c.expect(b' ')?;
        let (hour, minute, second) = c.clock(false)?;
        return finish(&mut c, Civil::new(year as i32, month, day, (hour, minute, second)), ctx);
    }
    let month = c.number(2)?;
    let day = c.number(2)?;
    c.expect(b' ')?;
    let clock = c.clock(false)?;
    finish_without_year(&mut c, Civil::new(0, month, day, clock), ctx)
}

/// BGL and Thunderbird: `- 1117838570 2005.06.03 NODE 2005-06-03-15.42.50.675872 ...`.
///
/// The detailed field is local time (US Pacific, PDT or PST) with no zone,
/// while the epoch field is the true instant, so the epoch is used, with the
/// detailed field's microseconds when both agree on the second. Answers
/// where the detailed field ends too.
fn bgl(b: &[u8]) -> Option<(Timestamp, usize)> {
    let mut fields = b.split(|&c| c == b' ');
    let label = fields.next()?;
    if label.is_empty() || label.len() > 16 || !label.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
        return None;
    }
    let epoch = fields.next()?;
    let date = fields.next()?;
    let _node = fields.next()?;
    let detailed = fields.next()?;
    let is_date = date.len() == 10
        && date.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'.',
            _ => c.is_ascii_digit(),
        });
    if !(9..=11).contains(&epoch.len()) || !is_date {
        return None;
    }
    let second = Cursor::new(epoch).big_number(epoch.len())? as i64;
    // `YYYY-MM-DD-HH.MM.SS.ffffff`: seconds at 17..19, fraction from 20.
    let mut nanos = 0;
    if detailed.len() > 20 && detailed[19] == b'.' {
        let mut c = Cursor::new(&detailed[17..]);
        if c.number(2).map(i64::from) == Some(second % 60) {
            nanos = c.fraction();
        }
    }
    let end = label.len() + epoch.len() + date.len() + _node.len() + detailed.len() + 4;
    Some((Timestamp::new(second, nanos as i32).ok()?, end.min(b.len())))
}

/// A Unix time as a token of its own: `1286536309.634` (squid),
/// `1258531221.486539` (zeek), `audit(1364481363.243:24287)`, HPC's epoch
/// field. Only a value from 1990 up to a day past the read time counts.
fn epoch_token(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let (t, rest) = unix_time(b)?;
    if t.as_second() > ctx.reference.as_second() + SECONDS_PER_DAY {
        return None;
    }
    ctx.rest_after.set(Some(rest));
    Some(t)
}

/// A Unix time whose unit follows from its size: 9-10 digits are seconds
/// (with an optional fraction), 12-13 milliseconds, 15-16 microseconds,
/// 18-19 nanoseconds. What follows may not continue the token. Answers
/// the time and how many bytes follow it.
fn unix_time(b: &[u8]) -> Option<(Timestamp, usize)> {
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut c = Cursor::new(b);
    let whole = i64::try_from(c.big_number(digits.min(19))?).ok()?;
    let fraction = if (9..=10).contains(&digits) { c.fraction() } else { 0 };
    if c.peek()
        .is_some_and(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'-' | b'/' | b'_'))
    {
        return None;
    }
    let t = match digits {
        9..=10 => Timestamp::new(whole, fraction as i32).ok()?,
        12..=13 => Timestamp::from_millisecond(whole).ok()?,
        15..=16 => Timestamp::from_microsecond(whole).ok()?,
        18..=19 => Timestamp::from_nanosecond(i128::from(whole)).ok()?,
        _ => return None,
    };
    (t.as_second() >= EARLIEST).then_some((t, c.rest().len()))
}

/// The value of a time key in a JSON or logfmt line: `time`, `timestamp`,
/// `ts`, `@timestamp`, `@t` (Serilog), `$date` (MongoDB's `"t":{"$date":...}`),
/// `date`, `datetime`, `eventTime`: a date string in any layout [`date_at`]
/// knows, or a Unix time.
fn keyed(b: &[u8], ctx: &Context) -> Option<Timestamp> {
    let window = &b[..b.len().min(KEY_WINDOW)];
    memchr::memchr2_iter(b':', b'=', window).find_map(|sep| {
        let key_end = if sep > 0 && b[sep - 1] == b'"' {
            sep - 1
        } else if b[sep] == b'=' {
            sep
        } else {
            // An unquoted key before `:` is too common in prose and times
            // (`12:00`) to be worth a look.
            return None;
        };
        let mut start = key_end;
        while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'_' | b'@' | b'$')) {
            start -= 1;
        }
        if !is_time_key(&b[start..key_end]) {
            return None;
        }
        let raw = b[sep + 1..].trim_ascii_start();
        match raw.strip_prefix(b"\"") {
            Some(quoted) => {
                let end = memchr::memchr(b'"', quoted).unwrap_or(quoted.len());
                let inner = &quoted[..end];
                if inner.first().is_some_and(u8::is_ascii_digit) && inner.iter().all(u8::is_ascii_digit) {
                    unix_time(inner).map(|(t, _)| t)
                } else {
                    date_at(inner, ctx)
                }
            }
            None => date_at(raw, ctx).or_else(|| unix_time(raw).map(|(t, _)| t)),
        }
    })
}

fn is_time_key(key: &[u8]) -> bool {
    [
        "time",
        "timestamp",
        "ts",
        "@timestamp",
        "@t",
        "$date",
        "date",
        "datetime",
        "eventtime",
        "time_local",
        "timemillis",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k.as_bytes()))
}

/// Zone abbreviations as fixed offsets (seconds east of UTC), as
/// PostgreSQL's default abbreviation table has them. An abbreviation names
/// one offset (`CET` is +01:00 even in July; summer time is `CEST`), so a
/// zone database, whose `CET` zone switches offsets, would misread them.
/// Ambiguous ones take the reading PostgreSQL defaults to (`CST` is US
/// Central); `IST` (India, Israel, Ireland) is left out.
pub(super) fn abbreviation(name: &[u8]) -> Option<i32> {
    const H: i32 = 3600;
    Some(match name {
        b"UTC" | b"GMT" | b"UT" | b"Z" | b"WET" => 0,
        b"BST" | b"CET" | b"MET" | b"WEST" | b"WAT" => H,
        b"CEST" | b"MEST" | b"EET" | b"SAST" | b"CAT" => 2 * H,
        b"EEST" | b"MSK" | b"EAT" | b"AST3" => 3 * H,
        b"GST" => 4 * H,
        b"PKT" => 5 * H,
        b"ICT" | b"WIB" => 7 * H,
        b"HKT" | b"SGT" | b"AWST" | b"PHT" => 8 * H,
        b"JST" | b"KST" => 9 * H,
        b"ACST" => 9 * H + 1800,
        b"AEST" => 10 * H,
        b"ACDT" => 10 * H + 1800,
        b"AEDT" => 11 * H,
        b"NZST" => 12 * H,
        b"NZDT" => 13 * H,
        b"HST" => -10 * H,
        b"AKST" => -9 * H,
        b"AKDT" | b"PST" => -8 * H,
        b"PDT" | b"MST" => -7 * H,
        b"MDT" | b"CST" => -6 * H,
        b"CDT" | b"EST" => -5 * H,
        b"EDT" | b"AST" => -4 * H,
        b"ADT" | b"BRT" | b"ART" => -3 * H,
        b"NST" => -3 * H - 1800,
        b"NDT" => -2 * H - 1800,
        _ => return None,
    })
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`); done by hand because it runs on every line.
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar year of a Unix time (the inverse of `days_from_civil`,
/// year only).
fn civil_year(second: i64) -> i32 {
    let z = second.div_euclid(SECONDS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let year = yoe + era * 400 + i64::from(mp >= 10);
    // Timestamps span years -9999..=9999, so this always fits.
    year as i32
}

/// A position in the bytes of a line, with the small matchers the formats
/// are built from. Every method returns `None` (or leaves the position) when
/// the bytes do not match, so no input can make it panic.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.pos += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// Exactly `n` ASCII digits (`n` <= 9), for calendar fields.
    fn number(&mut self, n: usize) -> Option<u32> {
        self.big_number(n).map(|v| v as u32)
    }

    /// `min..=max` ASCII digits (`max` <= 9), as many as there are.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self.rest().iter().take(max).take_while(|c| c.is_ascii_digit()).count();
        if n < min || self.rest().get(n).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        self.number(n)
    }

    /// Exactly `n` ASCII digits (`n` <= 19), for Unix times.
    fn big_number(&mut self, n: usize) -> Option<u64> {
        let digits = self.b.get(self.pos..self.pos + n)?;
        if n == 0 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += n;
        Some(digits.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')))
    }

    /// A day of month as `04`, `4` or space-padded ` 4` (syslog, ctime).
    fn padded_day(&mut self) -> Option<u32> {
        self.eat(b' ');
        self.digits(1, 2)
    }

    /// An English month name, abbreviated or full, any case: 1..=12.
    fn month(&mut self) -> Option<u32> {
        const NAMES: [&str; 12] = [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ];
        let index = self.name(&NAMES)?;
        Some(index as u32 + 1)
    }

    /// An English weekday name, abbreviated or full, any case.
    fn weekday(&mut self) -> Option<()> {
        const NAMES: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        self.name(&NAMES).map(drop)
    }

    /// One of `names` written in full or as its first three letters (also
    /// `Sept`), followed by no further letter; its index.
    fn name(&mut self, names: &[&str]) -> Option<usize> {
        let rest = self.rest();
        let len = rest.iter().take(10).take_while(|c| c.is_ascii_alphabetic()).count();
        if len < 3 || rest.get(len).is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let word = &rest[..len];
        let index = names.iter().position(|name| {
            let name = name.as_bytes();
            (len == 3 || len == name.len() || (len == 4 && name.starts_with(b"sept")))
                && name.len() >= len
                && name[..len].eq_ignore_ascii_case(word)
        })?;
        self.pos += len;
        Some(index)
    }

    /// `HH:MM:SS`, each part possibly unpadded (`HH.MM.SS` too with
    /// `dotted`, for BGL); hour, minute, second. The fraction is read by [`Cursor::fraction`].
    fn clock(&mut self, dotted: bool) -> Option<(u32, u32, u32)> {
        let hour = self.digits(1, 2)?;
        let sep = self.next()?;
        if !(sep == b':' || (dotted && sep == b'.')) {
            return None;
        }
        // HealthApp writes minutes and seconds unpadded: `22:16:0:119`.
        let minute = self.digits(1, 2)?;
        self.expect(sep)?;
        let second = self.digits(1, 2)?;
        Some((hour, minute, second))
    }

    /// A `.123` or `,123` fraction of a second as nanoseconds (0 if absent),
    /// or `:606`, milliseconds after a colon, which HealthApp writes
    /// unpadded (`:11` is 11 ms, as Java's `S` prints it). Digits past
    /// nanoseconds are consumed and dropped.
    fn fraction(&mut self) -> u32 {
        let rest = self.rest();
        let Some(&mark) = rest.first() else {
            return 0;
        };
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        match mark {
            b'.' | b',' if digits > 0 => {}
            b':' if (1..=3).contains(&digits) => {
                self.pos += 1;
                return self.number(digits).unwrap_or(0) * 1_000_000;
            }
            _ => return 0,
        }
        self.pos += 1;
        let mut nanos = 0;
        let mut scale = 100_000_000;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
            self.pos += 1;
        }
        nanos
    }

    /// ` AM` / ` PM` (any case) after a 12-hour clock; `None` for an hour
    /// a 12-hour clock cannot show.
    fn meridiem(&mut self, hour: &mut u32) -> Option<()> {
        let rest = self.rest();
        let Some(mark) = rest.get(..3) else {
            return Some(());
        };
        let pm = if mark.eq_ignore_ascii_case(b" pm") {
            true
        } else if mark.eq_ignore_ascii_case(b" am") {
            false
        } else {
            return Some(());
        };
        if rest.get(3).is_some_and(u8::is_ascii_alphanumeric) {
            return Some(());
        }
        if !(1..=12).contains(hour) {
            return None;
        }
        self.pos += 3;
        *hour = (*hour % 12) + if pm { 12 } else { 0 };
        Some(())
    }

    /// What follows a time about its zone: `Z`, `+01:00`, `+0100`, `+01`,
    /// or after one space `+03:00`, `-0700`, an abbreviation (`CET`,
    /// `UTC`, `GMT+2`) or an IANA name (`Europe/Berlin`). Anything else
    /// leaves the position and is [`Zone::Unstated`].
    fn zone(&mut self) -> Zone {
        let start = self.pos;
        match self.peek() {
            Some(b'Z' | b'z') if !self.b.get(self.pos + 1).is_some_and(u8::is_ascii_alphanumeric) => {
                self.pos += 1;
                return Zone::Offset(0);
            }
            Some(b'+' | b'-') => {
                if let Some(offset) = self.offset(false) {
                    return Zone::Offset(offset);
                }
                self.pos = start;
                return Zone::Unstated;
            }
            Some(b' ') => {}
            _ => return Zone::Unstated,
        }
        self.pos += 1;
        if matches!(self.peek(), Some(b'+' | b'-'))
            && let Some(offset) = self.offset(true)
        {
            return Zone::Offset(offset);
        }
        self.pos = start + 1;
        let rest = self.rest();
        let letters = rest.iter().take(6).take_while(|c| c.is_ascii_uppercase()).count();
        if (1..=5).contains(&letters)
            && let Some(base) = abbreviation(&rest[..letters])
            && !rest.get(letters).is_some_and(u8::is_ascii_alphanumeric)
        {
            self.pos += letters;
            if (base == 0)
                && matches!(self.peek(), Some(b'+' | b'-'))
                && let Some(offset) = self.offset(false)
            {
                return Zone::Offset(offset);
            }
            return Zone::Offset(base);
        }
        if let Some(tz) = self.iana_name() {
            return Zone::Named(tz);
        }
        self.pos = start;
        Zone::Unstated
    }

    /// `+HH:MM`, `+HHMM`, `+HH` (or `+H` after `UTC`/`GMT`), in seconds
    /// east. `spaced` (after a space) asks for minutes too, so ` -1` in
    /// prose is not an offset.
    fn offset(&mut self, spaced: bool) -> Option<i32> {
        let sign = if self.next()? == b'-' { -1 } else { 1 };
        let h = match self.number(2) {
            Some(h) => h,
            None => self.digits(1, 1)?,
        } as i32;
        let colon = self.eat(b':');
        let m = match self.number(2) {
            Some(m) => m as i32,
            None if colon || spaced => return None,
            None => 0,
        };
        if h > 18 || m > 59 || self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        Some(sign * (h * 3600 + m * 60))
    }

    /// `Area/City` (`Europe/Berlin`, `America/Argentina/Buenos_Aires`) that
    /// the system's zone database knows.
    fn iana_name(&mut self) -> Option<TimeZone> {
        let rest = self.rest();
        let len = rest
            .iter()
            .take(40)
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-' | b'+'))
            .count();
        let name = rest.get(..len)?;
        // Only the database's areas are looked up, so a line's `Foo/Bar`
        // costs no lookup (the database is files on disk).
        let area = name.split(|&c| c == b'/').next()?;
        let areas: [&[u8]; 11] = [
            b"Africa",
            b"America",
            b"Antarctica",
            b"Arctic",
            b"Asia",
            b"Atlantic",
            b"Australia",
            b"Europe",
            b"Indian",
            b"Pacific",
            b"Etc",
        ];
        if area.len() == name.len() || !areas.contains(&area) {
            return None;
        }
        let tz = TimeZone::get(std::str::from_utf8(name).ok()?).ok()?;
        self.pos += len;
        Some(tz)
    }

    /// The timestamp ends here: the line ends or a non-digit follows.
    fn boundary(&self) -> bool {
        !self.peek().is_some_and(|c| c.is_ascii_digit())
    }
}
