//! Log retention: once an hour (and at startup) the writer is asked to delete
//! the day partitions older than `retention.logs_days`.
//!
//! The deletion itself runs on the writer thread, which owns the partitions'
//! dedup state; this module only decides the cutoff and keeps time.

use crate::store::writer::{WriterHandle, today};
use jiff::civil::Date;
use std::time::Duration;

/// How often retention runs.
const PERIOD: Duration = Duration::from_secs(3600);

/// Partitions of days before the returned day are expired. A partition holds
/// what arrived during its day, so it goes only once all of that is older
/// than `logs_days` days: with 14 days, on the 20th the 5th goes and the 6th stays.
pub fn cutoff(today: Date, logs_days: u32) -> Date {
    today
        .checked_sub(jiff::Span::new().days(i64::from(logs_days)))
        .unwrap_or(Date::MIN)
}

/// Runs until the writer stops.
pub async fn run(writer: WriterHandle, logs_days: u32) {
    let mut ticks = tokio::time::interval(PERIOD);
    loop {
        ticks.tick().await;
        if writer.apply_retention(cutoff(today(), logs_days)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_keeps_logs_days_full_days() {
        let today = Date::new(2024, 1, 20).unwrap();
        assert_eq!(cutoff(today, 14), Date::new(2024, 1, 6).unwrap());
        assert_eq!(cutoff(today, 1), Date::new(2024, 1, 19).unwrap());
        assert_eq!(
            cutoff(Date::new(2024, 3, 1).unwrap(), 1),
            Date::new(2024, 2, 29).unwrap()
        );
    }
}
