//! What the receivers read from the network: any bytes, as a syslog TCP
//! stream split at any points, an Elasticsearch bulk body, a Loki push
//! (JSON or snappy protobuf) or an OTLP request (JSON or protobuf), give
//! lines within their bounds or a clean error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_aggregator::receivers::syslog::framing::Framer;
use lookout_aggregator::receivers::{elasticsearch, loki, otlp};
use std::net::{IpAddr, Ipv4Addr};

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// What a request's lines may take (the aggregator gives twice
/// `max_decompressed_bytes`); small, so the budget's refusal is reached too.
const BUDGET: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => frame(body, usize::from(selector / 6) + 1),
        1 => {
            if let Ok(items) = elasticsearch::read_bulk(body, Some("fuzz"), PEER, BUDGET) {
                let _ = elasticsearch::response(&items, &[], 0);
            }
        }
        2 => drop(loki::read_json(body, PEER, BUDGET)),
        3 => drop(loki::read_protobuf(body, 1 << 20, PEER, BUDGET)),
        4 => drop(otlp::read_json(body, PEER, BUDGET)),
        _ => drop(otlp::read_protobuf(body, PEER, BUDGET)),
    }
});

/// Feeds `body` to a framer with a small maximum in reads of `step` bytes:
/// every frame stays within the maximum and the buffer never grows past
/// what one more read adds.
fn frame(body: &[u8], step: usize) {
    const MAX: usize = 64;
    let mut framer = Framer::new(MAX);
    let mut buf = Vec::new();
    for piece in body.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            let (used, frame) = framer.next(&buf);
            assert!(used <= buf.len());
            let done = match frame {
                Some(frame) => {
                    assert!(frame.bytes.len() <= MAX);
                    false
                }
                None => true,
            };
            buf.drain(..used);
            if done {
                break;
            }
        }
        assert!(buf.len() <= MAX + 12 + step, "the framer holds at most one message");
    }
    if let Some(frame) = framer.finish(&buf) {
        assert!(frame.bytes.len() <= MAX);
    }
}
