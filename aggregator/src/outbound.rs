//! The HTTP requests Lookout makes to other systems (webhooks, chat,
//! Alertmanager, Prometheus remote write): one endpoint's client with its
//! extra headers, and what an answer means.
//!
//! 2xx is done; 408, 429, 5xx and network errors are worth a retry; any
//! other status is refused for good (redirects are not followed: a POST
//! sent on elsewhere is a surprise). Errors name the endpoint by
//! `host:port` only, as its path or query may hold a token, and quote the
//! start of an error answer on one line.

use crate::config::Secret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::time::Duration;

/// How much of an error answer's body goes into the error message.
const BODY_SNIPPET_BYTES: usize = 200;

/// One endpoint Lookout POSTs to.
pub struct Endpoint {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `host:port` of the URL, for error messages.
    target: String,
    /// Extra headers (values marked sensitive).
    headers: HeaderMap,
}

/// A POST that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostError {
    /// What went wrong, naming the endpoint by `host:port`; no secret.
    pub message: String,
    /// Whether trying again cannot help.
    pub permanent: bool,
}

impl Endpoint {
    /// Checks `url` and `headers` and builds the client; the error says
    /// what is wrong without the URL itself.
    pub fn new(url: &str, timeout: Duration, headers: &BTreeMap<String, Secret>) -> Result<Endpoint, String> {
        let url = reqwest::Url::parse(url).map_err(|err| format!("the url is not valid: {err}"))?;
        let host = url.host_str().ok_or("the url has no host")?;
        let target = match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let mut header_map = HeaderMap::new();
        for (header, value) in headers {
            let header_name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("`{header}` is not a valid header name"))?;
            let mut header_value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("the value of header `{header}` is not valid"))?;
            header_value.set_sensitive(true);
            header_map.insert(header_name, header_value);
        }
        lookout_shared::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lookout-aggregator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot set up the HTTP client: {}", error_chain(&err)))?;
        Ok(Endpoint {
            client,
            url,
            target,
            headers: header_map,
        })
    }

    /// `host:port` of the endpoint.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// POSTs `body` once with the extra headers and `headers`; `what`
    /// (such as `webhook ops`) names the sender in errors.
    pub async fn post(&self, what: &str, headers: HeaderMap, body: Vec<u8>) -> Result<(), PostError> {
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .headers(headers);
        let response = request.body(body).send().await.map_err(|err| {
            let failed = if err.is_timeout() { "timed out" } else { "failed" };
            PostError {
                message: format!(
                    "{what} ({}): the request {failed}: {}",
                    self.target,
                    error_chain(&err.without_url())
                ),
                permanent: false,
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let code = status.as_u16();
        let retryable = code == 408 || code == 429 || status.is_server_error();
        let snippet = body_snippet(response).await;
        let mut message = format!("{what} ({}) answered {status}", self.target);
        if status.is_redirection() {
            message.push_str(" (redirects are not followed: configure the final URL)");
        }
        if !snippet.is_empty() {
            message.push_str(": ");
            message.push_str(&snippet);
        }
        Err(PostError {
            message,
            permanent: !retryable,
        })
    }
}

/// The first [`BODY_SNIPPET_BYTES`] of an answer's body, as one clean line
/// (no more is read, however large the body).
async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let cut = bytes.len() > BODY_SNIPPET_BYTES;
    bytes.truncate(BODY_SNIPPET_BYTES);
    // Control characters split words like spaces: the line stays one line.
    let mut line = String::from_utf8_lossy(&bytes)
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if cut {
        line.push('…');
    }
    line
}

/// An error and its causes, `outer: inner: innermost` (reqwest's own
/// message alone is only "error sending request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
