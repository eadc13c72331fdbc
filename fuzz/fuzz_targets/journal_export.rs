//! The journal export reader: any bytes, fed in any pieces, give entries or
//! a clean error, never a panic, and no value past the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_agent::sources::journald::export::ExportReader;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, rest)) = data.split_first() else {
        return;
    };
    let mut reader = ExportReader::new(64, 64);
    let mut out = Vec::new();
    for chunk in rest.chunks(1 + usize::from(piece)) {
        if reader.feed(chunk, &mut out).is_err() {
            break;
        }
    }
    for entry in &out {
        for field in &entry.fields {
            assert!(field.value.len() <= 64, "a value past the bound");
        }
    }
});
