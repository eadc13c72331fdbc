//! From request body bytes to an [`IngestBatch`]: undo the `Content-Encoding`
//! within a size bound, then parse the JSON once.

use super::IngestError;
use lookout_shared::wire::IngestBatch;
use std::borrow::Cow;
use std::io::Read;

/// The body encodings the ingest endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No `Content-Encoding` (or `identity`).
    Identity,
    /// `zstd`, what the agent sends.
    Zstd,
    /// `gzip`, for other senders.
    Gzip,
}

impl ContentEncoding {
    /// Reads the `Content-Encoding` header value.
    pub fn from_header(value: Option<&str>) -> Result<Self, IngestError> {
        let Some(value) = value.map(str::trim) else {
            return Ok(ContentEncoding::Identity);
        };
        if value.is_empty() || value.eq_ignore_ascii_case("identity") {
            Ok(ContentEncoding::Identity)
        } else if value.eq_ignore_ascii_case("zstd") {
            Ok(ContentEncoding::Zstd)
        } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
            Ok(ContentEncoding::Gzip)
        } else {
            Err(IngestError::UnsupportedEncoding(format!(
                "Content-Encoding `{value}` is not supported; send zstd, gzip or no encoding"
            )))
        }
    }
}

// A zstd frame may ask for a window this large (32 MiB) and no larger: the
// decoder allocates the window up front, so this bounds a request's memory.
// The agent's compression levels use far smaller windows.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

thread_local! {
    /// One zstd decompression context per thread, reset for each body:
    /// creating one per request was 6 % of the aggregator's CPU under 2,000
    /// agents' small batches.
    static ZSTD_CONTEXT: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// The decompressed body; at most `limit` bytes, else [`IngestError::TooLarge`].
pub fn decompress(body: &[u8], encoding: ContentEncoding, limit: u64) -> Result<Cow<'_, [u8]>, IngestError> {
    match encoding {
        ContentEncoding::Identity => {
            if body.len() as u64 > limit {
                return Err(too_large(limit));
            }
            Ok(Cow::Borrowed(body))
        }
        ContentEncoding::Zstd => ZSTD_CONTEXT.with_borrow_mut(|context| {
            let bad = |err: std::io::Error| IngestError::BadEncoding(format!("body is not valid zstd: {err}"));
            // A body that failed half-way leaves the session in any state.
            context
                .reset(zstd::zstd_safe::ResetDirective::SessionOnly)
                .map_err(|code| bad(std::io::Error::other(zstd::zstd_safe::get_error_name(code))))?;
            let mut decoder = zstd::stream::read::Decoder::with_context(body, context);
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(bad)?;
            read_bounded(decoder, body.len(), limit, "zstd").map(Cow::Owned)
        }),
        ContentEncoding::Gzip => {
            let decoder = flate2::read::MultiGzDecoder::new(body);
            read_bounded(decoder, body.len(), limit, "gzip").map(Cow::Owned)
        }
    }
}

fn read_bounded(reader: impl Read, sent: usize, limit: u64, format: &str) -> Result<Vec<u8>, IngestError> {
    // Log lines compress about 5-10x; start there instead of growing from zero.
    let guess = u64::try_from(sent).unwrap_or(u64::MAX).saturating_mul(8).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    // One byte more than allowed tells "exactly at the limit" from "over it".
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|err| IngestError::BadEncoding(format!("body is not valid {format}: {err}")))?;
    if out.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

fn too_large(limit: u64) -> IngestError {
    IngestError::TooLarge(format!(
        "the decompressed body is larger than ingest.max_decompressed_bytes ({limit} bytes); send smaller batches"
    ))
}

/// Parses the JSON body; errors name the field and the line and column.
pub fn parse(json: &[u8]) -> Result<IngestBatch, IngestError> {
    match serde_json::from_slice(json) {
        Ok(batch) => Ok(batch),
        // The fast parse keeps no path; only a failed body pays for a second,
        // path-tracking parse to say which field is wrong.
        Err(first) => Err(IngestError::BadBatch(explain(json, first))),
    }
}

fn explain(json: &[u8], first: serde_json::Error) -> String {
    if let Err(utf8) = std::str::from_utf8(json) {
        return format!(
            "body is not valid UTF-8 (byte {} is invalid); JSON must be UTF-8 and the agent \
             replaces invalid bytes in log lines with U+FFFD",
            utf8.valid_up_to()
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    match serde_path_to_error::deserialize::<_, IngestBatch>(&mut deserializer) {
        Err(err) if err.path().to_string() != "." => {
            format!("body is not a valid ingest batch: {}: {}", err.path(), err.inner())
        }
        _ => format!("body is not a valid ingest batch: {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn header_values() {
        assert_eq!(ContentEncoding::from_header(None).unwrap(), ContentEncoding::Identity);
        assert_eq!(
            ContentEncoding::from_header(Some("ZSTD")).unwrap(),
            ContentEncoding::Zstd
        );
        assert_eq!(
            ContentEncoding::from_header(Some("gzip")).unwrap(),
            ContentEncoding::Gzip
        );
        let err = ContentEncoding::from_header(Some("br")).unwrap_err();
        assert!(err.to_string().contains("`br` is not supported"), "{err}");
    }

    #[test]
    fn zstd_and_gzip_round_trip_within_the_limit() {
        let text = b"{\"host\":\"h\",\"streams\":[]}".repeat(10);
        let zstd = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(&*decompress(&zstd, ContentEncoding::Zstd, 1000).unwrap(), &text[..]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            &*decompress(&gz, ContentEncoding::Gzip, text.len() as u64).unwrap(),
            &text[..]
        );
        let err = decompress(&gz, ContentEncoding::Gzip, text.len() as u64 - 1).unwrap_err();
        assert!(matches!(err, IngestError::TooLarge(_)), "{err}");
    }

    #[test]
    fn a_body_that_fails_half_way_leaves_the_next_one_whole() {
        // One thread, so the same context serves every body.
        let text = b"{\"host\":\"h\",\"streams\":[]}".repeat(1000);
        let whole = zstd::encode_all(&text[..], 3).unwrap();
        let cut = &whole[..whole.len() / 2];
        for broken in [cut, &whole[..], b"not zstd at all"] {
            // Over the limit, cut short, or not zstd: each fails...
            assert!(decompress(broken, ContentEncoding::Zstd, 100).is_err());
            // ...and the next body decodes from its start.
            assert_eq!(&*decompress(&whole, ContentEncoding::Zstd, 1 << 20).unwrap(), &text[..]);
        }
        assert!(
            decompress(cut, ContentEncoding::Zstd, 1 << 20).is_err(),
            "a cut frame is an error"
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = decompress(b"not zstd at all", ContentEncoding::Zstd, 1000).unwrap_err();
        assert!(err.to_string().starts_with("body is not valid zstd: "), "{err}");
        let err = decompress(b"not gzip at all", ContentEncoding::Gzip, 1000).unwrap_err();
        assert!(err.to_string().starts_with("body is not valid gzip: "), "{err}");
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = parse(br#"{"host":"h","streams":[{"stream":"0000000000000000","source":"s","start":0,"end":1,"records":[{"offset":"x","read_at_ms":0,"message":""}]}]}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("streams[0].records[0].offset"), "{text}");
        assert!(text.contains("line 1 column"), "{text}");
        let err = parse(b"{\"host\":\"h\",").unwrap_err();
        assert!(err.to_string().contains("EOF while parsing"), "{err}");
        let err = parse(b"{\"host\":\"h\xff\"}").unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8 (byte 10"), "{err}");
    }
}
