//! `[archive]` end to end, on the real binaries: a day of logs from an
//! agent and a Loki push is written to a real S3 API (moto's server) before
//! retention deletes it, one object per host with a manifest, and
//! `lookout-aggregator archive restore --day D` makes it searchable again,
//! every line once with its id, time, level and fields; a second restore
//! stores nothing twice. An archive that cannot be written keeps the day
//! on disk; a folder archive is private to its owner.
//!
//! A day is made old by renaming its partition folder while the aggregator
//! is stopped: partitions are named by the UTC day their records arrived.

use lookout_tests::{
    Agent, Aggregator, INGEST_TOKEN, aggregator_cli, assert_private, count_sequence_numbers, free_port, http, numbered,
    shown, test_dir, wait_until,
};
use serde_json::Value;
use std::fs;
use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
/// Lines the agent ships from a file.
const AGENT_LINES: u64 = 3000;
/// Lines pushed as host `web-2` through the Loki receiver.
const PUSHED_LINES: u64 = 500;

/// Today (UTC) and the day `days` before it, as partitions name them.
fn days_ago(days: i64) -> String {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    today.checked_sub(jiff::Span::new().days(days)).unwrap().to_string()
}

/// A host name no file system takes as it is: 220 bytes with a slash.
fn odd_host() -> String {
    format!("{}/../É", "x".repeat(214))
}

/// Ships the agent's and the pushed lines (and one line of [`odd_host`])
/// into a fresh aggregator in `dir`, stops both, and makes their partition
/// `age` days old; returns the day it now stands for and the hits as they
/// were searched then.
fn one_old_day(dir: &Path, age: i64) -> (String, Vec<Value>) {
    // All in one UTC day: not in the last two minutes before midnight.
    wait_until("a time well before midnight UTC", Duration::from_secs(150), || {
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        now.hour() < 23 || now.minute() < 58
    });
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let text: String = (0..AGENT_LINES)
        .map(|n| format!("2026-01-01T00:00:{:02}Z ERROR archived {}\n", n % 60, numbered(n)))
        .collect();
    fs::write(logs.join("app.log"), text).unwrap();
    let mut aggregator = Aggregator::start(dir);
    let agent_dir = dir.join("agent");
    fs::create_dir_all(&agent_dir).unwrap();
    let mut agent = Agent::start(
        &agent_dir,
        &aggregator.url,
        &format!(
            "[[logs]]\npaths = [\"{}/*.log\"]\nlabels = {{ team = \"payments\" }}\n",
            logs.display()
        ),
    );
    let values: Vec<Value> = (AGENT_LINES..AGENT_LINES + PUSHED_LINES)
        .map(|n| {
            let nanos = ((1_790_000_000_000 + n as i64) * 1_000_000).to_string();
            serde_json::json!([nanos, format!("archived {}", numbered(n)), {"trace_id": format!("t{n}")}])
        })
        .collect();
    let odd = serde_json::json!([(1_790_000_000_000i64 * 1_000_000).to_string(), "archived odd host line"]);
    let body = serde_json::json!({"streams": [
        {"stream": {"host": "web-2", "level": "warn"}, "values": values},
        {"stream": {"host": odd_host()}, "values": [odd]},
    ]});
    let response = http()
        .post(format!("{}/loki/api/v1/push", aggregator.url))
        .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(response.status(), 204);
    let total = AGENT_LINES + PUSHED_LINES + 1;
    wait_until("every line searchable", LIMIT, || aggregator.count("archived") >= total);
    let hits = aggregator.search(&[("q", "archived"), ("limit", "10000")])["hits"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(agent.terminate(), Some(0));
    assert_eq!(aggregator.terminate(), Some(0));
    let partitions = dir.join("data/logs");
    let written: Vec<PathBuf> = fs::read_dir(&partitions)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "one day's partition: {written:?}");
    let day = days_ago(age);
    fs::rename(&written[0], partitions.join(&day)).unwrap();
    (day, hits)
}

/// Hits by id, without what a search adds (marks).
fn by_id(hits: &[Value]) -> std::collections::BTreeMap<String, Value> {
    hits.iter()
        .map(|hit| {
            let mut hit = hit.clone();
            hit.as_object_mut().unwrap().remove("marks");
            (hit["id"].as_str().unwrap().to_owned(), hit)
        })
        .collect()
}

fn metric(aggregator: &Aggregator, line_start: &str) -> Option<u64> {
    aggregator
        .get_text("/metrics")
        .lines()
        .find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
}

