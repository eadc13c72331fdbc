//! The syslog receiver against real senders: util-linux `logger` over UDP
//! and TCP (both framings) in RFC 5424 and RFC 3164, and Debian's `rsyslogd`
//! relaying a file with `omfwd` over TCP (LF framing with its traditional
//! format, octet counting with RFC 5424) and over TLS with a client
//! certificate (`rsyslog-gnutls`). Every numbered line is searchable once,
//! with the sender's host name, a time the message stated and the level of
//! its priority; garbage on the same connection is counted, not stored.

use lookout_tests::certs::{make_certificates, make_client_certificate};
use lookout_tests::{Aggregator, assert_recent, free_port, numbered, rsyslog, test_dir, wait_until};
use serde_json::Value;
use std::fs;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LINES: u64 = 300;

/// This machine's host name, as logger and rsyslog state it.
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the kernel says its host name")
        .trim()
        .to_owned()
}

/// Writes `LINES` numbered lines tagged with `word` to `file`.
fn write_lines(file: &Path, word: &str) {
    let text: String = (0..LINES).map(|n| format!("{word} {}\n", numbered(n))).collect();
    fs::write(file, text).expect("can write the input file");
}

/// Checks what every hit must say: host, level, a stated time near now, source.
fn check_hits(hits: &[Value], host: &str, level: &str, appname: &str) {
    for hit in hits {
        assert_eq!(hit["host"], host, "{hit}");
        assert_eq!(hit["level"], level, "{hit}");
        assert_eq!(hit["source"], "syslog", "{hit}");
        assert_eq!(hit["fields"]["appname"], appname, "{hit}");
        assert_recent(hit);
    }
}

#[test]
fn logger_over_udp_and_tcp_in_both_formats() {
    let dir = test_dir("syslog_logger");
    let port = free_port();
    let aggregator = Aggregator::start_with(
        &dir,
        "",
        &format!("[syslog]\ntcp = \"127.0.0.1:{port}\"\nudp = \"127.0.0.1:{port}\"\n"),
    );
    let cases: [(&str, &[&str], &str, &str); 5] = [
        ("lktudpfive", &["--udp", "--rfc5424"], "local3.warning", "warn"),
        ("lktudpbsd", &["--udp", "--rfc3164"], "user.err", "error"),
        ("lkttcpfive", &["--tcp", "--rfc5424"], "daemon.debug", "debug"),
        (
            "lkttcpcounted",
            &["--tcp", "--octet-count", "--rfc5424"],
            "local7.crit",
            "error",
        ),
        ("lkttcpbsd", &["--tcp", "--rfc3164"], "auth.notice", "info"),
    ];
    for (word, options, priority, _) in &cases {
        let file = dir.join(format!("{word}.txt"));
        write_lines(&file, word);
        let status = Command::new("logger")
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--tag",
                word,
                "--priority",
                priority,
            ])
            .args(*options)
            .arg("--file")
            .arg(&file)
            .status()
            .expect("util-linux logger runs");
        assert!(status.success(), "logger {options:?} failed");
    }
    for (word, _, _, level) in &cases {
        let hits = aggregator.numbered_once(word, LINES);
        check_hits(&hits, &hostname(), level, word);
    }
    let hit = &aggregator.search(&[("q", "lkttcpcounted"), ("limit", "1")])["hits"][0];
    assert_eq!(hit["fields"]["facility"], "local7");
    assert_eq!(hit["fields"]["severity"], "crit");

    // Garbage between good messages on one connection is counted and dropped.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"no pri here\n<13>1 2026-01-01T00:00:00Z h app - - - lktmixed one\n\xff\xfe\x00garbage\n<13>Jan  1 00:00:00 h app: lktmixed two\n")
        .unwrap();
    drop(stream);
    wait_until("both good messages", Duration::from_secs(30), || {
        aggregator.count("lktmixed") == 2
    });
    let metrics = aggregator.get_text("/metrics");
    assert!(
        metrics.contains("lookout_receiver_messages_total{receiver=\"syslog\",result=\"invalid\"} 2"),
        "{metrics}"
    );
}

#[test]
fn rsyslog_relays_over_tcp_in_both_framings() {
    let dir = test_dir("syslog_rsyslog_tcp");
    let port = free_port();
    let aggregator = Aggregator::start_with(&dir, "", &format!("[syslog]\ntcp = \"127.0.0.1:{port}\"\n"));
    let traditional = dir.join("traditional.log");
    let counted = dir.join("counted.log");
    let config = format!(
        r#"global(workDirectory="WORKDIR" localHostName="relay-1")
module(load="imfile" mode="polling" PollingInterval="1")
input(type="imfile" File="{traditional}" Tag="lktrelay:" Severity="err" Facility="local1" ruleset="traditional")
input(type="imfile" File="{counted}" Tag="lktcounted" Severity="warning" Facility="local2" ruleset="counted")
ruleset(name="traditional") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp")
}}
ruleset(name="counted") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
        traditional = traditional.display(),
        counted = counted.display(),
    );
    write_lines(&traditional, "lktrelay");
    write_lines(&counted, "lktcounted");
    let _rsyslogd = rsyslog::start(&dir, "rsyslogd", &config);
    let hits = aggregator.numbered_once("lktrelay", LINES);
    check_hits(&hits, "relay-1", "error", "lktrelay");
    let hits = aggregator.numbered_once("lktcounted", LINES);
    check_hits(&hits, "relay-1", "warn", "lktcounted");
}

#[test]
fn rsyslog_relays_over_tls_with_a_client_certificate() {
    let dir = test_dir("syslog_rsyslog_tls");
    make_certificates(&dir);
    make_client_certificate(&dir, "relay", "relay-2");
    let port = free_port();
    let aggregator = Aggregator::start_with(
        &dir,
        "",
        &format!(
            "[syslog]\ntcp = \"127.0.0.1:{port}\"\ntls = {{ cert = \"{d}/server.pem\", key = \"{d}/server.key\", client_ca = \"{d}/ca.pem\" }}\n",
            d = dir.display()
        ),
    );
    let input = dir.join("tls.log");
    let config = format!(
        r#"global(workDirectory="WORKDIR" localHostName="relay-2"
       DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{d}/ca.pem"
       DefaultNetstreamDriverCertFile="{d}/relay.pem" DefaultNetstreamDriverKeyFile="{d}/relay.key")
module(load="imfile" mode="polling" PollingInterval="1")
input(type="imfile" File="{input}" Tag="lkttls:" Severity="info" ruleset="tls")
ruleset(name="tls") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost" template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
        d = dir.display(),
        input = input.display(),
    );
    write_lines(&input, "lkttls");
    let _rsyslogd = rsyslog::start(&dir, "rsyslogd", &config);
    let hits = aggregator.numbered_once("lkttls", LINES);
    check_hits(&hits, "relay-2", "info", "lkttls");

    // Plain text on the TLS port, and TLS without a client certificate, store nothing.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = plain.write_all(b"<11>Jan  1 00:00:00 h app: lktplain\n");
    drop(plain);
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '<11>Jan  1 00:00:00 h app: lktnocert\\n' | openssl s_client -quiet -connect 127.0.0.1:{port} -CAfile {}/ca.pem",
            dir.display()
        ))
        .status()
        .expect("openssl runs");
    wait_until("both refusals in the log", Duration::from_secs(30), || {
        fs::read_to_string(aggregator.log()).is_ok_and(|log| log.matches("syslog TLS handshake failed").count() >= 2)
    });
    assert_eq!(aggregator.count("lktplain OR lktnocert"), 0);
}
