//! The aggregator's data folder fills up (a real 64 MiB tmpfs): ingest
//! answers 503, the agent keeps its batches in its spool, nothing it was
//! told is stored goes missing, and once space is freed every line written
//! meanwhile arrives, once.

use lookout_tests::{Agent, Aggregator, count_sequence_numbers, numbered, test_dir, tmpfs::Tmpfs, wait_until};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Fills the filesystem of `dir` with a ballast file until no byte is left.
fn fill_up(dir: &Path) {
    let mut ballast = fs::File::create(dir.join("ballast")).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    loop {
        match ballast.write_all(&chunk) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::StorageFull => break,
            Err(err) => panic!("filling the tmpfs: {err}"),
        }
    }
    // The last partial chunks, a byte at a time is too slow: small writes.
    while ballast.write_all(&[0x5a; 512]).is_ok() {}
    let _ = ballast.sync_all();
}

fn write_lines(path: &Path, from: u64, to: u64) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    for n in from..to {
        writeln!(file, "2026-11-27T10:00:00Z INFO disk-full test {}", numbered(n)).unwrap();
    }
}

/// Every numbered line below `lines` was stored exactly once.
fn assert_every_line_once(aggregator: &Aggregator, lines: u64, what: &str) {
    let seen = count_sequence_numbers(&aggregator.numbered_messages(lines));
    let missing = (0..lines).filter(|n| !seen.contains_key(n)).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    println!("{what}: {lines} lines written, {missing} missing, {duplicated} duplicated");
    assert_eq!((missing, duplicated), (0, 0));
}

fn rejected_unavailable(aggregator: &Aggregator) -> u64 {
    let Ok(mut answer) = lookout_tests::http()
        .get(&format!("{}/metrics", aggregator.url))
        .header("Authorization", &format!("Bearer {}", lookout_tests::API_TOKEN))
        .call()
    else {
        return 0;
    };
    let metrics = answer.body_mut().read_to_string().unwrap_or_default();
    metrics
        .lines()
        .find(|line| line.starts_with("lookout_http_rejected_requests_total{reason=\"unavailable\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Starts both binaries on `dir` (its tmpfs already mounted) with the agent
/// tailing `logs/app.log`, and waits until the first 1000 lines are stored.
fn start_with_1000_lines(dir: &Path) -> (PathBuf, Aggregator, Agent) {
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let log = logs.join("app.log");
    let aggregator = Aggregator::start(dir);
    let sources = format!(
        "[metrics]\nenabled = false\n[[logs]]\npaths = [\"{}/*.log\"]\n",
        logs.display()
    );
    let agent = Agent::start(dir, &aggregator.url, &sources);
    write_lines(&log, 0, 1000);
    wait_until("the first 1000 lines", Duration::from_secs(60), || {
        aggregator.count("test") == 1000
    });
    (log, aggregator, agent)
}

#[test]
fn a_full_data_folder_refuses_ingest_and_loses_nothing() {
    let dir = test_dir("disk_full");
    let data = Tmpfs::mount(&dir.join("data"), 64);
    let (log, aggregator, mut agent) = start_with_1000_lines(&dir);

    fill_up(&data.path);
    write_lines(&log, 1000, 3000);
    wait_until(
        "ingest to be refused for want of space",
        Duration::from_secs(60),
        || rejected_unavailable(&aggregator) > 0,
    );
    assert!(aggregator.count("test") < 3000, "lines were stored on a full disk");
    let health = lookout_tests::http()
        .get(&format!("{}/healthz", aggregator.url))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200, "the aggregator is still up");

    fs::remove_file(data.path.join("ballast")).unwrap();
    wait_until("every line after space is freed", Duration::from_secs(120), || {
        aggregator.count("test") >= 3000
    });
    assert_every_line_once(&aggregator, 3000, "data folder full");
    assert_eq!(agent.terminate(), Some(0));
    drop(aggregator);
    drop(data);
}

/// The agent's state folder (spool and checkpoints) fills up: the agent stops
/// taking lines in, loses none, and goes on once space is freed.
#[test]
fn a_full_agent_state_folder_pauses_the_agent_and_loses_nothing() {
    let dir = test_dir("agent_state_full");
    let state = Tmpfs::mount(&dir.join("agent-state"), 8);
    let (log, mut aggregator, mut agent) = start_with_1000_lines(&dir);

    // With the aggregator away, batches must go to the spool, which has no room.
    assert_eq!(aggregator.terminate(), Some(0));
    fill_up(&state.path);
    write_lines(&log, 1000, 3000);
    let agent_log = agent.log().to_path_buf();
    wait_until(
        "the agent to meet the full state folder",
        Duration::from_secs(60),
        || fs::read_to_string(&agent_log).is_ok_and(|text| text.contains("cannot write to the spool")),
    );
    assert!(agent.is_running(), "the agent keeps running on a full state folder");

    fs::remove_file(state.path.join("ballast")).unwrap();
    aggregator.restart();
    wait_until("every line after space is freed", Duration::from_secs(120), || {
        aggregator.count("test") >= 3000
    });
    assert_every_line_once(&aggregator, 3000, "agent state folder full");
    assert_eq!(agent.terminate(), Some(0));
    drop(state);
}
