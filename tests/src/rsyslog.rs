//! Debian's `rsyslogd`, started in the foreground on a config of the
//! test's, as a relay for the receivers' tests.

use crate::Process;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Starts `rsyslogd -n` on `config` (where `WORKDIR` stands for a work
/// folder of its own), with its own pid file and its output in
/// `dir/NAME.log`.
pub fn start(dir: &Path, name: &str, config: &str) -> Process {
    let work = dir.join(format!("{name}-work"));
    fs::create_dir_all(&work).expect("can create rsyslog's work folder");
    let file = dir.join(format!("{name}.conf"));
    fs::write(&file, config.replace("WORKDIR", &work.display().to_string())).expect("can write rsyslog's config");
    let mut command = Command::new("/usr/sbin/rsyslogd");
    command
        .arg("-n")
        .arg("-f")
        .arg(&file)
        .arg("-i")
        .arg(dir.join(format!("{name}.pid")));
    Process::spawn("rsyslogd", &mut command, &dir.join(format!("{name}.log")))
}
