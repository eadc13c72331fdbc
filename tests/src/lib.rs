//! Helpers for the end-to-end tests in `tests/tests/`: start the real
//! `lookout-aggregator` and `lookout-agent` binaries as separate processes on
//! loopback, stop or kill them by PID, wait on conditions with deadlines, and
//! query the search API. [`smtp`] and [`webhook`] run real receivers for the
//! notifier tests; [`webdriver`] drives a headless Chromium for the UI tests;
//! [`journald`] runs a real systemd-journald of the test's own.
//!
//! The binaries are taken from the same target folder as the test itself, so
//! `cargo build --workspace` must run before `cargo test` (`scripts/test.sh`
//! does both).

pub mod alertmanager;
pub mod certs;
pub mod journald;
pub mod moto;
pub mod prometheus;
pub mod rsyslog;
pub mod smtp;
pub mod tmpfs;
pub mod victoria_metrics;
pub mod webdriver;
pub mod webhook;

use serde_json::Value;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The token the test configs use for ingest.
pub const INGEST_TOKEN: &str = "test-ingest-token";
/// The token the test configs use for the read API.
pub const API_TOKEN: &str = "test-api-token";

/// The path of a workspace binary built next to the running test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The loghub sample data the repository carries (`testdata/loghub`).
pub fn loghub_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/loghub");
    assert!(dir.is_dir(), "{} is missing from the checkout", dir.display());
    dir
}

/// A fresh folder for one test, under the target folder (kept after the run
/// for inspection, emptied at the next).
pub fn test_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let base = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .join("e2e");
    let dir = base.join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("can create the test folder");
    dir
}

/// A loopback port that was free a moment ago, and that this process has
/// not handed out before: tests run in parallel threads, and two of them
/// given the same port would start servers that steal each other's clients.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("can bind a loopback port");
        let port = listener.local_addr().expect("bound").port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process that is killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    name: String,
}

