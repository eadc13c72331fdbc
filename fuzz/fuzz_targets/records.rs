//! The agent's record splitter: any bytes, fed in any pieces, with or
//! without multiline joining, as plain, Docker or CRI lines (the second byte
//! picks). Records come out in file order, within the
//! bytes fed, never longer than the maximum record size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_agent::sources::file::container::ContainerFormat;
use lookout_agent::sources::file::records::{Multiline, RecordReader};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let [shape, framing, rest @ ..] = data else {
        return;
    };
    let shape = *shape;
    let container = match framing % 3 {
        0 => None,
        1 => Some(ContainerFormat::Docker),
        _ => Some(ContainerFormat::Cri),
    };
    let max_record = 16 + usize::from(shape & 0x3f) * 8;
    let multiline = (shape & 0x40 != 0).then(|| Multiline {
        start: regex::bytes::Regex::new(r"^\d").expect("a valid pattern"),
        timeout: Duration::from_secs(1),
    });
    let mut reader = RecordReader::new(0, max_record, multiline).with_container(container);
    let now = Instant::now();
    let mut out = Vec::new();
    let piece = 1 + usize::from(shape >> 7) * 7;
    for chunk in rest.chunks(piece) {
        reader.feed(chunk, now, &mut out);
    }
    reader.finish(&mut out);
    let mut previous = None;
    for record in &out {
        assert!(
            record.offset < rest.len() as u64 || rest.is_empty(),
            "offset {} past the end",
            record.offset
        );
        assert!(previous.is_none_or(|p| p < record.offset), "records out of order");
        assert!(record.message.len() <= max_record * 4, "record longer than its maximum");
        previous = Some(record.offset);
    }
    assert!(reader.settled_offset() <= rest.len() as u64);
});
