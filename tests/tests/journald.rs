//! The journal source against a real `systemd-journald` (our own, in a
//! private mount namespace: `lookout_tests::journald`), written to with
//! `systemd-cat`: entries arrive exactly once through agent SIGKILLs and an
//! aggregator outage, with their priorities as levels, their journal times
//! and their identifiers; entries vacuumed while the agent was down are
//! reported, and `start_at = "end"` skips what the journal held.

use lookout_tests::journald::{JournalEntry, Journald};
use lookout_tests::{Agent, Aggregator, count_sequence_numbers, numbered, test_dir, wait_until};
use std::fs;
use std::time::Duration;

const IDENTIFIERS: [&str; 3] = ["lkt-alpha", "lkt-beta", "lkt-gamma"];
const TOTAL: u64 = 50_000;
const ROUND: u64 = 5_000;

fn agent_config(journald: &Journald, start_at: &str) -> String {
    format!(
        "[journald]\ndirectory = \"{}\"\nstart_at = \"{start_at}\"\nfields = [\"_COMM\"]\n[shipper]\nbatch_max_wait = \"200ms\"\n",
        journald.directory().display()
    )
}

/// Entry `n`: its identifier, and its line with the priority `n % 8`.
fn entry(n: u64) -> (usize, String) {
    ((n % 3) as usize, format!("<{}>journal entry {}", n % 8, numbered(n)))
}

fn write_round(journald: &Journald, from: u64, to: u64) {
    let mut by_identifier: [Vec<String>; 3] = Default::default();
    for n in from..to {
        let (identifier, line) = entry(n);
        by_identifier[identifier].push(line);
    }
    for (identifier, lines) in IDENTIFIERS.iter().zip(&by_identifier) {
        journald.write(identifier, lines);
    }
}

#[test]
fn journal_entries_arrive_exactly_once_through_kills_and_an_outage() {
    let dir = test_dir("journald_exactly_once");
    let journald = Journald::start(&dir);
    let mut aggregator = Aggregator::start(&dir);
    let mut agent = Agent::start(&dir, &aggregator.url, &agent_config(&journald, "beginning"));

    let mut written = 0;
    for round in 0..TOTAL / ROUND {
        write_round(&journald, written, written + ROUND);
        written += ROUND;
        match round {
            // SIGKILL mid-stream, three times: no flush, no checkpoint save.
            1 | 3 | 5 => {
                wait_until("part of the round to arrive", Duration::from_secs(60), || {
                    aggregator.count("journal AND entry") > written - ROUND
                });
                agent.kill();
                agent.restart();
            }
            // The aggregator down for 30 s while two rounds are written.
            6 => {
                assert_eq!(aggregator.terminate(), Some(0));
            }
            7 => {
                std::thread::sleep(Duration::from_secs(30));
                aggregator.restart();
            }
            _ => {}
        }
    }
    // What the journal holds is the truth: journald itself may split a
    // line (`_LINE_BREAK=pid-change` was seen), making two entries of it.
    let journal: Vec<JournalEntry> = journald
        .entries()
        .into_iter()
        .filter(|entry| entry.identifier.starts_with("lkt-"))
        .collect();
    assert!(journal.len() as u64 >= TOTAL, "the journal holds what was written");
    let ours = "source:journald AND (identifier:lkt-alpha OR identifier:lkt-beta OR identifier:lkt-gamma)";
    wait_until("every journal entry to arrive", Duration::from_secs(180), || {
        aggregator.count(ours) >= journal.len() as u64
    });
    // Late duplicates would show up after the count was reached.
    assert_eq!(agent.terminate(), Some(0));
    for identifier in IDENTIFIERS {
        let expected = journal.iter().filter(|entry| entry.identifier == identifier).count() as u64;
        assert_eq!(
            aggregator.count(&format!("identifier:{identifier}")),
            expected,
            "{identifier}: each entry once"
        );
    }
    let whole: Vec<u64> = journal
        .iter()
        .filter_map(|entry| {
            let mut words = entry.message.split_whitespace();
            let number = words.find_map(|word| word.strip_prefix("seq=")?.parse().ok())?;
            words
                .next()
                .is_some_and(|group| group.starts_with("group"))
                .then_some(number)
        })
        .collect();
    let seen = count_sequence_numbers(&aggregator.numbered_messages(TOTAL));
    let wrong: Vec<(u64, u32)> = whole
        .iter()
        .map(|n| (*n, seen.get(n).copied().unwrap_or(0)))
        .filter(|(_, count)| *count != 1)
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "entries not stored exactly once (number, times): {wrong:?}"
    );

    // PRIORITY → level: 0–3 error, 4 warn, 5–6 info, 7 debug.
    let with_priority = |priorities: &[u8]| {
        journal
            .iter()
            .filter(|entry| priorities.contains(&entry.priority))
            .count() as u64
    };
    for (level, priorities) in [
        ("error", &[0, 1, 2, 3][..]),
        ("warn", &[4]),
        ("info", &[5, 6]),
        ("debug", &[7]),
    ] {
        assert_eq!(
            aggregator.count(&format!("({ours}) AND level:{level}")),
            with_priority(priorities),
            "level {level}"
        );
    }
    assert_eq!(
        aggregator.count(&format!("({ours}) AND priority:3")),
        with_priority(&[3])
    );
    // A fragment journald reads after systemd-cat exited has no `_PID`
    // (593 of 50,001 in one run): the journal, not the line count, is the truth.
    let with_pid = journal.iter().filter(|entry| entry.pid.is_some()).count() as u64;
    assert!(with_pid > 0);
    assert_eq!(aggregator.count(&format!("({ours}) AND has:pid")), with_pid);
    let with_comm = journal.iter().filter(|entry| entry.comm.is_some()).count() as u64;
    assert!(with_comm > 0);
    assert_eq!(
        aggregator.count(&format!("({ours}) AND comm:cat")),
        with_comm,
        "the configured _COMM"
    );

    // The event time is the entry's __REALTIME_TIMESTAMP (to the
    // millisecond), on 50 entries across the run.
    let probes = journal.iter().filter(|entry| entry.message.contains("group"));
    for probe in probes.step_by(journal.len() / 50) {
        let hits = aggregator.search(&[("q", &format!("\"{}\"", probe.message)), ("limit", "1")]);
        let stored: jiff::Timestamp = hits["hits"][0]["timestamp"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .expect("an RFC 3339 timestamp");
        assert_eq!(stored.as_millisecond(), probe.realtime_us / 1000, "{}", probe.message);
    }
}

