//! Unit tests of the public API, one or more per format, plus the edge cases
//! that must not panic or guess.

use super::{Level, detect_level, parse_timestamp};
use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp literal")
}

/// A reference time inside the years of the sample lines.
fn reference() -> Timestamp {
    ts("2026-06-15T12:00:00Z")
}

fn time(line: &str) -> Option<Timestamp> {
    parse_timestamp(line, reference())
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
    assert_eq!(detect_level(r#"{"lvl":"dbug","msg":"x"}"#), None);
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
        parse_timestamp("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x", r),
        Some(ts("2026-06-14T15:16:01Z"))
    );
    assert_eq!(
        parse_timestamp("Jun  4 05:06:07 combo x", r),
        Some(ts("2026-06-04T05:06:07Z"))
    );
    // Up to a day ahead of the reader is this year (clock or zone skew) ...
    assert_eq!(
        parse_timestamp("Jun 16 11:00:00 host x", r),
        Some(ts("2026-06-16T11:00:00Z"))
    );
    // ... more is last year's.
    assert_eq!(
        parse_timestamp("Jun 17 12:00:00 host x", r),
        Some(ts("2025-06-17T12:00:00Z"))
    );
}

#[test]
fn time_syslog_year_rollover() {
    assert_eq!(
        parse_timestamp("Dec 31 23:59:59 host app: x", ts("2026-01-01T00:00:10Z")),
        Some(ts("2025-12-31T23:59:59Z"))
    );
    // 29 February read in a common year belongs to the leap year before.
    assert_eq!(
        parse_timestamp("Feb 29 10:00:00 host app: x", ts("2025-03-10T00:00:00Z")),
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
        let _ = parse_timestamp(line, Timestamp::MIN);
        let _ = parse_timestamp(line, Timestamp::MAX);
    }
    assert_eq!(parse_timestamp("Jan 01 00:00:00 x", Timestamp::MIN), None);
    let huge = "é".repeat(1_000_000);
    assert_eq!(time(&huge), None);
    let line = "<13>1 2024-01-01T00:00:00Z [10/Oct/2000:13:55:36 -0700] {\"ts\":1} Jun  4 12:00:00";
    for (i, _) in line.char_indices() {
        let _ = time(&line[..i]);
        let _ = time(&line[i..]);
    }
}
