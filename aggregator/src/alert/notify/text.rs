//! Wording the notifiers share: numbers and durations as people write
//! them, text cut to a length, and the UI's links for an alert's lines.

use super::url_encode;
use crate::alert::model::Alert;

/// For a log rule (one with sample lines or a `query` annotation), the UI's
/// search page for the lines behind it: `external_url/search?q=QUERY&host=HOST&source=SOURCE`.
pub(super) fn search_url(external_url: &str, alert: &Alert) -> Option<String> {
    let query = alert.annotations.get("query");
    if query.is_none() && alert.sample_lines.is_empty() {
        return None;
    }
    let params: Vec<String> = [
        ("q", query),
        ("host", alert.labels.get("host")),
        ("source", alert.labels.get("source")),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| format!("{key}={}", url_encode(v))))
    .collect();
    Some(format!(
        "{}/search?{}",
        external_url.trim_end_matches('/'),
        params.join("&")
    ))
}

/// The UI's search page for one pattern's lines of an alert:
/// `external_url/search?q=pattern:ID&host=HOST&source=SOURCE`.
pub(super) fn pattern_url(external_url: &str, alert: &Alert, pattern: &str) -> String {
    let params: Vec<String> = [
        ("q", Some(&format!("pattern:{pattern}"))),
        ("host", alert.labels.get("host")),
        ("source", alert.labels.get("source")),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| format!("{key}={}", url_encode(v))))
    .collect();
    format!("{}/search?{}", external_url.trim_end_matches('/'), params.join("&"))
}

/// At most `max` characters of `text`, with `…` when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A value as people write it: `85.2`, `80`, `0.0123`.
pub(super) fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let decimals = if value.abs() < 1.0 { 4 } else { 2 };
    let text = format!("{value:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// `3d 4h`, `12m 5s`, `40s`: the two largest units.
pub(super) fn human_duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let units = [
        (seconds / 86_400, "d"),
        (seconds / 3600 % 24, "h"),
        (seconds / 60 % 60, "m"),
        (seconds % 60, "s"),
    ];
    let parts: Vec<String> = units
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}
