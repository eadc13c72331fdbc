//! The alerting API: alerts, rules, history, the outbox and silences.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/alerts` | `{"alerts": [...]}`: pending, firing and (for a week) resolved instances; `state=` filters |
//! | `GET /api/v1/alerts/rules` | `{"rules": [...], "skipped": [...]}`: every rule in force with its kind, settings, origin (`config` or `app`), counts of pending / firing instances and its last evaluation; `skipped`: rules made in the app that no longer check, with the reason |
//! | `POST /api/v1/alerts/rules` (admin) | `{"entry": "[[rules]] …"}`: one rules-file entry, checked as the file's are and in force at once → 201 with the rule as listed; 409 if the name is taken |
//! | `DELETE /api/v1/alerts/rules/{name}` (admin) | deletes a rule made in the app; its alerts resolve → 204; 404 if none, 409 for a configured rule |
//! | `GET /api/v1/alerts/history` | `{"history": [...]}`: the latest state changes, newest first (`limit`, default 100) |
//! | `GET /api/v1/alerts/outbox` | `{"outbox": [...]}`: notifications, undelivered first, with attempts and the last error |
//! | `GET /api/v1/silences` | `{"silences": [...]}` with `active` |
//! | `POST /api/v1/silences` (admin) | `{"matchers": [{"name","value","isRegex","isEqual"}], "comment", "createdBy"?, "startsAt"?, "endsAt" or "duration"}` → 201 `{"id"}` |
//! | `DELETE /api/v1/silences/{id}` (admin) | expires it now → 200 `{"id", "expired": true}`; 404 if unknown |
//!
//! Times are RFC 3339 in answers and RFC 3339 or Unix ms in requests.

use super::AppState;
use super::access::Caller;
use super::error::ApiError;
use super::params::Params;
use crate::alert::engine::RuleStatuses;
use crate::alert::model::AlertState;
use crate::alert::policy::{Matcher, Silence};
use crate::alert::rules::{Op, Rule, RuleKind};
use crate::alert::ruleset::{InForce, RuleSet, RuleSetError};
use crate::alert::state::{AlertStore, StateError};
use crate::metrics::RejectReason;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use lookout_shared::config::HumanDuration;
use lookout_shared::time::now_ms;
use lookout_shared::time::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest silence: a year. A longer one is a disabled rule, not a silence.
const MAX_SILENCE_MS: i64 = 366 * 24 * 3600 * 1000;
/// Most rows of history or outbox one request may ask for.
const MAX_LIMIT: usize = 1000;

/// What the alerting routes share.
#[derive(Clone)]
pub struct AlertsApi {
    /// Alert state, outbox and silences.
    pub store: Arc<AlertStore>,
    /// The rules in force and the app's changes to them.
    pub rules: Arc<RuleSet>,
    /// How each rule's last evaluation went.
    pub statuses: RuleStatuses,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(ApiError::internal("the alert database failed", &err)),
        Err(err) => Err(ApiError::internal("the alert database task failed", &err)),
    }
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(rfc3339(ms)))
}

/// Current alerts.
pub async fn alerts(State(app): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let wanted = match params.text("state").as_deref() {
        None | Some("") => None,
        Some("pending") => Some(AlertState::Pending),
        Some("firing") => Some(AlertState::Firing),
        Some("resolved") => Some(AlertState::Resolved),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameter `state`: `{other}` is not one of pending, firing, resolved"
            )));
        }
    };
    params.finish()?;
    let store = app.alerts.store.clone();
    let (rows, silences) = blocking(move || Ok((store.alerts()?, store.silences()?))).await?;
    let now = now_ms();
    let alerts: Vec<Value> = rows
        .into_iter()
        .filter(|row| wanted.is_none_or(|state| row.state == state))
        .map(|row| {
            let silenced_by: Vec<&str> = silences
                .iter()
                .filter(|s| s.active(now) && s.covers(&row.labels))
                .map(|s| s.id.as_str())
                .collect();
            json!({
                "fingerprint": row.fingerprint,
                "rule": row.rule,
                "state": row.state,
                "labels": row.labels,
                "annotations": row.annotations,
                "value": row.value,
                "threshold": row.threshold,
                "op": row.op,
                "since": time(Some(row.fired_at_ms.unwrap_or(row.active_since_ms))),
                "activeSince": time(Some(row.active_since_ms)),
                "firedAt": time(row.fired_at_ms),
                "resolvedAt": time(row.resolved_at_ms),
                "silencedBy": silenced_by,
                "sampleLines": row.sample_lines,
                "topPatterns": row.top_patterns,
            })
        })
        .collect();
    Ok(Json(json!({ "alerts": alerts })))
}

