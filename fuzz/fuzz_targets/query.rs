//! The query language: parse (with its pipes), compile to an index query,
//! match one record and mark its message, as a search, a stats table, a
//! facet count, an alert rule and live tail do. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_aggregator::query::aggregate::{Cell, Groups, table};
use lookout_aggregator::query::highlight::Highlighter;
use lookout_aggregator::query::{self, matcher::Matcher};
use lookout_aggregator::store::schema::Hit;
use lookout_aggregator::store::search::check_query_syntax;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = query::parse(q);
    // The store's compilation accepts exactly what the parser accepts.
    assert_eq!(parsed.is_ok(), check_query_syntax(q).is_ok(), "{q:?}");
    // A query that parses with its pipes makes a table of any rows.
    if let Ok(query::Query { stats: Some(stats), .. }) = query::parse_query(q) {
        let mut groups = Groups::<String>::new(&stats);
        for key in [Cell::Missing, Cell::Text("a".to_owned()), Cell::Number(-0.0), Cell::Time(60_000)] {
            let keys = vec![key; stats.by.len()];
            let values = [Cell::Number(1.5), Cell::Text("b".to_owned()), Cell::Missing, Cell::Time(0)];
            let _ = groups.add(&stats, &keys, values.into_iter().cycle().take(stats.aggregates.len()));
        }
        let _ = table(&stats, groups, |text| text);
    }
    if let Ok(expr) = parsed {
        let message = "Disk /var is full: 98% used, user@host retry Grüße";
        let mut highlighter = Highlighter::new(&expr);
        for [from, to] in highlighter.marks(message) {
            assert!(from < to && to <= message.chars().count(), "{q:?}");
        }
        let hit = Hit {
            id: "00000000000000ab-42".into(),
            timestamp: "2024-01-01T00:00:00Z".into(),
            host: "web-1".into(),
            source: "/var/log/app.log".into(),
            level: "error".into(),
            message: message.into(),
            truncated: false,
            cut: false,
            labels: [("env".to_owned(), "prod".to_owned())].into(),
            fields: Default::default(),
            marks: Vec::new(),
        };
        Matcher::new(expr).matches(&hit);
    }
});
