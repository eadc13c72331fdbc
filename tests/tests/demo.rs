//! The README's first command, as a new user runs it: `scripts/demo.sh`
//! starts both binaries, prints the URL, the web login and the API token,
//! its demo lines become searchable, the login works, and Ctrl-C (SIGINT)
//! stops everything it started.

use lookout_tests::{binary, free_port, http, test_dir, wait_until};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn demo_script_runs_lookout_and_ctrl_c_stops_it() {
    let dir = test_dir("demo");
    let port = free_port();
    let bin_dir = binary("lookout-aggregator").parent().unwrap().to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo.sh");
    let mut demo = Command::new("bash")
        .arg(&script)
        .env("LOOKOUT_DEMO_DIR", &dir)
        .env("LOOKOUT_PORT", port.to_string())
        .env("LOOKOUT_BIN_DIR", &bin_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bash runs the demo script");
    let stdout = demo.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    while !printed.iter().any(|l: &String| l.contains("Ctrl-C stops everything")) {
        match received.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => printed.push(line),
            Err(err) => panic!("the demo printed no banner ({err}); so far: {printed:#?}"),
        }
    }
    let value = |label: &str| {
        printed
            .iter()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` line in {printed:#?}"))
            .trim()
            .to_owned()
    };
    let url = value("URL:");
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let token = value("API token:").split_whitespace().next().unwrap().to_owned();
    let login = value("Web login:");
    let password = login.strip_prefix("admin / ").expect("admin / <password>").to_owned();
    assert!(password.len() >= 12, "{login}");

    let client = http();
    wait_until("a demo line is searchable", Duration::from_secs(60), || {
        client
            .get(&format!("{url}/api/v1/logs/search?q=demo&limit=1"))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .ok()
            .and_then(|mut answer| answer.body_mut().read_json::<serde_json::Value>().ok())
            .is_some_and(|body| body["total"].as_u64().unwrap_or(0) > 0)
    });
    let no_redirects: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let answer = no_redirects
        .post(&format!("{url}/login"))
        .header("Origin", &url)
        .send_form([("username", "admin"), ("password", password.as_str()), ("next", "/")])
        .expect("the login form answers");
    assert_eq!(answer.status().as_u16(), 303, "the printed login signs in");

    let pid = demo.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while demo.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
    let demo_dir = dir.display().to_string();
    wait_until("both binaries have exited", Duration::from_secs(15), || {
        processes_mentioning(&format!("{demo_dir}/aggregator.toml")).is_empty()
            && processes_mentioning(&format!("{demo_dir}/agent.toml")).is_empty()
    });
}