/// The rules in force with their instance counts.
pub async fn rules(State(app): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    Params::from_uri(&uri)?.finish()?;
    let store = app.alerts.store.clone();
    let rows = blocking(move || store.alerts()).await?;
    let in_force = app.alerts.rules.current();
    let rules: Vec<Value> = in_force
        .rules
        .iter()
        .map(|rule| {
            let count = |state| rows.iter().filter(|r| r.rule == rule.name && r.state == state).count();
            rule_json(
                &app,
                &in_force,
                rule,
                count(AlertState::Firing),
                count(AlertState::Pending),
            )
        })
        .collect();
    let skipped: Vec<Value> = in_force
        .skipped
        .iter()
        .map(|skipped| json!({ "name": skipped.name, "reason": skipped.reason }))
        .collect();
    Ok(Json(json!({ "rules": rules, "skipped": skipped })))
}

/// One rule as the rules API lists it.
fn rule_json(app: &AppState, in_force: &InForce, rule: &Rule, firing: usize, pending: usize) -> Value {
    let status = app.alerts.statuses.get(&rule.name);
    let state = if firing > 0 {
        "firing"
    } else if pending > 0 {
        "pending"
    } else {
        "inactive"
    };
    let made = in_force.app.get(&rule.name);
    json!({
        "name": rule.name,
        "kind": rule.kind_name(),
        "origin": if made.is_some() { "app" } else { "config" },
        "createdBy": made.as_ref().map(|m| m.created_by.clone()),
        "createdAt": time(made.as_ref().map(|m| m.created_ms)),
        "entry": made.map(|m| m.entry.clone()),
        "state": state,
        "firing": firing,
        "pending": pending,
        "interval_ms": rule.interval.map(|i| i.as_millis() as u64),
        "for_ms": rule.for_.as_millis() as u64,
        "labels": rule.labels,
        "annotations": rule.annotations,
        "notify": rule.notify,
        "condition": describe(rule),
        "lastEvaluation": time(status.last_evaluated_ms),
        "lastDurationMs": status.last_duration_ms,
        "lastError": status.last_error,
    })
}

/// What `POST /api/v1/alerts/rules` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    /// One `[[rules]]` entry, as in the rules file.
    entry: String,
}

/// Longest entry: a rule is a few lines.
const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// Puts a rule in force from its rules-file entry.
pub async fn create_rule(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let request: NewRule = {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ApiError::bad_request(format!("invalid rule: {err}")))?
    };
    if request.entry.len() > MAX_ENTRY_BYTES {
        return Err(ApiError::bad_request(format!(
            "`entry` is {} bytes long; at most {MAX_ENTRY_BYTES} are allowed",
            request.entry.len()
        )));
    }
    let created_by = caller.user_name().unwrap_or("API token").to_owned();
    let rules = app.alerts.rules.clone();
    let rule = rule_change(move || rules.add(&request.entry, &created_by, now_ms())).await?;
    tracing::info!(rule = rule.name, kind = rule.kind_name(), "rule made in the app");
    let in_force = app.alerts.rules.current();
    Ok((StatusCode::CREATED, Json(rule_json(&app, &in_force, &rule, 0, 0))))
}

/// Deletes a rule made in the app.
pub async fn remove_rule(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let rules = app.alerts.rules.clone();
    let removed = name.clone();
    rule_change(move || rules.remove(&removed)).await?;
    tracing::info!(rule = name, "rule made in the app deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn rule_change<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RuleSetError> + Send + 'static,
) -> Result<T, ApiError> {
    let outcome = tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal("the alert database task failed", &err))?;
    outcome.map_err(|err| match err {
        RuleSetError::Invalid(_) | RuleSetError::Full => ApiError::bad_request(err.to_string()),
        RuleSetError::Exists(_) | RuleSetError::Configured(_) => {
            ApiError::new(StatusCode::CONFLICT, RejectReason::BadQuery, err.to_string())
        }
        RuleSetError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, RejectReason::NotFound, err.to_string()),
        RuleSetError::Store(err) => ApiError::internal("the alert database failed", &err),
    })
}

