//! `aggregator.toml` (with its rules file, when one is named): any text gets
//! a value or an error naming file, key and reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_aggregator::config::Config;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = Config::from_toml(Path::new("aggregator.toml"), text) {
        assert!(!err.to_string().is_empty());
    }
});
