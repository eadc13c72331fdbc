//! Exactly-once ingest: re-sent, overlapping and out-of-order chunks store
//! each line once, also across a restart of the aggregator.

mod common;

use common::*;

const BASE_MS: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let s = stream("web-1", 1);
    let b = batch(
        "web-1",
        vec![fixed_lines(&s, "/var/log/a.log", "alpha", BASE_MS, 0, 10)],
    );
    assert_eq!(server.ingest_ok(&b).await, (10, 0));
    assert_eq!(server.ingest_ok(&b).await, (0, 10));
    assert_eq!(server.total("").await, 10);
    assert_eq!(server.total("q=alpha").await, 10);
    let metrics = server.get_ok("/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("lookout_ingest_records_total{result=\"duplicate\"} 10\n"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_and_out_of_order_chunks_add_only_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let s = stream("web-1", 2);
    let lines = |from, to| {
        batch(
            "web-1",
            vec![fixed_lines(&s, "/var/log/a.log", "beta", BASE_MS, from, to)],
        )
    };

    // Later part first, then the earlier part: both are new.
    assert_eq!(server.ingest_ok(&lines(10, 20)).await, (10, 0));
    assert_eq!(server.ingest_ok(&lines(0, 10)).await, (10, 0));
    // An overlap reaching past what is held: only lines 20..25 are new.
    assert_eq!(server.ingest_ok(&lines(15, 25)).await, (5, 5));
    // A chunk spanning held ranges and a gap fills exactly the gap.
    assert_eq!(server.ingest_ok(&lines(30, 35)).await, (5, 0));
    assert_eq!(server.ingest_ok(&lines(0, 35)).await, (5, 30));
    assert_eq!(server.total("").await, 35);

    // Every line is there once, in file order.
    let expected: Vec<String> = (0..35).map(|i| format!("beta line {i:04}")).collect();
    assert_eq!(server.messages("order=asc&limit=100").await, expected);

    // The same offsets in another stream (another file) are not duplicates.
    let other = stream("web-1", 3);
    let b = batch(
        "web-1",
        vec![fixed_lines(&other, "/var/log/b.log", "gamma", BASE_MS, 0, 10)],
    );
    assert_eq!(server.ingest_ok(&b).await, (10, 0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_store_each_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let s = stream("web-1", 4);
    // Ten chunks of 10 lines, each sent three times, all at once.
    let mut tasks = Vec::new();
    for copy in 0..3 {
        for part in 0..10 {
            let b = batch(
                "web-1",
                vec![fixed_lines(
                    &s,
                    "/var/log/a.log",
                    "delta",
                    BASE_MS,
                    part * 10,
                    part * 10 + 10,
                )],
            );
            let client = server.client.clone();
            let url = format!("{}/api/v1/ingest", server.base);
            tasks.push(tokio::spawn(async move {
                let body = serde_json::to_vec(&b).unwrap();
                let response = client
                    .post(url)
                    .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "copy {copy} part {part}");
                let answer: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                (
                    answer["accepted"].as_u64().unwrap(),
                    answer["duplicates"].as_u64().unwrap(),
                )
            }));
        }
    }
    let (mut accepted, mut duplicates) = (0, 0);
    for task in tasks {
        let (a, d) = task.await.unwrap();
        accepted += a;
        duplicates += d;
    }
    assert_eq!((accepted, duplicates), (100, 200));
    assert_eq!(server.total("").await, 100);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = stream("web-1", 5);
    let b = batch(
        "web-1",
        vec![fixed_lines(&s, "/var/log/a.log", "epsilon", BASE_MS, 0, 20)],
    );

    let server = Server::start(config(dir.path(), "")).await;
    assert_eq!(server.ingest_ok(&b).await, (20, 0));
    server.stop().await;

    let server = Server::start(config(dir.path(), "")).await;
    assert_eq!(server.total("").await, 20, "acknowledged lines survive the restart");
    assert_eq!(server.ingest_ok(&b).await, (0, 20));
    let more = batch(
        "web-1",
        vec![fixed_lines(&s, "/var/log/a.log", "epsilon", BASE_MS, 10, 30)],
    );
    assert_eq!(server.ingest_ok(&more).await, (10, 10));
    assert_eq!(server.total("q=epsilon").await, 30);
    server.stop().await;
}

/// A batch that claims another host's stream id, or all of a stream's
/// future bytes, cannot make that host's lines duplicates; a token bound to
/// hosts cannot write as another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_mark_another_hosts_bytes_as_held() {
    let dir = tempfile::tempdir().unwrap();
    let bound = "[{ token = \"bound-web-token\", hosts = [\"web-*\"] }]";
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[auth]\ningest_tokens = [\"{INGEST_TOKEN}\", {}]\napi_tokens = [\"{API_TOKEN}\"]\n[ingest]\ncommit_interval = \"0s\"\n",
        dir.path().display().to_string(),
        &bound[1..bound.len() - 1]
    );
    let config = lookout_aggregator::config::Config::from_toml(std::path::Path::new("t.toml"), &text).unwrap();
    let server = Server::start(config).await;
    let victim = stream("web-1", 7);
    let first = batch(
        "web-1",
        vec![fixed_lines(&victim, "/var/log/a.log", "gamma", BASE_MS, 0, 5)],
    );
    assert_eq!(server.ingest_ok(&first).await, (5, 0));

    // Everything from byte 0 to the end of time, no records: refused outright.
    let mut grab = fixed_lines(&victim, "/var/log/a.log", "gamma", BASE_MS, 5, 5);
    grab.start = 0;
    grab.end = u64::MAX;
    let refused = server.ingest(&batch("web-1", vec![grab.clone()])).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.error().contains("claims"), "{}", refused.error());

    // The victim's stream id from another host, covering the next 1 MiB: that
    // host's own business, not web-1's.
    grab.end = 1 << 20;
    assert_eq!(server.ingest_ok(&batch("evil-1", vec![grab])).await, (0, 0));
    let next = batch(
        "web-1",
        vec![fixed_lines(&victim, "/var/log/a.log", "gamma", BASE_MS, 5, 10)],
    );
    assert_eq!(server.ingest_ok(&next).await, (5, 0), "web-1's next lines are new");
    assert_eq!(server.total("q=gamma").await, 10);

    // A token bound to web-* hosts.
    let as_web = batch(
        "web-2",
        vec![fixed_lines(
            &stream("web-2", 1),
            "/var/log/a.log",
            "delta",
            BASE_MS,
            0,
            2,
        )],
    );
    let body = serde_json::to_vec(&as_web).unwrap();
    let answer = server.post_ingest(body, None, Some("bound-web-token")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let as_db = batch(
        "db-1",
        vec![fixed_lines(
            &stream("db-1", 1),
            "/var/log/a.log",
            "delta",
            BASE_MS,
            0,
            2,
        )],
    );
    let answer = server
        .post_ingest(serde_json::to_vec(&as_db).unwrap(), None, Some("bound-web-token"))
        .await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.error().contains("may send only as web-*"), "{}", answer.error());
    assert_eq!(server.total("q=delta").await, 2);
    server.stop().await;
}
