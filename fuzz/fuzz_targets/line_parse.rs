//! Level, event-time and field detection on any line, in every layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_aggregator::lookout_shared::parse::{LineRules, detect_level, parse_timestamp};
use lookout_aggregator::lookout_shared::wire::{Layout, LineFormat};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = detect_level(&line);
    let reference = jiff::Timestamp::from_second(1_700_000_000).expect("a valid time");
    let _ = parse_timestamp(&line, reference, &jiff::tz::TimeZone::UTC);
    for layout in [Layout::Plain, Layout::Json, Layout::Logfmt] {
        let rules = LineRules::new(&LineFormat {
            timezone: Some("Europe/Berlin".into()),
            layout,
            timestamp_field: Some("ts".into()),
            timestamp_format: Some("%d/%m/%Y %H:%M:%S".into()),
            level_field: Some("lvl".into()),
        })
        .expect("a valid format");
        let found = rules.detect(&line, reference);
        assert!(found.fields.len() <= lookout_aggregator::lookout_shared::parse::fields::MAX_FIELDS_PER_LINE);
    }
});
