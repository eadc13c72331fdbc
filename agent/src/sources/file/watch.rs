//! Waking the tailer when a watched folder changes (inotify through
//! `notify`), so new lines are read at once rather than at the next poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use notify::{EventKind, RecursiveMode, Watcher};

use super::discover::Root;

/// An inotify watcher that wakes the tailer, and a function adding folders to it.
/// Without a watcher (inotify unavailable or out of watches) polling still works.
pub fn file_watcher(wake: mpsc::SyncSender<()>, rescan: Arc<AtomicBool>) -> Box<dyn FnMut(&Root) -> bool + Send> {
    let handler = move |event: notify::Result<notify::Event>| {
        let structural = match &event {
            Ok(event) => matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
            ),
            // An error (such as a queue overflow) may hide anything: rescan.
            Err(_) => true,
        };
        if structural {
            rescan.store(true, Ordering::Relaxed);
        }
        let _ = wake.try_send(());
    };
    match notify::recommended_watcher(handler) {
        Ok(mut watcher) => Box::new(move |root: &Root| {
            let mode = if root.depth > 0 {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match watcher.watch(&root.dir, mode) {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(dir = %root.dir.display(), error = %err, "cannot watch a folder; polling it instead");
                    false
                }
            }
        }),
        Err(err) => {
            tracing::warn!(error = %err, "no file watcher; polling only");
            Box::new(|_: &Root| false)
        }
    }
}
