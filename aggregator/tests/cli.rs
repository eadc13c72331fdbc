//! The `lookout-aggregator` binary: `check-config`, serving, and a clean stop
//! on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lookout-aggregator");

/// docs/SPEC.md's example aggregator configuration, verbatim.
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

/// docs/SPEC.md's paths (`config/rules.toml`) are relative to the repository root,
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
    let (mut child, seen, lines) = start_until_listening(&file);
    let addr = seen
        .last()
        .and_then(|line| line.split_once("lookout-aggregator listening on http://"))
        .map(|(_, addr)| addr.trim().to_owned())
        .unwrap();
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

/// A config file in `dir` with its data in `dir/data`, serving on port 0.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("aggregator.toml");
    let config = SPEC_EXAMPLE
        .replace("127.0.0.1:7070", "127.0.0.1:0")
        .replace("./data", &dir.join("data").display().to_string());
    std::fs::write(&file, config).unwrap();
    file
}

/// Runs `lookout-aggregator --config FILE user ARGS` with `stdin` piped in.
fn user_command(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .current_dir(repository_root())
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_add_takes_the_password_from_stdin_and_the_user_can_log_in() {
    use lookout_aggregator::users::{Role, UserStore};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());

    let output = user_command(&config, &["add", "--admin", "alice"], "a fine long password\n");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "user `alice` created (role admin)"
    );
    let output = user_command(&config, &["add", "bob"], "short\n");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    let output = user_command(&config, &["add", "alice"], "another long password\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    let output = user_command(&config, &["add", "carol"], "a viewer's password\n");
    assert!(output.status.success(), "{output:?}");

    let output = user_command(&config, &["list"], "");
    let listing = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<Vec<&str>> = listing.lines().map(|line| line.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{listing}");
    assert_eq!(rows[0][..2], ["alice", "admin"]);
    assert_eq!(rows[1][..2], ["carol", "viewer"]);

    let users = UserStore::open(&dir.path().join("data")).unwrap();
    let alice = users.check_password("alice", "a fine long password").unwrap().unwrap();
    assert_eq!(alice.role, Role::Admin);
    assert!(users.check_password("alice", "a fine long passwore").unwrap().is_none());

    let output = user_command(&config, &["passwd", "alice"], "a new long password\n");
    assert!(output.status.success(), "{output:?}");
    assert!(users.check_password("alice", "a new long password").unwrap().is_some());
    let output = user_command(&config, &["remove", "carol"], "");
    assert!(output.status.success(), "{output:?}");
    assert!(users.check_password("carol", "a viewer's password").unwrap().is_none());
}

/// Starts the binary on `config` and returns it with every stderr line up to
/// and including the listening line, and the channel of the lines after it.
fn start_until_listening(config: &Path) -> (Running, Vec<String>, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .current_dir(repository_root())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
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
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("no listening line within 30 s");
        let done = line.contains("lookout-aggregator listening on http://");
        seen.push(line);
        if done {
            return (running, seen, lines);
        }
    }
}

#[test]
fn a_first_start_without_users_prints_a_generated_admin_password_once() {
    use lookout_aggregator::users::{Role, UserStore};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());

    let (first, lines, _) = start_until_listening(&config);
    drop(first);
    let announced = lines
        .iter()
        .position(|line| line.contains("the user `admin` was created"))
        .unwrap_or_else(|| panic!("no first-admin banner in {lines:#?}"));
    let password = lines[announced..]
        .iter()
        .find_map(|line| line.strip_prefix("    "))
        .unwrap_or_else(|| panic!("no password line in {lines:#?}"))
        .trim()
        .to_owned();
    assert!(password.len() >= 16, "{password:?}");

    let (second, lines, _) = start_until_listening(&config);
    drop(second);
    assert!(
        !lines
            .iter()
            .any(|line| line.contains("admin") || line.contains(&password)),
        "the second start says nothing about the password: {lines:#?}"
    );

    let users = UserStore::open(&dir.path().join("data")).unwrap();
    let admin = users.check_password("admin", &password).unwrap().unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(users.list_users().unwrap().len(), 1);
}
