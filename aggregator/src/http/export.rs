//! `GET /api/v1/logs/export`: the matching lines, or a pipe's table, as
//! NDJSON or CSV, for a download.
//!
//! Lines are streamed as they are read from the index (newest first, or
//! `order=asc`), at most `limit` and never more than `[export] max_lines`;
//! only their places are held meanwhile. `X-Lookout-Total` says how many
//! matched, so a client knows when the file is cut. A body that stops short
//! (a read failed midway, or the client read nothing for [`STALL`]) ends
//! with an error, never as a file that looks whole. At most
//! [`MAX_EXPORTS`] exports, tables included, run at once.

use super::AppState;
use super::error::ApiError;
use super::logs::blocking;
use super::params::Params;
use crate::metrics::RejectReason;
use crate::query::aggregate::{Table, Value};
use crate::query::{self, is_field_name};
use crate::store::schema::Hit;
use crate::store::search::SearchError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use lookout_shared::parse::fields::FieldValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use tokio::sync::{mpsc, oneshot};

/// Most extracted fields a CSV may add as columns.
const MAX_COLUMNS: usize = 64;
/// Bytes gathered before a piece of the body is sent.
const PIECE_BYTES: usize = 64 * 1024;
/// Exports streamed at once: each holds a blocking thread and its lines'
/// places while it runs.
pub const MAX_EXPORTS: usize = 4;
/// A client that takes no piece for this long is dropped, freeing its thread.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// The file's format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// Streams the lines (or the table) `q` selects.
pub async fn export(State(app): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    let format = match params.text("format").as_deref().map(str::trim) {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameter `format`: `{other}` is neither `ndjson` nor `csv`"
            )));
        }
    };
    let max = app.export.max_lines;
    let limit = params.number("limit", 1, max)?.unwrap_or(max);
    let order = params.order()?;
    let columns = match params.text("columns") {
        None => Vec::new(),
        Some(text) => csv_columns(&text)?,
    };
    params.finish()?;
    if format == Format::Ndjson && !columns.is_empty() {
        return Err(ApiError::bad_request(
            "parameter `columns` names a CSV's field columns; NDJSON lines carry all their fields",
        ));
    }
    let parsed = query::parse_query(&filter.q).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let Ok(permit) = app.exports.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            RejectReason::Unavailable,
            format!("{MAX_EXPORTS} exports are running; retry when one is done"),
        ));
    };
    if let Some(stats) = parsed.stats {
        // A table: its own `| sort` and `| limit` shape it.
        let expr = parsed.filter;
        let table = blocking(app.store.clone(), move |store| store.stats(&filter, &expr, &stats)).await?;
        drop(permit);
        let total = table.groups as u64;
        return Ok(download(format, total, Body::from(table_file(&table, format))));
    }

    let runtime = tokio::runtime::Handle::current();
    let (started_tx, started_rx) = oneshot::channel::<Result<u64, SearchError>>();
    let (pieces_tx, mut pieces_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let store = app.store.clone();
    // Set when the body stops short (a read failed, or the client stopped
    // reading): the stream then ends with an error, never as a whole file.
    let cut = Arc::new(AtomicBool::new(false));
    let cut_by_task = cut.clone();
    // `limit` is at most `[export] max_lines`, at most 10^8.
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // A piece waits at most `STALL` for a client that reads nothing.
        let send = |piece: std::io::Result<Vec<u8>>| {
            let sent = runtime.block_on(pieces_tx.send_timeout(piece, STALL)).is_ok();
            if !sent {
                cut_by_task.store(true, Ordering::Relaxed);
            }
            sent
        };
        let mut started = Some(started_tx);
        let mut piece = Vec::with_capacity(PIECE_BYTES);
        if format == Format::Csv {
            csv_header(&mut piece, &columns);
        }
        let result = store.export(
            &filter,
            limit,
            order,
            |total| started.take().is_some_and(|tx| tx.send(Ok(total)).is_ok()),
            |hit| {
                match format {
                    Format::Ndjson => ndjson_line(&mut piece, &hit),
                    Format::Csv => csv_line(&mut piece, &hit, &columns),
                }
                // A client that went away ends the export.
                piece.len() < PIECE_BYTES || send(Ok(std::mem::replace(&mut piece, Vec::with_capacity(PIECE_BYTES))))
            },
        );
        match (result, started.take()) {
            (Ok(()), _) => {
                if !piece.is_empty() {
                    send(Ok(piece));
                }
            }
            (Err(err), Some(tx)) => {
                let _ = tx.send(Err(err));
            }
            (Err(err), None) => {
                tracing::error!(error = %err, "an export failed midway; its body ends with an error");
                cut_by_task.store(true, Ordering::Relaxed);
            }
        }
    });
    let total = started_rx
        .await
        .map_err(|err| ApiError::internal("the export failed", &err))??;
    let mut ended = false;
    let pieces = futures_util::stream::poll_fn(move |cx| match pieces_rx.poll_recv(cx) {
        Poll::Ready(None) if !ended && cut.load(Ordering::Relaxed) => {
            ended = true;
            Poll::Ready(Some(Err(std::io::Error::other("the export stopped short"))))
        }
        other => other,
    });
    Ok(download(format, total, Body::from_stream(pieces)))
}

