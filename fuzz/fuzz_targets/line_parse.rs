//! Level and event-time detection on any line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_aggregator::lookout_shared::parse::{detect_level, parse_timestamp};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = detect_level(&line);
    let reference = jiff::Timestamp::from_second(1_700_000_000).expect("a valid time");
    let _ = parse_timestamp(&line, reference, &jiff::tz::TimeZone::UTC);
});
