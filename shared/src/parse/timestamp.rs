//! Timestamp detection: hand-written byte-level matchers for the fixed
//! layouts that log formats use.
//!
//! Most formats put the time first, so the start of the line is tried first
//! (after a syslog `<PRI>` and version, or an opening `[`). Formats that put
//! it elsewhere come after: BGL's epoch field, the bracketed time of an access
//! log (the line starts with the client address), and `time`/`ts` keys of JSON
//! and logfmt lines. A time without a zone is taken as UTC: the line does not
//! say which zone it means, and the reading host's zone is no better a guess
//! for a file shipped from elsewhere.

use jiff::Timestamp;

/// How far into a line the access-log `[10/Oct/2000:13:55:36 -0700]` may
/// start: after the client address, identity and user.
const ACCESS_WINDOW: usize = 200;

/// How far into a JSON or logfmt line a `time` key is looked for.
const KEY_WINDOW: usize = 1024;

const SECONDS_PER_DAY: i64 = 86_400;

/// See [`super::parse_timestamp`].
pub(super) fn parse(line: &str, reference: Timestamp) -> Option<Timestamp> {
    let b = line.as_bytes();
    at_start(skip_syslog_header(b), reference)
        .or_else(|| bgl(b))
        .or_else(|| access_log(b))
        .or_else(|| keyed(b))
}

/// Skips an RFC 3164 / 5424 priority `<34>` and the RFC 5424 version `1 `.
fn skip_syslog_header(b: &[u8]) -> &[u8] {
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

/// A timestamp at the very start of `b` (or just inside an opening `[`).
fn at_start(b: &[u8], reference: Timestamp) -> Option<Timestamp> {
    match *b.first()? {
        b'0'..=b'9' => iso(b).or_else(|| yy_mm_dd(b)).or_else(|| hdfs(b)),
        b'[' => {
            let inner = &b[1..];
            ctime(inner).or_else(|| iso(inner)).or_else(|| access_time(inner))
        }
        _ => syslog(b, reference).or_else(|| ctime(b)).or_else(|| klog(b, reference)),
    }
}

/// `2015-10-18 18:01:47,978`, `2024-01-01T12:00:00.5+01:00` (RFC 3339 /
/// ISO 8601), `2024/01/01 12:00:00` (nginx error log).
fn iso(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let year = c.number(4)?;
    let sep = c.next()?;
    if sep != b'-' && sep != b'/' {
        return None;
    }
    let month = c.number(2)?;
    c.expect(sep)?;
    let day = c.number(2)?;
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let (h, m, s, nanos) = c.time()?;
    let offset = c.offset()?;
    c.boundary()?;
    civil_to_timestamp(year as i32, month, day, h, m, s, nanos, offset)
}

/// `17/06/09 20:10:40` (Spark's `yy/MM/dd HH:mm:ss`).
fn yy_mm_dd(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let year = c.number(2)?;
    c.expect(b'/')?;
    let month = c.number(2)?;
    c.expect(b'/')?;
    let day = c.number(2)?;
    c.expect(b' ')?;
    let (h, m, s, nanos) = c.time()?;
    c.boundary()?;
    civil_to_timestamp(two_digit_year(year), month, day, h, m, s, nanos, 0)
}

/// `081109 203615` (HDFS's `yyMMdd HHmmss`).
fn hdfs(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let year = c.number(2)?;
    let month = c.number(2)?;
    let day = c.number(2)?;
    c.expect(b' ')?;
    let h = c.number(2)?;
    let m = c.number(2)?;
    let s = c.number(2)?;
    c.boundary()?;
    civil_to_timestamp(two_digit_year(year), month, day, h, m, s, 0, 0)
}

/// POSIX `%y`: 69-99 are 1969-1999, 00-68 are 2000-2068.
fn two_digit_year(yy: u32) -> i32 {
    if yy >= 69 { 1900 + yy as i32 } else { 2000 + yy as i32 }
}

/// `Jun 14 15:16:01`, `Jun  4 15:16:01` (BSD syslog, no year).
fn syslog(b: &[u8], reference: Timestamp) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let month = c.month()?;
    c.expect(b' ')?;
    let day = c.padded_day()?;
    c.expect(b' ')?;
    let (h, m, s, nanos) = c.time()?;
    c.boundary()?;
    without_year(month, day, h, m, s, nanos, reference)
}

