//! Unit tests of the public API, one or more per format, plus the edge cases
//! that must not panic or guess.

use super::{Level, LineRules, detect_level, parse_timestamp};
use crate::wire::{Layout, LineFormat};
use jiff::Timestamp;
use jiff::tz::TimeZone;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp literal")
}

/// A reference time inside the years of the sample lines.
fn reference() -> Timestamp {
    ts("2026-06-15T12:00:00Z")
}

fn time(line: &str) -> Option<Timestamp> {
    parse_timestamp(line, reference(), &TimeZone::UTC)
}

#[test]
fn level_names() {
    let all = [
        (Level::Error, "error"),
        (Level::Warn, "warn"),
        (Level::Info, "info"),
        (Level::Debug, "debug"),
        (Level::Trace, "trace"),
    ];
    for (level, name) in all {
        assert_eq!(level.as_str(), name);
        assert_eq!(level.to_string(), name);
    }
}

#[test]
fn level_apache_and_nginx_error_logs() {
    let apache = "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6";
    assert_eq!(detect_level(apache), Some(Level::Error));
    let notice = "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf";
    assert_eq!(detect_level(notice), Some(Level::Info));
    let apache24 = "[Wed Oct 11 14:32:52.123 2000] [core:warn] [pid 35708] AH00111: x";
    assert_eq!(detect_level(apache24), Some(Level::Warn));
    let nginx = "2024/01/01 12:00:00 [warn] 123#0: *1 upstream response is buffered";
    assert_eq!(detect_level(nginx), Some(Level::Warn));
    let crit = "2024/01/01 12:00:00 [crit] 123#0: *1 open() failed";
    assert_eq!(detect_level(crit), Some(Level::Error));
}

#[test]
fn level_of_access_logs_follows_the_http_status() {
    let line = |status: &str| {
        format!(
            "10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] \"GET /api/v1/orders?id=7 HTTP/1.1\" {status} 512 \"-\" \"curl/8\""
        )
    };
    assert_eq!(detect_level(&line("502")), Some(Level::Error));
    assert_eq!(detect_level(&line("404")), Some(Level::Warn));
    assert_eq!(detect_level(&line("200")), Some(Level::Info));
    assert_eq!(detect_level(&line("304")), Some(Level::Info));
    // A status-like number elsewhere is not a status.
    assert_eq!(detect_level("took 503 ms over HTTP/1.1 to reach backend"), None);
    assert_eq!(detect_level("GET /x HTTP/1.1\" 5000 bytes"), None);
}

#[test]
fn level_java_and_python_loggers() {
    let hadoop = "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created";
    assert_eq!(detect_level(hadoop), Some(Level::Info));
    let zookeeper = "2015-07-29 19:04:29,071 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@688] - Send worker leaving thread";
    assert_eq!(detect_level(zookeeper), Some(Level::Warn));
    let fatal = "2015-10-18 18:10:45,123 FATAL [IPC Server handler 5] org.apache.hadoop.mapred.TaskAttemptListenerImpl: Task failed";
    assert_eq!(detect_level(fatal), Some(Level::Error));
    let python = "2024-01-01 12:00:00,123 - myapp.db - DEBUG - connecting";
    assert_eq!(detect_level(python), Some(Level::Debug));
    let python_basic = "WARNING:root:disk almost full";
    assert_eq!(detect_level(python_basic), Some(Level::Warn));
    let tracing = "2024-01-01T00:00:00.000000Z TRACE lookout::agent: polling";
    assert_eq!(detect_level(tracing), Some(Level::Trace));
}

#[test]
fn level_hdfs_spark_bgl() {
    let hdfs = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating";
    assert_eq!(detect_level(hdfs), Some(Level::Info));
    let spark = "17/06/09 20:10:40 WARN executor.Executor: Issue communicating with driver";
    assert_eq!(detect_level(spark), Some(Level::Warn));
    let bgl = "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected";
    assert_eq!(detect_level(bgl), Some(Level::Info));
    for (word, level) in [
        ("FATAL", Level::Error),
        ("SEVERE", Level::Error),
        ("FAILURE", Level::Error),
        ("ERROR", Level::Error),
        ("WARNING", Level::Warn),
    ] {
        let line = format!(
            "KERNDTLB 1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048 R30-M0-N9-C:J16-U01 RAS KERNEL {word} data TLB error interrupt"
        );
        assert_eq!(detect_level(&line), Some(level), "{line}");
    }
}

