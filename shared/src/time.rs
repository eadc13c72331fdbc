//! Wall-clock time as both binaries store and show it: Unix milliseconds,
//! written as RFC 3339 in UTC.

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Unix ms as RFC 3339 in UTC, with fractional seconds only when non-zero
/// (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.123Z`). A value outside
/// the representable range (years beyond ±9999) is written as the number.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shows_milliseconds_only_when_there_are_some() {
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(1_700_000_000_250), "2023-11-14T22:13:20.25Z");
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
        assert!(now_ms() > 1_700_000_000_000);
    }
}
