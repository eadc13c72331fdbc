//! The systemd journal source: follows the journal through `journalctl
//! --follow --output=export` (what Vector does: the journal's file format is
//! systemd's to change, its reader is not ours to rewrite) and hands entries
//! to the batcher.
//!
//! A journal sequence (the `s=` of its cursors) is one stream; an entry's
//! sequence number (`i=`) is its offset, so record ids are stable across
//! restarts and the aggregator recognises a re-sent entry as it does a
//! re-read line. Ranges tile the sequence: an entry of a unit that is not
//! wanted is covered all the same, like a blank line of a file. Where to
//! resume is known only as a cursor, so each hand-over leaves the cursor of
//! its last entry with the ack tracker, and the checkpoint holds the cursor
//! of the last acknowledged entry. Sequence numbers that jump on resume are
//! entries rotated or vacuumed away while the agent was down: counted
//! (`agent.records_missed`) and logged, never skipped silently.

pub mod export;

use crate::batch::{BatchBuilder, StreamRead};
use crate::checkpoint::{AckTracker, CheckpointStore};
use crate::config::{CompiledJournald, StartAt};
use crate::sources::{Record, SourceHealth};
use export::{Entry, ExportReader};
use lookout_shared::parse::Level;
use lookout_shared::parse::fields::{self, MAX_TEXT_BYTES};
use lookout_shared::time::now_ms;
use lookout_shared::wire::{IngestBatch, LineFormat, journal_stream_id};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Journal chunks carry no chunk-wide fields: each entry states its own.
static NO_CHUNK_FIELDS: BTreeMap<String, String> = BTreeMap::new();

/// The `source` of journal records.
pub const SOURCE: &str = "journald";
/// Longest wait for `journalctl` output before the batch's age is checked.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Bytes read from `journalctl` per read call.
const READ_CHUNK: usize = 256 * 1024;
/// Longest wait before `journalctl` is started again after it ended.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// The journal fields kept by default, and the record field each becomes.
const KEPT_FIELDS: [(&str, &str); 4] = [
    ("_SYSTEMD_UNIT", "unit"),
    ("SYSLOG_IDENTIFIER", "identifier"),
    ("_PID", "pid"),
    ("PRIORITY", "priority"),
];

/// Everything the journal source needs from the rest of the agent.
pub struct JournalParts {
    /// Host name for stream ids.
    pub host: String,
    /// The `[journald]` table, compiled.
    pub journald: CompiledJournald,
    /// Delivery progress (where to resume) and where cursors are left.
    pub acks: Arc<Mutex<AckTracker>>,
    /// Saved at once when the first start skips to the journal's end.
    pub checkpoints: Arc<CheckpointStore>,
    /// The batcher.
    pub batch: BatchBuilder,
    /// Sealed batches go here.
    pub batches: SyncSender<IngestBatch>,
    /// Set when the agent stops.
    pub stop: Arc<AtomicBool>,
    /// What the source reports.
    pub health: Arc<SourceHealth>,
}

/// Where the next entry is expected: the stream being read and its next
/// sequence number.
#[derive(Debug, Clone)]
struct Position {
    seqnum_id: String,
    stream: String,
    /// The sequence number the next entry should have.
    next: u64,
    /// The cursor to continue after (`--after-cursor`).
    cursor: String,
}

/// The batch channel is closed: the agent is going down.
struct Closed;

