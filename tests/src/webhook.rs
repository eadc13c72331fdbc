//! A webhook receiver for notifier tests, and a strict check of
//! Alertmanager's webhook format (version 4).
//!
//! [`WebhookReceiver`] is a deliberately small HTTP/1.1 server on a loopback
//! port (std's `TcpListener`, one thread per connection, `Content-Length`
//! bodies, `Connection: close`): enough for a webhook sender, and it records
//! every request exactly as it arrived (raw body bytes included, for checking
//! signatures). Its answer can be changed while it runs, so a test can make
//! it fail with 503 and then recover.

use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request head or body accepted.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `POST`, ...
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body bytes, exactly as sent.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics (naming the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "the webhook body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Debug)]
struct Shared {
    requests: Mutex<Vec<Request>>,
    answer: Mutex<(u16, String)>,
    stop: AtomicBool,
}

/// An HTTP server on `127.0.0.1:<random port>` that records requests and
/// answers each with the configured status (200 at first). Stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Starts listening; requests are served from then on.
    pub fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("can bind a loopback port");
        let addr = listener.local_addr().expect("bound");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            answer: Mutex::new((200, String::new())),
            stop: AtomicBool::new(false),
        });
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if serving.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let shared = serving.clone();
                    std::thread::spawn(move || serve(stream, &shared));
                }
            }
        });
        WebhookReceiver {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with `status` and `body` (text/plain).
    pub fn respond_with(&self, status: u16, body: &str) {
        *lock(&self.shared.answer) = (status, body.to_string());
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads one request, records it, answers, closes.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    let answer = match read_request(&mut reader) {
        Ok(Some(request)) => {
            lock(&shared.requests).push(request);
            lock(&shared.answer).clone()
        }
        Ok(None) => return, // connected and closed without a request (the stop wake-up)
        Err(reason) => (400, reason),
    };
    let (status, body) = answer;
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len()
    );
    let _ = writer.write_all(response.as_bytes());
    let _ = writer.flush();
}

fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>, String> {
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("bad request line {line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported version {version}"));
    }
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    let mut head_bytes = line.len();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| e.to_string())?;
        head_bytes += read;
        if read == 0 || head_bytes > MAX_BYTES {
            return Err("the request head is cut or too large".into());
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed
            .split_once(':')
            .ok_or_else(|| format!("bad header line {trimmed:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    if header("transfer-encoding").is_some() {
        return Err("chunked bodies are not supported by this test server".into());
    }
    let length: usize = match header("content-length") {
        Some(value) => value.parse().map_err(|_| format!("bad content-length {value:?}"))?,
        None => 0,
    };
    if length > MAX_BYTES {
        return Err("the body is too large".into());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Checks that `payload` is exactly Alertmanager's webhook body, version 4:
/// every key present with its type and no other key; `status` `firing` or
/// `resolved` (and `firing` exactly when an alert fires); label and
/// annotation maps of strings; RFC 3339 times (a firing alert's `endsAt`
/// may be Go's zero time, `0001-01-01T00:00:00Z`; a resolved one's is a
/// real time not before `startsAt`); `generatorURL` an http(s) URL or empty;
/// `fingerprint` lower-case hex. Returns what is wrong, with its path.
pub fn validate_alertmanager_v4(payload: &Value) -> Result<(), String> {
    let top = object(payload, "$")?;
    exact_keys(
        top,
        "$",
        &[
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        ],
    )?;
    if top["version"] != "4" {
        return Err(format!("$.version must be the string \"4\", not {}", top["version"]));
    }
    string(&top["groupKey"], "$.groupKey")?;
    if top["truncatedAlerts"].as_u64().is_none() {
        return Err(format!(
            "$.truncatedAlerts must be a non-negative integer, not {}",
            top["truncatedAlerts"]
        ));
    }
    let group_status = status(&top["status"], "$.status")?;
    if string(&top["receiver"], "$.receiver")?.is_empty() {
        return Err("$.receiver must not be empty".into());
    }
    for key in ["groupLabels", "commonLabels", "commonAnnotations"] {
        string_map(&top[key], &format!("$.{key}"))?;
    }
    let external = string(&top["externalURL"], "$.externalURL")?;
    if !external.starts_with("http://") && !external.starts_with("https://") {
        return Err(format!("$.externalURL must be an http(s) URL, not {external:?}"));
    }
    let alerts = top["alerts"].as_array().ok_or("$.alerts must be an array")?;
    if alerts.is_empty() {
        return Err("$.alerts must not be empty".into());
    }
    let mut any_firing = false;
    for (i, alert) in alerts.iter().enumerate() {
        let path = format!("$.alerts[{i}]");
        let fields = object(alert, &path)?;
        exact_keys(
            fields,
            &path,
            &[
                "status",
                "labels",
                "annotations",
                "startsAt",
                "endsAt",
                "generatorURL",
                "fingerprint",
            ],
        )?;
        let alert_status = status(&fields["status"], &format!("{path}.status"))?;
        any_firing |= alert_status == "firing";
        string_map(&fields["labels"], &format!("{path}.labels"))?;
        string_map(&fields["annotations"], &format!("{path}.annotations"))?;
        let starts = time(&fields["startsAt"], &format!("{path}.startsAt"))?;
        let ends_text = string(&fields["endsAt"], &format!("{path}.endsAt"))?;
        if alert_status == "resolved" || ends_text != GO_ZERO_TIME {
            let ends = time(&fields["endsAt"], &format!("{path}.endsAt"))?;
            if alert_status == "resolved" && ends < starts {
                return Err(format!("{path}.endsAt is before its startsAt"));
            }
        }
        let generator = string(&fields["generatorURL"], &format!("{path}.generatorURL"))?;
        if !generator.is_empty() && !generator.starts_with("http://") && !generator.starts_with("https://") {
            return Err(format!("{path}.generatorURL must be an http(s) URL, not {generator:?}"));
        }
        let fingerprint = string(&fields["fingerprint"], &format!("{path}.fingerprint"))?;
        if fingerprint.is_empty()
            || !fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "{path}.fingerprint must be lower-case hex, not {fingerprint:?}"
            ));
        }
    }
    if (group_status == "firing") != any_firing {
        return Err(format!(
            "$.status is {group_status:?} but {} of its alerts fire",
            if any_firing { "some" } else { "none" }
        ));
    }
    Ok(())
}

