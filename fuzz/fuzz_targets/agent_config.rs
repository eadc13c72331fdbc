//! `agent.toml`: any text gets a compiled configuration or an error naming
//! file, key and reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_agent::config::AgentConfig;
use lookout_aggregator::lookout_shared::config::parse_toml;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("agent.toml");
    let Ok(config) = parse_toml::<AgentConfig>(file, text) else {
        return;
    };
    let _ = config.validate(file);
    let _ = config.warnings();
});
