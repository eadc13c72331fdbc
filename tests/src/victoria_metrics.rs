//! Debian's `victoria-metrics` (single-node), started on a loopback port
//! with its data in the test's folder: a remote-write receiver
//! (`/api/v1/write`) with Prometheus's query API.

use crate::{Process, free_port};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A running VictoriaMetrics and its base URL (`http://127.0.0.1:<port>`).
#[derive(Debug)]
pub struct VictoriaMetrics {
    /// Base URL of its HTTP API.
    pub url: String,
    _process: Process,
}

/// Starts VictoriaMetrics, its data and output under `dir`. Queries see a
/// sample as soon as it is stored (`-search.latencyOffset=0s`; the default
/// hides the last 30 seconds).
pub fn start(dir: &Path) -> VictoriaMetrics {
    let port = free_port();
    let data = dir.join("victoria-metrics-data");
    fs::create_dir_all(&data).expect("can create VictoriaMetrics's data folder");
    let mut command = Command::new("/usr/bin/victoria-metrics");
    command
        .arg(format!("-storageDataPath={}", data.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-search.latencyOffset=0s");
    let process = Process::spawn("victoria-metrics", &mut command, &dir.join("victoria-metrics.log"));
    VictoriaMetrics {
        url: format!("http://127.0.0.1:{port}"),
        _process: process,
    }
}
