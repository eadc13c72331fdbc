//! The HTTP receivers against real senders: Debian's rsyslog with its
//! `omelasticsearch` module (`rsyslog-elasticsearch`) posting to `_bulk`
//! with the ingest token as the password of HTTP Basic. Every numbered line
//! is searchable once, with its host, time and level.

use lookout_tests::{Aggregator, INGEST_TOKEN, numbered, rsyslog, test_dir};
use std::fs;

const LINES: u64 = 500;

#[test]
fn rsyslog_omelasticsearch_posts_to_bulk() {
    let dir = test_dir("bulk_omelasticsearch");
    let aggregator = Aggregator::start(&dir);
    let port = aggregator.url.rsplit(':').next().expect("the URL has a port");
    let input = dir.join("input.log");
    let text: String = (0..LINES).map(|n| format!("lktbulk {}\n", numbered(n))).collect();
    fs::write(&input, text).unwrap();
    let config = format!(
        r#"global(workDirectory="WORKDIR" localHostName="relay-es")
module(load="imfile" mode="polling" PollingInterval="1")
module(load="omelasticsearch")
template(name="lookout-json" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
input(type="imfile" File="{input}" Tag="lktbulk:" Severity="warning" ruleset="es")
ruleset(name="es") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="rsyslog-lines"
         template="lookout-json" bulkmode="on" esVersion.major="8" uid="rsyslog" pwd="{INGEST_TOKEN}"
         errorFile="{errors}" action.resumeRetryCount="-1")
}}
"#,
        input = input.display(),
        errors = dir.join("es-errors.json").display(),
    );
    let _rsyslogd = rsyslog::start(&dir, "rsyslogd", &config);
    let hits = aggregator.numbered_once("lktbulk", LINES);
    let now_ms = jiff::Timestamp::now().as_millisecond();
    for hit in &hits {
        assert_eq!(hit["host"], "relay-es", "{hit}");
        assert_eq!(hit["level"], "warn", "{hit}");
        assert_eq!(hit["source"], "elasticsearch", "{hit}");
        assert_eq!(hit["fields"]["index"], "rsyslog-lines", "{hit}");
        assert_eq!(hit["fields"]["program"], "lktbulk", "{hit}");
        let time: jiff::Timestamp = hit["timestamp"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .expect("a timestamp");
        assert!((now_ms - time.as_millisecond()).abs() < 10 * 60 * 1000, "{hit}");
    }
    assert!(!dir.join("es-errors.json").exists(), "rsyslog saw no errors");
}