/// `Sun Dec 04 04:47:44 2005` (C `ctime`, Apache error log; Apache 2.4 adds
/// microseconds: `Sun Dec 04 04:47:44.123456 2005`).
fn ctime(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    for _ in 0..3 {
        if !c.next()?.is_ascii_alphabetic() {
            return None;
        }
    }
    c.expect(b' ')?;
    let month = c.month()?;
    c.expect(b' ')?;
    let day = c.padded_day()?;
    c.expect(b' ')?;
    let (h, m, s, nanos) = c.time()?;
    c.expect(b' ')?;
    let year = c.number(4)?;
    c.boundary()?;
    civil_to_timestamp(year as i32, month, day, h, m, s, nanos, 0)
}

/// Go glog/klog `I0102 15:04:05.123456` (level letter, month, day; no year).
fn klog(b: &[u8], reference: Timestamp) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    if !matches!(c.next()?, b'I' | b'W' | b'E' | b'F') {
        return None;
    }
    let month = c.number(2)?;
    let day = c.number(2)?;
    c.expect(b' ')?;
    let (h, m, s, nanos) = c.time()?;
    c.boundary()?;
    without_year(month, day, h, m, s, nanos, reference)
}

/// BGL: `- 1117838570 2005.06.03 NODE 2005-06-03-15.42.50.675872 ...`.
///
/// The detailed field is local time (US Pacific, PDT or PST) with no zone,
/// while the epoch field is the true instant, so the epoch is used, with the
/// detailed field's microseconds when both agree on the second.
fn bgl(b: &[u8]) -> Option<Timestamp> {
    let mut fields = b.split(|&c| c == b' ');
    let _label = fields.next()?;
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
    Timestamp::new(second, nanos as i32).ok()
}

/// An access log's `[10/Oct/2000:13:55:36 -0700]` within the first
/// [`ACCESS_WINDOW`] bytes.
fn access_log(b: &[u8]) -> Option<Timestamp> {
    let window = &b[..b.len().min(ACCESS_WINDOW)];
    memchr::memchr_iter(b'[', window).find_map(|i| access_time(&b[i + 1..]))
}

/// `10/Oct/2000:13:55:36 -0700` (Common Log Format).
fn access_time(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cursor::new(b);
    let day = c.number(2)?;
    c.expect(b'/')?;
    let month = c.month()?;
    c.expect(b'/')?;
    let year = c.number(4)?;
    c.expect(b':')?;
    let (h, m, s, nanos) = c.time()?;
    c.eat(b' ');
    let offset = c.offset()?;
    c.boundary()?;
    civil_to_timestamp(year as i32, month, day, h, m, s, nanos, offset)
}

/// The value of a `time`, `timestamp`, `ts` or `@timestamp` key in a JSON or
/// logfmt line: an RFC 3339 string or a Unix time in seconds (with optional
/// fraction), milliseconds, microseconds or nanoseconds.
fn keyed(b: &[u8]) -> Option<Timestamp> {
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
        while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'_' | b'@')) {
            start -= 1;
        }
        let key = &b[start..key_end];
        let is_time_key = ["time", "timestamp", "ts", "@timestamp"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k.as_bytes()));
        if !is_time_key {
            return None;
        }
        let value = b[sep + 1..].trim_ascii_start();
        match value.strip_prefix(b"\"") {
            Some(quoted) => iso(quoted),
            None => iso(value).or_else(|| unix_time(value)),
        }
    })
}

/// A Unix time whose unit follows from its size: up to 11 digits are
/// seconds (until year 5138), then milliseconds, microseconds, nanoseconds.
fn unix_time(b: &[u8]) -> Option<Timestamp> {
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=19).contains(&digits) {
        return None;
    }
    let mut c = Cursor::new(b);
    let whole = i64::try_from(c.big_number(digits)?).ok()?;
    let fraction = c.fraction();
    c.boundary()?;
    match digits {
        1..=11 => Timestamp::new(whole, fraction as i32).ok(),
        12..=14 => Timestamp::from_millisecond(whole).ok(),
        15..=17 => Timestamp::from_microsecond(whole).ok(),
        _ => Timestamp::from_nanosecond(i128::from(whole)).ok(),
    }
}

