//! Retention: once an hour (and at startup) the log writer is asked to delete
//! the day partitions older than `retention.logs_days` (once `[archive]`
//! has written them, when it is on), and the metric writer to delete
//! samples older than `retention.metrics_days`.
//!
//! The deletions run on the writer threads, which own the stores; this module
//! only decides the cutoffs and keeps time. Metric deletion goes in small
//! steps, each its own command, so ingest batches queue between them rather
//! than behind a whole pass.

use crate::archive::Archiver;
use crate::metricstore::rollup::DAY_MS;
use crate::metricstore::writer::{ExpireCursor, Expiry, MetricWriteError, MetricWriterHandle};
use crate::store::writer::{WriterHandle, today};
use jiff::civil::Date;
use lookout_shared::time::now_ms;
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

/// Runs until the writer stops. With an archive, each pass archives the
/// days that are due first, and deletes only days known to be archived.
pub async fn run(writer: WriterHandle, logs_days: u32, mut archiver: Option<Archiver>) {
    let mut ticks = tokio::time::interval(PERIOD);
    loop {
        ticks.tick().await;
        let only_archived = match &mut archiver {
            Some(archiver) => Some(archiver.archive_due().await),
            None => None,
        };
        if writer
            .apply_retention(cutoff(today(), logs_days), only_archived)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Runs metric retention until the metric writer stops. Hosts not seen for
/// `forget_hosts_days` (the longer of the two retention periods: a host
/// stays listed while any of its data is kept) are forgotten too.
pub async fn run_metrics(writer: MetricWriterHandle, metrics_days: u32, forget_hosts_days: u32) {
    let mut ticks = tokio::time::interval(PERIOD);
    loop {
        ticks.tick().await;
        let now = now_ms();
        let expiry = Expiry {
            cutoff_ms: now.saturating_sub(i64::from(metrics_days) * DAY_MS),
            forget_hosts_before_ms: now.saturating_sub(i64::from(forget_hosts_days) * DAY_MS),
        };
        let mut cursor = ExpireCursor::default();
        loop {
            match writer.expire(expiry, cursor).await {
                Ok(Some(next)) => cursor = next,
                Ok(None) => break,
                Err(MetricWriteError::ShuttingDown) => return,
                // Logged by the writer; the next pass starts over.
                Err(MetricWriteError::Failed(_) | MetricWriteError::TooManySeries { .. }) => break,
            }
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
