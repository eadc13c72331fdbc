//! Query-string parameters of the read API, parsed by hand so that every
//! mistake gets a 400 naming the parameter and the expected form (axum's
//! `Query` extractor would answer plain text). Unknown and repeated
//! parameters are errors too: a typo such as `levle=error` must not silently
//! widen a search.

use super::error::ApiError;
use crate::store::search::{LogFilter, SortOrder};
use axum::extract::Query;
use axum::http::Uri;
use lookout_shared::config::HumanDuration;
use std::collections::HashSet;

/// The parameters of one request, consumed one by one.
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes the query string of `uri`.
    pub fn from_uri(uri: &Uri) -> Result<Params, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|err| ApiError::bad_request(format!("the query string is malformed: {err}")))?;
        let mut seen = HashSet::with_capacity(pairs.len());
        if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
            return Err(ApiError::bad_request(format!(
                "parameter `{name}` is given more than once"
            )));
        }
        Ok(Params { pairs })
    }

    /// Takes parameter `name`; an empty value counts as absent.
    pub fn text(&mut self, name: &str) -> Option<String> {
        let position = self.pairs.iter().position(|(n, _)| n == name)?;
        let (_, value) = self.pairs.swap_remove(position);
        Some(value).filter(|v| !v.trim().is_empty())
    }

    /// Takes a whole number in `[min, max]`.
    pub fn number(&mut self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let value: u64 = text
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("parameter `{name}`: `{text}` is not a whole number")))?;
        if !(min..=max).contains(&value) {
            return Err(ApiError::bad_request(format!(
                "parameter `{name}`: {value} is out of range; use {min} to {max}"
            )));
        }
        Ok(Some(value))
    }

    /// Takes a time: RFC 3339 or Unix milliseconds.
    pub fn time(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        crate::query::parse_time(text.trim()).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter `{name}`: `{text}` is neither an RFC 3339 time (such as \
                     2024-05-01T12:00:00Z) nor Unix milliseconds"
            ))
        })
    }

    /// Takes a duration such as `30s` or `5m`, in ms, at least 1 ms.
    pub fn duration_ms(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let duration: HumanDuration = text
            .parse()
            .map_err(|err| ApiError::bad_request(format!("parameter `{name}`: {err}")))?;
        match i64::try_from(duration.get().as_millis()) {
            Ok(ms) if ms >= 1 => Ok(Some(ms)),
            _ => Err(ApiError::bad_request(format!(
                "parameter `{name}`: `{text}` must be at least 1ms"
            ))),
        }
    }

    /// Takes `order`: `desc` (newest first, the default) or `asc`.
    pub fn order(&mut self) -> Result<SortOrder, ApiError> {
        match self.text("order").as_deref().map(str::trim) {
            None | Some("desc") => Ok(SortOrder::Desc),
            Some("asc") => Ok(SortOrder::Asc),
            Some(other) => Err(ApiError::bad_request(format!(
                "parameter `order`: `{other}` is neither `asc` nor `desc`"
            ))),
        }
    }

    /// Takes the filter parameters shared by search and histogram:
    /// `q`, `start`, `end`, `host`, `source`, `level`.
    pub fn filter(&mut self) -> Result<LogFilter, ApiError> {
        let filter = LogFilter {
            q: self.text("q").unwrap_or_default(),
            start: self.time("start")?,
            end: self.time("end")?,
            host: self.text("host"),
            source: self.text("source"),
            level: self.text("level"),
            ingested_since: None,
        };
        if let (Some(start), Some(end)) = (filter.start, filter.end)
            && start >= end
        {
            return Err(ApiError::bad_request("parameter `start` must be before `end`"));
        }
        Ok(filter)
    }

    /// Takes every parameter named `<prefix><key>`, as `(key, value)` pairs.
    pub fn prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let (taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(name, _)| name.starts_with(prefix));
        self.pairs = rest;
        taken
            .into_iter()
            .map(|(name, value)| (name[prefix.len()..].to_owned(), value))
            .collect()
    }

    /// Fails on any parameter not taken.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => Err(ApiError::bad_request(format!("unknown parameter `{name}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_time;

    fn params(query: &str) -> Params {
        Params::from_uri(&format!("/x?{query}").parse().unwrap()).unwrap()
    }

    #[test]
    fn times_parse_both_forms() {
        assert_eq!(parse_time("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20.123Z"), Some(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T23:13:20.123+01:00"), Some(1_700_000_000_123));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2023-11-14"), None);
        assert_eq!(parse_time("99999999999999999999"), None);
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = params("limit=abc").number("limit", 0, 10).unwrap_err();
        assert!(format!("{err:?}").contains("parameter `limit`: `abc` is not a whole number"));
        let err = params("start=soon").filter().unwrap_err();
        assert!(format!("{err:?}").contains("parameter `start`: `soon`"));
        let err = params("start=20&end=10").filter().unwrap_err();
        assert!(format!("{err:?}").contains("`start` must be before `end`"));
        assert!(Params::from_uri(&"/x?a=1&a=2".parse().unwrap()).is_err());
        let mut p = params("q=x&levle=error");
        assert_eq!(p.text("q").as_deref(), Some("x"));
        let err = p.finish().unwrap_err();
        assert!(format!("{err:?}").contains("unknown parameter `levle`"));
    }

    #[test]
    fn prefixed_parameters_are_taken_together() {
        let mut p = params("label.mount=%2F&label.x=1&name=n");
        let mut taken = p.prefixed("label.");
        taken.sort();
        assert_eq!(taken, vec![("mount".into(), "/".into()), ("x".into(), "1".into())]);
        assert_eq!(p.text("name").as_deref(), Some("n"));
        p.finish().unwrap();
    }

    #[test]
    fn values_are_url_decoded_and_empty_means_absent() {
        let mut p = params("q=%22disk+full%22&host=");
        assert_eq!(p.text("q").as_deref(), Some("\"disk full\""));
        assert_eq!(p.text("host"), None);
    }
}
