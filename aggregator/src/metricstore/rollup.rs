//! The three resolutions a query is answered at, and which one answers it.
//!
//! Raw samples and 1-minute averages are read from the samples themselves
//! (the head and the compressed hourly blocks); the 1-hour roll-up is a
//! table, maintained incrementally at ingest, in the transaction that stores
//! the raw sample: each new sample is added into its 1-hour bucket (min, max,
//! sum, count). Only samples that were actually new are added, so a re-sent
//! sample changes no bucket, and a bucket's average (`vsum / cnt`) is always
//! exactly the average of its raw samples. Doing it at ingest costs a small
//! upsert per sample but needs no background job, no "rolled up until"
//! bookkeeping, and the roll-up is never behind the raw data.

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Longest range answered from raw samples.
const RAW_MAX_RANGE_MS: i64 = DAY_MS;
/// Longest range answered as 1-minute averages; longer ones use 1-hour roll-ups.
const MINUTE_MAX_RANGE_MS: i64 = 7 * DAY_MS;

/// A resolution. Ordered from finest to coarsest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Every sample as sent.
    Raw,
    /// Averages per minute (or coarser step) of the samples.
    Minute,
    /// Averages per hour (or coarser step) from `rollup_1h`.
    Hour,
}

impl Tier {
    /// Bucket width in ms; `None` for raw samples.
    pub fn width_ms(self) -> Option<i64> {
        match self {
            Tier::Raw => None,
            Tier::Minute => Some(MINUTE_MS),
            Tier::Hour => Some(HOUR_MS),
        }
    }

    /// The name in API answers (`resolution`).
    pub fn label(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::Hour => "1h",
        }
    }

    /// The tier that answers a query over `range_ms` with an optional `step_ms`:
    /// raw samples up to 24 hours, 1-minute averages up to 7 days, 1-hour
    /// roll-ups beyond. A step that is a whole number of minutes (hours) is
    /// answered per minute (from the roll-up per hour) even for a shorter
    /// range: the averages come out the same, since a roll-up bucket keeps
    /// the exact sum and count, and far fewer rows are read.
    pub fn for_query(range_ms: i64, step_ms: Option<i64>) -> Tier {
        let by_range = if range_ms <= RAW_MAX_RANGE_MS {
            Tier::Raw
        } else if range_ms <= MINUTE_MAX_RANGE_MS {
            Tier::Minute
        } else {
            Tier::Hour
        };
        let by_step = match step_ms {
            Some(step) if step % HOUR_MS == 0 => Tier::Hour,
            Some(step) if step % MINUTE_MS == 0 => Tier::Minute,
            _ => Tier::Raw,
        };
        by_range.max(by_step)
    }
}

/// SQL that adds sample `(?1 series, ?2 bucket start, ?3 value)` into its 1-hour bucket.
pub const UPSERT_1H: &str = "INSERT INTO rollup_1h (series_id, ts, vmin, vmax, vsum, cnt) VALUES (?1, ?2, ?3, ?3, ?3, 1) \
     ON CONFLICT (series_id, ts) DO UPDATE SET vmin = min(vmin, excluded.vmin), \
     vmax = max(vmax, excluded.vmax), vsum = vsum + excluded.vsum, cnt = cnt + 1";

/// The start of the `width_ms` bucket holding `ts` (buckets are aligned to
/// the Unix epoch, so they stay put as a query window slides). The first
/// bucket of time, which has no representable start, starts at `i64::MIN`.
pub fn bucket_start(ts: i64, width_ms: i64) -> i64 {
    ts.saturating_sub(ts.rem_euclid(width_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_by_range_and_step() {
        assert_eq!(Tier::for_query(HOUR_MS, None), Tier::Raw);
        assert_eq!(Tier::for_query(DAY_MS, None), Tier::Raw);
        assert_eq!(Tier::for_query(DAY_MS, Some(10_000)), Tier::Raw);
        assert_eq!(Tier::for_query(DAY_MS, Some(5 * MINUTE_MS)), Tier::Minute);
        assert_eq!(Tier::for_query(DAY_MS + 1, None), Tier::Minute);
        assert_eq!(Tier::for_query(7 * DAY_MS, Some(90_000)), Tier::Minute);
        assert_eq!(Tier::for_query(7 * DAY_MS + 1, None), Tier::Hour);
        assert_eq!(Tier::for_query(30 * DAY_MS, Some(MINUTE_MS)), Tier::Hour);
        assert_eq!(Tier::for_query(HOUR_MS, Some(2 * HOUR_MS)), Tier::Hour);
    }

    #[test]
    fn buckets_are_epoch_aligned() {
        assert_eq!(bucket_start(1_700_000_123_456, MINUTE_MS), 1_700_000_100_000);
        assert_eq!(bucket_start(1_700_000_100_000, MINUTE_MS), 1_700_000_100_000);
        assert_eq!(bucket_start(1_700_000_123_456, HOUR_MS), 1_699_999_200_000);
        assert_eq!(bucket_start(-1, MINUTE_MS), -MINUTE_MS);
        assert_eq!(bucket_start(i64::MIN, HOUR_MS), i64::MIN);
    }
}
