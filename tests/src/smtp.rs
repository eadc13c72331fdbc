//! A real SMTP server for notifier tests: Debian's aiosmtpd (package
//! `python3-aiosmtpd`, installed by `scripts/test.sh`) run by
//! `tests/smtp_sink.py` on a loopback port.
//!
//! The sink writes each accepted message as one JSON file (atomically:
//! temporary name, then rename), already parsed by Python's standard `email`
//! package: a complete MIME implementation that comes with aiosmtpd anyway,
//! so this crate needs no MIME parser of its own and the test reads exactly
//! what a mail client would decode (transfer encodings, charsets, encoded
//! subjects). Recipients whose local part starts with `reject` are refused
//! with a permanent `550`, for testing permanent failures.
//!
//! The sink can be stopped and started again on the same port, to test a
//! mail server that is down for a while; it is killed when dropped.

use crate::{free_port, wait_until};
use serde_json::Value;
use std::fs::{self, File};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Debian's interpreter, which has `python3-aiosmtpd` (a `python3` earlier
/// on `PATH`, such as pyenv's, may not).
const PYTHON: &str = "/usr/bin/python3";

/// One message as the sink received and decoded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// Envelope recipients (`RCPT TO`) that were accepted.
    pub rcpt_to: Vec<String>,
    /// `Subject`, decoded.
    pub subject: String,
    /// `From` header.
    pub from: String,
    /// `To` header.
    pub to: String,
    /// MIME type of the message, such as `multipart/alternative`.
    pub content_type: String,
    /// Every header, in order, as `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part (LF line ends), if any.
    pub text: Option<String>,
    /// The decoded `text/html` part (LF line ends), if any.
    pub html: Option<String>,
}

impl Mail {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn from_json(value: &Value) -> Mail {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        let optional = |key: &str| value[key].as_str().map(str::to_string);
        Mail {
            mail_from: text("mail_from"),
            rcpt_to: value["rcpt_tos"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            subject: text("subject"),
            from: text("from"),
            to: text("to"),
            content_type: text("content_type"),
            headers: value["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            text: optional("text"),
            html: optional("html"),
        }
    }
}

/// An aiosmtpd process on `127.0.0.1:port`, writing messages into a folder.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    messages_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    /// Starts the sink on a free loopback port, keeping its messages in
    /// `dir/smtp-messages` and its output in `dir/smtp-sink.log`; returns once
    /// the port accepts connections.
    pub fn start(dir: &Path) -> SmtpSink {
        let messages_dir = dir.join("smtp-messages");
        fs::create_dir_all(&messages_dir).expect("can create the SMTP sink's folder");
        let mut sink = SmtpSink {
            port: free_port(),
            messages_dir,
            log: dir.join("smtp-sink.log"),
            child: None,
        };
        sink.restart();
        sink
    }

    /// The port it listens on (the same across stop and start).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and waits until it is gone: connections are refused
    /// until [`SmtpSink::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`SmtpSink::stop`]),
    /// and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py");
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: install python3-aiosmtpd (scripts/test.sh does)"
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("can open the SMTP sink's log");
        let child = Command::new(PYTHON)
            .arg(&script)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.messages_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("can clone a file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {PYTHON} {}: {err}", script.display()));
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        let log_path = self.log.clone();
        let child = self.child.as_mut().expect("just started");
        wait_until("the SMTP sink to accept connections", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                let output = fs::read_to_string(&log_path).unwrap_or_default();
                panic!(
                    "the SMTP sink exited with {status} (is python3-aiosmtpd installed? scripts/test.sh \
                     installs it):\n{output}"
                );
            }
            greets(&address)
        });
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.messages_dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                    .filter(|path| !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|path| {
                let text =
                    fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
                let value: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|err| panic!("{} is not JSON ({err}): {text}", path.display()));
                Mail::from_json(&value)
            })
            .collect()
    }

    /// Waits (at most `limit`) until at least `count` messages have arrived; returns them all.
    pub fn wait_for_messages(&self, count: usize, limit: Duration) -> Vec<Mail> {
        wait_until(&format!("{count} message(s) at the SMTP sink"), limit, || {
            self.messages().len() >= count
        });
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether an SMTP server at `address` answers with its `220` greeting. A
/// bare successful connect is not enough: while nothing listens yet, a
/// connect to a loopback port in the ephemeral range can connect the socket
/// to itself (TCP simultaneous open) and look like a server.
fn greets(address: &str) -> bool {
    use std::io::Read as _;
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    if stream.set_read_timeout(Some(Duration::from_secs(1))).is_err() {
        return false;
    }
    let mut greeting = [0u8; 3];
    stream.read_exact(&mut greeting).is_ok() && &greeting == b"220"
}