#[test]
fn vacuumed_entries_are_reported_and_start_at_end_skips_the_past() {
    let dir = test_dir("journald_gap");
    let journald = Journald::start(&dir);
    let aggregator = Aggregator::start(&dir);
    let lines = |tag: &str, count: u64| -> Vec<String> { (0..count).map(|n| format!("{tag} line {n}")).collect() };

    journald.write("lkt-old", &lines("before", 100));
    let config = format!("{}[metrics]\ninterval = \"1s\"\n", agent_config(&journald, "end"));
    let mut agent = Agent::start(&dir, &aggregator.url, &config);
    let agent_log = agent.log().to_path_buf();
    wait_until(
        "the agent to skip to the journal's end",
        Duration::from_secs(30),
        || fs::read_to_string(&agent_log).is_ok_and(|log| log.contains("reading journal entries written from now on")),
    );
    journald.write("lkt-app", &lines("first", 100));
    wait_until(
        "entries written after the start to arrive",
        Duration::from_secs(60),
        || aggregator.count("first AND line") == 100,
    );
    assert_eq!(
        aggregator.count("before AND line"),
        0,
        "start_at = \"end\" skips what was there"
    );

    // While the agent is down, entries are written, archived and vacuumed away.
    assert_eq!(agent.terminate(), Some(0));
    journald.write("lkt-app", &lines("lost", 300));
    journald.rotate();
    journald.write("lkt-app", &lines("kept", 50));
    journald.vacuum();
    agent.restart();
    wait_until(
        "entries still in the journal to arrive",
        Duration::from_secs(60),
        || aggregator.count("kept AND line") == 50,
    );
    assert_eq!(aggregator.count("lost AND line"), 0);
    let log = fs::read_to_string(&agent_log).unwrap();
    let gap = log
        .lines()
        .find(|line| line.contains("journal entries were gone before they could be read"))
        .unwrap_or_else(|| panic!("the gap is logged:\n{log}"));
    let missed: u64 = gap
        .split_whitespace()
        .find_map(|word| word.strip_prefix("missed=")?.parse().ok())
        .unwrap_or_else(|| panic!("the gap line says how many: {gap}"));
    assert!(missed >= 300, "at least the 300 lost entries are counted: {gap}");
    // … and reported as a metric.
    let reported = || {
        let now = jiff::Timestamp::now().as_millisecond();
        let series = aggregator.get_json(
            "/api/v1/metrics/series",
            &[
                ("host", "e2e-host"),
                ("name", "agent.records_missed"),
                ("start", &(now - 600_000).to_string()),
                ("end", &(now + 60_000).to_string()),
            ],
        );
        series["series"][0]["points"]
            .as_array()
            .and_then(|points| points.last()?.get(1)?.as_f64())
            .unwrap_or(0.0)
    };
    wait_until(
        "agent.records_missed to report the gap",
        Duration::from_secs(30),
        || reported() >= missed as f64,
    );
}

#[test]
fn check_config_names_a_missing_journalctl_and_a_missing_folder() {
    let dir = test_dir("journald_check_config");
    let journal = dir.join("journal");
    fs::create_dir_all(&journal).unwrap();
    let check = |journald: &str| {
        let config = dir.join("agent.toml");
        fs::write(
            &config,
            format!("aggregator_url = \"http://127.0.0.1:9\"\ntoken = \"t\"\n[journald]\n{journald}\n"),
        )
        .unwrap();
        let output = std::process::Command::new(lookout_tests::binary("lookout-agent"))
            .arg("--config")
            .arg(&config)
            .arg("check-config")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, _) = check(&format!("directory = \"{}\"", journal.display()));
    assert_eq!(code, Some(0), "an empty journal folder is readable");
    let (code, stderr) = check(&format!(
        "directory = \"{}\"\njournalctl = \"/nonexistent/journalctl\"",
        journal.display()
    ));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("journald.journalctl: /nonexistent/journalctl does not exist"),
        "{stderr}"
    );
    let (code, stderr) = check(&format!("directory = \"{}/missing\"", dir.display()));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("journald.directory: cannot read"), "{stderr}");
    let (code, stderr) = check("fields = [\"lower\"]");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("journald.fields"), "{stderr}");
}
