//! The Debian packages, on this machine: `scripts/build-deb.sh` packs the
//! binaries the tests built, `dpkg -i` installs both (the `lookout` system
//! user, `/var/lib/lookout` 0750, the first tokens, the configs as
//! conffiles), `check-config` passes on the installed configs and
//! `systemd-analyze verify` on the installed units, both binaries run as
//! their units say (the aggregator as `lookout`; there is no systemd as PID 1
//! here, so the test runs each unit's `ExecStart` line itself) and a line
//! written to `/var/log` becomes searchable; `dpkg --purge` then leaves
//! nothing behind.

use lookout_tests::{Process, binary, http, shown, test_dir, wait_until};
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const PACKAGES: [&str; 2] = ["lookout-agent", "lookout-aggregator"];
/// Left in the data folder while this test has the packages installed: a
/// run cut short leaves it, and only then does the next run purge first.
const MARKER: &str = "/var/lib/lookout/.installed-by-the-package-test";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program} runs: {err}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(output.status.success(), "{program} {args:?}: {}", shown(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Purges the packages (and a `lookout` user this test made) at the end,
/// also when an assertion failed.
struct Installed {
    made_user: bool,
    test_log: PathBuf,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.test_log);
        let _ = run("dpkg", &["--purge", PACKAGES[0], PACKAGES[1]]);
        if self.made_user {
            let _ = run("userdel", &["lookout"]);
            let _ = run("groupdel", &["lookout"]);
        }
    }
}

