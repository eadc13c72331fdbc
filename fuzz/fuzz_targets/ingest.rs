//! An ingest body: decompression (the first byte picks none, zstd or gzip),
//! JSON decoding, validation and enrichment. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_aggregator::ingest::{self, decode::ContentEncoding};
use lookout_aggregator::ingest::field_names::FieldNames;
use lookout_aggregator::ingest::patterns::PatternBook;
use std::sync::LazyLock;

/// One pattern state for the whole run, in a folder of its own.
static PATTERNS: LazyLock<(tempfile::TempDir, PatternBook)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let book = PatternBook::open(dir.path(), true).expect("a pattern state");
    (dir, book)
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = match selector % 3 {
        0 => ContentEncoding::Identity,
        1 => ContentEncoding::Zstd,
        _ => ContentEncoding::Gzip,
    };
    let _ = ingest::prepare(body, encoding, 1 << 20, &FieldNames::default(), &PATTERNS.1, None);
});
