//! Both binaries: a source's `timezone`, `format` and `timestamp` /
//! `level_field` overrides in `agent.toml` travel with its lines, and the
//! aggregator reads each line's time, level and fields with them.

use lookout_tests::{Agent, Aggregator, test_dir, wait_until};
use serde_json::Value;
use std::fs;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn only_hit(aggregator: &Aggregator, q: &str) -> Value {
    let page = aggregator.search(&[("q", q), ("limit", "10")]);
    assert_eq!(page["total"], 1, "{q}: {page}");
    page["hits"][0].clone()
}

#[test]
fn sources_are_read_in_their_zone_layout_and_overrides() {
    let dir = test_dir("line_formats");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    // New York local time (EST in January): 12:00 is 17:00 UTC.
    fs::write(
        logs.join("local.log"),
        "2024-01-10 12:00:00 ERROR marker-local disk gone\n",
    )
    .unwrap();
    // A layout detection cannot read, named by the override: day first.
    fs::write(
        logs.join("custom.json"),
        "{\"when\":\"03/04/2024 10:00:00\",\"sev\":\"W\",\"msg\":\"marker-custom\",\"status\":503,\"user\":{\"id\":42}}\n",
    )
    .unwrap();
    let aggregator = Aggregator::start(&dir);
    let _agent = Agent::start(
        &dir,
        &aggregator.url,
        &format!(
            "[[logs]]\npaths = [{local:?}]\ntimezone = \"America/New_York\"\n\
             [[logs]]\npaths = [{custom:?}]\nformat = \"json\"\ntimezone = \"Europe/Berlin\"\n\
             timestamp = {{ field = \"when\", format = \"%d/%m/%Y %H:%M:%S\" }}\nlevel_field = \"sev\"\n",
            local = logs.join("local.log").display().to_string(),
            custom = logs.join("custom.json").display().to_string(),
        ),
    );
    wait_until("both lines searchable", LIMIT, || {
        aggregator.count("marker-local") == 1 && aggregator.count("marker-custom") == 1
    });

    let local = only_hit(&aggregator, "marker-local");
    assert_eq!(local["timestamp"], "2024-01-10T17:00:00Z");
    assert_eq!(local["level"], "error");

    // 3 April 2024 10:00 in Berlin (summer time, +02:00) is 08:00 UTC.
    let custom = only_hit(&aggregator, "marker-custom");
    assert_eq!(custom["timestamp"], "2024-04-03T08:00:00Z");
    assert_eq!(custom["level"], "warn");
    assert_eq!(custom["fields"]["status"], 503.0);
    assert_eq!(custom["fields"]["user.id"], 42.0);
    only_hit(&aggregator, "status:>=500 AND user.id:42");
    // The time range an engineer looks at holds the line.
    let in_range = aggregator.search(&[
        ("q", "marker-custom"),
        ("start", "2024-04-03T07:59:00Z"),
        ("end", "2024-04-03T08:01:00Z"),
    ]);
    assert_eq!(in_range["total"], 1, "{in_range}");
}
