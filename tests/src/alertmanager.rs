//! Debian's `prometheus-alertmanager`, started on a loopback port with a
//! config of the test's (clustering off, its data in the test's folder).

use crate::{Process, free_port};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A running Alertmanager and its base URL (`http://127.0.0.1:<port>`).
#[derive(Debug)]
pub struct Alertmanager {
    /// Base URL of its web API.
    pub url: String,
    _process: Process,
}

/// Starts Alertmanager on `config` (YAML), its data and output under `dir`.
pub fn start(dir: &Path, config: &str) -> Alertmanager {
    let port = free_port();
    let file = dir.join("alertmanager.yml");
    fs::write(&file, config).expect("can write Alertmanager's config");
    let data = dir.join("alertmanager-data");
    fs::create_dir_all(&data).expect("can create Alertmanager's data folder");
    let mut command = Command::new("/usr/bin/prometheus-alertmanager");
    command
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // One instance: no gossip port.
        .arg("--cluster.listen-address=");
    let process = Process::spawn("alertmanager", &mut command, &dir.join("alertmanager.log"));
    Alertmanager {
        url: format!("http://127.0.0.1:{port}"),
        _process: process,
    }
}