/// A one-line description of what a rule checks, for people.
fn describe(rule: &Rule) -> String {
    match &rule.kind {
        RuleKind::Threshold(t) => {
            let mut text = format!("{} {} {}", t.metric, t.op, t.threshold);
            if !t.match_labels.is_empty() {
                text.push_str(&format!(" where {:?}", t.match_labels));
            }
            if let Some(clear) = t.clear_threshold {
                text.push_str(&format!(", clears past {clear}"));
            }
            if let Some(d) = t.datapoints {
                text.push_str(&format!(", {} of {} samples", d.breaching, d.of));
            }
            text
        }
        RuleKind::ErrorRate(r) => {
            let limit = match r.limit {
                crate::alert::rules::RateLimit::Count(n) => format!("≥ {n} lines"),
                crate::alert::rules::RateLimit::Ratio(x) => format!("≥ {}% of lines", x * 100.0),
            };
            format!(
                "{} {limit} in {} (at least {} lines), per {}",
                r.query,
                HumanDuration(r.window),
                r.min_lines,
                group_names(&r.group_by)
            )
        }
        RuleKind::LogMatch(m) => format!(
            "{} {} {} times in {}, per {}",
            m.query,
            match m.op {
                Op::Gt => "more than",
                Op::Ge => "at least",
                Op::Lt => "fewer than",
                Op::Le => "at most",
            },
            m.count,
            HumanDuration(m.window),
            group_names(&m.group_by)
        ),
        RuleKind::LogStats(s) => format!(
            "{}: {} {} {} in {}, per row",
            s.query,
            s.parsed
                .stats
                .as_ref()
                .and_then(|t| t.columns.get(s.column))
                .map_or("", String::as_str),
            s.op,
            s.threshold,
            HumanDuration(s.window)
        ),
        RuleKind::NoData(n) => format!("no data for {} intervals", n.intervals),
        RuleKind::NewPattern(p) => format!(
            "a pattern new on its source among {}, at least {} lines in {}, per source and pattern",
            p.query,
            p.count,
            HumanDuration(p.window)
        ),
    }
}

fn group_names(fields: &[crate::alert::rules::GroupField]) -> String {
    if fields.is_empty() {
        return "everything".into();
    }
    fields.iter().map(|f| f.label()).collect::<Vec<_>>().join(" × ")
}

fn limit(params: &mut Params) -> Result<usize, ApiError> {
    let limit = params.number("limit", 1, MAX_LIMIT as u64)?.unwrap_or(100);
    Ok(usize::try_from(limit).unwrap_or(MAX_LIMIT))
}

/// Latest state changes.
pub async fn history(State(app): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let limit = limit(&mut params)?;
    params.finish()?;
    let store = app.alerts.store.clone();
    let entries = blocking(move || store.history(limit)).await?;
    let history: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "at": time(Some(e.at_ms)),
                "fingerprint": e.fingerprint,
                "rule": e.rule,
                "labels": e.labels,
                "state": e.state,
                "value": e.value,
            })
        })
        .collect();
    Ok(Json(json!({ "history": history })))
}

/// Notifications and their delivery. A delivery error quotes what the
/// target answered (a webhook's body, a mail server's reply): admins see it,
/// viewers only that delivery failed.
pub async fn outbox(State(app): State<AppState>, caller: Caller, uri: Uri) -> Result<Json<Value>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let limit = limit(&mut params)?;
    params.finish()?;
    let store = app.alerts.store.clone();
    let entries = blocking(move || store.outbox(limit)).await?;
    let outbox: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let delivered = e.sent_ms.is_some();
            json!({
                "id": e.id,
                "receiver": e.receiver,
                "groupKey": e.group_key,
                "status": e.status,
                "created": time(Some(e.created_ms)),
                "attempts": e.attempts,
                "lastError": if caller.is_admin() {
                    json!(e.last_error)
                } else {
                    json!(e.last_error.map(|_| "delivery failed (details for admins)"))
                },
                "delivered": delivered,
                "sentAt": time(e.sent_ms),
                "failed": e.failed,
                "nextAttempt": if delivered || e.failed { Value::Null } else { time(Some(e.next_attempt_ms)) },
            })
        })
        .collect();
    Ok(Json(json!({ "outbox": outbox })))
}

fn silence_json(silence: &Silence, now: i64) -> Value {
    json!({
        "id": silence.id,
        "matchers": silence.matchers,
        "startsAt": time(Some(silence.starts_ms)),
        "endsAt": time(Some(silence.ends_ms)),
        "createdBy": silence.created_by,
        "comment": silence.comment,
        "createdAt": time(Some(silence.created_ms)),
        "active": silence.active(now),
    })
}

