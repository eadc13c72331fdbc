//! The query language: parse, compile to an index query, and match one record,
//! as a search, a facet count, an alert rule and live tail do. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
    if let Ok(expr) = parsed {
        let hit = Hit {
            id: "00000000000000ab-42".into(),
            timestamp: "2024-01-01T00:00:00Z".into(),
            host: "web-1".into(),
            source: "/var/log/app.log".into(),
            level: "error".into(),
            message: "Disk /var is full: 98% used, user@host retry".into(),
            truncated: false,
            cut: false,
            labels: [("env".to_owned(), "prod".to_owned())].into(),
        };
        Matcher::new(expr).matches(&hit);
    }
});