/// What Go's `time.Time{}` marshals to.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{path} must be an object, not {value}"))
}

fn exact_keys(map: &Map<String, Value>, path: &str, keys: &[&str]) -> Result<(), String> {
    if let Some(missing) = keys.iter().find(|k| !map.contains_key(**k)) {
        return Err(format!("{path}.{missing} is missing"));
    }
    if let Some(extra) = map.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!("{path}.{extra} is not part of the format"));
    }
    Ok(())
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{path} must be a string, not {value}"))
}

fn status<'a>(value: &'a Value, path: &str) -> Result<&'a str, String> {
    match string(value, path)? {
        s @ ("firing" | "resolved") => Ok(s),
        other => Err(format!("{path} must be \"firing\" or \"resolved\", not {other:?}")),
    }
}

fn string_map(value: &Value, path: &str) -> Result<(), String> {
    for (key, item) in object(value, path)? {
        if key.is_empty() {
            return Err(format!("{path} has an empty key"));
        }
        string(item, &format!("{path}.{key}"))?;
    }
    Ok(())
}

/// An RFC 3339 time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn time(value: &Value, path: &str) -> Result<jiff::Timestamp, String> {
    let text = string(value, path)?;
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && (text.ends_with('Z') || matches!(bytes[bytes.len() - 6], b'+' | b'-'));
    if !shape_ok {
        return Err(format!("{path} must be an RFC 3339 time, not {text:?}"));
    }
    text.parse::<jiff::Timestamp>()
        .map_err(|err| format!("{path} must be an RFC 3339 time, not {text:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_records_requests_and_answers_as_told() {
        let receiver = WebhookReceiver::start();
        let url = receiver.url("/hook?x=1");
        let post = |body: &str| {
            let mut response = crate::http()
                .post(&url)
                .header("X-Test", "yes")
                .send(body)
                .expect("the receiver answers");
            (
                response.status().as_u16(),
                response.body_mut().read_to_string().unwrap_or_default(),
            )
        };
        assert_eq!(post("{\"a\":1}").0, 200);
        receiver.respond_with(503, "busy");
        assert_eq!(post("{}"), (503, "busy".to_string()));
        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, "/hook?x=1");
        assert_eq!(requests[0].header("x-test"), Some("yes"));
        assert_eq!(requests[0].json()["a"], 1);
    }

    #[test]
    fn times_must_be_rfc_3339() {
        for good in [
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.123Z",
            "2024-05-01T14:00:00+02:00",
        ] {
            assert!(time(&Value::from(good), "t").is_ok(), "{good}");
        }
        for bad in [
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00",
            "1714564800",
            "2024-13-01T12:00:00Z",
        ] {
            assert!(time(&Value::from(bad), "t").is_err(), "{bad}");
        }
    }
}
