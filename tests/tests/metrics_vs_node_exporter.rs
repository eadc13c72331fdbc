//! The agent's host metrics checked against a real peer: Debian's
//! `prometheus-node-exporter` runs next to the agent and both are read over
//! the same window. CPU usage within 5 percentage points, memory used within
//! 2, each filesystem's used % within 1 (node_exporter's figures computed with
//! df's definition), and loopback byte rates within 10 % while the test moves
//! a known amount of data over loopback.

use lookout_tests::{Agent, Aggregator, Process, free_port, http, test_dir, wait_until};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// One scrape: `metric{labels}` → value.
type Scrape = HashMap<String, f64>;

fn scrape(port: u16) -> (Scrape, i64) {
    let mut response = http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("node_exporter answers");
    let text = response.body_mut().read_to_string().expect("text");
    let at = now_ms();
    let values = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect();
    (values, at)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sum of the series matching `name` whose labels contain every `(key, value)`.
fn sum(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .iter()
        .filter(|(key, _)| {
            key.split_once('{').map_or(key.as_str(), |(metric, _)| metric) == name
                && labels.iter().all(|(k, v)| key.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Points of the agent's series with exactly these labels (no labels: the host-level one).
fn agent_points(aggregator: &Aggregator, name: &str, labels: &[(&str, &str)], start: i64, end: i64) -> Vec<(i64, f64)> {
    let (start, end) = (start.to_string(), end.to_string());
    let answer = aggregator.get_json(
        "/api/v1/metrics/series",
        &[("host", "e2e-host"), ("name", name), ("start", &start), ("end", &end)],
    );
    let series = answer["series"].as_array().cloned().unwrap_or_default();
    series
        .iter()
        .find(|series| {
            let series_labels = series["labels"].as_object().map_or(0, |object| object.len());
            series_labels == labels.len() && labels.iter().all(|(k, v)| series["labels"][*k] == *v)
        })
        .map(|series| {
            series["points"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|point| Some((point[0].as_i64()?, point[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn mean(points: &[(i64, f64)]) -> f64 {
    points.iter().map(|(_, v)| v).sum::<f64>() / points.len().max(1) as f64
}

#[test]
fn agent_metrics_agree_with_node_exporter() {
    assert!(
        std::path::Path::new(NODE_EXPORTER).exists(),
        "{NODE_EXPORTER} is missing: scripts/test.sh installs prometheus-node-exporter"
    );
    let dir = test_dir("metrics_vs_node_exporter");
    let exporter_port = free_port();
    let mut exporter = Process::spawn(
        "prometheus-node-exporter",
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            // node_exporter leaves `lo` out by default; this test compares it.
            .arg("--collector.netdev.device-exclude=^$"),
        &dir.join("node_exporter.log"),
    );
    wait_until("node_exporter to answer", Duration::from_secs(30), || {
        http()
            .get(format!("http://127.0.0.1:{exporter_port}/metrics"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });

    let aggregator = Aggregator::start(&dir);
    let mut agent = Agent::start(
        &dir,
        &aggregator.url,
        "[metrics]\ninterval = \"2s\"\ninterfaces_include = [\"lo\"]\n",
    );
    // Two samples are needed before rates exist.
    wait_until("the agent's first CPU figures", Duration::from_secs(60), || {
        !agent_points(&aggregator, "cpu.usage_percent", &[], 0, now_ms() + 1000).is_empty()
    });

    // One core kept busy over the whole window (and an agent interval before
    // it), so the CPU figures compare a steady load, not idle noise.
    let burning = Arc::new(AtomicBool::new(true));
    let burner = {
        let burning = Arc::clone(&burning);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut spins = 0u64;
            while burning.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
            spins
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let (before, t0) = scrape(exporter_port);
    // Quiet, then a known transfer over loopback, then quiet again.
    std::thread::sleep(Duration::from_secs(4));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = vec![0u8; 1 << 20];
        let mut total = 0u64;
        while let Ok(read) = stream.read(&mut buffer) {
            if read == 0 {
                break;
            }
            total += read as u64;
        }
        total
    });
    let mut sender = TcpStream::connect(address).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let started = Instant::now();
    for _ in 0..400 {
        sender.write_all(&chunk).unwrap();
    }
    drop(sender);
    let moved = receiver.join().unwrap();
    println!("moved {moved} bytes over loopback in {:?}", started.elapsed());
    std::thread::sleep(Duration::from_secs(6));
    let (after, t1) = scrape(exporter_port);
    burning.store(false, Ordering::Relaxed);
    burner.join().unwrap();
    // The agent's samples that fall inside the window.
    wait_until("the agent's samples for the window", Duration::from_secs(30), || {
        !agent_points(&aggregator, "cpu.usage_percent", &[], t1, now_ms() + 1000).is_empty()
    });

    // CPU: busy share of all CPU time, iowait counted as busy.
    let total = |s: &Scrape| sum(s, "node_cpu_seconds_total", &[]);
    let idle = |s: &Scrape| sum(s, "node_cpu_seconds_total", &[("mode", "idle")]);
    let exporter_cpu = 100.0 * (1.0 - (idle(&after) - idle(&before)) / (total(&after) - total(&before)));
    let cpu_points = agent_points(&aggregator, "cpu.usage_percent", &[], t0 + 2000, t1);
    let agent_cpu = mean(&cpu_points);
    println!(
        "cpu: agent {agent_cpu:.1} % ({} samples), node_exporter {exporter_cpu:.1} %",
        cpu_points.len()
    );
    assert!(!cpu_points.is_empty());
    assert!(
        (agent_cpu - exporter_cpu).abs() <= 5.0,
        "CPU differs by more than 5 points"
    );

    // Memory: used = 1 - available / total.
    let exporter_memory = 100.0
        * (1.0 - sum(&after, "node_memory_MemAvailable_bytes", &[]) / sum(&after, "node_memory_MemTotal_bytes", &[]));
    let memory_points = agent_points(&aggregator, "memory.used_percent", &[], t0, t1 + 2000);
    let agent_memory = memory_points.last().map_or(f64::NAN, |p| p.1);
    println!("memory: agent {agent_memory:.2} %, node_exporter {exporter_memory:.2} %");
    assert!(
        (agent_memory - exporter_memory).abs() <= 2.0,
        "memory differs by more than 2 points"
    );

    // Filesystems: df's used / (used + available), per mount the agent reports.
    let mounts = aggregator.get_json(
        "/api/v1/metrics/series",
        &[
            ("host", "e2e-host"),
            ("name", "fs.used_percent"),
            ("start", &t0.to_string()),
            ("end", &(t1 + 2000).to_string()),
        ],
    );
    let mounts = mounts["series"].as_array().cloned().unwrap_or_default();
    assert!(!mounts.is_empty(), "the agent reports at least one filesystem");
    let mut compared = 0;
    for series in &mounts {
        let mount = series["labels"]["mount"].as_str().unwrap_or_default();
        let label = [("mountpoint", mount)];
        let size = sum(&after, "node_filesystem_size_bytes", &label);
        let free = sum(&after, "node_filesystem_free_bytes", &label);
        let avail = sum(&after, "node_filesystem_avail_bytes", &label);
        if size <= 0.0 {
            continue;
        }
        let exporter_fs = 100.0 * (size - free) / (size - free + avail);
        let agent_fs = series["points"]
            .as_array()
            .and_then(|p| p.last())
            .and_then(|p| p[1].as_f64())
            .unwrap_or(f64::NAN);
        println!("fs {mount}: agent {agent_fs:.2} %, node_exporter {exporter_fs:.2} %");
        assert!(
            (agent_fs - exporter_fs).abs() <= 1.0,
            "{mount} differs by more than 1 point"
        );
        compared += 1;
    }
    assert!(compared > 0, "node_exporter and the agent share at least one mount");

    // Loopback: bytes over the window, from the agent's rates × their intervals.
    for (exporter_name, agent_name) in [
        ("node_network_receive_bytes_total", "net.rx_bytes_per_sec"),
        ("node_network_transmit_bytes_total", "net.tx_bytes_per_sec"),
    ] {
        let exporter_bytes =
            sum(&after, exporter_name, &[("device", "lo")]) - sum(&before, exporter_name, &[("device", "lo")]);
        let points = agent_points(&aggregator, agent_name, &[("interface", "lo")], t0, t1 + 2000);
        let agent_bytes: f64 = points
            .windows(2)
            .map(|pair| pair[1].1 * (pair[1].0 - pair[0].0) as f64 / 1000.0)
            .sum();
        println!(
            "lo {agent_name} over the window: agent {agent_bytes:.0} bytes, node_exporter {exporter_bytes:.0} bytes"
        );
        assert!(exporter_bytes >= moved as f64, "node_exporter saw the transfer");
        assert!(
            (agent_bytes - exporter_bytes).abs() <= 0.10 * exporter_bytes,
            "{agent_name} differs by more than 10 %"
        );
    }

    assert_eq!(agent.terminate(), Some(0));
    exporter.kill();
}
