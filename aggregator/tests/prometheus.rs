//! The host metrics Lookout holds reach Prometheus: its scrape endpoint
//! (`GET /api/v1/metrics/prometheus`, the newest value of every series) is
//! scraped by Debian's Prometheus 2.42, started by the test, whose query
//! API then answers them under Prometheus's names. Its remote-write
//! receiver, and VictoriaMetrics', receive every stored sample by remote write.

mod common;

use common::{API_TOKEN, Server, config, enc, metrics_batch, now_ms, sample};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

async fn wait_for(what: &str, condition: impl AsyncFnMut() -> bool) {
    common::wait_for(what, LIMIT, condition).await;
}

/// The value of `query` in Prometheus now, if it has one.
async fn prometheus_value(url: &str, query: &str) -> Option<String> {
    let answer = reqwest::Client::new()
        .get(format!("{url}/api/v1/query?query={}", enc(query)))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.ok()?).ok()?;
    body["data"]["result"][0]["value"][1].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_newest_values_under_its_names() {
    lookout_shared::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let now = now_ms();
    let samples = vec![
        sample("cpu.usage_percent", &[], now - 1000, 40.0),
        sample("cpu.usage_percent", &[], now, 42.5),
        sample("fs.used_percent", &[("mount", "/var")], now, 81.25),
        sample("net.rx_bytes_per_sec", &[("interface", "eth0")], now, 1500.0),
    ];
    server.ingest_ok(&metrics_batch("web-1", samples)).await;

    // The endpoint itself: the newest value per series, behind a token.
    let text = server.get_ok("/api/v1/metrics/prometheus").await;
    let text = text.as_str().unwrap();
    for line in [
        "# TYPE lookout_cpu_usage_percent gauge",
        "lookout_cpu_usage_percent{host=\"web-1\"} 42.5",
        "lookout_fs_used_percent{host=\"web-1\",mount=\"/var\"} 81.25",
        "lookout_net_rx_bytes_per_second{host=\"web-1\",interface=\"eth0\"} 1500",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert_eq!(
        text.matches("lookout_cpu_usage_percent{").count(),
        1,
        "the newest value only"
    );
    let anonymous = server.get_with("/api/v1/metrics/prometheus", None).await;
    assert_eq!(anonymous.status, 401);

    let target = server.base.trim_start_matches("http://").to_owned();
    let prometheus = lookout_tests::prometheus::start(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lookout\n    \
             metrics_path: /api/v1/metrics/prometheus\n    authorization:\n      credentials: {API_TOKEN}\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    );
    wait_for("Prometheus to have scraped the CPU value", async || {
        prometheus_value(
            &prometheus.url,
            "lookout_cpu_usage_percent{host=\"web-1\",job=\"lookout\"}",
        )
        .await
            == Some("42.5".to_owned())
    })
    .await;
    assert_eq!(
        prometheus_value(&prometheus.url, "lookout_fs_used_percent{mount=\"/var\"}")
            .await
            .as_deref(),
        Some("81.25")
    );
    assert_eq!(
        prometheus_value(&prometheus.url, "up{job=\"lookout\"}")
            .await
            .as_deref(),
        Some("1"),
        "the scrape succeeds with the token"
    );
    server.stop().await;
}

/// The `lookout_remote_write_samples_total` of `result` in `/metrics`.
async fn remote_write_count(server: &Server, result: &str) -> u64 {
    counter(
        server,
        &format!("lookout_remote_write_samples_total{{result=\"{result}\"}}"),
    )
    .await
}

/// The value of `series` (name and labels) in `/metrics`.
async fn counter(server: &Server, series: &str) -> u64 {
    let text = server.get_ok("/metrics").await;
    let line = format!("{series} ");
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// An aggregator sending to `write_url` gets samples, twice (the second
/// time as duplicates); the receiver, queried at `query_url`, then holds
/// each sample once, under Prometheus's names.
async fn remote_write_reaches(data_dir: &std::path::Path, write_url: &str, query_url: &str) {
    let server = Server::start(config(data_dir, &format!("[export]\nremote_write = \"{write_url}\"\n"))).await;
    let now = now_ms();
    let batch = metrics_batch(
        "web-1",
        vec![
            sample("cpu.usage_percent", &[], now - 2000, 40.0),
            sample("cpu.usage_percent", &[], now - 1000, 41.0),
            sample("cpu.usage_percent", &[], now, 42.5),
            sample("fs.used_percent", &[("mount", "/var")], now, 81.25),
            sample("app.queue_depth", &[("9bad", "v")], now, 3.0),
        ],
    );
    server.ingest_ok(&batch).await;
    server.ingest_ok(&batch).await;
    assert_eq!(
        counter(&server, "lookout_metric_samples_total{result=\"duplicate\"}").await,
        5,
        "a re-send is stored once"
    );
    wait_for("every stored sample to be sent", async || {
        remote_write_count(&server, "sent").await == 5
    })
    .await;
    for (query, expected) in [
        ("sum(count_over_time({__name__=~\"lookout_.+\"}[10m]))", "5"),
        ("count_over_time(lookout_cpu_usage_percent{host=\"web-1\"}[10m])", "3"),
        ("sum_over_time(lookout_cpu_usage_percent{host=\"web-1\"}[10m])", "123.5"),
        ("lookout_fs_used_percent{host=\"web-1\",mount=\"/var\"}", "81.25"),
        ("lookout_app_queue_depth{_9bad=\"v\"}", "3"),
    ] {
        wait_for(&format!("{query} = {expected} at {query_url}"), async || {
            prometheus_value(query_url, query).await.as_deref() == Some(expected)
        })
        .await;
    }
    assert_eq!(
        remote_write_count(&server, "sent").await,
        5,
        "the re-send was not sent again"
    );
    assert_eq!(remote_write_count(&server, "refused").await, 0);
    assert_eq!(remote_write_count(&server, "dropped").await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_delivers_every_stored_sample_to_prometheus_and_victoria_metrics() {
    lookout_shared::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let prometheus = lookout_tests::prometheus::start_receiving(dir.path());
    let victoria = lookout_tests::victoria_metrics::start(dir.path());
    remote_write_reaches(
        &dir.path().join("to-prometheus"),
        &format!("{}/api/v1/write", prometheus.url),
        &prometheus.url,
    )
    .await;
    remote_write_reaches(
        &dir.path().join("to-victoria-metrics"),
        &format!("{}/api/v1/write", victoria.url),
        &victoria.url,
    )
    .await;
}
