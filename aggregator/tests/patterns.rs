//! Each record's pattern, through the real ingest endpoint: hits carry it,
//! `pattern:<id>` finds the pattern's lines (following the ids a pattern
//! turned out to share), stats count by it, and ids mean the same after a
//! restart.

mod common;

use common::{Server, batch, chunk, config, enc, now_ms, stream};
use serde_json::Value;
use std::collections::BTreeMap;

/// Lines of `host`'s one file, each read a millisecond after the one before.
async fn send(server: &Server, host: &str, start: u64, messages: &[String]) -> u64 {
    let base = now_ms();
    let lines: Vec<common::Line<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| common::Line {
            message,
            read_at_ms: base + i as i64,
        })
        .collect();
    let sent = chunk(&stream(host, 0), "/var/log/app.log", start, &lines);
    let end = sent.end;
    server.ingest_ok(&batch(host, vec![sent])).await;
    end
}

/// Message → pattern of every hit of `q`.
async fn patterns_of(server: &Server, q: &str) -> BTreeMap<String, String> {
    let body = server
        .get_ok(&format!("/api/v1/logs/search?q={}&limit=1000", enc(q)))
        .await;
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| {
            (
                hit["message"].as_str().unwrap().to_owned(),
                hit["pattern"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_their_pattern_and_pattern_queries_find_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    // Times lead each line, as most files write them; the miner is given what follows.
    let lines: Vec<String> = (0..6)
        .flat_map(|i| {
            [
                format!("2026-12-07T10:00:0{i}Z disk sda{i} is {}% full", 80 + i),
                format!("2026-12-07T10:00:0{i}Z connection from 10.0.0.{i} closed after {i} ms"),
            ]
        })
        .collect();
    let mut end = send(&server, "web-1", 0, &lines).await;
    let found = patterns_of(&server, "*").await;
    assert_eq!(found.len(), 12);
    let disk = found[&lines[0]].clone();
    let closed = found[&lines[1]].clone();
    assert_ne!(disk, closed);
    for (message, pattern) in &found {
        let want = if message.contains("disk") { &disk } else { &closed };
        assert_eq!(pattern, want, "{message}");
    }
    // `pattern:<id>` finds exactly the pattern's lines, in search and in stats.
    let by_pattern = patterns_of(&server, &format!("pattern:{disk}")).await;
    assert_eq!(by_pattern.len(), 6);
    assert!(by_pattern.keys().all(|m| m.contains("disk")));
    let table = server
        .get_ok(&format!("/api/v1/logs/stats?q={}", enc("* | top pattern")))
        .await;
    let rows: Vec<(String, u64)> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row[0].as_str().unwrap().to_owned(), row[1].as_u64().unwrap()))
        .collect();
    let mut expected = vec![(closed.clone(), 6), (disk.clone(), 6)];
    expected.sort();
    let mut rows = rows;
    rows.sort();
    assert_eq!(rows, expected);

    // Three users are three patterns; a fourth shows the place is a
    // variable, and every id of those lines then finds all of them.
    let users: Vec<String> = ["root", "guest", "test"]
        .iter()
        .map(|user| format!("2026-12-07T10:01:00Z session opened for user {user}"))
        .collect();
    end = send(&server, "web-1", end, &users).await;
    let before = patterns_of(&server, "session").await;
    let guest = before[&users[1]].clone();
    assert_eq!(
        before.values().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "{before:?}"
    );
    let admin = vec!["2026-12-07T10:01:01Z session opened for user admin".to_owned()];
    send(&server, "web-1", end, &admin).await;
    let all_four = patterns_of(&server, &format!("pattern:{guest}")).await;
    assert_eq!(all_four.len(), 4, "{all_four:?}");

    // The same template after a restart is the same pattern.
    server.stop().await;
    let server = Server::start(config(dir.path(), "")).await;
    let again = vec!["2026-12-07T10:02:00Z disk sdz9 is 99% full".to_owned()];
    send(&server, "web-2", 0, &again).await;
    let after = patterns_of(&server, &format!("pattern:{disk}")).await;
    assert_eq!(after.len(), 7, "the new line is found under the old id: {after:?}");
    assert!(after.contains_key(&again[0]));
    let state = std::fs::metadata(dir.path().join("patterns.json.zst")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&state.permissions()) & 0o077,
        0,
        "the state file is not readable by others"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_of_its_own_pattern_field_keeps_it_apart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let lines = vec![r#"{"msg":"matched","pattern":"^a+$"}"#.to_owned()];
    send(&server, "h", 0, &lines).await;
    let body = server.get_ok("/api/v1/logs/search?q=*").await;
    let hit: &Value = &body["hits"][0];
    assert_eq!(hit["fields"]["line.pattern"], "^a+$");
    assert!(hit["pattern"].as_str().is_some_and(|id| id != "^a+$"), "{hit}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patterns_of_a_range_come_with_counts_times_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let mut lines: Vec<String> = (0..6)
        .map(|i| format!("2026-12-07T10:00:0{i}Z disk sda{i} is {}% full", 80 + i))
        .collect();
    lines.extend((0..4).map(|i| format!("2026-12-07T10:00:3{i}Z connection from 10.0.0.{i} closed")));
    lines.extend(
        ["root", "guest", "test", "admin"]
            .iter()
            .enumerate()
            .map(|(i, user)| format!("2026-12-07T10:01:0{i}Z session opened for user {user}")),
    );
    send(&server, "web-1", 0, &lines).await;
    let answer = server
        .get_ok(&format!(
            "/api/v1/logs/patterns?start={}&end={}&buckets=4",
            enc("2026-12-07T10:00:00Z"),
            enc("2026-12-07T10:02:00Z")
        ))
        .await;
    assert_eq!(answer["bucketMs"], 30_000);
    assert_eq!(answer["bucketStart"], "2026-12-07T10:00:00Z");
    assert_eq!(
        (answer["total"].as_u64(), answer["unpatterned"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(answer["cut"], false, "three ids, far below the bound");
    let patterns = answer["patterns"].as_array().unwrap();
    let find = |word: &str| {
        patterns
            .iter()
            .find(|p| p["template"].as_str().is_some_and(|t| t.contains(word)))
            .unwrap_or_else(|| panic!("no {word} pattern in {answer}"))
    };
    let disk = find("disk");
    assert_eq!(patterns[0]["pattern"], disk["pattern"], "most lines first");
    assert_eq!(disk["count"], 6);
    assert_eq!(disk["firstSeen"], "2026-12-07T10:00:00Z");
    assert_eq!(disk["lastSeen"], "2026-12-07T10:00:05Z");
    assert_eq!(disk["series"], serde_json::json!([6, 0, 0, 0]));
    assert_eq!(find("closed")["series"], serde_json::json!([0, 4, 0, 0]));
    // Four users, one pattern: the three ids the first lines were given, added up.
    let session = find("session");
    assert_eq!(session["template"], "session opened for user <*>");
    assert_eq!(session["count"], 4);
    assert_eq!(session["ids"].as_array().unwrap().len(), 3, "{session}");
    assert_eq!(session["series"], serde_json::json!([0, 0, 4, 0]));
    // `limit` and a query narrow it; a pipe is refused.
    let one = server.get_ok("/api/v1/logs/patterns?q=disk&limit=1").await;
    assert_eq!(one["patterns"].as_array().unwrap().len(), 1);
    assert_eq!(one["patterns"][0]["count"], 6);
    let piped = server
        .get(&format!("/api/v1/logs/patterns?q={}", enc("* | top host")))
        .await;
    assert_eq!(piped.status, 400, "{piped:?}");

    // Minutes later: the disk pattern again, more closed connections, and
    // a line like none before.
    let mut later: Vec<String> = (0..2)
        .map(|i| format!("2026-12-07T10:05:0{i}Z disk sdb{i} is 9{i}% full"))
        .collect();
    later.extend((0..12).map(|i| format!("2026-12-07T10:05:1{}Z connection from 10.0.1.{i} closed", i % 10)));
    later.push("2026-12-07T10:06:00Z kernel panic in module ext4".to_owned());
    send(&server, "web-2", 0, &later).await;
    let range = format!(
        "start={}&end={}",
        enc("2026-12-07T10:04:00Z"),
        enc("2026-12-07T10:08:00Z")
    );
    let new = server.get_ok(&format!("/api/v1/logs/patterns?{range}&order=new")).await;
    let first = &new["patterns"][0];
    assert_eq!(first["template"], "kernel panic in module <*>", "{new}");
    assert_eq!(
        (&first["new"], &first["firstEver"]),
        (&serde_json::json!(true), &serde_json::json!("2026-12-07T10:06:00Z"))
    );
    let old = new["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == disk["pattern"])
        .unwrap();
    assert_eq!(
        (&old["new"], &old["firstEver"], &old["count"]),
        (
            &serde_json::json!(false),
            &serde_json::json!("2026-12-07T10:00:00Z"),
            &serde_json::json!(2)
        )
    );
    // Against 10:00-10:04: closed 4 -> 12, disk 6 -> 2, the panic 0 -> 1.
    let changed = server
        .get_ok(&format!("/api/v1/logs/patterns?{range}&order=changed"))
        .await;
    let order: Vec<(u64, u64)> = changed["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["count"].as_u64().unwrap(), p["previous"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [(12, 4), (2, 6), (1, 0)], "{changed}");
    for bad in ["order=changed", "order=oldest"] {
        let refused = server.get(&format!("/api/v1/logs/patterns?{bad}")).await;
        assert_eq!(refused.status, 400, "{bad}: {refused:?}");
    }
    server.stop().await;
}
