//! Debian's `prometheus`, started on a loopback port with a config of the
//! test's (its data in the test's folder).

use crate::{Process, free_port};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A running Prometheus and its base URL (`http://127.0.0.1:<port>`).
#[derive(Debug)]
pub struct Prometheus {
    /// Base URL of its web API.
    pub url: String,
    _process: Process,
}

/// Starts Prometheus on `config` (YAML), its data and output under `dir`.
pub fn start(dir: &Path, config: &str) -> Prometheus {
    start_with_flags(dir, config, &[])
}

/// [`start`] with its remote-write receiver on (`/api/v1/write`).
pub fn start_receiving(dir: &Path) -> Prometheus {
    start_with_flags(
        dir,
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    )
}

fn start_with_flags(dir: &Path, config: &str, flags: &[&str]) -> Prometheus {
    let port = free_port();
    let file = dir.join("prometheus.yml");
    fs::write(&file, config).expect("can write Prometheus's config");
    let data = dir.join("prometheus-data");
    fs::create_dir_all(&data).expect("can create Prometheus's data folder");
    let mut command = Command::new("/usr/bin/prometheus");
    command
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(flags);
    let process = Process::spawn("prometheus", &mut command, &dir.join("prometheus.log"));
    Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        _process: process,
    }
}