#[test]
fn level_syslog() {
    let tagged = "Dec 10 07:51:15 LabSZ sshd[24324]: error: Received disconnect from 195.154.37.122";
    assert_eq!(detect_level(tagged), Some(Level::Error));
    let warning = "Jul 25 23:23:13 combo xinetd[26482]: warning: can't get client address";
    assert_eq!(detect_level(warning), Some(Level::Warn));
    // No level stated: the message's "failure" is prose, not a level.
    let plain = "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0";
    assert_eq!(detect_level(plain), None);
    let failed = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186";
    assert_eq!(detect_level(failed), None);
    // The syslog priority is the fallback: <11> is facility 1, severity 3 (err).
    assert_eq!(
        detect_level("<11>Jan  1 00:00:00 host app: disk gone"),
        Some(Level::Error)
    );
    assert_eq!(
        detect_level("<14>1 2024-01-01T00:00:00Z host app - - - started"),
        Some(Level::Info)
    );
    assert_eq!(
        detect_level("<15>Jan  1 00:00:00 host app: DEBUG x"),
        Some(Level::Debug)
    );
    // An explicit word beats the priority.
    assert_eq!(
        detect_level("<14>Jan  1 00:00:00 host app: ERROR boom"),
        Some(Level::Error)
    );
    assert_eq!(detect_level("<999>Jan  1 00:00:00 host app: x"), None);
}

