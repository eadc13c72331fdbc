//! Saved searches: `GET /api/v1/searches` (the caller's own and the shared
//! ones), `POST /api/v1/searches` (save the search page's state), `DELETE
//! /api/v1/searches/{id}`, and `GET /api/v1/searches/{id}/rule?kind=…`: the
//! `[[rules]]` entry that alerts on it, for the rules file.

use super::AppState;
use super::access::Caller;
use super::error::ApiError;
use super::params::Params;
use crate::metrics::RejectReason;
use crate::query::pipe::GroupKey;
use crate::query::{self, MAX_QUERY_BYTES};
use crate::users::saved::{SavedError, SavedSearch};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest name.
const MAX_NAME_CHARS: usize = 100;
/// Longest host, source or level filter.
const MAX_FILTER_BYTES: usize = 1024;
/// The search page's quick ranges.
const RANGES: [&str; 5] = ["", "15m", "1h", "24h", "7d"];

/// What `POST /api/v1/searches` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSearch {
    name: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    shared: bool,
}

/// A saved search's number from a path.
fn search_id(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("`{text}` is not a saved search's number")))
}

/// Whose searches a caller sees: a user's name, or "" for an API token.
fn owner(caller: &Caller) -> String {
    caller.user_name().unwrap_or_default().to_owned()
}

/// The searches the caller sees, by name.
pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let users = app.access.users.clone();
    let owner = owner(&caller);
    let searches = blocking(move || users.saved_searches(&owner)).await?;
    Ok(Json(json!({ "searches": searches })))
}

