//! One series' samples of one hour as one compressed block: what
//! `metrics.sqlite` keeps of every hour that has passed (see
//! [`super::writer`]'s compaction). Pure encoding, no I/O.
//!
//! Times are delta-of-delta encoded (an agent's steady interval makes every
//! one a zero), values as decimal mantissas with one exponent for the block
//! when every value is one exactly (a percentage with two decimals, a byte
//! count), deltas between neighbours, else as the XOR of each value's bits
//! with its predecessor's, as Gorilla does. Every number is a zig-zag
//! varint, and the whole is compressed with zstd, which removes the runs of
//! zeros. Lossless for any finite `f64`, negative zero included: a decimal
//! exponent is used only if dividing the mantissa by it gives back the very
//! same bits.

/// The first byte of every block: its format (the varints compressed with
/// zstd, or as they are if compressing failed).
const FORMAT: u8 = 1;
const FORMAT_PLAIN: u8 = 2;
/// Value encodings.
const DECIMAL: u8 = 0;
const XOR: u8 = 1;
/// Largest decimal exponent tried (a value with more decimals is XOR-encoded).
const MAX_EXPONENT: u32 = 9;
/// Largest mantissa magnitude: every integer up to it is exact in an `f64`.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;
/// Most samples a block may hold: one per millisecond of its hour (times
/// are whole milliseconds and distinct); a larger count is corruption.
pub const MAX_SAMPLES: usize = super::rollup::HOUR_MS as usize;
/// zstd level: fast, and the varints leave it little to find anyway.
const ZSTD_LEVEL: i32 = 3;

/// Why a stored block could not be read.
#[derive(Debug, thiserror::Error)]
#[error("a compressed metric block is unreadable: {0}")]
pub struct ChunkError(String);

/// The samples of a stored block; an unreadable one (a damaged file) is
/// logged and read as empty, so that one bad block stops neither start-up,
/// compaction, retention nor ingest. Its hour's samples are lost; the next
/// sample of that hour replaces it.
pub fn read_stored(series_id: i64, hour: i64, block: &[u8]) -> Vec<(i64, f64)> {
    decode(block).unwrap_or_else(|err| {
        tracing::warn!(series_id, hour, error = %err, "skipping an unreadable metric block");
        Vec::new()
    })
}

/// Encodes `points` (sorted by time, distinct times, all in one hour).
pub fn encode(points: &[(i64, f64)]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(points.len() * 3 + 16);
    put_varint(&mut raw, points.len() as u64);
    let mut previous_time = 0i64;
    let mut previous_delta = 0i64;
    for (i, &(time, _)) in points.iter().enumerate() {
        match i {
            0 => put_signed(&mut raw, time),
            _ => {
                let delta = time.wrapping_sub(previous_time);
                put_signed(&mut raw, delta.wrapping_sub(previous_delta));
                previous_delta = delta;
            }
        }
        previous_time = time;
    }
    match decimal_exponent(points) {
        Some(exponent) => {
            raw.push(DECIMAL);
            raw.push(exponent as u8);
            let scale = 10f64.powi(exponent as i32);
            let mut previous = 0i64;
            for &(_, value) in points {
                let mantissa = (value * scale).round() as i64;
                put_signed(&mut raw, mantissa.wrapping_sub(previous));
                previous = mantissa;
            }
        }
        None => {
            raw.push(XOR);
            let mut previous = 0u64;
            for &(_, value) in points {
                let bits = value.to_bits();
                put_varint(&mut raw, bits ^ previous);
                previous = bits;
            }
        }
    }
    // Compressing a buffer in memory fails only without memory; the block
    // is then kept as it is.
    match zstd::bulk::compress(&raw, ZSTD_LEVEL) {
        Ok(compressed) => [&[FORMAT][..], &compressed].concat(),
        Err(_) => [&[FORMAT_PLAIN][..], &raw].concat(),
    }
}

/// Decodes a block written by [`encode`]: its samples, oldest first.
pub fn decode(block: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    let raw = match block.split_first() {
        // A count beyond MAX_SAMPLES is refused below; each sample takes at
        // most 21 bytes (two varints and a byte), so this bounds the output.
        Some((&FORMAT, compressed)) => {
            zstd::bulk::decompress(compressed, 16 + MAX_SAMPLES * 21).map_err(|err| ChunkError(err.to_string()))?
        }
        Some((&FORMAT_PLAIN, plain)) => plain.to_vec(),
        _ => return Err(ChunkError("unknown format".into())),
    };
    let mut reader = Reader { bytes: &raw, at: 0 };
    let count = usize::try_from(reader.varint()?).unwrap_or(usize::MAX);
    // Each sample takes at least two bytes: checked before anything is reserved.
    if count > MAX_SAMPLES || count > raw.len() / 2 {
        return Err(ChunkError(format!("{count} samples in a block of {} bytes", raw.len())));
    }
    let mut times = Vec::with_capacity(count);
    let mut previous_delta = 0i64;
    for _ in 0..count {
        let number = reader.signed()?;
        let time = match times.last() {
            None => number,
            Some(&previous) => {
                previous_delta = previous_delta.wrapping_add(number);
                i64::wrapping_add(previous, previous_delta)
            }
        };
        if times.last().is_some_and(|&last| time <= last) {
            return Err(ChunkError("times out of order".into()));
        }
        times.push(time);
    }
    let mut points = Vec::with_capacity(count);
    match reader.byte()? {
        DECIMAL => {
            let exponent = u32::from(reader.byte()?);
            if exponent > MAX_EXPONENT {
                return Err(ChunkError(format!("decimal exponent {exponent}")));
            }
            let scale = 10f64.powi(exponent as i32);
            let mut mantissa = 0i64;
            for time in times {
                mantissa = mantissa.wrapping_add(reader.signed()?);
                points.push((time, mantissa as f64 / scale));
            }
        }
        XOR => {
            let mut bits = 0u64;
            for time in times {
                bits ^= reader.varint()?;
                points.push((time, f64::from_bits(bits)));
            }
        }
        other => return Err(ChunkError(format!("value encoding {other}"))),
    }
    if reader.at != raw.len() {
        return Err(ChunkError("bytes after the last sample".into()));
    }
    Ok(points)
}

