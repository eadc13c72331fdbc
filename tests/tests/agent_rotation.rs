//! The agent rotating the files it manages: a writer producing 50 MB a
//! minute, `max_size = "1MB"`, `keep = 3`. Nothing is lost, nothing is
//! duplicated, and the disk the log takes stays bounded. Copytruncate mode's
//! unavoidable window (a line written between the copy and the truncation) is
//! measured and reported.

use lookout_tests::{Agent, Aggregator, count_sequence_numbers, numbered, test_dir, wait_until};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 50 MB per minute.
const BYTES_PER_SECOND: u64 = 50 * 1000 * 1000 / 60;
const WRITE_EVERY: Duration = Duration::from_millis(10);
const RUN_FOR: Duration = Duration::from_secs(20);
const MAX_SIZE: u64 = 1_000_000;
const KEEP: u64 = 3;

fn log_bytes_on_disk(logs: &Path) -> u64 {
    fs::read_dir(logs)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Outcome {
    lines: u64,
    bytes: u64,
    found: Vec<String>,
    max_disk: u64,
}

/// One run at a time: the disk bounds allow a few seconds for a starved
/// agent, and three 50 MB/min writers with their agents and debug aggregators
/// on 2 cores starved it past that (a CI run saw 9.12 MB against 9.0).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Writes numbered lines at 50 MB/min for `RUN_FOR` while the agent rotates;
/// returns what was written and found.
fn run(name: &str, mode: &str, reopen_per_write: bool) -> Outcome {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = test_dir(name);
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let aggregator = Aggregator::start(&dir);
    let sources = format!(
        "[[logs]]\npaths = [\"{}/*.log\"]\nrotate = {{ max_size = \"1MB\", keep = {KEEP}, compress = true, mode = \"{mode}\" }}\n",
        logs.display()
    );
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);

    let done = Arc::new(AtomicBool::new(false));
    let max_disk = Arc::new(AtomicU64::new(0));
    let monitor = {
        let logs = logs.clone();
        let done = Arc::clone(&done);
        let max_disk = Arc::clone(&max_disk);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                max_disk.fetch_max(log_bytes_on_disk(&logs), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let padding = "x".repeat(80);
    let started = Instant::now();
    let mut number = 0u64;
    let mut bytes = 0u64;
    let mut held = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    while started.elapsed() < RUN_FOR {
        // Catch up with the rate: whatever is due by now is written now.
        let due = (started.elapsed().as_secs_f64() * BYTES_PER_SECOND as f64) as u64;
        let mut chunk = String::new();
        while bytes + (chunk.len() as u64) < due {
            chunk.push_str(&format!(
                "2026-11-22T10:00:00Z INFO request served {} {padding}\n",
                numbered(number)
            ));
            number += 1;
        }
        bytes += chunk.len() as u64;
        if reopen_per_write {
            held = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        }
        held.write_all(chunk.as_bytes()).unwrap();
        std::thread::sleep(WRITE_EVERY);
    }
    drop(held);
    wait_until("lines to stop arriving", Duration::from_secs(180), || {
        let before = aggregator.count("served");
        std::thread::sleep(Duration::from_secs(3));
        before >= number || before == aggregator.count("served")
    });
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    let found = aggregator.numbered_messages(number);
    assert_eq!(agent.terminate(), Some(0));
    Outcome {
        lines: number,
        bytes,
        found,
        max_disk: max_disk.load(Ordering::Relaxed),
    }
}

#[test]
fn rename_rotation_loses_nothing_and_bounds_disk_use() {
    let outcome = run("agent_rotation_rename", "rename", true);
    let seen = count_sequence_numbers(&outcome.found);
    let missing = (0..outcome.lines).filter(|n| !seen.contains_key(n)).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    println!(
        "agent rename rotation: {} lines ({:.1} MB) written, {} found, {missing} missing, {duplicated} duplicated, max {} bytes on disk",
        outcome.lines,
        outcome.bytes as f64 / 1e6,
        outcome.found.len(),
        outcome.max_disk
    );
    assert_eq!(missing, 0, "rename rotation must lose nothing");
    assert_eq!(duplicated, 0, "nor duplicate anything");
    // The live file, the plain .1 and the compressed older ones, plus what
    // the writer adds while the agent catches up: it rotates a file only after
    // reading it to its end, and here it shares 2 cores with the writer, a
    // debug aggregator and another test. 3 s of writes is that allowance; the
    // 16 MB written must not all stay on disk.
    let bound = (KEEP + 1) * MAX_SIZE + 3 * BYTES_PER_SECOND;
    assert!(
        outcome.max_disk <= bound,
        "disk use {} passed the bound {bound}",
        outcome.max_disk
    );
    assert!(
        outcome.lines * 100 > 10 * MAX_SIZE,
        "the writer wrote enough to rotate many times"
    );
}

#[test]
fn copytruncate_rotation_window_is_measured() {
    let outcome = run("agent_rotation_copytruncate", "copytruncate", false);
    let seen = count_sequence_numbers(&outcome.found);
    let missing = (0..outcome.lines).filter(|n| !seen.contains_key(n)).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    println!(
        "agent copytruncate rotation: {} lines written, {missing} lost in the copy-to-truncate window, {duplicated} duplicated, max {} bytes on disk",
        outcome.lines, outcome.max_disk
    );
    assert_eq!(duplicated, 0, "copytruncate must not duplicate lines");
    assert!(
        missing as u64 * 200 <= outcome.lines,
        "{missing} of {} lines lost: more than the window between copy and truncate explains",
        outcome.lines
    );
}

/// A writer that keeps its file open and a rename rotation with no
/// post_command: the rename does not take (the writer goes on writing to the
/// renamed file). The agent notices, gives the file its name back and
/// rotates it by copytruncate from then on, so the disk stays bounded and
/// every line still arrives once (but for copytruncate's window).
#[test]
fn a_rename_the_writer_ignores_is_detected_and_disk_stays_bounded() {
    let outcome = run("agent_rotation_rename_ignored", "rename", false);
    let seen = count_sequence_numbers(&outcome.found);
    let missing = (0..outcome.lines).filter(|n| !seen.contains_key(n)).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    println!(
        "agent rename rotation ignored by the writer: {} lines ({:.1} MB) written, {missing} missing, {duplicated} duplicated, max {} bytes on disk",
        outcome.lines,
        outcome.bytes as f64 / 1e6,
        outcome.max_disk
    );
    assert_eq!(duplicated, 0, "nothing is duplicated");
    assert!(
        missing as u64 * 200 <= outcome.lines,
        "{missing} of {} lines lost: more than copytruncate's window explains",
        outcome.lines
    );
    // Before the fix the renamed file grew without bound (6.5 MB against a
    // 1 MB max_size after 6 s). The detection takes rotate_wait; allow that
    // on top of the rename test's bound.
    let bound = (KEEP + 1) * MAX_SIZE + 6 * BYTES_PER_SECOND;
    assert!(
        outcome.max_disk <= bound,
        "disk use {} passed the bound {bound}",
        outcome.max_disk
    );
}