impl Process {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Process {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("can open the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("can clone a file handle"))
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Process {
            child: Some(child),
            name: name.to_string(),
        }
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait (at most `limit`) for a clean exit; returns its status code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within {limit:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGHUP (reload) to `service` and waits until its log has one more
/// `configuration reloaded` or `configuration not reloaded` line; returns
/// whether it was reloaded.
fn reload(service: &Service) -> bool {
    let pid = service
        .process
        .as_ref()
        .and_then(Process::pid)
        .expect("the process runs");
    let outcomes = || {
        let log = fs::read_to_string(&service.log).unwrap_or_default();
        (
            log.matches("configuration reloaded").count(),
            log.matches("configuration not reloaded").count(),
        )
    };
    let before = outcomes();
    let sent = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -HUP {pid}");
    wait_until(
        &format!("the reload's outcome in {}", service.log.display()),
        Duration::from_secs(60),
        || outcomes() != before,
    );
    outcomes().0 > before.0
}

/// `lookout-aggregator --config CONFIG ARGS`, with `stdin` as its input.
pub fn aggregator_cli(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(binary("lookout-aggregator"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the aggregator binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Every file and folder below `dir` is its owner's alone.
pub fn assert_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", entry.path().display());
        if entry.file_type().unwrap().is_dir() {
            assert_private(&entry.path());
        }
    }
}

/// A finished command's exit status and output, for an assertion's message.
pub fn shown(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One of the two Lookout binaries, run on a config file in its test folder,
/// with its output in a log file there; restartable after a kill or stop.
#[derive(Debug)]
struct Service {
    binary: &'static str,
    config: PathBuf,
    log: PathBuf,
    process: Option<Process>,
}

impl Service {
    fn new(binary: &'static str, dir: &Path, config: &str, log: &str) -> Service {
        Service {
            binary,
            config: dir.join(config),
            log: dir.join(log),
            process: None,
        }
    }

    fn start(&mut self) {
        let mut command = Command::new(binary(self.binary));
        command.arg("--config").arg(&self.config).env("RUST_LOG", "info");
        self.process = Some(Process::spawn(self.binary, &mut command, &self.log));
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    fn terminate(&mut self) -> Option<i32> {
        self.process.take()?.terminate(Duration::from_secs(30))
    }
}

/// An aggregator on a fixed loopback port, restartable on the same data.
#[derive(Debug)]
pub struct Aggregator {
    /// Its base URL.
    pub url: String,
    service: Service,
}

impl Aggregator {
    /// Writes a config in `dir` and starts the aggregator; waits for /healthz.
    pub fn start(dir: &Path) -> Aggregator {
        Aggregator::start_with(dir, "", "")
    }

    /// Like [`Aggregator::start`], with `top_level` keys (such as
    /// `rules_file`) and `sections` (`[smtp]`, `[[notifiers]]`, `[tls]`, ...)
    /// added to the config. With a `[tls]` section the URL is `https://`, and
    /// readiness is the `listening on https://...` line in its log.
    pub fn start_with(dir: &Path, top_level: &str, sections: &str) -> Aggregator {
        let port = free_port();
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{top_level}\n[auth]\ningest_tokens = [\"{INGEST_TOKEN}\"]\napi_tokens = [\"{API_TOKEN}\"]\n{sections}\n",
            dir.join("data").display()
        );
        fs::write(dir.join("aggregator.toml"), config).expect("can write the aggregator config");
        let scheme = if sections.contains("[tls]") { "https" } else { "http" };
        let mut aggregator = Aggregator {
            url: format!("{scheme}://127.0.0.1:{port}"),
            service: Service::new("lookout-aggregator", dir, "aggregator.toml", "aggregator.log"),
        };
        aggregator.restart();
        aggregator
    }

    /// Starts it again (after a stop or kill) and waits until it is ready.
    pub fn restart(&mut self) {
        let log_before = fs::metadata(&self.service.log).map_or(0, |meta| meta.len());
        self.service.start();
        if self.url.starts_with("https://") {
            // The plain client cannot speak TLS: the log line says when it listens.
            let line = format!("lookout-aggregator listening on {}", self.url);
            let log = self.service.log.clone();
            wait_until(
                &format!("`{line}` in {}", log.display()),
                Duration::from_secs(60),
                || {
                    fs::read(&log).is_ok_and(|text| {
                        let new = text.get(usize::try_from(log_before).unwrap_or(0)..).unwrap_or_default();
                        String::from_utf8_lossy(new).contains(&line)
                    })
                },
            );
            return;
        }
        let url = format!("{}/healthz", self.url);
        wait_until("the aggregator to answer /healthz", Duration::from_secs(60), || {
            http().get(&url).call().is_ok_and(|response| response.status() == 200)
        });
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.service.process.as_ref().and_then(Process::pid)
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.service.log
    }

    /// Its config file (`aggregator.toml` in its folder).
    pub fn config(&self) -> &Path {
        &self.service.config
    }

    /// SIGHUP, then waits for the outcome in its log: whether the config
    /// file was reloaded (false: refused, the old one stays).
    pub fn reload(&self) -> bool {
        reload(&self.service)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.service.kill();
    }

    /// SIGTERM and a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.service.terminate()
    }

    /// `GET /api/v1/logs/search` with the API token; panics unless 200.
    pub fn search(&self, params: &[(&str, &str)]) -> Value {
        self.get_json("/api/v1/logs/search", params)
    }

    /// A read API call with the API token; panics unless 200.
    pub fn get_json(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut request = http()
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {API_TOKEN}"));
        for (key, value) in params {
            request = request.query(*key, *value);
        }
        let mut response = request.call().unwrap_or_else(|err| panic!("GET {path} failed: {err}"));
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 200, "GET {path} {params:?} answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("GET {path} answered non-JSON ({err}): {body}"))
    }

    /// A text answer (such as `/metrics`) with the API token; panics unless 200.
    pub fn get_text(&self, path: &str) -> String {
        let mut response = http()
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {API_TOKEN}"))
            .call()
            .unwrap_or_else(|err| panic!("GET {path} failed: {err}"));
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    /// The hits of `word` once `total` numbered lines ([`numbered`]) with it
    /// are searchable; panics unless each number below `total` is there
    /// exactly once (at most 10,000 lines).
    pub fn numbered_once(&self, word: &str, total: u64) -> Vec<Value> {
        wait_until(&format!("{total} lines of {word}"), Duration::from_secs(60), || {
            self.count(word) >= total
        });
        let page = self.search(&[("q", word), ("limit", "10000")]);
        let hits = page["hits"].as_array().cloned().unwrap_or_default();
        let messages: Vec<String> = hits
            .iter()
            .map(|hit| hit["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        let seen = count_sequence_numbers(&messages);
        assert_eq!(seen.len() as u64, total, "{word}: every line arrived");
        assert!(seen.keys().all(|n| *n < total), "{word}: only the lines sent");
        assert!(seen.values().all(|n| *n == 1), "{word}: no line twice");
        hits
    }

    /// The messages of every line written with [`numbered`] for numbers
    /// below `total`, fetched group by group (each group fits in one page).
    pub fn numbered_messages(&self, total: u64) -> Vec<String> {
        (0..total.div_ceil(GROUP))
            .flat_map(|group| {
                let page = self.search(&[("q", &format!("group{group}")), ("limit", "10000")]);
                let hits = page["hits"].as_array().cloned().unwrap_or_default();
                assert!(hits.len() < 10_000, "group {group} overflows a page");
                hits.into_iter()
                    .map(|hit| hit["message"].as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `total` of a query.
    pub fn count(&self, query: &str) -> u64 {
        self.search(&[("q", query), ("limit", "1")])["total"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// A blocking HTTP client that returns 4xx/5xx answers instead of failing.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// An agent with a config written by the test.
#[derive(Debug)]
pub struct Agent {
    service: Service,
}

impl Agent {
    /// Writes `agent.toml` in `dir` (`sources` is TOML appended after the
    /// connection settings) and starts the agent.
    pub fn start(dir: &Path, aggregator_url: &str, sources: &str) -> Agent {
        let config = format!(
            "aggregator_url = \"{aggregator_url}\"\ntoken = \"{INGEST_TOKEN}\"\nhost = \"e2e-host\"\nstate_dir = \"{}\"\n{sources}\n",
            dir.join("agent-state").display()
        );
        fs::write(dir.join("agent.toml"), config).expect("can write the agent config");
        let mut agent = Agent {
            service: Service::new("lookout-agent", dir, "agent.toml", "agent.log"),
        };
        agent.restart();
        agent
    }

    /// Starts it again after a kill or stop.
    pub fn restart(&mut self) {
        self.service.start();
    }

    /// Its config file (`agent.toml` in its folder).
    pub fn config(&self) -> &Path {
        &self.service.config
    }

    /// SIGHUP, then waits for the outcome in its log: whether the config
    /// file was reloaded (false: refused, the old one stays).
    pub fn reload(&self) -> bool {
        reload(&self.service)
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.service.log
    }

    /// SIGKILL: no flush, no checkpoint.
    pub fn kill(&mut self) {
        self.service.kill();
    }

    /// SIGTERM and a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.service.terminate()
    }

    /// Whether it is still running (has not exited on its own).
    pub fn is_running(&mut self) -> bool {
        self.service.process.as_mut().is_some_and(Process::is_running)
    }
}

/// An agent in `dir/agent` that follows `dir/logs/*.log` (`metrics` is its
/// `[metrics]` table), and a thread that writes `total` numbered lines
/// (`steady seq=N groupK`, see [`numbered`]) to `dir/logs/steady.log`,
/// pausing `pause` after every `every` lines. Join the thread to know they
/// are all written.
pub fn ship_steadily(
    dir: &Path,
    aggregator_url: &str,
    metrics: &str,
    total: u64,
    (every, pause): (u64, Duration),
) -> (Agent, std::thread::JoinHandle<()>) {
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).expect("can create the log folder");
    let agent_dir = dir.join("agent");
    fs::create_dir_all(&agent_dir).expect("can create the agent folder");
    let agent = Agent::start(
        &agent_dir,
        aggregator_url,
        &format!(
            "[[logs]]\npaths = [\"{}/*.log\"]\n[metrics]\n{metrics}\n",
            logs.display()
        ),
    );
    let file = logs.join("steady.log");
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut out = File::create(file).expect("can create the log file");
        for i in 0..total {
            writeln!(out, "2026-01-01T00:00:00Z INFO steady {}", numbered(i)).expect("can write the log file");
            if i % every == every - 1 {
                std::thread::sleep(pause);
            }
        }
    });
    (agent, writer)
}

/// Lines per `groupK` word of [`numbered`].
const GROUP: u64 = 5000;

/// The part of a test line that identifies it: `seq=N groupK`, where the
/// group word lets [`Aggregator::numbered_messages`] fetch lines a page at a time.
pub fn numbered(number: u64) -> String {
    format!("seq={number} group{}", number / GROUP)
}

/// The `seq=N` of a search hit's message.
pub fn hit_number(hit: &Value) -> u64 {
    hit["message"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .find_map(|word| word.strip_prefix("seq=")?.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {hit}"))
}

/// Asserts that a hit's time is within ten minutes of now: the time its
/// sender stated for a line sent during the test.
pub fn assert_recent(hit: &Value) {
    let time: jiff::Timestamp = hit["timestamp"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("no timestamp: {hit}"));
    let now_ms = jiff::Timestamp::now().as_millisecond();
    assert!(
        (now_ms - time.as_millisecond()).abs() < 10 * 60 * 1000,
        "not about now: {hit}"
    );
}

/// Numbers `seq=N` found in `messages`: how often each one occurs.
pub fn count_sequence_numbers(messages: &[String]) -> std::collections::HashMap<u64, u32> {
    let mut seen = std::collections::HashMap::new();
    for message in messages {
        if let Some(number) = message
            .split_whitespace()
            .find_map(|word| word.strip_prefix("seq=").and_then(|n| n.parse::<u64>().ok()))
        {
            *seen.entry(number).or_insert(0) += 1;
        }
    }
    seen
}
