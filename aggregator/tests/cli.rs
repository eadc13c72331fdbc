//! The `lookout-aggregator` binary: `check-config`, serving, and a clean stop
//! on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lookout-aggregator");

/// SPEC.md's example aggregator configuration, verbatim.
const SPEC_EXAMPLE: &str = r#"listen = "127.0.0.1:7070"
data_dir = "./data"

[auth]
ingest_tokens = ["agent-secret"]      # accepted on POST /api/v1/ingest
api_tokens = ["reader-secret"]        # accepted on the read API (Bearer)

[retention]
logs_days = 14
metrics_days = 30

[smtp]                                # optional
host = "127.0.0.1"
port = 2525
tls = "none"                          # "none" | "starttls" | "tls"
from = "lookout@example.com"
# username / password optional

[[notifiers]]
name = "oncall-email"
kind = "email"
to = ["oncall@example.com"]

[[notifiers]]
name = "ops-webhook"
kind = "webhook"
url = "http://127.0.0.1:9099/hook"

rules_file = "config/rules.toml"      # optional; built-in default rules apply without it
"#;

/// SPEC.md's paths (`config/rules.toml`) are relative to the repository root,
/// where an operator runs the binaries from a checkout.
fn repository_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check_config(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aggregator.toml");
    std::fs::write(&file, text).unwrap();
    Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .current_dir(repository_root())
        .output()
        .unwrap()
}

#[test]
fn the_spec_example_config_is_valid() {
    let output = check_config(SPEC_EXAMPLE);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "config OK");
}

#[test]
fn the_shipped_example_config_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/aggregator.toml");
    let output = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(file)
        .current_dir(repository_root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn an_unknown_key_fails_with_exit_2_naming_it() {
    let output = check_config(&SPEC_EXAMPLE.replace("logs_days = 14", "logs_days = 14\nlog_days = 7"));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("aggregator.toml"), "{stderr}");
    assert!(stderr.contains("log_days"), "{stderr}");

    let output = check_config(&SPEC_EXAMPLE.replace("port = 2525", "port = \"many\""));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("smtp.port"), "{stderr}");
}

#[test]
fn a_bad_rules_file_fails_with_exit_2_naming_file_rule_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("my-rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"DiskFull\"\nkind = \"threshold\"\nmetric = \"fs.used_percent\"\nthreshold = 80.0\n\
         notify = [\"pager\"]\n",
    )
    .unwrap();
    let config = SPEC_EXAMPLE.replace("config/rules.toml", &rules.display().to_string());
    let output = check_config(&config);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("my-rules.toml"), "{stderr}");
    assert!(stderr.contains("rules[0] (DiskFull).notify"), "{stderr}");
    assert!(stderr.contains("`pager` is not a configured notifier"), "{stderr}");
}

#[test]
fn help_describes_the_commands() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("check-config") && text.contains("--config"), "{text}");
}

/// Kills the child if a test fails before it exits by itself.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_on_port_zero_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aggregator.toml");
    let config = SPEC_EXAMPLE
        .replace("127.0.0.1:7070", "127.0.0.1:0")
        .replace("./data", &dir.path().join("data").display().to_string());
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .current_dir(repository_root())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = Running(child);

    // Stream stderr lines to the test; the address is in the listening line.
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("no listening line within 30 s");
        if let Some((_, addr)) = line.split_once("lookout-aggregator listening on http://") {
            break addr.trim().to_owned();
        }
    };
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_ne!(port, 0);

    // /healthz answers over plain HTTP/1.1.
    let response = http_get(&addr, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running 30 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    // The pipe closes at exit, which ends the reader thread and the channel.
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.contains("lookout-aggregator stopped")),
        "{rest:?}"
    );
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