#[test]
fn level_json_and_logfmt() {
    assert_eq!(detect_level(r#"{"level":"error","msg":"boom"}"#), Some(Level::Error));
    assert_eq!(
        detect_level(r#"{"severity": "WARNING", "msg": "x"}"#),
        Some(Level::Warn)
    );
    assert_eq!(detect_level(r#"{"lvl":"dbag","msg":"x"}"#), None);
    assert_eq!(detect_level(r#"{"lvl":"debug","msg":"x"}"#), Some(Level::Debug));
    // The message comes first and mentions an error; the level key decides.
    let long = format!(r#"{{"msg":"error: {} failed","level":"info"}}"#, "x".repeat(400));
    assert_eq!(detect_level(&long), Some(Level::Info));
    // Level-like words elsewhere in JSON are not levels.
    assert_eq!(detect_level(r#"{"msg":"ERROR in [error]","status":"error"}"#), None);
    assert_eq!(
        detect_level("ts=2024-01-01T00:00:00Z level=warn msg=\"slow\""),
        Some(Level::Warn)
    );
    assert_eq!(detect_level("time=\"x\" level=\"Error\" msg=x"), Some(Level::Error));
}

#[test]
fn level_klog() {
    assert_eq!(
        detect_level("E0102 15:04:05.123456   12 server.go:42] failed"),
        Some(Level::Error)
    );
    assert_eq!(
        detect_level("W0102 15:04:05.123456   12 server.go:42] slow"),
        Some(Level::Warn)
    );
    assert_eq!(
        detect_level("I0102 15:04:05.123456   12 server.go:42] error count 0"),
        Some(Level::Info)
    );
    assert_eq!(
        detect_level("F0102 15:04:05.123456   12 server.go:42] dying"),
        Some(Level::Error)
    );
}

#[test]
fn level_is_the_stated_one_not_a_word_of_the_message() {
    let line = "2024-01-01 12:00:00,000 INFO [main] app: user error in input, FATAL typo";
    assert_eq!(detect_level(line), Some(Level::Info));
    let spark = "17/06/09 20:10:40 INFO storage.BlockManager: error reading block, retrying";
    assert_eq!(detect_level(spark), Some(Level::Info));
    // A lowercase word in prose is not a level.
    assert_eq!(detect_level("user error in input"), None);
    assert_eq!(detect_level("the connection had an error: reset"), None);
    // Part of a longer identifier is not a level.
    assert_eq!(
        detect_level("ERROR_CODE=5 org.example.Error no-error INFORMATIONAL_X"),
        None
    );
}

#[test]
fn level_only_near_the_start() {
    let line = format!("Jun 14 15:16:01 host app: {} ERROR late", "x ".repeat(100));
    assert_eq!(detect_level(&line), None);
    // A token that starts inside the window but runs past it is not cut to a
    // level word.
    let line = format!("{}INFORMATIONAL_X", "y ".repeat(79));
    assert_eq!(detect_level(&line), None);
}

#[test]
fn level_edge_cases_do_not_panic() {
    assert_eq!(detect_level(""), None);
    assert_eq!(detect_level(" "), None);
    assert_eq!(detect_level("\u{FFFD}\u{FFFD} [\u{FFFD}] error"), None);
    assert_eq!(detect_level("\u{FFFD} ERROR \u{FFFD}"), Some(Level::Error));
    assert_eq!(detect_level("日本語 [warn] ログ"), Some(Level::Warn));
    assert_eq!(detect_level("<"), None);
    assert_eq!(detect_level("<1"), None);
    assert_eq!(detect_level("{"), None);
    assert_eq!(detect_level("E0102"), None);
    assert_eq!(detect_level(":error"), None);
    assert_eq!(detect_level("]:x]"), None);
    let huge = "é".repeat(1_000_000);
    assert_eq!(detect_level(&huge), None);
    let huge = format!("{} ERROR", "a".repeat(1_000_000));
    assert_eq!(detect_level(&huge), None);
    // Every prefix of a varied line, cut at every char boundary.
    let line = "<13>1 2024-01-01T00:00:00Z [core:error] {\"level\":\"warn\"} E0102 12:00:00 x";
    for (i, _) in line.char_indices() {
        let _ = detect_level(&line[..i]);
        let _ = detect_level(&line[i..]);
    }
}

#[test]
fn time_iso_and_log4j() {
    assert_eq!(
        time("2015-10-18 18:01:47,978 INFO [main] x"),
        Some(ts("2015-10-18T18:01:47.978Z"))
    );
    assert_eq!(
        time("2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - x"),
        Some(ts("2015-07-29T17:41:44.747Z"))
    );
    assert_eq!(
        time("2024-03-01T10:00:00.123456789+01:30 msg"),
        Some(ts("2024-03-01T08:30:00.123456789Z"))
    );
    assert_eq!(time("2024-03-01T10:00:00Z msg"), Some(ts("2024-03-01T10:00:00Z")));
    assert_eq!(time("2024-03-01T10:00:00-0500 msg"), Some(ts("2024-03-01T15:00:00Z")));
    assert_eq!(
        time("[2024-03-01T10:00:00Z INFO  app] started"),
        Some(ts("2024-03-01T10:00:00Z"))
    );
    // nginx error log.
    assert_eq!(
        time("2024/01/01 12:00:00 [warn] 123#0: *1 x"),
        Some(ts("2024-01-01T12:00:00Z"))
    );
}

#[test]
fn time_rfc5424_and_syslog_priority() {
    assert_eq!(
        time("<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed"),
        Some(ts("2003-10-11T22:14:15.003Z"))
    );
    assert_eq!(
        time("<34>Oct 11 22:14:15 mymachine su: 'su root' failed"),
        Some(ts("2025-10-11T22:14:15Z"))
    );
}

#[test]
fn time_syslog_uses_the_reference_year() {
    let r = ts("2026-06-15T12:00:00Z");
    assert_eq!(
        parse_timestamp("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x", r, &TimeZone::UTC),
        Some(ts("2026-06-14T15:16:01Z"))
    );
    assert_eq!(
        parse_timestamp("Jun  4 05:06:07 combo x", r, &TimeZone::UTC),
        Some(ts("2026-06-04T05:06:07Z"))
    );
    // Up to ten minutes ahead of the reader is this year (clock skew) ...
    assert_eq!(
        parse_timestamp("Jun 15 12:09:00 host x", r, &TimeZone::UTC),
        Some(ts("2026-06-15T12:09:00Z"))
    );
    assert_eq!(
        parse_timestamp("Jun 15 12:11:00 host x", r, &TimeZone::UTC),
        Some(ts("2025-06-15T12:11:00Z"))
    );
    // ... more is last year's.
    assert_eq!(
        parse_timestamp("Jun 17 12:00:00 host x", r, &TimeZone::UTC),
        Some(ts("2025-06-17T12:00:00Z"))
    );
}

#[test]
fn time_syslog_year_rollover() {
    assert_eq!(
        parse_timestamp(
            "Dec 31 23:59:59 host app: x",
            ts("2026-01-01T00:00:10Z"),
            &TimeZone::UTC
        ),
        Some(ts("2025-12-31T23:59:59Z"))
    );
    // 29 February read in a common year belongs to the leap year before.
    assert_eq!(
        parse_timestamp(
            "Feb 29 10:00:00 host app: x",
            ts("2025-03-10T00:00:00Z"),
            &TimeZone::UTC
        ),
        Some(ts("2024-02-29T10:00:00Z"))
    );
}

#[test]
fn time_apache_and_access_logs() {
    assert_eq!(
        time("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok"),
        Some(ts("2005-12-04T04:47:44Z"))
    );
    assert_eq!(
        time("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708] x"),
        Some(ts("2000-10-11T14:32:52.123456Z"))
    );
    assert_eq!(
        time(r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#),
        Some(ts("2000-10-10T20:55:36Z"))
    );
    assert_eq!(
        time(r#"2001:db8::1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1"#),
        Some(ts("2024-01-01T00:00:00Z"))
    );
}

#[test]
fn time_hdfs_spark_bgl() {
    assert_eq!(
        time("081109 203615 148 INFO dfs.DataNode$PacketResponder: x"),
        Some(ts("2008-11-09T20:36:15Z"))
    );
    assert_eq!(
        time("17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: x"),
        Some(ts("2017-06-09T20:10:40Z"))
    );
    // BGL: the epoch field is the instant (the detailed field is Pacific
    // local time); its microseconds are kept.
    assert_eq!(
        time(
            "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO x"
        ),
        Some(ts("2005-06-03T22:42:50.675872Z"))
    );
}

#[test]
fn time_json_logfmt_klog() {
    assert_eq!(
        time(r#"{"msg":"x","time":"2024-01-01T00:00:00.5Z"}"#),
        Some(ts("2024-01-01T00:00:00.5Z"))
    );
    assert_eq!(
        time(r#"{"ts":1700000000.25,"msg":"x"}"#),
        Some(ts("2023-11-14T22:13:20.25Z"))
    );
    assert_eq!(
        time(r#"{"timestamp": 1700000000123}"#),
        Some(ts("2023-11-14T22:13:20.123Z"))
    );
    assert_eq!(
        time("level=info ts=2024-01-01T00:00:00Z msg=x"),
        Some(ts("2024-01-01T00:00:00Z"))
    );
    assert_eq!(
        time("I0102 15:04:05.123456   12 server.go:42] x"),
        Some(ts("2026-01-02T15:04:05.123456Z"))
    );
    assert_eq!(time(r#"{"ts":"soon","msg":"x"}"#), None);
    assert_eq!(time(r#"{"time":,"msg":"x"}"#), None);
}

#[test]
fn time_rejects_impossible_and_partial_values() {
    assert_eq!(time("2024-02-30 12:00:00 x"), None);
    assert_eq!(time("2024-13-01 12:00:00 x"), None);
    assert_eq!(time("2024-01-01 24:00:00 x"), None);
    assert_eq!(time("2024-01-01 12:00"), None);
    assert_eq!(time("081109 2036150 x"), None);
    assert_eq!(time("Foo 14 15:16:01 x"), None);
    assert_eq!(time("Jun 32 15:16:01 x"), None);
    assert_eq!(time("12345 things happened"), None);
    // A leap second is kept within its minute.
    assert_eq!(time("2016-12-31T23:59:60Z x"), Some(ts("2016-12-31T23:59:59Z")));
}

#[test]
fn time_edge_cases_do_not_panic() {
    for line in [
        "",
        " ",
        "[",
        "<",
        "<1>",
        "<1>1 ",
        "\u{FFFD}",
        "\u{FFFD}\u{FFFD} [\u{FFFD}] 2024",
        "Jun",
        "Jun 1",
        "2024-",
        "99999-01-01 00:00:00",
        "9999-12-31T23:59:59-25:59",
        "0000-01-01T00:00:00+25:00",
        "- 99999999999 2005.06.03 N 2005-06-03-15.42.50.675872",
        "{\"ts\":99999999999999999999999}",
        "{\"ts\":9999999999999999999}",
        "ts=",
        "\"ts\":",
    ] {
        let _ = time(line);
        let _ = parse_timestamp(line, Timestamp::MIN, &TimeZone::UTC);
        let _ = parse_timestamp(line, Timestamp::MAX, &TimeZone::UTC);
    }
    assert_eq!(
        parse_timestamp("Jan 01 00:00:00 x", Timestamp::MIN, &TimeZone::UTC),
        None
    );
    let huge = "é".repeat(1_000_000);
    assert_eq!(time(&huge), None);
    let line = "<13>1 2024-01-01T00:00:00Z [10/Oct/2000:13:55:36 -0700] {\"ts\":1} Jun  4 12:00:00";
    for (i, _) in line.char_indices() {
        let _ = time(&line[..i]);
        let _ = time(&line[i..]);
    }
}

#[test]
fn time_and_level_of_formats_seen_in_the_wild() {
    // (line, expected time, expected level)
    let cases: &[(&str, &str, Option<Level>)] = &[
        (
            r#"{"t":{"$date":"2020-05-20T19:17:06.188+00:00"},"s":"I",  "c":"CONTROL",  "id":23285, "msg":"x"}"#,
            "2020-05-20T19:17:06.188Z",
            Some(Level::Info),
        ),
        (
            r#"{"t":{"$date":"2020-05-20T19:17:06.188+02:00"},"s":"D1", "c":"NETWORK", "msg":"x"}"#,
            "2020-05-20T17:17:06.188Z",
            Some(Level::Debug),
        ),
        (
            "2019-01-09T10:58:59.360+0100 I NETWORK  [initandlisten] waiting for connections on port 27017",
            "2019-01-09T09:58:59.360Z",
            Some(Level::Info),
        ),
        (
            "2019-01-09 10:58:59.360 +03:00 [INF] Starting web host",
            "2019-01-09T07:58:59.360Z",
            Some(Level::Info),
        ),
        (
            "2019-01-09 10:58:59.360 +03:00 [WRN] Slow",
            "2019-01-09T07:58:59.360Z",
            Some(Level::Warn),
        ),
        (
            "1:M 14 Jan 2019 20:12:32.116 # WARNING: The TCP backlog setting of 511 cannot be enforced.",
            "2019-01-14T20:12:32.116Z",
            Some(Level::Warn),
        ),
        (
            "1:M 14 Jan 2019 20:12:32.117 * Ready to accept connections",
            "2019-01-14T20:12:32.117Z",
            Some(Level::Info),
        ),
        (
            "190214 13:08:22 [ERROR] Aborting",
            "2019-02-14T13:08:22Z",
            Some(Level::Error),
        ),
        (
            "190214  3:08:22 [Note] InnoDB: Starting shutdown...",
            "2019-02-14T03:08:22Z",
            Some(Level::Info),
        ),
        (
            "2019-01-09 10:58:59.360 CET [123] LOG:  database system is ready to accept connections",
            "2019-01-09T09:58:59.360Z",
            Some(Level::Info),
        ),
        (
            "2019-07-09 10:58:59 PDT [123-1] FATAL:  password authentication failed",
            "2019-07-09T17:58:59Z",
            Some(Level::Error),
        ),
        (
            "type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exit=-13",
            "2013-03-28T14:36:03.243Z",
            None,
        ),
        (
            "1286536309.634    163 10.0.0.1 TCP_MISS/200 1234 GET http://example.com/ - DIRECT/1.2.3.4 text/html",
            "2010-10-08T11:11:49.634Z",
            Some(Level::Info),
        ),
        (
            "1258531221.486539\tCHhAvVGS1DHFjwGM9\t192.168.1.102\t68\t192.168.1.1\t67\tudp",
            "2009-11-18T08:00:21.486539Z",
            None,
        ),
        (
            r#"{"level":30,"time":1531171074631,"msg":"hello world","pid":657,"hostname":"x"}"#,
            "2018-07-09T21:17:54.631Z",
            Some(Level::Info),
        ),
        (
            r#"{"level":50,"time":1531171082399,"msg":"boom","pid":657}"#,
            "2018-07-09T21:18:02.399Z",
            Some(Level::Error),
        ),
        (
            "<11>1 2003-10-11T22:14:15.003Z mymachine app - - - disk gone",
            "2003-10-11T22:14:15.003Z",
            Some(Level::Error),
        ),
        (
            "Thu Jan 14 20:12:32 UTC 2021 backup started",
            "2021-01-14T20:12:32Z",
            None,
        ),
        (
            "Mon, 14 Jan 2019 20:12:32 GMT ERROR mailer failed",
            "2019-01-14T20:12:32Z",
            Some(Level::Error),
        ),
        (
            "Jan 9, 2019 10:58:59 PM org.apache.catalina.startup.Catalina start",
            "2019-01-09T22:58:59Z",
            None,
        ),
        (
            "09-Jan-2019 10:58:59.360 SEVERE [main] org.apache.catalina.core.StandardService.startInternal x",
            "2019-01-09T10:58:59.360Z",
            Some(Level::Error),
        ),
        (
            "E, [2019-01-09T10:58:59.360000 #1234] ERROR -- : boom",
            "2019-01-09T10:58:59.360Z",
            Some(Level::Error),
        ),
        (
            "ERRO[0000] error waiting for container: context canceled time=\"2019-01-09T10:58:59Z\"",
            "2019-01-09T10:58:59Z",
            Some(Level::Error),
        ),
        (
            "2019-01-09 10:58:59 Europe/Berlin WARN x",
            "2019-01-09T09:58:59Z",
            Some(Level::Warn),
        ),
    ];
    for (line, expected_time, expected_level) in cases {
        assert_eq!(time(line), Some(ts(expected_time)), "time of {line}");
        assert_eq!(detect_level(line), *expected_level, "level of {line}");
    }
}

#[test]
fn time_without_a_zone_is_read_in_the_sources_zone() {
    let berlin = TimeZone::get("Europe/Berlin").expect("the system's zone database has Europe/Berlin");
    let at = |line: &str| parse_timestamp(line, reference(), &berlin);
    // Winter (+01:00) and summer (+02:00) time.
    assert_eq!(at("2024-01-10 12:00:00 x"), Some(ts("2024-01-10T11:00:00Z")));
    assert_eq!(at("2024-07-10 12:00:00 x"), Some(ts("2024-07-10T10:00:00Z")));
    assert_eq!(at("Jun 14 15:16:01 host x"), Some(ts("2026-06-14T13:16:01Z")));
    // A stated offset or zone wins over the source's zone.
    assert_eq!(at("2024-01-10T12:00:00Z x"), Some(ts("2024-01-10T12:00:00Z")));
    assert_eq!(at("2024-01-10 12:00:00 PST x"), Some(ts("2024-01-10T20:00:00Z")));
    // Epochs are instants.
    assert_eq!(at("1700000000 x"), Some(ts("2023-11-14T22:13:20Z")));
}

#[test]
fn misread_numbers_give_no_time() {
    // Before 1990, after the read time, inside a file name or an id.
    assert_eq!(time("user 123456789 logged in"), None);
    assert_eq!(time("1970-01-01 00:00:05 boot"), None);
    assert_eq!(time("order 9999999999 shipped"), None);
    assert_eq!(time("nova-api.log.1.2017-05-16_13:53:08 no time of its own"), None);
    assert_eq!(time("id=a2024-01-01 12:00:00"), None);
    // A Unix time far into the line is more likely an id than the time.
    let far = format!("{} 1700000000", "x".repeat(200));
    assert_eq!(time(&far), None);
}

#[test]
fn level_letters_numbers_and_marks() {
    assert_eq!(
        detect_level("03-17 16:13:38.811  1702  2395 D WindowManager: x"),
        Some(Level::Debug)
    );
    assert_eq!(
        detect_level("03-17 16:13:38.811  1702  2395 V Foo: x"),
        Some(Level::Trace)
    );
    assert_eq!(detect_level("W/ActivityManager(  585): Timeout"), Some(Level::Warn));
    assert_eq!(detect_level(r#"{"msg":"x","level":40}"#), Some(Level::Warn));
    assert_eq!(detect_level(r#"{"msg":"x","level":6}"#), Some(Level::Info));
    assert_eq!(detect_level(r#"{"MESSAGE":"x","PRIORITY":"3"}"#), Some(Level::Error));
    assert_eq!(
        detect_level(r#"{"@t":"2020-01-01T00:00:00Z","@l":"Warning"}"#),
        Some(Level::Warn)
    );
    assert_eq!(
        detect_level("1:S 14 Jan 2019 20:12:32.116 . debug mark"),
        Some(Level::Debug)
    );
    assert_eq!(
        detect_level("1:S 14 Jan 2019 20:12:32.116 - verbose mark"),
        Some(Level::Trace)
    );
    // A letter is a level only right after the time.
    assert_eq!(detect_level("host D something"), None);
    assert_eq!(detect_level(r#"{"s":"I"}"#), Some(Level::Info));
    assert_eq!(detect_level(r#"{"x":"I"}"#), None);
    assert_eq!(detect_level(r#"{"level":35}"#), None);
    assert_eq!(detect_level("the LOG: is a word here"), None);
    assert_eq!(
        detect_level("2022/03/01 12:57:58 auth.go:200:SignInPost() [W] slow"),
        Some(Level::Warn)
    );
    assert_eq!(detect_level("(E) 2024-11-26T13:37:02 - failure"), Some(Level::Error));
    assert_eq!(
        detect_level("[C 2020-03-23 15:44:53.296 ServerApp] gone"),
        Some(Level::Error)
    );
    assert_eq!(detect_level("2022-01-26T20:08:15Z W! deprecated"), Some(Level::Warn));
    assert_eq!(
        detect_level("215 <86>1 2015-08-05T21:58:59.693Z host app - - - x"),
        Some(Level::Info)
    );
    // JSON lines, parsed: a word beats a number, a wrapped line states its own.
    let json = |line: &str| LineRules::default().detect(line, reference()).level;
    assert_eq!(
        json(r#"{"log":"ERROR: disk full","stream":"stderr"}"#),
        Some(Level::Error)
    );
    assert_eq!(json(r#"{"level":4,"levelName":"ERROR"}"#), Some(Level::Error));
    assert_eq!(json(r#"{"level":4}"#), Some(Level::Warn));
    // A level word opening the line beats an access log's status.
    assert_eq!(
        detect_level(r#"INFO: 10.0.0.1:5278 - "POST /login HTTP/1.1" 401 Unauthorized"#),
        Some(Level::Info)
    );
}

#[test]
fn per_source_overrides() {
    let rules = |format: LineFormat| LineRules::new(&format).expect("valid format");
    let json = rules(LineFormat {
        layout: Layout::Json,
        timestamp_field: Some("event.created".into()),
        level_field: Some("sev".into()),
        ..LineFormat::default()
    });
    let found = json.detect(
        r#"{"time":"2001-01-01T00:00:00Z","event":{"created":"2024-05-01T10:00:00.250Z"},"sev":"W","level":"info"}"#,
        reference(),
    );
    assert_eq!(found.timestamp, Some(ts("2024-05-01T10:00:00.250Z")));
    assert_eq!(found.level, Some(Level::Warn));
    // Where the field is missing, detection takes over.
    let found = json.detect(r#"{"time":"2001-01-01T00:00:00Z","level":"error"}"#, reference());
    assert_eq!(found.timestamp, Some(ts("2001-01-01T00:00:00Z")));
    assert_eq!(found.level, Some(Level::Error));

    let european = rules(LineFormat {
        timezone: Some("Europe/Berlin".into()),
        timestamp_format: Some("%d/%m/%Y %H:%M:%S".into()),
        ..LineFormat::default()
    });
    let found = european.detect("03/04/2024 10:00:00 app started", reference());
    assert_eq!(found.timestamp, Some(ts("2024-04-03T08:00:00Z")));

    let logfmt = rules(LineFormat {
        layout: Layout::Logfmt,
        timestamp_field: Some("when".into()),
        timestamp_format: Some("%s".into()),
        level_field: Some("severity".into()),
        ..LineFormat::default()
    });
    let found = logfmt.detect("when=1700000000 severity=50 msg=\"x\"", reference());
    assert_eq!(found.timestamp, Some(ts("2023-11-14T22:13:20Z")));
    assert_eq!(found.level, Some(Level::Error));

    let unknown = LineRules::new(&LineFormat {
        timezone: Some("Mars/Olympus".into()),
        ..LineFormat::default()
    });
    assert!(unknown.is_err_and(|err| err.contains("Mars/Olympus")));
}

#[test]
fn the_message_is_what_the_line_says_besides_its_time() {
    let rules = LineRules::default();
    let rest = |line: &'static str| {
        let span = rules.detect(line, reference()).time_span;
        span.map(|span| format!("{}|{}", &line[..span.start], &line[span.end..]))
    };
    assert_eq!(
        rest("<34>Oct 11 22:14:15 mymachine su: 'su root' failed").as_deref(),
        Some("<34>| mymachine su: 'su root' failed")
    );
    assert_eq!(
        rest("2015-10-18 18:01:47,978 INFO [main] Created MRAppMaster").as_deref(),
        Some("| INFO [main] Created MRAppMaster")
    );
    assert_eq!(
        rest("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok").as_deref(),
        Some("[|] [notice] workerEnv.init() ok")
    );
    assert_eq!(
        rest("INFO 2024-01-02T03:04:05Z started").as_deref(),
        Some("INFO | started")
    );
    assert_eq!(
        rest("Backup failed at 2024-01-02T03:04:05Z: ok").as_deref(),
        Some("Backup failed at |: ok")
    );
    assert_eq!(
        rest("1117838570 job done").as_deref(),
        Some("| job done"),
        "a Unix time"
    );
    assert_eq!(
        rest("- 1117838570 2005.06.03 R02-M1-N0 2005-06-03-15.42.50.675872 R02-M1-N0 RAS KERNEL INFO ok").as_deref(),
        Some("| R02-M1-N0 RAS KERNEL INFO ok"),
        "BGL's head"
    );
    assert_eq!(
        rest("ts=2024-01-02T03:04:05Z msg=x").as_deref(),
        Some("ts=| msg=x"),
        "a logfmt time is cut out of the line"
    );
    // Far into the line the time is part of the message; under a key it is no head.
    let far = "a message that goes on and on and on and on and on well past its head 2024-01-02T03:04:05Z";
    assert_eq!(rules.detect(far, reference()).time_span, None);
    assert!(rules.detect(far, reference()).timestamp.is_some());
    assert_eq!(rest(r#"{"time":"2024-01-02T03:04:05Z","msg":"x"}"#), None);
    assert_eq!(rest("no time at all"), None);
    let custom = LineRules::new(&LineFormat {
        timestamp_format: Some("%d|%m|%Y %H-%M-%S".into()),
        ..LineFormat::default()
    })
    .unwrap();
    let line = "02|01|2024 03-04-05 custom layout";
    let span = custom.detect(line, reference()).time_span.unwrap();
    assert_eq!((span.start, &line[span.end..]), (0, " custom layout"));
}
