//! The three resolutions a series is kept at, and which one answers a query.
//!
//! Roll-ups are maintained incrementally at ingest, in the transaction that
//! stores the raw sample: each new sample is added into its 1-minute and its
//! 1-hour bucket (min, max, sum, count). Only samples that were actually new
//! are added, so a re-sent sample changes no bucket, and a bucket's average
//! (`vsum / cnt`) is always exactly the average of its raw samples. Doing it at
//! ingest costs two small upserts per sample but needs no background job, no
//! "rolled up until" bookkeeping, and a roll-up is never behind the raw data.

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Longest range answered from raw samples.
const RAW_MAX_RANGE_MS: i64 = DAY_MS;
/// Longest range answered from 1-minute roll-ups; longer ones use 1-hour roll-ups.
const MINUTE_MAX_RANGE_MS: i64 = 7 * DAY_MS;

/// A resolution: raw samples or one of the roll-up tables. Ordered from finest to coarsest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// `samples`: every sample as sent.
    Raw,
    /// `rollup_1m`: one row per series and minute.
    Minute,
    /// `rollup_1h`: one row per series and hour.
    Hour,
}

impl Tier {
    /// Every tier, finest first.
    pub const ALL: [Tier; 3] = [Tier::Raw, Tier::Minute, Tier::Hour];

    /// The table holding this tier.
    pub fn table(self) -> &'static str {
        match self {
            Tier::Raw => "samples",
            Tier::Minute => "rollup_1m",
            Tier::Hour => "rollup_1h",
        }
    }

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
    /// raw samples up to 24 hours, 1-minute roll-ups up to 7 days, 1-hour
    /// roll-ups beyond. A step that is a whole number of minutes (hours) is
    /// served from the 1-minute (1-hour) roll-up even for a shorter range: the
    /// averages come out the same, since a roll-up bucket keeps the exact sum
    /// and count, and far fewer rows are read.
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

/// SQL that adds sample `(?1 series, ?2 bucket start, ?3 value)` into its 1-minute bucket.
pub const UPSERT_1M: &str = "INSERT INTO rollup_1m (series_id, ts, vmin, vmax, vsum, cnt) VALUES (?1, ?2, ?3, ?3, ?3, 1) \
     ON CONFLICT (series_id, ts) DO UPDATE SET vmin = min(vmin, excluded.vmin), \
     vmax = max(vmax, excluded.vmax), vsum = vsum + excluded.vsum, cnt = cnt + 1";

/// SQL that adds sample `(?1 series, ?2 bucket start, ?3 value)` into its 1-hour bucket.
pub const UPSERT_1H: &str = "INSERT INTO rollup_1h (series_id, ts, vmin, vmax, vsum, cnt) VALUES (?1, ?2, ?3, ?3, ?3, 1) \
     ON CONFLICT (series_id, ts) DO UPDATE SET vmin = min(vmin, excluded.vmin), \
     vmax = max(vmax, excluded.vmax), vsum = vsum + excluded.vsum, cnt = cnt + 1";

/// The start of the `width_ms` bucket holding `ts` (buckets are aligned to
/// the Unix epoch, so they stay put as a query window slides).
pub fn bucket_start(ts: i64, width_ms: i64) -> i64 {
    ts - ts.rem_euclid(width_ms)
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
    }
}
