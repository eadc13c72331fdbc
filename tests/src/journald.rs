//! A real `systemd-journald` of the test's own, without systemd as PID 1.
//!
//! It runs in a private mount namespace (`unshare --mount`), where the
//! test's folders are bound over `/run/systemd/journal` (its sockets),
//! `/run/log/journal` (its files) and `/etc/systemd/journald.conf` (no rate
//! limit, no kernel log, volatile storage), so it neither sees nor touches a
//! journal the machine may run, and tests can each have their own. Writers
//! (`systemd-cat`) and `journalctl --rotate` enter that namespace with
//! `nsenter`; the agent reads the files from the test's folder.

use crate::{Process, wait_until};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// No rate limit (the tests write tens of thousands of entries in seconds),
/// no kernel log or forwarding, files in `/run/log/journal` with room enough.
const CONFIG: &str = "[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRateLimitBurst=0\nReadKMsg=no\n\
ForwardToSyslog=no\nForwardToWall=no\nForwardToKMsg=no\nForwardToConsole=no\n\
RuntimeMaxUse=1G\nRuntimeMaxFileSize=128M\nRuntimeKeepFree=1M\n";

/// One entry as the journal holds it.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// `MESSAGE`.
    pub message: String,
    /// `PRIORITY`.
    pub priority: u8,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: String,
    /// `__REALTIME_TIMESTAMP`, µs.
    pub realtime_us: i64,
    /// `_COMM`, which journald adds only while it can still read the
    /// sender's /proc entry.
    pub comm: Option<String>,
    /// `_PID`, which journald leaves out of a stream's lines it reads only
    /// after the sender is gone (as it does `_COMM`).
    pub pid: Option<u32>,
}

/// A running journald, stopped (by its PID) when dropped.
#[derive(Debug)]
pub struct Journald {
    process: Process,
    pid: u32,
    files: PathBuf,
}

impl Journald {
    /// Starts journald with its sockets and files under `dir`; waits until
    /// its stdout socket exists.
    pub fn start(dir: &Path) -> Journald {
        assert!(
            Path::new(JOURNALD).exists(),
            "{JOURNALD} is missing: install systemd (scripts/test.sh does)"
        );
        let sockets = dir.join("journal-sockets");
        let files = dir.join("journal");
        let config = dir.join("journald.conf");
        fs::create_dir_all(&sockets).expect("can create the socket folder");
        fs::create_dir_all(&files).expect("can create the journal folder");
        fs::write(&config, CONFIG).expect("can write journald.conf");
        // The mount points must exist; on a machine without a journal they
        // are created empty (what a real journald's first start does too).
        for mount_point in ["/run/systemd/journal", "/run/log/journal"] {
            fs::create_dir_all(mount_point).expect("can create the mount point");
        }
        let script = format!(
            "mount --bind '{}' /run/systemd/journal && mount --bind '{}' /run/log/journal && \
             mount --bind '{}' /etc/systemd/journald.conf && exec {JOURNALD}",
            sockets.display(),
            files.display(),
            config.display()
        );
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        let process = Process::spawn("systemd-journald", &mut command, &dir.join("journald.log"));
        let pid = process.pid().expect("journald runs");
        let stdout_socket = sockets.join("stdout");
        wait_until("journald to open its sockets", Duration::from_secs(30), || {
            stdout_socket.exists()
        });
        Journald { process, pid, files }
    }

    /// The folder of its journal files (what `[journald] directory` names).
    pub fn directory(&self) -> &Path {
        &self.files
    }

    /// Writes `lines` through `systemd-cat -t identifier`, one entry each;
    /// a line may start with `<N>` to set its priority.
    pub fn write(&self, identifier: &str, lines: &[String]) {
        let mut child = self
            .nsenter()
            .args(["systemd-cat", "-t", identifier])
            .stdin(Stdio::piped())
            .spawn()
            .expect("can start systemd-cat");
        {
            let mut stdin = child.stdin.take().expect("piped stdin");
            let mut text = lines.join("\n");
            text.push('\n');
            stdin.write_all(text.as_bytes()).expect("systemd-cat takes the lines");
        }
        let status = child.wait().expect("systemd-cat ends");
        assert!(status.success(), "systemd-cat failed: {status}");
    }

    /// `journalctl --rotate`: the active file is archived and a new one begun.
    pub fn rotate(&self) {
        let status = self
            .nsenter()
            .args(["journalctl", "--rotate"])
            .status()
            .expect("can run journalctl --rotate");
        assert!(status.success(), "journalctl --rotate failed: {status}");
    }

    /// `journalctl --vacuum-files=1`: removes every archived file.
    pub fn vacuum(&self) {
        let status = Command::new("journalctl")
            .arg("--directory")
            .arg(&self.files)
            .arg("--vacuum-files=1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("can run journalctl --vacuum-files");
        assert!(status.success(), "journalctl --vacuum-files failed: {status}");
    }

    /// Every entry the journal holds that has a `SYSLOG_IDENTIFIER`.
    pub fn entries(&self) -> Vec<JournalEntry> {
        let output = Command::new("journalctl")
            .arg("--directory")
            .arg(&self.files)
            .args([
                "--output=json",
                "--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_COMM,_PID",
                "--no-pager",
            ])
            .output()
            .expect("can run journalctl");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|entry| {
                Some(JournalEntry {
                    message: entry["MESSAGE"].as_str()?.to_owned(),
                    priority: entry["PRIORITY"].as_str()?.parse().ok()?,
                    identifier: entry["SYSLOG_IDENTIFIER"].as_str()?.to_owned(),
                    realtime_us: entry["__REALTIME_TIMESTAMP"].as_str()?.parse().ok()?,
                    comm: entry["_COMM"].as_str().map(str::to_owned),
                    pid: entry["_PID"].as_str().and_then(|pid| pid.parse().ok()),
                })
            })
            .collect()
    }

    fn nsenter(&self) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["--target", &self.pid.to_string(), "--mount", "--"]);
        command.stdout(Stdio::null());
        command
    }

    /// Stops it (SIGKILL, by its PID).
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        self.stop();
    }
}
