//! The shape both stores' writers share: one dedicated thread owns the
//! store's writer and takes commands from a bounded queue, so writes are
//! serialised without locks and async request handlers never block on disk.

use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Commands queued per writer before senders wait.
const QUEUE_DEPTH: usize = 64;

/// A writer thread and the sending end of its queue.
pub struct WriterThread<C> {
    tx: mpsc::Sender<C>,
    thread: JoinHandle<()>,
    name: &'static str,
}

impl<C: Send + 'static> WriterThread<C> {
    /// Starts a thread called `name` running `run` over the queue's receiving end.
    pub fn spawn(name: &'static str, run: impl FnOnce(mpsc::Receiver<C>) + Send + 'static) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || run(rx))?;
        Ok(WriterThread { tx, thread, name })
    }

    /// A sender for the thread's queue.
    pub fn sender(&self) -> mpsc::Sender<C> {
        self.tx.clone()
    }

    /// Queues `stop` behind what is already queued, then waits for the thread to end.
    pub async fn shutdown(self, stop: C) -> anyhow::Result<()> {
        // An error means the thread has already ended; joining tells how.
        let _ = self.tx.send(stop).await;
        let (thread, name) = (self.thread, self.name);
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the {name} thread panicked"))
    }
}