#[test]
fn a_day_goes_to_s3_before_retention_and_a_restore_makes_it_searchable_again() {
    let dir = test_dir("archive_s3");
    let s3 = lookout_tests::moto::start(&dir);
    s3.create_bucket("lookout-archive");
    let shipped_from = jiff::Timestamp::now().as_millisecond();
    let (day, before) = one_old_day(&dir, 3);
    let shipped_by = jiff::Timestamp::now().as_millisecond();
    let total = AGENT_LINES + PUSHED_LINES + 1;

    // Archived after 1 day, kept 2: the 3-day-old partition is written to
    // the bucket, then deleted.
    let archive = format!(
        "[retention]\nlogs_days = 2\n[archive]\nto = \"s3://lookout-archive/lookout/logs\"\nafter_days = 1\n\
         s3_endpoint = \"{}\"\ns3_region = \"eu-west-1\"\ns3_access_key_id = \"AKIDTESTKEYID\"\n\
         s3_secret_access_key = \"archive-secret-key-1234\"\n",
        s3.url
    );
    let mut aggregator = Aggregator::start_with(&dir, "", &archive);
    let check = aggregator_cli(aggregator.config(), &["check-config"], "");
    assert!(check.status.success(), "{}", shown(&check));
    let manifest_key = format!("lookout/logs/{day}/manifest.json");
    wait_until("the day's manifest in the bucket", LIMIT, || {
        s3.get("lookout-archive", &manifest_key).is_some()
    });
    wait_until("retention to delete the archived day", LIMIT, || {
        !dir.join("data/logs").join(&day).exists()
    });
    assert_eq!(aggregator.count("archived"), 0, "the day is gone from the index");
    assert_eq!(
        metric(&aggregator, "lookout_archive_days_total{result=\"written\"}"),
        Some(1)
    );

    // One object per host, and a manifest that names them.
    let manifest: Value = serde_json::from_slice(&s3.get("lookout-archive", &manifest_key).unwrap()).unwrap();
    assert_eq!(manifest["day"], day.as_str());
    assert_eq!(manifest["records"], total);
    let objects = manifest["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3, "{manifest}");
    let odd = objects
        .iter()
        .find(|o| o["host"] == odd_host().as_str())
        .expect("the odd host's object");
    assert_eq!(odd["records"], 1);
    let keys = s3.keys("lookout-archive", &format!("lookout/logs/{day}/"));
    assert_eq!(keys.len(), 4, "three hosts' objects and the manifest: {keys:?}");
    assert!(
        keys.iter().all(|key| key.len() < 120),
        "short names whatever the host: {keys:?}"
    );
    let web2 = keys
        .iter()
        .find(|key| key.starts_with(&format!("lookout/logs/{day}/web-2-")))
        .unwrap_or_else(|| panic!("web-2's object: {keys:?}"));
    let object = s3.get("lookout-archive", web2).unwrap();
    let lines: Vec<Value> = zstd::stream::read::Decoder::new(&object[..])
        .map(std::io::BufReader::new)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, PUSHED_LINES);
    let first = &lines[0];
    assert_eq!(first["host"], "web-2");
    assert_eq!(first["level"], "warn");
    assert_eq!(first["fields"]["trace_id"], format!("t{AGENT_LINES}"));
    assert_eq!(first["timestamp_ms"], 1_790_000_000_000i64 + AGENT_LINES as i64);
    let arrived = first["ingested_ms"].as_i64().unwrap();
    assert!(
        (shipped_from..=shipped_by).contains(&arrived),
        "the arrival time is the day's: {first}"
    );
    let log = fs::read_to_string(aggregator.log()).unwrap();
    assert!(
        !log.contains("archive-secret-key-1234"),
        "the secret key never reaches the log"
    );

    // `archive list`, then a restore with the aggregator stopped.
    let listed = aggregator_cli(aggregator.config(), &["archive", "list"], "");
    assert!(listed.status.success(), "{}", shown(&listed));
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed_text
            .lines()
            .any(|line| line.starts_with(&format!("{day}\t{total}\t3\t"))),
        "{listed_text}"
    );
    let refused = aggregator_cli(aggregator.config(), &["archive", "restore", "--day", &day], "");
    assert!(!refused.status.success(), "a restore waits for the aggregator to stop");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stop the aggregator"),
        "{}",
        shown(&refused)
    );
    assert_eq!(aggregator.terminate(), Some(0));
    let restored = aggregator_cli(aggregator.config(), &["archive", "restore", "--day", &day], "");
    assert!(restored.status.success(), "{}", shown(&restored));
    assert!(
        String::from_utf8_lossy(&restored.stdout).contains(&format!("{total} records, {total} stored, 0 already held")),
        "{}",
        shown(&restored)
    );
    let again = aggregator_cli(aggregator.config(), &["archive", "restore", "--day", &day], "");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(&format!("{total} records, 0 stored, {total} already held")),
        "a second restore stores nothing twice: {}",
        shown(&again)
    );
    let missing = aggregator_cli(aggregator.config(), &["archive", "restore", "--day", "2001-02-03"], "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no archive of 2001-02-03"));

    // Searchable again: every line once, each as it was.
    aggregator.restart();
    wait_until("the restored lines", LIMIT, || aggregator.count("archived") >= total);
    let after = aggregator.search(&[("q", "archived"), ("limit", "10000")])["hits"]
        .as_array()
        .cloned()
        .unwrap();
    let messages: Vec<String> = after
        .iter()
        .map(|hit| hit["message"].as_str().unwrap().to_owned())
        .collect();
    let seen = count_sequence_numbers(&messages);
    assert_eq!(seen.len() as u64, AGENT_LINES + PUSHED_LINES, "every numbered line");
    assert!(seen.values().all(|n| *n == 1), "no line twice");
    assert_eq!(
        by_id(&after),
        by_id(&before),
        "ids, times, hosts, levels, labels and fields as before"
    );
    assert_eq!(aggregator.count("level:error labels.team:payments"), AGENT_LINES);
    assert_eq!(aggregator.count("trace_id:t3100"), 1);
}