/// A time from a format that leaves out the year (syslog, klog): the year of
/// `reference`, unless that puts the time more than a day after `reference`
/// (a December line read in January), then the year before. A day of slack
/// allows for clocks and zones that differ between writer and reader.
fn without_year(month: u32, day: u32, h: u32, m: u32, s: u32, nanos: u32, reference: Timestamp) -> Option<Timestamp> {
    let year = civil_year(reference.as_second());
    civil_to_timestamp(year, month, day, h, m, s, nanos, 0)
        .filter(|t| t.as_second() <= reference.as_second() + SECONDS_PER_DAY)
        // Also reached for 29 February when `year` is not a leap year.
        .or_else(|| civil_to_timestamp(year - 1, month, day, h, m, s, nanos, 0))
}

/// Builds the instant from calendar fields at a UTC offset (seconds east),
/// rejecting impossible dates and times. A leap second (`:60`) becomes `:59`.
#[allow(clippy::too_many_arguments)] // the fields of one civil date-time
fn civil_to_timestamp(
    year: i32,
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
    nanos: u32,
    offset: i32,
) -> Option<Timestamp> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let second = days * SECONDS_PER_DAY + i64::from(h * 3600 + m * 60 + s.min(59)) - i64::from(offset);
    Timestamp::new(second, nanos as i32).ok()
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
        debug_assert!(n <= 9, "a u32 holds any 9 digits");
        self.big_number(n).map(|v| v as u32)
    }

    /// Exactly `n` ASCII digits (`n` <= 19), for Unix times.
    fn big_number(&mut self, n: usize) -> Option<u64> {
        let digits = self.b.get(self.pos..self.pos + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += n;
        Some(digits.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')))
    }

    /// A day of month as `04`, `4` or space-padded ` 4` (syslog, ctime).
    fn padded_day(&mut self) -> Option<u32> {
        self.eat(b' ');
        let day = self.number(1)?;
        Some(match self.number(1) {
            Some(units) => day * 10 + units,
            None => day,
        })
    }

    /// An English month abbreviation, any case: 1..=12.
    fn month(&mut self) -> Option<u32> {
        let name = self.b.get(self.pos..self.pos + 3)?;
        let mut lower = [0u8; 3];
        for (dst, src) in lower.iter_mut().zip(name) {
            *dst = src.to_ascii_lowercase();
        }
        let month = match &lower {
            b"jan" => 1,
            b"feb" => 2,
            b"mar" => 3,
            b"apr" => 4,
            b"may" => 5,
            b"jun" => 6,
            b"jul" => 7,
            b"aug" => 8,
            b"sep" => 9,
            b"oct" => 10,
            b"nov" => 11,
            b"dec" => 12,
            _ => return None,
        };
        self.pos += 3;
        Some(month)
    }

    /// `HH:MM:SS` with an optional fraction; returns hour, minute, second,
    /// nanoseconds.
    fn time(&mut self) -> Option<(u32, u32, u32, u32)> {
        let h = self.number(2)?;
        self.expect(b':')?;
        let m = self.number(2)?;
        self.expect(b':')?;
        let s = self.number(2)?;
        Some((h, m, s, self.fraction()))
    }

    /// A `.123` or `,123` fraction of a second as nanoseconds (0 if absent).
    /// Digits past nanoseconds are consumed and dropped.
    fn fraction(&mut self) -> u32 {
        let has_fraction =
            matches!(self.peek(), Some(b'.' | b',')) && self.b.get(self.pos + 1).is_some_and(u8::is_ascii_digit);
        if !has_fraction {
            return 0;
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

    /// An optional zone: `Z`, `+01:00`, `+0100`, `+01`, in seconds east of
    /// UTC; `Some(0)` when there is none (UTC assumed), `None` when it is
    /// malformed.
    fn offset(&mut self) -> Option<i32> {
        let sign = match self.peek() {
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Some(0),
        };
        self.pos += 1;
        let h = self.number(2)? as i32;
        self.eat(b':');
        let m = self.number(2).unwrap_or(0) as i32;
        if h > 25 || m > 59 {
            return None;
        }
        Some(sign * (h * 3600 + m * 60))
    }

    /// The timestamp ends here: the line ends or a non-digit follows, so
    /// `081109 2036150` is not read as `081109 203615`.
    fn boundary(&self) -> Option<()> {
        (!self.peek().is_some_and(|c| c.is_ascii_digit())).then_some(())
    }
}
