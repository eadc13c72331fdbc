//! Bytes no log should contain still go through the agent and aggregator
//! without a crash and without losing the lines around them: a 10 MB line,
//! invalid UTF-8, NUL bytes, CRLF endings, markup. And real logs (loghub) come
//! out with the right counts and levels.

use lookout_tests::{Agent, Aggregator, loghub_dir, test_dir, wait_until};
use std::fs;
use std::time::Duration;

#[test]
fn hostile_bytes_are_kept_marked_and_do_not_stop_the_file() {
    let dir = test_dir("hostile_input");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let mut content = Vec::new();
    content.extend_from_slice(b"first line marker-alpha\n");
    content.extend_from_slice(b"giant-line ");
    content.extend(std::iter::repeat_n(b'g', 10 * 1024 * 1024));
    content.extend_from_slice(b"\nafter the giant marker-bravo\n");
    content.extend_from_slice(b"bad utf8 \xff\xfe\xc3 marker-charlie\n");
    content.extend_from_slice(b"nul \0 bytes marker-delta\r\n");
    content.extend_from_slice(b"<script>alert(1)</script> marker-echo\n");
    fs::write(logs.join("hostile.log"), &content).unwrap();

    let aggregator = Aggregator::start(&dir);
    let sources = format!("[[logs]]\npaths = [\"{}/*.log\"]\n", logs.display());
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);
    wait_until("the line after the giant one", Duration::from_secs(60), || {
        aggregator.count("\"marker echo\"") == 1
    });
    for marker in ["alpha", "bravo", "charlie", "delta"] {
        assert_eq!(
            aggregator.count(&format!("\"marker {marker}\"")),
            1,
            "marker-{marker} is found once"
        );
    }
    let giant = aggregator.search(&[("q", "\"giant line\""), ("limit", "5")]);
    let hit = &giant["hits"][0];
    let listed = hit["message"].as_str().unwrap();
    assert!(
        listed.starts_with("giant-line ggg"),
        "{}",
        &listed[..40.min(listed.len())]
    );
    assert_eq!(listed.len(), 16 * 1024, "a list shows at most 16 KiB of a message");
    assert_eq!(hit["cut"], true, "and says so");
    let context = aggregator.get_json(
        "/api/v1/logs/context",
        &[("id", hit["id"].as_str().unwrap()), ("before", "0"), ("after", "0")],
    );
    let stored = &context["hit"];
    assert_eq!(
        stored["message"].as_str().unwrap().len(),
        256 * 1024,
        "cut at the default maximum record size"
    );
    assert_eq!(stored["truncated"], true, "and marked as truncated");
    let bad = aggregator.search(&[("q", "charlie")]);
    assert_eq!(
        bad["hits"][0]["message"],
        "bad utf8 \u{fffd}\u{fffd}\u{fffd} marker-charlie"
    );
    let crlf = aggregator.search(&[("q", "delta")]);
    assert_eq!(
        crlf["hits"][0]["message"], "nul \0 bytes marker-delta",
        "CR is stripped, NUL kept"
    );
    assert_eq!(agent.terminate(), Some(0));
}

#[test]
fn loghub_files_arrive_whole_with_their_levels() {
    let dir = test_dir("loghub_ingest");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    for name in ["Apache_2k.log", "OpenSSH_2k.log", "HDFS_2k.log", "Zookeeper_2k.log"] {
        fs::copy(loghub_dir().join(name), logs.join(name)).unwrap();
    }
    let aggregator = Aggregator::start(&dir);
    let sources = format!("[[logs]]\npaths = [\"{}/*.log\"]\n", logs.display());
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);
    wait_until("all 8,000 lines", Duration::from_secs(60), || {
        aggregator.count("") >= 8000
    });
    assert_eq!(aggregator.count(""), 8000);
    let apache = logs.join("Apache_2k.log").display().to_string();
    let apache_errors = aggregator.search(&[("source", &apache), ("level", "error"), ("limit", "1")]);
    assert_eq!(apache_errors["total"], 595, "the Apache sample has 595 [error] lines");
    let hit = &apache_errors["hits"][0];
    assert!(
        hit["timestamp"].as_str().unwrap().starts_with("2005-12-"),
        "timestamps come from the lines: {hit}"
    );
    let breakins = aggregator.count("\"POSSIBLE BREAK-IN ATTEMPT\"");
    assert!(breakins > 0, "phrase search finds the OpenSSH break-in warnings");
    assert_eq!(agent.terminate(), Some(0));
}
