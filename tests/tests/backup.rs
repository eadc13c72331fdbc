//! Backup and restore end to end, on the real binaries: a backup taken by
//! `lookout-aggregator backup` while an agent ships lines and metrics into
//! the running aggregator, restored by `lookout-aggregator restore` into a
//! new data folder, and a second aggregator started on it: every line
//! answered before the backup began is there exactly once and searchable,
//! and the users, the rules made in the app and the hosts' metrics too.

use lookout_tests::{
    API_TOKEN, Aggregator, INGEST_TOKEN, aggregator_cli, assert_private, count_sequence_numbers, http, ship_steadily,
    shown, test_dir, wait_until,
};
use std::collections::HashSet;
use std::fs;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
/// Lines the agent ships; the backup is taken while they arrive.
const STEADY_LINES: u64 = 30_000;

#[test]
fn a_backup_taken_during_ingest_restores_every_answered_line_the_users_and_the_rules() {
    let dir = test_dir("backup");
    let first = Aggregator::start(&dir);
    let config = first.config().to_path_buf();
    let added = aggregator_cli(&config, &["user", "add", "carol"], "carol's long password 7\n");
    assert!(added.status.success(), "{}", shown(&added));
    let rule = http()
        .post(format!("{}/api/v1/alerts/rules", first.url))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .header("Content-Type", "application/json")
        .send(
            r#"{"entry":"[[rules]]\nname = \"PaymentErrors\"\nkind = \"log_match\"\nquery = \"payment\"\nwindow = \"5m\"\ncount = 0\n"}"#,
        )
        .unwrap();
    assert_eq!(rule.status(), 201);

    // An agent ships lines and metrics the whole time.
    let (_agent, writer) = ship_steadily(
        &dir,
        &first.url,
        "interval = \"1s\"",
        STEADY_LINES,
        (100, Duration::from_millis(20)),
    );
    wait_until("a first part of the lines", LIMIT, || first.count("steady") >= 3000);
    wait_until("the agent's metrics", LIMIT, || {
        first.get_json("/api/v1/hosts", &[])["hosts"]
            .as_array()
            .is_some_and(|hosts| !hosts.is_empty())
    });
    // Answered, so owed to the backup, whether or not it is committed yet.
    let marker = http()
        .post(format!("{}/app/_bulk", first.url))
        .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
        .header("Content-Type", "application/x-ndjson")
        .send("{\"index\":{}}\n{\"message\":\"answered before the backup\",\"host\":\"bulk-host\"}\n")
        .unwrap();
    assert_eq!(marker.status(), 200);
    let searchable: HashSet<u64> = count_sequence_numbers(&first.numbered_messages(STEADY_LINES))
        .into_keys()
        .collect();
    assert!(searchable.len() >= 3000);

    let backup_dir = dir.join("backup");
    let backed_up = aggregator_cli(&config, &["backup", "--to", backup_dir.to_str().unwrap()], "");
    assert!(backed_up.status.success(), "{}", shown(&backed_up));
    assert!(
        String::from_utf8_lossy(&backed_up.stdout).contains("written to"),
        "{}",
        shown(&backed_up)
    );
    assert!(
        first.count("steady") < STEADY_LINES,
        "the backup was taken while lines still arrived"
    );
    assert_private(&backup_dir);
    let again = aggregator_cli(&config, &["backup", "--to", backup_dir.to_str().unwrap()], "");
    assert_eq!(again.status.code(), Some(1), "{}", shown(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not empty"),
        "{}",
        shown(&again)
    );
    writer.join().unwrap();

    // A new data folder from the backup, and an aggregator on it.
    let second_dir = dir.join("second");
    fs::create_dir_all(&second_dir).unwrap();
    let restore_config = second_dir.join("restore.toml");
    fs::write(
        &restore_config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[auth]\ningest_tokens = [\"{INGEST_TOKEN}\"]\napi_tokens = [\"{API_TOKEN}\"]\n",
            second_dir.join("data").display()
        ),
    )
    .unwrap();
    let restored = aggregator_cli(
        &restore_config,
        &["restore", "--from", backup_dir.to_str().unwrap()],
        "",
    );
    assert!(restored.status.success(), "{}", shown(&restored));
    assert_private(&second_dir.join("data"));
    let twice = aggregator_cli(
        &restore_config,
        &["restore", "--from", backup_dir.to_str().unwrap()],
        "",
    );
    assert_eq!(
        twice.status.code(),
        Some(1),
        "a restore never overwrites: {}",
        shown(&twice)
    );
    let users = aggregator_cli(&restore_config, &["user", "list"], "");
    assert!(
        String::from_utf8_lossy(&users.stdout).contains("carol\tviewer"),
        "{}",
        shown(&users)
    );

    let second = Aggregator::start_with(&second_dir, "", "");
    let messages = second.numbered_messages(STEADY_LINES);
    let seen = count_sequence_numbers(&messages);
    let missing: Vec<&u64> = searchable.iter().filter(|n| !seen.contains_key(n)).take(5).collect();
    assert!(
        missing.is_empty(),
        "lines answered before the backup are missing: {missing:?}…"
    );
    assert!(seen.values().all(|n| *n == 1), "no line twice");
    assert_eq!(second.count("\"answered before the backup\""), 1);
    let rules = second.get_json("/api/v1/alerts/rules", &[]);
    assert!(
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["name"] == "PaymentErrors" && rule["origin"] == "app"),
        "{rules}"
    );
    let hosts = second.get_json("/api/v1/hosts", &[]);
    assert!(
        hosts["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|host| host["host"] == "e2e-host"),
        "{hosts}"
    );

    // A damaged backup is refused before anything is written.
    let state = backup_dir.join("users.sqlite");
    let mut bytes = fs::read(&state).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&state, bytes).unwrap();
    let third = dir.join("third.toml");
    fs::write(
        &third,
        fs::read_to_string(&restore_config)
            .unwrap()
            .replace("second/data", "third-data"),
    )
    .unwrap();
    let damaged = aggregator_cli(&third, &["restore", "--from", backup_dir.to_str().unwrap()], "");
    assert_eq!(damaged.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&damaged.stderr).contains("users.sqlite is damaged"),
        "{}",
        shown(&damaged)
    );
    assert!(!dir.join("third-data").exists());
}
