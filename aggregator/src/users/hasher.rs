//! The one thread that checks passwords.
//!
//! An argon2 check allocates about 19 MiB. Run on the blocking pool, those
//! allocations land in a different malloc arena on every new thread, and
//! glibc keeps each arena's freed top: a thousand logins left the process
//! 900 MB larger. On one long-lived thread they reuse one arena, whatever
//! the load; attempts beyond what it can check wait in a bounded queue, and
//! past that are refused at once (the login limiter has already counted
//! them).
//!
//! The aggregator's binary allocates with mimalloc (see `main.rs`), which
//! returns large freed blocks by itself; the trim after each check still
//! serves what C code allocates with glibc's malloc, and builds of this
//! library on glibc's allocator (its tests).

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use tokio::sync::oneshot;

/// Password checks that may wait for the thread at once.
pub const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// A handle to the password thread (cheap to clone).
#[derive(Clone, Debug)]
pub struct PasswordThread {
    jobs: SyncSender<Job>,
}

/// Why a check did not run.
#[derive(Debug, thiserror::Error)]
pub enum HasherError {
    /// The queue is full: too many logins at once.
    #[error("too many logins are being checked; retry in a moment")]
    Busy,
    /// The thread is gone (shutting down).
    #[error("the password thread has stopped")]
    Stopped,
}

impl PasswordThread {
    /// Starts the thread.
    pub fn spawn() -> std::io::Result<PasswordThread> {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("password-check".into())
            .spawn(move || {
                for job in queue {
                    job();
                    // Hand the check's 19 MiB back at once, rather than keep
                    // it in the arena for the next one.
                    release_free_memory();
                }
            })?;
        Ok(PasswordThread { jobs })
    }

    /// Runs `work` on the password thread and waits for its result.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HasherError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => answer.await.map_err(|_| HasherError::Stopped),
            Err(TrySendError::Full(_)) => Err(HasherError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(HasherError::Stopped),
        }
    }
}

/// glibc's `malloc_trim(0)`: returns the free memory of every arena to the
/// system (the standard library has no call for it; other C libraries return
/// large blocks by themselves).
#[cfg(target_env = "gnu")]
fn release_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own heap state.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn release_free_memory() {}