/// The smallest exponent `e` such that every value is `m / 10^e` for an
/// integer `m`, bit for bit; `None` if there is none up to [`MAX_EXPONENT`].
fn decimal_exponent(points: &[(i64, f64)]) -> Option<u32> {
    (0..=MAX_EXPONENT).find(|&exponent| {
        let scale = 10f64.powi(exponent as i32);
        points.iter().all(|&(_, value)| {
            let mantissa = (value * scale).round();
            mantissa.abs() <= MAX_MANTISSA && ((mantissa as i64) as f64 / scale).to_bits() == value.to_bits()
        })
    })
}

fn put_varint(out: &mut Vec<u8>, mut number: u64) {
    while number >= 0x80 {
        out.push((number as u8) | 0x80);
        number >>= 7;
    }
    out.push(number as u8);
}

fn put_signed(out: &mut Vec<u8>, number: i64) {
    put_varint(out, ((number << 1) ^ (number >> 63)) as u64);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, ChunkError> {
        let byte = *self.bytes.get(self.at).ok_or_else(|| ChunkError("cut short".into()))?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, ChunkError> {
        let mut number = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            number |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(number);
            }
        }
        Err(ChunkError("a number longer than 64 bits".into()))
    }

    fn signed(&mut self) -> Result<i64, ChunkError> {
        let number = self.varint()?;
        Ok(((number >> 1) as i64) ^ -((number & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(points: &[(i64, f64)]) -> usize {
        let block = encode(points);
        let back = decode(&block).unwrap();
        assert_eq!(back.len(), points.len());
        for (a, b) in back.iter().zip(points) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "{b:?}");
        }
        block.len()
    }

    #[test]
    fn every_kind_of_value_comes_back_bit_for_bit() {
        round_trip(&[]);
        round_trip(&[(1_700_000_000_000, 42.0)]);
        let awkward = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            1e-300,
            0.1 + 0.2,
            100.0 * 90.0 / 140.0,
            9_007_199_254_740_993.0,
            -12.5,
            37.12,
        ];
        let points: Vec<(i64, f64)> = awkward
            .iter()
            .enumerate()
            .map(|(i, &v)| (i64::MIN / 2 + i as i64 * 7_919, v))
            .collect();
        round_trip(&points);
        // Decimal blocks, with negative zero beside a zero.
        round_trip(&[(0, 0.0), (10, -0.0), (20, 1.5)]);
        round_trip(&[(0, 37.12), (10_000, 37.5), (20_000, -3.01)]);
        // Irregular and negative times.
        round_trip(&[(-5_000, 1.0), (-4_999, 2.0), (1_000_000, 3.0), (1_000_001, 4.0)]);
    }

    #[test]
    fn an_agents_hour_is_a_few_bytes_a_sample() {
        // 360 samples 10 s apart: a percentage with two decimals, and a
        // byte count.
        let mut state = 12345u64;
        let mut percent = 5000i64;
        let points: Vec<(i64, f64)> = (0..360)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                percent = (percent + (state >> 33) as i64 % 301 - 150).clamp(0, 10_000);
                (1_700_000_000_000 + i * 10_000, percent as f64 / 100.0)
            })
            .collect();
        let bytes = round_trip(&points);
        assert!(bytes < 360 * 2, "{bytes} bytes for 360 percentages");
        let used: Vec<(i64, f64)> = (0..360)
            .map(|i| (1_700_000_000_000 + i * 10_000, 52_000_000_000.0 + (i * 4096) as f64))
            .collect();
        let bytes = round_trip(&used);
        assert!(bytes < 360, "{bytes} bytes for 360 byte counts");
    }

    #[test]
    fn damaged_blocks_are_errors() {
        let block = encode(&[(0, 1.0), (10, 2.0), (20, 3.0)]);
        assert!(decode(&[]).is_err());
        assert!(read_stored(1, 0, &[]).is_empty());
        // A count the bytes cannot hold, and times going back.
        assert!(decode(&[FORMAT_PLAIN, 0xff, 0xff, 0x7f]).is_err());
        assert!(decode(&[FORMAT_PLAIN, 2, 4, 1, DECIMAL, 0, 2, 2]).is_err());
        assert!(decode(&[9]).is_err());
        assert!(decode(&[FORMAT_PLAIN, 1]).is_err());
        assert!(decode(&block[..block.len() - 1]).is_err());
        let mut flipped = block.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(decode(&flipped).is_err() || decode(&flipped).is_ok_and(|p| p.len() == 3));
        // A valid zstd frame whose content is not a block.
        let mut garbage = vec![FORMAT];
        garbage.extend(zstd::bulk::compress(&[0xff; 12], 3).unwrap());
        assert!(decode(&garbage).is_err());
    }
}