/// The names of `columns=a,b`: extracted fields a CSV adds after its own
/// (`fields.<name>` is the field `<name>`).
fn csv_columns(text: &str) -> Result<Vec<String>, ApiError> {
    let names: Vec<String> = text
        .split(',')
        .map(|name| {
            let name = name.trim();
            name.strip_prefix("fields.").unwrap_or(name).to_owned()
        })
        .collect();
    if names.len() > MAX_COLUMNS {
        return Err(ApiError::bad_request(format!(
            "parameter `columns`: at most {MAX_COLUMNS} fields"
        )));
    }
    if let Some(bad) = names.iter().find(|name| !is_field_name(name)) {
        return Err(ApiError::bad_request(format!(
            "parameter `columns`: `{bad}` is not a field name"
        )));
    }
    if let Some((_, twice)) = names.iter().enumerate().find(|(at, name)| names[..*at].contains(name)) {
        return Err(ApiError::bad_request(format!(
            "parameter `columns`: `{twice}` is named twice"
        )));
    }
    Ok(names)
}

/// The answer: a file to save, and how many lines (or rows) matched.
fn download(format: Format, total: u64, body: Body) -> Response {
    let (content_type, extension) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let name = jiff::Timestamp::now().strftime("lookout-%Y%m%d-%H%M%S").to_string();
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert("x-lookout-total", HeaderValue::from(total));
    response
}

fn ndjson_line(out: &mut Vec<u8>, hit: &Hit) {
    // A hit always serializes: its map keys are strings.
    if serde_json::to_writer(&mut *out, hit).is_ok() {
        out.push(b'\n');
    }
}

fn csv_header(out: &mut Vec<u8>, columns: &[String]) {
    let names = ["timestamp", "host", "source", "level", "message"];
    let all: Vec<&str> = names.into_iter().chain(columns.iter().map(String::as_str)).collect();
    for (i, name) in all.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_text(out, name);
    }
    out.extend_from_slice(b"\r\n");
}

fn csv_line(out: &mut Vec<u8>, hit: &Hit, columns: &[String]) {
    for (i, text) in [&hit.timestamp, &hit.host, &hit.source, &hit.level, &hit.message]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        csv_text(out, text);
    }
    for name in columns {
        out.push(b',');
        match hit.fields.get(name) {
            Some(FieldValue::Number(n)) => csv_number(out, *n),
            Some(FieldValue::Text(text)) => csv_text(out, text),
            None => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// One CSV cell of text (RFC 4180: quoted when it holds a comma, a quote or
/// a line break, quotes doubled; also a `;`, which spreadsheets of some
/// locales split cells at). A cell a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
/// leading `'`, as Kibana's CSV export does: log lines are written by
/// whoever reaches the logged service.
fn csv_text(out: &mut Vec<u8>, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if !formula && !text.contains([',', ';', '"', '\n', '\r']) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    if formula {
        out.push(b'\'');
    }
    for part in text.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

fn csv_number(out: &mut Vec<u8>, n: f64) {
    let text = if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// A table as a file: CSV with its column names first, or NDJSON with an
/// object per row (keys in column order).
fn table_file(table: &Table, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    if format == Format::Csv {
        for (i, name) in table.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            csv_text(&mut out, name);
        }
        out.extend_from_slice(b"\r\n");
    }
    for row in &table.rows {
        match format {
            Format::Csv => {
                for (i, value) in row.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match value {
                        Value::Null => {}
                        Value::Count(n) => out.extend_from_slice(n.to_string().as_bytes()),
                        Value::Number(n) => csv_number(&mut out, *n),
                        Value::Text(_) | Value::Time(_) => {
                            // A value's JSON text is a string here.
                            let text = serde_json::to_value(value).ok();
                            csv_text(&mut out, text.as_ref().and_then(|v| v.as_str()).unwrap_or_default());
                        }
                    }
                }
            }
            Format::Ndjson => {
                out.push(b'{');
                for (i, (name, value)) in table.columns.iter().zip(row).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    // Strings and the table's values always serialize.
                    let _ = serde_json::to_writer(&mut out, name);
                    out.push(b':');
                    let _ = serde_json::to_writer(&mut out, value);
                }
                out.push(b'}');
            }
        }
        out.extend_from_slice(if format == Format::Csv { b"\r\n" } else { b"\n" });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(text: &str) -> String {
        let mut out = Vec::new();
        csv_text(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_cells_quote_what_they_must_and_defuse_formulas() {
        assert_eq!(cell("plain text"), "plain text");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(cell("- 1119715593 R02"), "\"'- 1119715593 R02\"");
        assert_eq!(cell("x;=cmd|' /C calc'!A0"), "\"x;=cmd|' /C calc'!A0\"");
        assert_eq!(cell(""), "");
        let mut out = Vec::new();
        csv_number(&mut out, -5.0);
        out.push(b' ');
        csv_number(&mut out, 0.25);
        assert_eq!(out, b"-5 0.25");
    }
}
