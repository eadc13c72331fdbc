//! The sealer stage: encodes each batch the sources hand over (JSON, zstd)
//! and writes it to the spool, then hands the spooled entry to the shipper.
//!
//! It runs on its own thread between the sources and the spool. A spool that
//! cannot be written holds the batch here: the channel from the sources
//! fills, the tailer stops reading, and the log files keep the lines until
//! the write succeeds, so nothing read is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use lookout_shared::wire::IngestBatch;

use crate::batch;
use crate::spool::{Spool, SpoolEntry};

/// Longest wait between attempts to write a batch to a spool that failed.
const SPOOL_RETRY: Duration = Duration::from_secs(2);

/// What the sealer thread works with.
pub struct SealerParts {
    /// Batches from the sources (file tailer, metrics); the stage ends when
    /// every sender is gone.
    pub batches: mpsc::Receiver<IngestBatch>,
    /// Where sealed batches are kept until acknowledged.
    pub spool: Arc<Spool>,
    /// Set when the agent stops: a write still failing is given up (its
    /// lines are read again after a restart).
    pub stop: Arc<AtomicBool>,
    /// Spooled entries, for the shipper.
    pub spooled: tokio::sync::mpsc::UnboundedSender<SpoolEntry>,
}

/// Seals and spools batches until the sources are done or the agent stops.
pub fn run(parts: SealerParts) {
    let SealerParts {
        batches,
        spool,
        stop,
        spooled,
    } = parts;
    for batch in batches {
        let sealed = match batch::seal(&batch) {
            Ok(sealed) => sealed,
            Err(err) => {
                tracing::error!(error = %err, "cannot encode a batch; its lines are read again after a restart");
                continue;
            }
        };
        let mut failures = 0u32;
        let entry = loop {
            match spool.append(&sealed, &stop) {
                Ok(entry) => break entry,
                Err(err) => {
                    if failures == 0 {
                        tracing::error!(error = %err, "cannot write to the spool; reading is paused until it can be written");
                    }
                    failures += 1;
                    if stop.load(Ordering::Relaxed) {
                        // Not spooled, not acknowledged: read again after a restart.
                        return;
                    }
                    std::thread::sleep(SPOOL_RETRY.min(Duration::from_millis(100) * failures));
                }
            }
        };
        if failures > 0 {
            tracing::info!(
                attempts = failures + 1,
                "the spool can be written again; reading goes on"
            );
        }
        let Some(entry) = entry else {
            return;
        };
        if spooled.send(entry).is_err() {
            return;
        }
    }
}