#[test]
fn an_archive_that_cannot_be_written_keeps_the_day_and_a_folder_archive_is_private() {
    let dir = test_dir("archive_folder");
    let (day, _) = one_old_day(&dir, 4);
    let total = AGENT_LINES + PUSHED_LINES + 1;

    // No S3 server at that port: nothing is archived, so nothing is deleted.
    let unreachable = format!(
        "[retention]\nlogs_days = 2\n[archive]\nto = \"s3://lookout-archive\"\nafter_days = 2\n\
         s3_endpoint = \"http://127.0.0.1:{}\"\ns3_access_key_id = \"AKIDTESTKEYID\"\n\
         s3_secret_access_key = \"archive-secret-key-1234\"\n",
        free_port()
    );
    let mut aggregator = Aggregator::start_with(&dir, "", &unreachable);
    wait_until("the archive to fail", LIMIT, || {
        metric(&aggregator, "lookout_archive_days_total{result=\"failed\"}").is_some_and(|n| n >= 1)
    });
    assert_eq!(aggregator.count("archived"), total, "retention kept the day's lines");
    let log = fs::read_to_string(aggregator.log()).unwrap();
    assert!(log.contains("retention keeps it until it is archived"), "{log}");
    assert!(
        !log.contains("archive-secret-key-1234"),
        "the secret key never reaches the log"
    );
    assert_eq!(aggregator.terminate(), Some(0));
    // The writer applies a queued retention pass before it stops.
    assert!(dir.join("data/logs").join(&day).exists(), "retention kept the day");
    let refused = aggregator_cli(aggregator.config(), &["archive", "restore", "--day", &day], "");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is still in the index"),
        "a day still kept is not restored over itself: {}",
        shown(&refused)
    );

    // A folder: the day is written there, readable by its owner alone.
    let folder: PathBuf = dir.join("archive");
    let to_folder = format!(
        "[retention]\nlogs_days = 2\n[archive]\nto = \"{}\"\nafter_days = 2\n",
        folder.display()
    );
    let aggregator = Aggregator::start_with(&dir, "", &to_folder);
    wait_until("retention to delete the archived day", LIMIT, || {
        !dir.join("data/logs").join(&day).exists()
    });
    let manifest: Value = serde_json::from_slice(&fs::read(folder.join(&day).join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["records"], total);
    assert!(
        fs::read_dir(folder.join(&day)).unwrap().any(|entry| entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("web-2-")),
        "web-2's object in the folder"
    );
    assert_eq!(fs::metadata(&folder).unwrap().permissions().mode() & 0o077, 0);
    assert_private(&folder);
    assert_eq!(aggregator.count("archived"), 0);
}
