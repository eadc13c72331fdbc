//! Pattern mining on arbitrary lines: every message a log holds is mined,
//! so no byte sequence may panic or grow a shape past its bound; a snapshot
//! of what was mined restores to a miner that assigns the same patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_patterns::{Miner, Settings};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let settings = Settings {
        // Small bounds, so that inputs reach the catch-all paths.
        max_clusters_per_source: 8,
        max_patterns_per_source: 16,
        max_sources: 3,
        ..Settings::default()
    };
    let mut miner = Miner::new(settings.clone());
    let mut ids = Vec::new();
    let mut shape = Vec::new();
    lookout_patterns::shape::shape(&text, &mut shape);
    assert!(shape.len() <= lookout_patterns::shape::MAX_TOKENS);
    for (n, line) in text.lines().enumerate() {
        let source = ["a", "b", "c", "d"][n % 4];
        let id = miner.assign(source, line);
        assert!(miner.template(id).is_some());
        ids.push((source, line, id));
    }
    let mut restored = Miner::restore(settings, miner.snapshot()).expect("a miner's own snapshot restores");
    for (source, line, _) in ids.iter().rev() {
        assert_eq!(restored.assign(source, line), miner.assign(source, line));
    }
});