/// Every silence (expired ones for a week).
pub async fn silences(State(app): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    Params::from_uri(&uri)?.finish()?;
    let store = app.alerts.store.clone();
    let silences = blocking(move || store.silences()).await?;
    let now = now_ms();
    let list: Vec<Value> = silences.iter().map(|s| silence_json(s, now)).collect();
    Ok(Json(json!({ "silences": list })))
}

/// A time in a request: RFC 3339 text or Unix ms.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeValue {
    Millis(i64),
    Text(String),
}

impl TimeValue {
    fn millis(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            TimeValue::Millis(ms) => Ok(*ms),
            TimeValue::Text(text) => text
                .parse::<jiff::Timestamp>()
                .map(|ts| ts.as_millisecond())
                .map_err(|err| ApiError::bad_request(format!("`{field}`: `{text}` is not an RFC 3339 time: {err}"))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSilence {
    matchers: Vec<Matcher>,
    comment: String,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    starts_at: Option<TimeValue>,
    #[serde(default)]
    ends_at: Option<TimeValue>,
    #[serde(default)]
    duration: Option<String>,
}

/// Answer to a created silence.
#[derive(Serialize)]
pub struct Created {
    /// The new silence's id.
    pub id: String,
}

/// A random-enough id: silence ids name silences, they grant nothing.
fn new_id(seed: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let text = format!("{nanos}/{count}/{}/{seed}", std::process::id());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// Creates a silence.
pub async fn create_silence(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.require_admin()?;
    let request: NewSilence = {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if path == "." {
                ApiError::bad_request(format!("invalid silence: {inner}"))
            } else {
                ApiError::bad_request(format!("invalid silence: `{path}`: {inner}"))
            }
        })?
    };
    if request.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "a silence needs at least one matcher (such as {\"name\": \"alertname\", \"value\": \"DiskFull\"})",
        ));
    }
    for matcher in &request.matchers {
        matcher.validate().map_err(ApiError::bad_request)?;
    }
    if request.comment.trim().is_empty() {
        return Err(ApiError::bad_request("`comment`: say why the alerts are silenced"));
    }
    let now = now_ms();
    let starts_ms = match &request.starts_at {
        Some(at) => at.millis("startsAt")?,
        None => now,
    };
    // Checked here, so that no arithmetic below can overflow or wrap.
    if starts_ms.abs_diff(now) > MAX_SILENCE_MS as u64 {
        return Err(ApiError::bad_request("`startsAt` must lie within a year of now"));
    }
    let ends_ms = match (&request.ends_at, &request.duration) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give either `endsAt` or `duration`, not both")),
        (Some(at), None) => at.millis("endsAt")?,
        (None, Some(duration)) => {
            let duration = humantime_duration(duration)?;
            starts_ms.saturating_add(duration)
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "`endsAt` or `duration` (such as \"2h\") is required",
            ));
        }
    };
    if ends_ms <= starts_ms || ends_ms <= now {
        return Err(ApiError::bad_request(
            "the silence must end after it starts and in the future",
        ));
    }
    if ends_ms
        .checked_sub(starts_ms)
        .is_none_or(|length| length > MAX_SILENCE_MS)
    {
        return Err(ApiError::bad_request(
            "a silence may last at most a year; disable the rule instead",
        ));
    }
    let silence = Silence {
        id: new_id(&request.comment),
        matchers: request.matchers,
        starts_ms,
        ends_ms,
        // A signed-in user is who they are; a token caller may say who it acts for.
        created_by: match caller.user_name() {
            Some(user) => user.to_string(),
            None => request.created_by.unwrap_or_else(|| "api".to_string()),
        },
        comment: request.comment,
        created_ms: now,
    };
    let id = silence.id.clone();
    let store = app.alerts.store.clone();
    blocking(move || store.add_silence(&silence)).await?;
    tracing::info!(silence = id, "silence created");
    Ok((StatusCode::CREATED, Json(Created { id })))
}

fn humantime_duration(text: &str) -> Result<i64, ApiError> {
    let duration: lookout_shared::config::HumanDuration = text
        .parse()
        .map_err(|err: String| ApiError::bad_request(format!("`duration`: {err}")))?;
    Ok(i64::try_from(duration.get().as_millis()).unwrap_or(i64::MAX))
}

/// Expires a silence now.
pub async fn expire_silence(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let store = app.alerts.store.clone();
    let lookup = id.clone();
    let found = blocking(move || store.expire_silence(&lookup, now_ms())).await?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            RejectReason::NotFound,
            format!("no silence with id {id:?}"),
        ));
    }
    tracing::info!(silence = id, "silence expired");
    Ok(Json(json!({ "id": id, "expired": true })))
}