/// Saves the search in the body for the caller.
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewSearch = {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ApiError::bad_request(format!("invalid saved search: {err}")))?
    };
    let name = new.name.trim().to_owned();
    // Bidirectional controls would let a shared name reorder what is shown after it.
    let unshown = |c: char| {
        c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(unshown) {
        return Err(ApiError::bad_request(format!(
            "`name`: 1 to {MAX_NAME_CHARS} characters, no control or direction characters"
        )));
    }
    if new.q.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(format!(
            "`q` is {} bytes long; at most {MAX_QUERY_BYTES} are allowed",
            new.q.len()
        )));
    }
    query::parse_query(&new.q).map_err(|err| ApiError::bad_request(format!("`q`: {err}")))?;
    if !RANGES.contains(&new.range.as_str()) {
        return Err(ApiError::bad_request(
            "`range`: one of \"15m\", \"1h\", \"24h\", \"7d\", or none",
        ));
    }
    for (key, value) in [("host", &new.host), ("source", &new.source), ("level", &new.level)] {
        if value.len() > MAX_FILTER_BYTES {
            return Err(ApiError::bad_request(format!(
                "`{key}`: at most {MAX_FILTER_BYTES} bytes"
            )));
        }
    }
    let search = SavedSearch {
        id: 0,
        owner: owner(&caller),
        name,
        q: new.q,
        range: new.range,
        host: new.host,
        source: new.source,
        level: new.level,
        shared: new.shared,
        created_ms: 0,
    };
    let users = app.access.users.clone();
    let id = blocking(move || users.save_search(&search)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// Removes a search: the caller's own, or a shared one for an admin.
pub async fn remove(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = search_id(&id)?;
    let users = app.access.users.clone();
    let owner = owner(&caller);
    let admin = caller.is_admin();
    blocking(move || users.remove_saved_search(&owner, admin, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `[[rules]]` entry that alerts on a saved search: `kind` is
/// `log_match` (any matching line in 5 minutes, per host), `error_rate`
/// (5 % of a host's and file's lines) or, for a query with a pipe,
/// `log_stats` (a row's last column above a threshold to fill in).
pub async fn rule(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let id = search_id(&id)?;
    let mut params = Params::from_uri(&uri)?;
    let kind = params.text("kind");
    params.finish()?;
    let users = app.access.users.clone();
    let owner = owner(&caller);
    let search = blocking(move || users.saved_search(&owner, id))
        .await?
        .ok_or_else(|| ApiError::from(SavedError::NotFound(id)))?;
    let (kind, toml) = rule_entry(&search, kind.as_deref().map(str::trim)).map_err(ApiError::bad_request)?;
    Ok(Json(json!({ "kind": kind, "toml": toml })))
}

/// The rules-file entry of `kind` for `search`: its query with the page's
/// host, source and level filters added (before the pipe, the query
/// before it in parentheses), named as the search; without a `kind`,
/// `log_stats` for a query with a pipe, else `log_match`.
fn rule_entry<'k>(search: &SavedSearch, kind: Option<&'k str>) -> Result<(&'k str, String), String> {
    let parsed = query::parse_query(&search.q).map_err(|err| err.to_string())?;
    let has_pipe = parsed.stats.is_some();
    let kind = kind.unwrap_or(if has_pipe { "log_stats" } else { "log_match" });
    if parsed
        .stats
        .as_ref()
        .is_some_and(|stats| stats.by.iter().any(|key| matches!(key, GroupKey::TimeBucket(_))))
    {
        return Err("a table over time (`by _time(…)`) cannot be a rule: group by fields instead".to_owned());
    }
    let mut parts = Vec::new();
    if !parsed.filter_text.is_empty() {
        parts.push(format!("({})", parsed.filter_text));
    }
    for (field, value) in [
        ("host", &search.host),
        ("source", &search.source),
        ("level", &search.level),
    ] {
        if !value.is_empty() {
            parts.push(format!("{field}:{}", quoted(value)));
        }
    }
    let filter = if parts.is_empty() {
        "*".to_owned()
    } else {
        parts.join(" ")
    };
    let query = format!("{filter} {}", parsed.pipes_text.trim()).trim().to_owned();
    let header = format!(
        "[[rules]]\nname = {}\nkind = \"{kind}\"\nquery = {}\n",
        toml_string(&search.name),
        toml_string(&query)
    );
    let body = match (kind, has_pipe) {
        ("log_match", false) => {
            "window = \"5m\"\ncount = 0\ngroup_by = [\"host\"]\n\
                                 annotations = { summary = \"{{ value }} matching lines on {{ host }}\" }\n"
        }
        ("error_rate", false) => {
            "window = \"5m\"\nratio = 0.05\nmin_lines = 100\ngroup_by = [\"host\", \"source\"]\n\
                                  annotations = { summary = \"{{ source }} on {{ host }}: {{ value }}% of lines match\" }\n"
        }
        ("log_stats", true) => {
            "window = \"5m\"\nop = \">\"\nthreshold = 0.0   # set the value that should page\n\
                                annotations = { summary = \"{{ value }} (threshold {{ threshold }})\" }\n"
        }
        ("log_match" | "error_rate", true) => {
            return Err(format!(
                "the search has a pipe (a table): it becomes a log_stats rule, not {kind}"
            ));
        }
        ("log_stats", false) => {
            return Err("a log_stats rule needs a query with `| stats … by …`; this search has none".to_owned());
        }
        (other, _) => {
            return Err(format!(
                "`kind`: `{other}` is not one of log_match, error_rate, log_stats"
            ));
        }
    };
    Ok((kind, header + body))
}

/// `value` as a query's quoted value (`\` and `"` escaped).
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl From<SavedError> for ApiError {
    fn from(err: SavedError) -> Self {
        match err {
            SavedError::Store(err) => ApiError::internal("the saved searches failed", &err),
            SavedError::Exists(_) => ApiError::new(StatusCode::CONFLICT, RejectReason::BadQuery, err.to_string()),
            SavedError::Full => ApiError::bad_request(err.to_string()),
            SavedError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, RejectReason::NotFound, err.to_string()),
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SavedError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal("the saved searches failed", &err))?
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(q: &str, host: &str) -> SavedSearch {
        SavedSearch {
            id: 1,
            owner: "ann".into(),
            name: "Payment \"errors\"".into(),
            q: q.into(),
            range: "1h".into(),
            host: host.into(),
            source: String::new(),
            level: String::new(),
            shared: false,
            created_ms: 0,
        }
    }

    #[test]
    fn a_saved_search_becomes_a_rules_file_entry_that_loads() {
        for (search, kind) in [
            (saved("payment failed", "web-1"), "log_match"),
            (saved("level:error \"a\\\\b\"", ""), "error_rate"),
            (saved("* | stats p95(took) by path", "web-1"), "log_stats"),
        ] {
            let (named, entry) = rule_entry(&search, Some(kind)).unwrap();
            assert_eq!(named, kind);
            let context = crate::alert::rules::Context {
                notifiers: &[],
                evaluation_interval: std::time::Duration::from_secs(15),
            };
            let rules = crate::alert::rules::from_toml(std::path::Path::new("rules.toml"), &entry, context)
                .unwrap_or_else(|err| panic!("{entry}\n{err}"));
            let rule = rules
                .iter()
                .find(|r| r.name == "Payment \"errors\"")
                .expect("the saved search's rule");
            assert_eq!(rule.kind_name(), kind, "{entry}");
        }
        // The page's filters narrow the whole query, before any pipe.
        let entry = rule_entry(&saved("a OR b", "web-1"), None).unwrap();
        assert_eq!(entry.0, "log_match", "no pipe: a log_match by default");
        let entry = entry.1;
        assert!(entry.contains(r#"query = "(a OR b) host:\"web-1\"""#), "{entry}");
        let entry = rule_entry(&saved("* | stats p95(took) by path", "web-1"), None).unwrap();
        assert_eq!(entry.0, "log_stats", "a pipe: a log_stats by default");
        let entry = entry.1;
        assert!(
            entry.contains(r#"query = "(*) host:\"web-1\" | stats p95(took) by path""#),
            "{entry}"
        );
        let entry = rule_entry(&saved("| top path", "web-1"), Some("log_stats")).unwrap().1;
        assert!(entry.contains(r#"query = "host:\"web-1\" | top path""#), "{entry}");
        assert!(rule_entry(&saved("* | top path", ""), Some("log_match")).is_err());
        assert!(rule_entry(&saved("* | stats count() by _time(1m)", ""), None).is_err());
        assert!(rule_entry(&saved("x", ""), Some("nope")).is_err());
    }
}