/// The `ExecStart=` command of an installed unit, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    let text = fs::read_to_string(Path::new("/lib/systemd/system").join(unit)).unwrap();
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has an ExecStart line"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// A value of the installed tokens file (`ingest_tokens` or `api_tokens`).
fn token(kind: &str) -> String {
    let text = fs::read_to_string("/etc/lookout/tokens.toml").unwrap();
    let line = text.lines().find(|line| line.starts_with(kind)).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

fn mode(path: &str) -> (u32, u32, u32) {
    let metadata = fs::metadata(path).unwrap_or_else(|err| panic!("{path}: {err}"));
    (metadata.permissions().mode() & 0o777, metadata.uid(), metadata.gid())
}

fn id(kind: &str, name: &str) -> u32 {
    ok("id", &[kind, name]).trim().parse().unwrap()
}

#[test]
fn the_debian_packages_install_run_as_their_units_say_and_purge_cleanly() {
    let dir = test_dir("debian_package");
    // The test installs system packages: never over a real install, nor
    // where systemd would start the services for real.
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test installs the packages on this machine: run it where systemd is not PID 1 (a container)"
    );
    // Installed, or purged of all but its config files.
    let installed_before = PACKAGES.iter().any(|package| {
        let status = run("dpkg-query", &["-W", "-f=${db:Status-Status}", package]);
        status.status.success() && !matches!(&status.stdout[..], b"" | b"not-installed")
    });
    if installed_before {
        assert!(
            Path::new(MARKER).exists(),
            "Lookout packages are installed on this machine and not by this test; it leaves them alone"
        );
        ok("dpkg", &["--purge", PACKAGES[0], PACKAGES[1]]);
    }
    let made_user = !run("getent", &["passwd", "lookout"]).status.success();
    let installed = Installed {
        made_user,
        test_log: PathBuf::from(format!("/var/log/lookout-package-test-{}.log", std::process::id())),
    };

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let bin_dir = binary("lookout-agent").parent().unwrap().to_path_buf();
    let built = ok(
        root.join("scripts/build-deb.sh").to_str().unwrap(),
        &["--bin-dir", bin_dir.to_str().unwrap(), "--out", dir.to_str().unwrap()],
    );
    let debs: Vec<&str> = built.lines().collect();
    assert_eq!(debs.len(), 2, "{built}");
    let aggregator_deb = debs.iter().find(|deb| deb.contains("lookout-aggregator_")).unwrap();
    let agent_deb = debs.iter().find(|deb| deb.contains("lookout-agent_")).unwrap();
    // The aggregator first: the agent's package then takes its ingest token.
    ok("dpkg", &["-i", aggregator_deb]);
    fs::write(MARKER, "").unwrap();
    ok("dpkg", &["-i", agent_deb]);
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/lookout-aggregator.service").exists(),
        "the service is enabled"
    );

    let (uid, gid) = (id("-u", "lookout"), id("-g", "lookout"));
    assert_eq!(mode("/var/lib/lookout"), (0o750, uid, gid));
    assert_eq!(mode("/etc/lookout/tokens.toml"), (0o640, 0, gid));
    assert_eq!(mode("/etc/lookout/aggregator.toml"), (0o640, 0, gid));
    assert_eq!(mode("/etc/lookout/agent.token"), (0o600, 0, 0));
    assert_eq!(
        fs::read_to_string("/etc/lookout/agent.token").unwrap().trim(),
        token("ingest_tokens")
    );
    assert!(token("api_tokens").len() >= 32);
    for (package, conffile) in [
        ("lookout-aggregator", "/etc/lookout/aggregator.toml"),
        ("lookout-agent", "/etc/lookout/agent.toml"),
    ] {
        let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", package]);
        assert!(conffiles.contains(conffile), "{package}: {conffiles}");
    }
    let checked = ok(
        "/usr/bin/lookout-aggregator",
        &["check-config", "--config", "/etc/lookout/aggregator.toml"],
    );
    assert!(checked.contains("config OK"), "{checked}");
    let checked = ok(
        "/usr/bin/lookout-agent",
        &["check-config", "--config", "/etc/lookout/agent.toml"],
    );
    assert!(checked.contains("configuration OK"), "{checked}");
    for unit in ["lookout-aggregator.service", "lookout-agent.service"] {
        let path = format!("/lib/systemd/system/{unit}");
        let verified = run("systemd-analyze", &["verify", &path]);
        assert!(
            verified.status.success() && verified.stderr.is_empty(),
            "systemd-analyze verify {unit}: {}",
            shown(&verified)
        );
    }

    // The aggregator as its unit's User=, in its WorkingDirectory=.
    let aggregator_line = exec_start("lookout-aggregator.service");
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=lookout", "--regid=lookout", "--init-groups", "--"])
        .args(&aggregator_line)
        .current_dir("/var/lib/lookout")
        .env("RUST_LOG", "info");
    let mut aggregator = Process::spawn("lookout-aggregator", &mut command, &dir.join("aggregator.log"));
    let url = "http://127.0.0.1:7070";
    wait_until("the packaged aggregator to answer", LIMIT, || {
        http()
            .get(format!("{url}/healthz"))
            .call()
            .is_ok_and(|answer| answer.status() == 200)
    });
    let agent_line = exec_start("lookout-agent.service");
    let mut command = Command::new(&agent_line[0]);
    command.args(&agent_line[1..]).env("RUST_LOG", "info");
    let mut agent = Process::spawn("lookout-agent", &mut command, &dir.join("agent.log"));

    let marker = format!("packaged line {}", std::process::id());
    fs::write(&installed.test_log, format!("2026-01-01T00:00:00Z INFO {marker}\n")).unwrap();
    let api = token("api_tokens");
    let searchable = || {
        let answer = http()
            .get(format!("{url}/api/v1/logs/search"))
            .query("q", format!("\"{marker}\""))
            .header("Authorization", format!("Bearer {api}"))
            .call();
        answer.is_ok_and(|mut answer| {
            answer.status() == 200
                && answer
                    .body_mut()
                    .read_to_string()
                    .is_ok_and(|body| body.contains("\"total\":1"))
        })
    };
    wait_until("the line shipped by the packaged agent", LIMIT, searchable);
    // The data folder is the lookout user's.
    let index = fs::read_dir("/var/lib/lookout/logs").unwrap().next().unwrap().unwrap();
    assert_eq!(index.metadata().unwrap().uid(), uid);
    assert_eq!(agent.terminate(Duration::from_secs(30)), Some(0));
    assert_eq!(aggregator.terminate(Duration::from_secs(30)), Some(0));

    drop(installed);
    for gone in [
        "/usr/bin/lookout-aggregator",
        "/usr/bin/lookout-agent",
        "/lib/systemd/system/lookout-aggregator.service",
        "/etc/lookout",
        "/var/lib/lookout",
        "/var/lib/lookout-agent",
        "/etc/systemd/system/multi-user.target.wants/lookout-aggregator.service",
        "/etc/systemd/system/multi-user.target.wants/lookout-agent.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after the purge");
    }
}
