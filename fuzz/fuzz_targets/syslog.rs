//! The syslog parser: any bytes give a message or a clean error, never a
//! panic.
#![no_main]

use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use lookout_aggregator::receivers::syslog::parse;

fuzz_target!(|data: &[u8]| {
    let received = jiff::Timestamp::from_second(1_795_000_000).expect("a valid time");
    if let Ok(message) = parse(data, received, &TimeZone::UTC) {
        assert!(message.facility < 24 && message.severity < 8);
    }
});