/// Follows the journal until the agent stops, starting `journalctl` again
/// (with a growing delay) whenever it ends.
pub fn run(parts: JournalParts) {
    let mut source = JournalSource::new(parts);
    let mut delay = Duration::from_secs(1);
    while !source.stopping() {
        let started = Instant::now();
        match source.follow() {
            Ok(()) => {}
            Err(Closed) => return,
        }
        if source.stopping() {
            break;
        }
        if started.elapsed() > MAX_RESTART_DELAY {
            delay = Duration::from_secs(1);
        }
        tracing::warn!(retry_in = ?delay, "journalctl ended; starting it again");
        let until = Instant::now() + delay;
        while Instant::now() < until && !source.stopping() {
            std::thread::sleep(POLL_INTERVAL);
        }
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
    let _ = source.seal();
}

struct JournalSource {
    parts: JournalParts,
    /// The sequence being read.
    position: Option<Position>,
    /// Other sequences read by this run (the journal interleaves sequences
    /// whose files it still holds), so a return to one goes on where it was.
    others: Vec<Position>,
    /// Whether the start position was decided (from the checkpoint or
    /// `start_at`).
    placed: bool,
    format: LineFormat,
    records: Vec<Record>,
    /// Entries read again after a restart and skipped, not yet logged.
    already_delivered: u64,
    /// First sequence number not yet handed to the batcher.
    chunk_start: u64,
}

impl JournalSource {
    fn new(parts: JournalParts) -> JournalSource {
        let resume = {
            let mut acks = lock(&parts.acks);
            let resume = acks.journal_resume();
            if let Some(checkpoint) = &resume {
                // Seen now: a checkpoint older than a week (the host was off)
                // is not forgotten before this run's first acknowledgement.
                acks.register_journal(&checkpoint.stream, &checkpoint.seqnum_id, checkpoint.offset);
            }
            resume
        };
        let position = resume.map(|checkpoint| Position {
            seqnum_id: checkpoint.seqnum_id,
            stream: checkpoint.stream,
            next: checkpoint.offset,
            cursor: checkpoint.cursor,
        });
        let chunk_start = position.as_ref().map_or(0, |position| position.next);
        JournalSource {
            placed: position.is_some(),
            position,
            others: Vec::new(),
            parts,
            format: LineFormat::default(),
            records: Vec::new(),
            already_delivered: 0,
            chunk_start,
        }
    }

    fn stopping(&self) -> bool {
        self.parts.stop.load(Ordering::Relaxed)
    }

    /// Runs one `journalctl` until it ends or the agent stops.
    fn follow(&mut self) -> Result<(), Closed> {
        if !self.placed {
            match self.place_at_end() {
                Ok(()) => self.placed = true,
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the journal's last entry");
                    return Ok(());
                }
            }
        }
        let mut child = match self.spawn() {
            Ok(child) => child,
            Err(err) => {
                tracing::error!(program = %self.parts.journald.config.journalctl.display(), error = %err, "cannot start journalctl");
                return Ok(());
            }
        };
        if let Some(stderr) = child.stderr.take() {
            // Drained on its own thread, so that a chatty journalctl never
            // blocks on a full pipe.
            let _ = std::thread::Builder::new()
                .name("journalctl-stderr".into())
                .spawn(move || log_stderr(stderr));
        }
        let result = self.read_child(&mut child);
        // Ours to end: the child this thread started, by its handle.
        let _ = child.kill();
        let status = child.wait();
        if !self.stopping() {
            tracing::warn!(status = ?status.ok(), "journalctl ended");
        }
        self.hand_over()?;
        result
    }

    /// At the very first start with `start_at = "end"`: skips what the
    /// journal holds, by taking its last entry as acknowledged (saved at
    /// once, so a restart goes on from there too). An empty journal is read
    /// from its start.
    fn place_at_end(&mut self) -> io::Result<()> {
        if self.parts.journald.config.start_at == StartAt::Beginning {
            return Ok(());
        }
        let output = run_briefly(self.command().args(["--lines=1", "--output-fields=PRIORITY"]))?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "journalctl failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let mut entries = Vec::new();
        ExportReader::new(MAX_TEXT_BYTES, MAX_TEXT_BYTES)
            .feed(&output.stdout, &mut entries)
            .map_err(io::Error::other)?;
        let Some((cursor, seqnum_id, seqnum)) = entries.last().and_then(entry_cursor) else {
            return Ok(());
        };
        let stream = journal_stream_id(&self.parts.host, &seqnum_id);
        {
            let mut acks = lock(&self.parts.acks);
            acks.register_journal(&stream, &seqnum_id, seqnum + 1);
            acks.expect_cursor(&stream, seqnum + 1, cursor.clone());
        }
        self.parts.checkpoints.save_from(&self.parts.acks)?;
        tracing::info!(skipped_to = %cursor, "start_at = \"end\": reading journal entries written from now on");
        self.chunk_start = seqnum + 1;
        self.position = Some(Position {
            seqnum_id,
            stream,
            next: seqnum + 1,
            cursor,
        });
        Ok(())
    }

    /// `journalctl` with the folder to read and the export format.
    fn command(&self) -> Command {
        let config = &self.parts.journald.config;
        let mut command = Command::new(&config.journalctl);
        command.args(["--output=export", "--no-pager", "--quiet"]);
        if let Some(directory) = &config.directory {
            command.arg("--directory").arg(directory);
        }
        command.stdin(Stdio::null());
        command
    }

    fn spawn(&self) -> io::Result<Child> {
        let mut fields: Vec<&str> = vec!["MESSAGE"];
        fields.extend(KEPT_FIELDS.iter().map(|(name, _)| *name));
        fields.extend(self.parts.journald.config.fields.iter().map(String::as_str));
        let mut command = self.command();
        command
            .arg("--follow")
            .arg(format!("--output-fields={}", fields.join(",")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.position {
            Some(position) => command.arg(format!("--after-cursor={}", position.cursor)),
            None => command.arg("--no-tail"),
        };
        command.spawn()
    }

    fn read_child(&mut self, child: &mut Child) -> Result<(), Closed> {
        let Some(mut stdout) = child.stdout.take() else {
            return Ok(());
        };
        let max_value = self.parts.journald.config.max_record_bytes.bytes() as usize;
        let mut reader = ExportReader::new(max_value, MAX_TEXT_BYTES);
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut entries = Vec::new();
        while !self.stopping() {
            if readable(&stdout) {
                let read = match stdout.read(&mut buffer) {
                    Ok(0) => return Ok(()),
                    Ok(read) => read,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        tracing::error!(error = %err, "reading journalctl's output failed");
                        return Ok(());
                    }
                };
                self.parts.health.count_read(0, read);
                if let Err(err) = reader.feed(&buffer[..read], &mut entries) {
                    tracing::error!(error = %err, "journalctl's output cannot be read; starting it again");
                    return Ok(());
                }
                for entry in entries.drain(..) {
                    self.take(entry)?;
                }
                self.hand_over()?;
            }
            if self.parts.batch.is_due(Instant::now()) {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Places one entry in its stream and keeps it if its unit is wanted.
    fn take(&mut self, entry: Entry) -> Result<(), Closed> {
        let Some((cursor, seqnum_id, seqnum)) = entry_cursor(&entry) else {
            tracing::warn!("a journal entry without a readable cursor was skipped");
            return Ok(());
        };
        let same_sequence = self
            .position
            .as_ref()
            .is_some_and(|position| position.seqnum_id == seqnum_id);
        if !same_sequence {
            self.hand_over()?;
            self.switch_sequence(&seqnum_id, seqnum);
        }
        let Some(position) = self.position.as_mut() else {
            return Ok(());
        };
        if seqnum < position.next {
            // Already delivered: the saved cursor can lag the acknowledged
            // offset (batches spooled by an earlier run move the offset
            // without leaving a cursor), so a restart may read some again.
            self.already_delivered += 1;
            return Ok(());
        }
        if self.already_delivered > 0 {
            tracing::info!(
                entries = self.already_delivered,
                "skipped journal entries before the resume point, delivered before"
            );
            self.already_delivered = 0;
        }
        if seqnum > position.next {
            let missed = seqnum - position.next;
            self.parts.health.records_missed.fetch_add(missed, Ordering::Relaxed);
            tracing::warn!(
                missed,
                from = position.next,
                to = seqnum - 1,
                sequence = %seqnum_id,
                "journal entries were gone before they could be read (rotated or vacuumed away)"
            );
        }
        position.next = seqnum + 1;
        position.cursor = cursor;
        let unit = entry.text("_SYSTEMD_UNIT");
        if self.parts.journald.wants_unit(unit) {
            let record = self.record(&entry, seqnum);
            self.records.push(record);
        }
        Ok(())
    }

    /// An entry of a sequence other than the one being read: one read
    /// before in this run, or a new one (the first start, or a checkpointed
    /// sequence whose files were removed).
    fn switch_sequence(&mut self, seqnum_id: &str, seqnum: u64) {
        let known = self.others.iter().position(|other| other.seqnum_id == seqnum_id);
        let next = match known {
            Some(index) => self.others.swap_remove(index),
            None => {
                if let Some(old) = &self.position {
                    tracing::warn!(
                        old = %old.seqnum_id,
                        new = %seqnum_id,
                        after = old.next,
                        "the journal's sequence changed: entries of the old sequence after the last one read, if any, are gone"
                    );
                }
                let stream = journal_stream_id(&self.parts.host, seqnum_id);
                let mut acks = lock(&self.parts.acks);
                // A sequence a checkpoint knows goes on from its acknowledged
                // offset (what lies between is a gap, or was delivered).
                let next = acks.acked_upto(&stream).unwrap_or(seqnum);
                acks.register_journal(&stream, seqnum_id, next);
                Position {
                    seqnum_id: seqnum_id.to_owned(),
                    stream,
                    next,
                    cursor: String::new(),
                }
            }
        };
        self.chunk_start = next.next;
        if let Some(old) = self.position.replace(next) {
            // A handful at most: one per set of journal files ever started.
            if self.others.len() >= 16 {
                self.others.remove(0);
            }
            self.others.push(old);
        }
    }

    fn record(&self, entry: &Entry, seqnum: u64) -> Record {
        let message = entry.get("MESSAGE");
        let mut fields = BTreeMap::new();
        for (journal_name, name) in KEPT_FIELDS {
            if let Some(field) = entry.get(journal_name) {
                fields.insert(name.to_owned(), field_text(&field.value));
            }
        }
        for journal_name in &self.parts.journald.config.fields {
            if let Some(field) = entry.get(journal_name) {
                fields.insert(field_name(journal_name), field_text(&field.value));
            }
        }
        let max_record = self.parts.journald.config.max_record_bytes.bytes() as usize;
        let (text, cut) = message.map_or((&[][..], false), |field| {
            let keep = field.value.len().min(max_record);
            (&field.value[..keep], field.cut || field.value.len() > keep)
        });
        Record {
            offset: seqnum,
            message: String::from_utf8_lossy(text).into_owned(),
            truncated: cut,
            time_ms: entry
                .text("__REALTIME_TIMESTAMP")
                .and_then(|micros| micros.parse::<i64>().ok())
                .map(|micros| micros / 1000),
            level: entry
                .text("PRIORITY")
                .and_then(|priority| priority.parse::<u8>().ok())
                .and_then(Level::from_syslog_severity),
            fields,
        }
    }

    /// Gives the batcher the entries read and the range they settle, and
    /// leaves the cursor of the range's end with the ack tracker.
    fn hand_over(&mut self) -> Result<(), Closed> {
        let Some(position) = &self.position else {
            return Ok(());
        };
        if position.next == self.chunk_start {
            return Ok(());
        }
        self.parts.health.count_read(self.records.len(), 0);
        let read = StreamRead {
            stream: &position.stream,
            source: SOURCE,
            labels: &self.parts.journald.config.labels,
            format: &self.format,
            fields: &NO_CHUNK_FIELDS,
            start: self.chunk_start,
            end: position.next,
            read_at_ms: now_ms(),
        };
        self.parts.batch.add(read, &mut self.records);
        lock(&self.parts.acks).expect_cursor(&position.stream, position.next, position.cursor.clone());
        self.chunk_start = position.next;
        if self.parts.batch.is_full() {
            self.seal()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<(), Closed> {
        if let Some(batch) = self.parts.batch.take() {
            self.parts.batches.send(batch).map_err(|_| Closed)?;
        }
        Ok(())
    }
}

/// What `check-config` asks of the machine for `[journald]`: the
/// `journalctl` program runs, and the journal (the folder, if one is
/// named) can be read. The error says what to fix.
pub fn check(journald: &CompiledJournald) -> Result<(), String> {
    let config = &journald.config;
    let program = config.journalctl.display();
    if let Some(directory) = &config.directory {
        std::fs::read_dir(directory)
            .map_err(|err| format!("journald.directory: cannot read {}: {err}", directory.display()))?;
    }
    let mut command = Command::new(&config.journalctl);
    command.args([
        "--output=export",
        "--no-pager",
        "--quiet",
        "--lines=1",
        "--output-fields=PRIORITY",
    ]);
    if let Some(directory) = &config.directory {
        command.arg("--directory").arg(directory);
    }
    let output = run_briefly(&mut command).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => format!(
            "journald.journalctl: {program} does not exist: install systemd's journalctl or set journald.journalctl"
        ),
        _ => format!("journald.journalctl: cannot run {program}: {err}"),
    })?;
    if !output.status.success() {
        return Err(format!(
            "journald: {program} cannot read the journal ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Longest a one-off `journalctl` (the journal's last entry) may take: a
/// journal on a hung file system must not hang the agent's start or stop.
const ONE_OFF_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a one-off `journalctl` whose output is small (one entry), killing it
/// after [`ONE_OFF_TIMEOUT`].
fn run_briefly(command: &mut Command) -> io::Result<std::process::Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + ONE_OFF_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            // Ours to end: the child started just above.
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("journalctl gave no answer within {}s", ONE_OFF_TIMEOUT.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output()
}

/// Logs what `journalctl` says on stderr (its first lines; a flood of
/// complaints about one damaged file needs no more).
fn log_stderr(stderr: std::process::ChildStderr) {
    use std::io::BufRead;
    const MAX_LINES: usize = 20;
    let mut lines = io::BufReader::new(stderr).lines();
    for line in lines.by_ref().take(MAX_LINES).map_while(Result::ok) {
        tracing::warn!(message = %line, "journalctl");
    }
    lines.for_each(drop);
}

/// An entry's cursor with the sequence id (`s=`) and number (`i=`, hex) it
/// holds.
fn entry_cursor(entry: &Entry) -> Option<(String, String, u64)> {
    let cursor = entry.text("__CURSOR")?;
    let (seqnum_id, seqnum) = parse_cursor(cursor)?;
    Some((cursor.to_owned(), seqnum_id.to_owned(), seqnum))
}

/// The sequence id and number of a cursor such as
/// `s=7f…;i=4e22;b=29…;m=4f9e…;t=6614…;x=b072…`.
fn parse_cursor(cursor: &str) -> Option<(&str, u64)> {
    let mut seqnum_id = None;
    let mut seqnum = None;
    for item in cursor.split(';') {
        if let Some(id) = item.strip_prefix("s=") {
            seqnum_id = Some(id).filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()));
        } else if let Some(number) = item.strip_prefix("i=") {
            seqnum = u64::from_str_radix(number, 16).ok();
        }
    }
    Some((seqnum_id?, seqnum?))
}

/// A field's value as record text: invalid UTF-8 replaced, cut to what the
/// aggregator keeps of a field.
fn field_text(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    fields::head(&text, MAX_TEXT_BYTES).to_owned()
}

/// The record field a configured journal field becomes: `_COMM` → `comm`.
fn field_name(journal_name: &str) -> String {
    journal_name.trim_start_matches('_').to_ascii_lowercase()
}

/// Whether `journalctl`'s output has bytes (or its end) to read, waiting at
/// most [`POLL_INTERVAL`].
fn readable(stdout: &ChildStdout) -> bool {
    let mut fds = [rustix::event::PollFd::new(stdout, rustix::event::PollFlags::IN)];
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: POLL_INTERVAL.as_nanos() as i64,
    };
    matches!(rustix::event::poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

fn lock(acks: &Mutex<AckTracker>) -> MutexGuard<'_, AckTracker> {
    acks.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_give_their_sequence() {
        let cursor = "s=39377548e9f64a1baa31e63708401cac;i=4e22;b=290f4909b46341b6aa71a4bbc1edaf9a;m=4f9ed185c;t=66146208cdd95;x=b0724c8744bde886";
        assert_eq!(parse_cursor(cursor), Some(("39377548e9f64a1baa31e63708401cac", 0x4e22)));
        assert_eq!(parse_cursor("i=1"), None);
        assert_eq!(parse_cursor("s=zz;i=1"), None);
        assert_eq!(parse_cursor("s=ab;i=nothex"), None);
    }

    #[test]
    fn field_names_and_values() {
        assert_eq!(field_name("_SYSTEMD_USER_UNIT"), "systemd_user_unit");
        assert_eq!(field_name("CONTAINER_NAME"), "container_name");
        let long = "é".repeat(400);
        let text = field_text(long.as_bytes());
        assert!(text.len() <= MAX_TEXT_BYTES && text.chars().all(|c| c == 'é'));
        assert_eq!(field_text(b"a\xffb"), "a\u{fffd}b");
    }
}
