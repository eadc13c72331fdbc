//! What an unprivileged writer can plant in a folder the agent (root) reads
//! must not trick it: a symlink to a file elsewhere is not shipped, a FIFO
//! does not block the tailer (also across a restart), and everything both
//! binaries write is private to their user.

use lookout_tests::{Agent, Aggregator, test_dir, wait_until};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn append(path: &Path, line: &str) {
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{line}").unwrap();
}

#[test]
fn planted_symlinks_and_fifos_do_not_trick_the_agent_and_its_files_are_private() {
    let dir = test_dir("planted_files");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let secret = dir.join("shadow");
    fs::write(&secret, "root-only marker-secret\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(logs.join("app.log"), "ordinary marker-one\n").unwrap();
    fs::write(logs.join("real.log"), "linked marker-inside\n").unwrap();
    symlink(&secret, logs.join("planted.log")).unwrap();
    symlink("../shadow", logs.join("relative.log")).unwrap();
    symlink(logs.join("real.log"), logs.join("alias-within.log")).unwrap();
    let fifo = logs.join("pipe.log");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success(),
        "mkfifo"
    );

    let aggregator = Aggregator::start(&dir);
    let sources = format!("[[logs]]\npaths = [\"{}/*.log\"]\n", logs.display());
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);
    wait_until("the ordinary line", Duration::from_secs(30), || {
        aggregator.count("\"marker one\"") == 1 && aggregator.count("\"marker inside\"") == 1
    });
    // A restart opens every file again: the FIFO must not block it.
    assert_eq!(agent.terminate(), Some(0));
    agent.restart();
    append(&logs.join("app.log"), "after the restart marker-two");
    wait_until("a line written after the restart", Duration::from_secs(30), || {
        aggregator.count("\"marker two\"") == 1
    });
    assert_eq!(
        aggregator.count("\"marker secret\""),
        0,
        "a symlink out of the folder is not followed"
    );

    // Private files: umask 077 and 0700 folders.
    let state = dir.join("agent-state");
    assert_eq!(mode(&state), 0o700, "agent state folder");
    for entry in fs::read_dir(&state).unwrap().flatten() {
        let path = entry.path();
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{}", path.display());
    }
    let data = dir.join("data");
    assert_eq!(mode(&data), 0o700, "aggregator data folder");
    assert_eq!(mode(&data.join("users.sqlite")), 0o600, "users.sqlite");
    assert_eq!(mode(&data.join("metrics.sqlite")), 0o600, "metrics.sqlite");
    assert_eq!(agent.terminate(), Some(0));
}
