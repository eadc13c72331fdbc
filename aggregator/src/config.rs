//! The aggregator's configuration file (`aggregator.toml`, see docs/SPEC.md).
//!
//! Loading goes through [`lookout_shared::config::load_toml`], so every error
//! names the file, the key and the reason; [`Config::load`] then checks what
//! serde cannot (non-empty token lists, unique notifier names, ...). Unknown keys
//! are rejected everywhere. Relative paths (`data_dir`, `rules_file`) are taken
//! relative to the working directory, as in docs/SPEC.md's example.
//!
//! `[tls]` names a certificate and key; validation reads and parses both, so
//! `check-config` catches a missing or unreadable file before a start does.
//! `[sessions]` bounds how long a web UI login lasts.
//!
//! `[smtp]`, `[[notifiers]]` and `rules_file` are parsed and validated here so
//! that a complete configuration validates today, even though alerting is built
//! later.

use lookout_shared::config::{ByteSize, ConfigError, HumanDuration, load_toml, parse_toml};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole `aggregator.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds, such as `127.0.0.1:7070` (port 0: any free port).
    pub listen: SocketAddr,
    /// Directory holding the log index (`logs/YYYY-MM-DD/`) and the metric store (`metrics.sqlite`).
    pub data_dir: PathBuf,
    /// Bearer tokens.
    pub auth: AuthConfig,
    /// How long data is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Limits on ingest request bodies.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Mail server for email notifiers.
    pub smtp: Option<SmtpConfig>,
    /// Where alerts are sent.
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
    /// Alert rules file; built-in default rules apply without it.
    pub rules_file: Option<PathBuf>,
    /// When rules are evaluated and notifications go out.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// The alert rules: the built-in defaults merged with `rules_file`,
    /// read and checked when the configuration is loaded.
    #[serde(skip)]
    pub rules: Vec<crate::alert::rules::Rule>,
    /// Serve HTTPS with this certificate and key; plain HTTP without it.
    pub tls: Option<TlsConfig>,
    /// How long a web UI login lasts.
    #[serde(default)]
    pub sessions: SessionsConfig,
    /// What one client can hold open.
    #[serde(default)]
    pub http: HttpConfig,
    /// The syslog receiver; off without this section.
    pub syslog: Option<SyslogConfig>,
    /// Bounds on exports.
    #[serde(default)]
    pub export: ExportConfig,
    /// Where each day's logs are archived before retention deletes them;
    /// off without this section.
    pub archive: Option<ArchiveConfig>,
}

/// `[archive]`: each day's logs written as compressed NDJSON to a folder or
/// an S3-compatible bucket once `after_days` have passed (`crate::archive`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// An absolute folder, or `s3://bucket` or `s3://bucket/prefix`.
    pub to: String,
    /// A day's partition is archived once this many days have begun since
    /// it began (1: once it has ended; from 1 to `retention.logs_days`, so a
    /// day is archived at least a day before retention deletes it).
    pub after_days: u32,
    /// An S3-compatible endpoint other than AWS's (MinIO, Ceph, moto…),
    /// `http://` or `https://`; else `AWS_ENDPOINT` or AWS itself.
    pub s3_endpoint: Option<String>,
    /// The bucket's region; else `AWS_DEFAULT_REGION` / `AWS_REGION`, or
    /// `us-east-1`.
    pub s3_region: Option<String>,
    /// Access key id; else `AWS_ACCESS_KEY_ID` or the instance's role.
    pub s3_access_key_id: Option<Secret>,
    /// Secret access key; else `AWS_SECRET_ACCESS_KEY` or the instance's role.
    pub s3_secret_access_key: Option<Secret>,
}

/// Where [`ArchiveConfig::to`] points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveTarget {
    /// A local (or mounted) folder.
    Folder(PathBuf),
    /// An S3 bucket, and the key prefix ("" for none) of everything written.
    S3 {
        /// The bucket's name.
        bucket: String,
        /// Keys start with this, without leading or trailing `/`.
        prefix: String,
    },
}

impl ArchiveConfig {
    /// What `to` names, or why it names nothing usable.
    pub fn target(&self) -> Result<ArchiveTarget, &'static str> {
        if let Some(rest) = self.to.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
            if !bucket_ok {
                return Err("names no valid S3 bucket (s3://bucket or s3://bucket/prefix; 3 to 63 of a-z 0-9 . -)");
            }
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty()
                && prefix
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
            {
                return Err("has an empty, `.` or `..` part in its prefix");
            }
            return Ok(ArchiveTarget::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        let path = PathBuf::from(&self.to);
        if !path.is_absolute() {
            return Err("must be an absolute folder or an s3:// URL");
        }
        Ok(ArchiveTarget::Folder(path))
    }
}

/// `[export]`: what one export (`GET /api/v1/logs/export`) may hold, and
/// where the host metrics are sent (Prometheus remote write).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Most lines one export streams (default 100,000); the places of up to
    /// that many per index segment are held while it runs (tens of bytes
    /// each).
    #[serde(default = "default_export_max_lines")]
    pub max_lines: u64,
    /// A Prometheus remote-write URL (Prometheus's `/api/v1/write`,
    /// VictoriaMetrics, Mimir, Thanos receive…) every stored sample is sent
    /// to; off without it. May hold credentials, so never logged.
    pub remote_write: Option<Secret>,
    /// Extra headers of each remote-write request (such as `Authorization`).
    #[serde(default)]
    pub remote_write_headers: BTreeMap<String, Secret>,
    /// How long one remote-write request may take (default 30s).
    #[serde(default = "default_remote_write_timeout")]
    pub remote_write_timeout: HumanDuration,
}

fn default_remote_write_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_export_max_lines() -> u64 {
    // Kibana's CSV export stops at 10,000 rows; an incident's lines are more.
    100_000
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            max_lines: default_export_max_lines(),
            remote_write: None,
            remote_write_headers: BTreeMap::new(),
            remote_write_timeout: default_remote_write_timeout(),
        }
    }
}

/// `[syslog]`: listeners for RFC 5424 and RFC 3164 messages.
///
/// Anyone who can reach a listener may send to it: bind it to an address
/// only senders reach, or require client certificates under TLS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// TCP address (LF and octet-counting framing); TLS when `tls` is set.
    pub tcp: Option<SocketAddr>,
    /// UDP address: one message per datagram, best effort.
    pub udp: Option<SocketAddr>,
    /// Serve `tcp` as TLS (RFC 5425).
    pub tls: Option<SyslogTlsConfig>,
    /// Longest message kept; longer ones are cut (default 64 KiB).
    #[serde(default = "default_syslog_max_message")]
    pub max_message_bytes: ByteSize,
    /// TCP connections open at once at most; more are closed when accepted.
    #[serde(default = "default_syslog_max_connections")]
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed (default 10 min).
    #[serde(default = "default_syslog_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// The zone of RFC 3164 times, which state none (IANA name; default the
    /// aggregator's own zone).
    pub timezone: Option<String>,
}

/// `[syslog] tls`: the listener's certificate and key, and optionally the
/// CA whose client certificates alone may connect.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsConfig {
    /// The certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
    /// Require a client certificate signed by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

fn default_syslog_max_message() -> ByteSize {
    ByteSize(64 * 1024)
}

fn default_syslog_max_connections() -> usize {
    256
}

fn default_syslog_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

/// `[http]`: bounds on connections and slow clients.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections open at once at most; more are closed when accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time to send the first request, and each request's head.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: HumanDuration,
    /// Time to answer a request, body read included (ingest: twice this;
    /// live tail streams are exempt).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
}

fn default_max_connections() -> usize {
    4096
}

fn default_header_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            request_timeout: default_request_timeout(),
        }
    }
}

/// `[alerting]`: evaluation and notification timing (Alertmanager's names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Rules without their own `interval` are evaluated this often (default 15 s).
    #[serde(default = "default_evaluation_interval")]
    pub evaluation_interval: HumanDuration,
    /// A new group of alerts waits this long for more alerts before the first message (default 30 s).
    #[serde(default = "default_group_wait")]
    pub group_wait: HumanDuration,
    /// A group whose alerts changed waits this long after its last message (default 5 m).
    #[serde(default = "default_group_interval")]
    pub group_interval: HumanDuration,
    /// A group still firing, unchanged, is notified again after this long (default 4 h).
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: HumanDuration,
    /// The web UI's address as on-call engineers reach it, for links in
    /// notifications (default `http://` + `listen`).
    pub external_url: Option<String>,
}

fn default_evaluation_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}

fn default_group_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_group_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_repeat_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(4 * 3600))
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            evaluation_interval: default_evaluation_interval(),
            group_wait: default_group_wait(),
            group_interval: default_group_interval(),
            repeat_interval: default_repeat_interval(),
            external_url: None,
        }
    }
}

impl Config {
    /// The base URL for links in notifications.
    pub fn external_url(&self) -> String {
        match &self.alerting.external_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// `[tls]`: the server's certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[sessions]`: how long a web UI login lasts.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// A session unused for this long ends (default 12 h).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// A session ends this long after the login, used or not (default 7 days).
    #[serde(default = "default_absolute_timeout")]
    pub absolute_timeout: HumanDuration,
}

fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(12 * 3600))
}

fn default_absolute_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 24 * 3600))
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            idle_timeout: default_idle_timeout(),
            absolute_timeout: default_absolute_timeout(),
        }
    }
}

/// `[auth]`: the bearer tokens each side of the API accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted on `POST /api/v1/ingest`.
    #[serde(default)]
    pub ingest_tokens: Vec<IngestToken>,
    /// Accepted on the read API and `/metrics`.
    #[serde(default)]
    pub api_tokens: Vec<Secret>,
    /// A TOML file with more `ingest_tokens` and `api_tokens` (kept apart
    /// from the config file, such as the one the Debian package makes):
    /// readable by its owner and group only.
    pub tokens_file: Option<PathBuf>,
}

/// What `[auth] tokens_file` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    ingest_tokens: Vec<IngestToken>,
    #[serde(default)]
    api_tokens: Vec<Secret>,
}

/// Shortest token accepted: a short token can be guessed.
pub const MIN_TOKEN_CHARS: usize = 12;

/// One `ingest_tokens` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IngestToken {
    /// `"secret"`: may send as any host.
    Any(Secret),
    /// `{ token = "secret", hosts = ["web-1", "db-*"] }`: may send only as
    /// these hosts (a trailing `*` matches any rest of the name), so a token
    /// taken from one server cannot write as another.
    Bound(BoundToken),
}

/// A token bound to host names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundToken {
    /// The token.
    pub token: Secret,
    /// Host names (or prefixes ending in `*`) it may send as.
    pub hosts: Vec<String>,
}

impl IngestToken {
    /// The token itself.
    pub fn secret(&self) -> &Secret {
        match self {
            IngestToken::Any(secret) => secret,
            IngestToken::Bound(bound) => &bound.token,
        }
    }

    /// The host patterns it is bound to; `None`: any host.
    pub fn hosts(&self) -> Option<&[String]> {
        match self {
            IngestToken::Any(_) => None,
            IngestToken::Bound(bound) => Some(&bound.hosts),
        }
    }
}

/// Whether `host` matches one of `patterns` (exact names, or prefixes ending in `*`).
pub fn host_allowed(patterns: &[String], host: &str) -> bool {
    patterns.iter().any(|pattern| match pattern.strip_suffix('*') {
        Some(prefix) => host.starts_with(prefix),
        None => pattern == host,
    })
}

/// `[retention]`: days of data kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Log partitions older than this many days are deleted.
    #[serde(default = "default_logs_days")]
    pub logs_days: u32,
    /// Metric samples (and roll-up buckets) older than this many days are deleted.
    #[serde(default = "default_metrics_days")]
    pub metrics_days: u32,
}

fn default_logs_days() -> u32 {
    14
}

fn default_metrics_days() -> u32 {
    30
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            logs_days: default_logs_days(),
            metrics_days: default_metrics_days(),
        }
    }
}

/// `[ingest]`: bounds on what one request may make the aggregator hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body as sent (compressed), default 16 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: ByteSize,
    /// Largest body after decompression, default 64 MiB.
    #[serde(default = "default_max_decompressed")]
    pub max_decompressed_bytes: ByteSize,
    /// Most metric series one host may have (an agent makes a few hundred);
    /// a batch that would create more is refused, default 10,000.
    #[serde(default = "default_max_series_per_host")]
    pub max_series_per_host: usize,
    /// Longest time between an answered batch and its records being
    /// searchable, default 1 s. Answered batches wait in the write-ahead log
    /// meanwhile; the index is committed once per interval, which is what
    /// makes indexing cheap. `0s`: commit every batch before answering
    /// (searchable when answered, at a fraction of the throughput).
    #[serde(default = "default_commit_interval")]
    pub commit_interval: HumanDuration,
    /// Mine each line's pattern (`pattern`) at ingest, default true. Off,
    /// lines are stored without one and ingest costs less CPU.
    #[serde(default = "default_patterns")]
    pub patterns: bool,
}

fn default_patterns() -> bool {
    true
}

fn default_commit_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_max_series_per_host() -> usize {
    10_000
}

fn default_max_body() -> ByteSize {
    ByteSize(16 * 1024 * 1024)
}

fn default_max_decompressed() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: default_max_body(),
            max_decompressed_bytes: default_max_decompressed(),
            max_series_per_host: default_max_series_per_host(),
            commit_interval: default_commit_interval(),
            patterns: default_patterns(),
        }
    }
}

/// `[smtp]`: the mail server email notifiers send through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Sender address.
    pub from: String,
    /// Login name, with `password`.
    pub username: Option<String>,
    /// Login password, with `username`.
    pub password: Option<Secret>,
    /// Limit on connecting and on each SMTP command, default 10 s.
    #[serde(default = "default_notify_timeout")]
    pub timeout: HumanDuration,
}

fn default_notify_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

fn default_resend_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}

fn default_true() -> bool {
    true
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (local relays, tests).
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// One `[[notifiers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifierConfig {
    /// Email through `[smtp]`.
    Email {
        /// Name rules refer to in `notify`.
        name: String,
        /// Recipients.
        to: Vec<String>,
        /// Whether to send a message when the alerts of a group resolve (default true).
        #[serde(default = "default_true")]
        send_resolved: bool,
        /// Moved to [`Config::rules_file`] on loading (see docs/SPEC.md's example), so always `None` after it.
        #[serde(default)]
        rules_file: Option<PathBuf>,
    },
    /// JSON POSTed to a URL.
    Webhook {
        /// Name rules refer to in `notify`.
        name: String,
        /// `http://` or `https://` URL. It may hold a token, so it is never logged.
        url: String,
        /// When set, each request carries `X-Lookout-Signature: sha256=<hex>`,
        /// the HMAC-SHA256 of the exact request body under this key.
        #[serde(default)]
        secret: Option<Secret>,
        /// Limit on the whole request (connect, send, answer), default 10 s.
        #[serde(default = "default_notify_timeout")]
        timeout: HumanDuration,
        /// Whether to send a message when the alerts of a group resolve (default true).
        #[serde(default = "default_true")]
        send_resolved: bool,
        /// Extra request headers, such as `Authorization`; values are never logged.
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
        /// Moved to [`Config::rules_file`] on loading (see docs/SPEC.md's example), so always `None` after it.
        #[serde(default)]
        rules_file: Option<PathBuf>,
    },
    /// Alerts pushed to Alertmanager's `POST /api/v2/alerts`, as
    /// Prometheus pushes them.
    Alertmanager {
        /// Name rules refer to in `notify`.
        name: String,
        /// Alertmanager's base URL (`http://127.0.0.1:9093`); never logged.
        url: String,
        /// Limit on the whole request, default 10 s.
        #[serde(default = "default_notify_timeout")]
        timeout: HumanDuration,
        /// How often the firing alerts are pushed again, default 1 min.
        #[serde(default = "default_resend_interval")]
        resend_interval: HumanDuration,
        /// Extra request headers (a proxy's `Authorization`); values are never logged.
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
        /// As [`NotifierConfig::Webhook`]'s.
        #[serde(default)]
        rules_file: Option<PathBuf>,
    },
    /// A message to a Slack incoming webhook (Mattermost's and
    /// Rocket.Chat's take it too).
    Slack(ChatConfig),
    /// An Adaptive Card to a Microsoft Teams workflow webhook.
    Teams(ChatConfig),
}

/// A chat notifier: `kind = "slack"` or `kind = "teams"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// Name rules refer to in `notify`.
    pub name: String,
    /// The webhook's URL: its path or query is a token, so it is a secret.
    pub url: Secret,
    /// Limit on the whole request, default 10 s.
    #[serde(default = "default_notify_timeout")]
    pub timeout: HumanDuration,
    /// Whether to send a message when the alerts of a group resolve (default true).
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// As [`NotifierConfig::Webhook`]'s.
    #[serde(default)]
    pub rules_file: Option<PathBuf>,
}

impl NotifierConfig {
    /// The name rules refer to.
    pub fn name(&self) -> &str {
        match self {
            NotifierConfig::Email { name, .. }
            | NotifierConfig::Webhook { name, .. }
            | NotifierConfig::Alertmanager { name, .. } => name,
            NotifierConfig::Slack(chat) | NotifierConfig::Teams(chat) => &chat.name,
        }
    }

    /// Whether the notifier wants a message when a group's alerts resolve.
    pub fn send_resolved(&self) -> bool {
        match self {
            NotifierConfig::Email { send_resolved, .. } | NotifierConfig::Webhook { send_resolved, .. } => {
                *send_resolved
            }
            NotifierConfig::Slack(chat) | NotifierConfig::Teams(chat) => chat.send_resolved,
            // Alertmanager learns of every resolution, and decides.
            NotifierConfig::Alertmanager { .. } => true,
        }
    }

    /// Removes a `rules_file` parsed into this notifier. TOML puts a key
    /// written after the last `[[notifiers]]` header into that notifier, and
    /// docs/SPEC.md's example config does exactly that with `rules_file`; loading
    /// moves it to [`Config::rules_file`] so the example means what it says.
    fn take_rules_file(&mut self) -> Option<PathBuf> {
        match self {
            NotifierConfig::Email { rules_file, .. } | NotifierConfig::Webhook { rules_file, .. } => rules_file.take(),
            NotifierConfig::Slack(chat) | NotifierConfig::Teams(chat) => chat.rules_file.take(),
            NotifierConfig::Alertmanager { rules_file, .. } => rules_file.take(),
        }
    }
}

/// Checks a notifier's URL (`http://` or `https://`; never quoted in the
/// error: it may carry a token) and `timeout`.
/// Checks an endpoint's URL and timeout, each given with its key.
fn check_endpoint(
    file: &Path,
    (url_key, url): (String, &str),
    (timeout_key, timeout): (String, HumanDuration),
) -> Result<(), ConfigError> {
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.contains(char::is_whitespace) {
        return Err(ConfigError::at_key(file, url_key, "is not an http:// or https:// URL"));
    }
    if timeout.get().is_zero() {
        return Err(ConfigError::at_key(file, timeout_key, "must be more than 0"));
    }
    Ok(())
}

/// [`check_endpoint`] for notifier `i`.
fn check_notifier_endpoint(file: &Path, i: usize, url: &str, timeout: HumanDuration) -> Result<(), ConfigError> {
    check_endpoint(
        file,
        (format!("notifiers[{i}].url"), url),
        (format!("notifiers[{i}].timeout"), timeout),
    )
}

/// Checks extra request headers, the table at `table` (such as
/// `notifiers[0].headers`).
fn check_headers(file: &Path, table: &str, headers: &BTreeMap<String, Secret>) -> Result<(), ConfigError> {
    for (header, value) in headers {
        let key = format!("{table}.{header}");
        if header.is_empty() || !header.bytes().all(is_header_name_byte) {
            return Err(ConfigError::at_key(file, key, "is not a valid HTTP header name"));
        }
        if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(header)) {
            return Err(ConfigError::at_key(file, key, "is set by Lookout itself"));
        }
        // Visible ASCII, spaces and tabs only (no line breaks), and not the value in the message.
        let value_ok = value.expose().bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !value_ok {
            return Err(ConfigError::at_key(
                file,
                key,
                "the value must be printable ASCII without line breaks",
            ));
        }
    }
    Ok(())
}

/// A token or password: its `Debug` output is redacted so that it never reaches a log.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for comparing or sending; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Config {
    /// The settings that differ between `self` (in force) and `newer` and
    /// take effect only at a restart, by key. A reload applies the rest: the
    /// tokens, the TLS certificates and keys, the notifiers (with `[smtp]`)
    /// and the rules.
    pub fn restart_needed(&self, newer: &Config) -> Vec<&'static str> {
        let syslog = |config: &Config| {
            config.syslog.as_ref().map(|syslog| {
                let shape = SyslogConfig {
                    tls: None,
                    ..syslog.clone()
                };
                (shape, syslog.tls.is_some())
            })
        };
        [
            ("listen", self.listen != newer.listen),
            ("data_dir", self.data_dir != newer.data_dir),
            ("retention", self.retention != newer.retention),
            ("ingest", self.ingest != newer.ingest),
            ("alerting", self.alerting != newer.alerting),
            ("tls (serving HTTPS or not)", self.tls.is_some() != newer.tls.is_some()),
            ("sessions", self.sessions != newer.sessions),
            ("http", self.http != newer.http),
            ("syslog (but its TLS files)", syslog(self) != syslog(newer)),
            ("export", self.export != newer.export),
            ("archive", self.archive != newer.archive),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
    }

    /// Reads, parses and validates `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        load_toml::<Config>(file)?.finish(file)
    }

    /// Parses and validates `text`; `file` is only named in errors.
    pub fn from_toml(file: &Path, text: &str) -> Result<Config, ConfigError> {
        parse_toml::<Config>(file, text)?.finish(file)
    }

    fn finish(mut self, file: &Path) -> Result<Config, ConfigError> {
        for i in 0..self.notifiers.len() {
            if let Some(rules_file) = self.notifiers[i].take_rules_file() {
                if self.rules_file.is_some() {
                    return Err(ConfigError::at_key(
                        file,
                        format!("notifiers[{i}].rules_file"),
                        "rules_file is given twice (a top-level key written after a \
                         [[notifiers]] entry belongs to that entry in TOML)",
                    ));
                }
                self.rules_file = Some(rules_file);
            }
        }
        if let Some(path) = &self.auth.tokens_file {
            let text = lookout_shared::config::read_secret_file(path)
                .map_err(|reason| ConfigError::at_key(file, "auth.tokens_file", reason))?;
            let more: TokensFile = parse_toml(path, &text)?;
            self.auth.ingest_tokens.extend(more.ingest_tokens);
            self.auth.api_tokens.extend(more.api_tokens);
        }
        self.validate(file)?;
        let notifiers: Vec<String> = self.notifiers.iter().map(|n| n.name().to_string()).collect();
        let context = crate::alert::rules::Context {
            notifiers: &notifiers,
            evaluation_interval: self.alerting.evaluation_interval.get(),
        };
        self.rules = crate::alert::rules::load(self.rules_file.as_deref(), context)?;
        Ok(self)
    }

    /// Checks `[archive]`: a usable `to`, S3 keys only for S3, and
    /// `after_days` within the days logs are kept.
    fn check_archive(&self, file: &Path, archive: &ArchiveConfig) -> Result<(), ConfigError> {
        let target = archive
            .target()
            .map_err(|reason| ConfigError::at_key(file, "archive.to", reason))?;
        if let ArchiveTarget::Folder(folder) = &target
            && folder.starts_with(&self.data_dir)
        {
            return Err(ConfigError::at_key(
                file,
                "archive.to",
                "is inside data_dir: an archive must outlive the data it keeps",
            ));
        }
        let s3_keys = [
            ("archive.s3_endpoint", archive.s3_endpoint.is_some()),
            ("archive.s3_region", archive.s3_region.is_some()),
            ("archive.s3_access_key_id", archive.s3_access_key_id.is_some()),
            ("archive.s3_secret_access_key", archive.s3_secret_access_key.is_some()),
        ];
        if matches!(target, ArchiveTarget::Folder(_))
            && let Some((key, _)) = s3_keys.iter().find(|(_, set)| *set)
        {
            return Err(ConfigError::at_key(file, *key, "applies only to an s3:// archive"));
        }
        if archive.s3_access_key_id.is_some() != archive.s3_secret_access_key.is_some() {
            return Err(ConfigError::at_key(
                file,
                "archive.s3_secret_access_key",
                "s3_access_key_id and s3_secret_access_key go together",
            ));
        }
        if let Some(endpoint) = &archive.s3_endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !scheme_ok || endpoint.contains(char::is_whitespace) {
                return Err(ConfigError::at_key(
                    file,
                    "archive.s3_endpoint",
                    "is not an http:// or https:// URL",
                ));
            }
        }
        if !(1..=self.retention.logs_days).contains(&archive.after_days) {
            return Err(ConfigError::at_key(
                file,
                "archive.after_days",
                format!(
                    "must be from 1 (a day is archived once it has ended) to retention.logs_days ({}): \
                     retention deletes a day only once it is archived",
                    self.retention.logs_days
                ),
            ));
        }
        Ok(())
    }

    /// Checks what the types alone cannot express.
    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let err = |key: String, reason: String| Err(ConfigError::at_key(file, key, reason));
        if let Some(url) = &self.export.remote_write {
            check_endpoint(
                file,
                ("export.remote_write".into(), url.expose()),
                ("export.remote_write_timeout".into(), self.export.remote_write_timeout),
            )?;
        }
        check_headers(file, "export.remote_write_headers", &self.export.remote_write_headers)?;
        if let Some(archive) = &self.archive {
            self.check_archive(file, archive)?;
        }
        if !(1..=100_000_000).contains(&self.export.max_lines) {
            return err(
                "export.max_lines".into(),
                "must be from 1 to 100000000 (each line's place is held while an export runs)".into(),
            );
        }
        let ingest: Vec<&Secret> = self.auth.ingest_tokens.iter().map(IngestToken::secret).collect();
        let api: Vec<&Secret> = self.auth.api_tokens.iter().collect();
        for (key, tokens) in [("auth.ingest_tokens", &ingest), ("auth.api_tokens", &api)] {
            if tokens.is_empty() {
                return err(
                    key.into(),
                    "at least one token is required (here or in `auth.tokens_file`)".into(),
                );
            }
            for (i, token) in tokens.iter().enumerate() {
                let token = token.expose();
                if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return err(
                        format!("{key}[{i}]"),
                        "a token must not contain spaces or control characters".into(),
                    );
                }
                if token.chars().count() < MIN_TOKEN_CHARS {
                    return err(
                        format!("{key}[{i}]"),
                        format!(
                            "a token needs at least {MIN_TOKEN_CHARS} characters (`openssl rand -hex 16` makes one)"
                        ),
                    );
                }
            }
        }
        if let Some(i) = api.iter().position(|token| ingest.contains(token)) {
            return err(
                format!("auth.api_tokens[{i}]"),
                "the same token is also an ingest token; give readers and agents different tokens".into(),
            );
        }
        for (i, token) in self.auth.ingest_tokens.iter().enumerate() {
            let Some(hosts) = token.hosts() else {
                continue;
            };
            let bad = |pattern: &String| pattern.is_empty() || pattern.trim_end_matches('*').contains('*');
            if hosts.is_empty() || hosts.iter().any(bad) {
                return err(
                    format!("auth.ingest_tokens[{i}].hosts"),
                    "list host names, or prefixes ending in `*` (such as \"web-*\")".into(),
                );
            }
        }
        if self.retention.logs_days == 0 {
            return err("retention.logs_days".into(), "must be at least 1".into());
        }
        if self.retention.metrics_days == 0 {
            return err("retention.metrics_days".into(), "must be at least 1".into());
        }
        if self.alerting.evaluation_interval.get() < Duration::from_secs(1) {
            return err("alerting.evaluation_interval".into(), "must be at least 1s".into());
        }
        if self.alerting.repeat_interval.get() < Duration::from_secs(60) {
            return err("alerting.repeat_interval".into(), "must be at least 1m".into());
        }
        if let Some(url) = &self.alerting.external_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return err(
                "alerting.external_url".into(),
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        if self.ingest.max_body_bytes.bytes() == 0 {
            return err("ingest.max_body_bytes".into(), "must be more than 0".into());
        }
        if self.ingest.max_decompressed_bytes.bytes() == 0 {
            return err("ingest.max_decompressed_bytes".into(), "must be more than 0".into());
        }
        let sessions = &self.sessions;
        if sessions.idle_timeout.get() < Duration::from_secs(1) {
            return err("sessions.idle_timeout".into(), "must be at least 1s".into());
        }
        if sessions.absolute_timeout.get() < sessions.idle_timeout.get() {
            return err(
                "sessions.absolute_timeout".into(),
                "must not be shorter than sessions.idle_timeout".into(),
            );
        }
        if let Some(tls) = &self.tls {
            crate::tls::server_config(tls).map_err(|e| ConfigError::at_key(file, e.key(), e.to_string()))?;
        }
        if let Some(syslog) = &self.syslog {
            if syslog.tcp.is_none() && syslog.udp.is_none() {
                return err(
                    "syslog".into(),
                    "set `tcp`, `udp` or both (addresses such as \"127.0.0.1:6514\")".into(),
                );
            }
            if syslog.tls.is_some() && syslog.tcp.is_none() {
                return err("syslog.tls".into(), "TLS is served on `tcp`; set `tcp` too".into());
            }
            let max = syslog.max_message_bytes.bytes();
            if !(480..=crate::receivers::MAX_MESSAGE_BYTES as u64).contains(&max) {
                return err(
                    "syslog.max_message_bytes".into(),
                    "must be between 480 bytes (RFC 3164's minimum) and 1MB".into(),
                );
            }
            if syslog.max_connections == 0 {
                return err("syslog.max_connections".into(), "must be at least 1".into());
            }
            if syslog.idle_timeout.get() < Duration::from_secs(1) {
                return err("syslog.idle_timeout".into(), "must be at least 1s".into());
            }
            if let Some(zone) = &syslog.timezone
                && let Err(e) = jiff::tz::TimeZone::get(zone)
            {
                return err(
                    "syslog.timezone".into(),
                    format!("`{zone}` is not a time zone this machine knows: {e}"),
                );
            }
            if let Some(tls) = &syslog.tls {
                crate::tls::syslog_server_config(tls)
                    .map_err(|e| ConfigError::at_key(file, format!("syslog.{}", e.key()), e.to_string()))?;
            }
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return err("smtp.host".into(), "must not be empty".into());
            }
            if !looks_like_email(&smtp.from) {
                return err("smtp.from".into(), format!("`{}` is not an email address", smtp.from));
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return err(
                    "smtp.username".into(),
                    "username and password must be given together".into(),
                );
            }
            if smtp.timeout.get().is_zero() {
                return err("smtp.timeout".into(), "must be more than 0".into());
            }
        }
        let mut names = HashSet::new();
        for (i, notifier) in self.notifiers.iter().enumerate() {
            let name = notifier.name();
            if name.trim().is_empty() {
                return err(format!("notifiers[{i}].name"), "must not be empty".into());
            }
            if !names.insert(name) {
                return err(
                    format!("notifiers[{i}].name"),
                    format!("`{name}` is used by another notifier; names must be unique"),
                );
            }
            match notifier {
                NotifierConfig::Email { to, .. } => {
                    if self.smtp.is_none() {
                        return err(
                            format!("notifiers[{i}]"),
                            "an email notifier needs an [smtp] section".into(),
                        );
                    }
                    if to.is_empty() {
                        return err(format!("notifiers[{i}].to"), "needs at least one address".into());
                    }
                    if let Some((j, bad)) = to.iter().enumerate().find(|(_, a)| !looks_like_email(a)) {
                        return err(
                            format!("notifiers[{i}].to[{j}]"),
                            format!("`{bad}` is not an email address"),
                        );
                    }
                }
                NotifierConfig::Webhook {
                    url,
                    secret,
                    timeout,
                    headers,
                    ..
                } => {
                    check_notifier_endpoint(file, i, url, *timeout)?;
                    if secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                        return err(format!("notifiers[{i}].secret"), "must not be empty".into());
                    }
                    check_headers(file, &format!("notifiers[{i}].headers"), headers)?;
                }
                NotifierConfig::Alertmanager {
                    url,
                    timeout,
                    resend_interval,
                    headers,
                    ..
                } => {
                    check_notifier_endpoint(file, i, url, *timeout)?;
                    if resend_interval.get() < Duration::from_secs(1) {
                        return err(format!("notifiers[{i}].resend_interval"), "must be at least 1s".into());
                    }
                    check_headers(file, &format!("notifiers[{i}].headers"), headers)?;
                }
                NotifierConfig::Slack(ChatConfig { url, timeout, .. })
                | NotifierConfig::Teams(ChatConfig { url, timeout, .. }) => {
                    check_notifier_endpoint(file, i, url.expose(), *timeout)?;
                }
            }
        }
        Ok(())
    }
}

/// Webhook headers that `headers` may not set: the transport and the signature own them.
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "connection",
    "content-encoding",
    "x-lookout-signature",
    "x-prometheus-remote-write-version",
];

/// An RFC 9110 `tchar`: what a header name is made of.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A deliberately loose check (`local@domain`): the mail server has the last word.
fn looks_like_email(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !address.contains(char::is_whitespace),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("aggregator.toml"), text)
    }

    #[test]
    fn tokens_can_live_in_a_private_tokens_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.toml");
        std::fs::write(
            &tokens,
            "api_tokens = [\"from-the-file-1\"]\ningest_tokens = [\"ingest-file-1\"]\n",
        )
        .unwrap();
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o640)).unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[auth]\ntokens_file = {:?}\n",
            tokens.display().to_string()
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.auth.api_tokens, [Secret::new("from-the-file-1")]);
        assert_eq!(config.auth.ingest_tokens.len(), 1);
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("auth.tokens_file") && err.contains("chmod o-rwx"), "{err}");
        assert!(!err.contains("from-the-file"), "no token in the error: {err}");
    }

    #[test]
    fn remote_write_takes_an_http_url_and_headers_lookout_does_not_set_itself() {
        let with = |export: &str| parse(&format!("{MINIMAL}[export]\n{export}\n"));
        let config = with("remote_write = \"http://127.0.0.1:9090/api/v1/write\"").unwrap();
        assert_eq!(config.export.remote_write_timeout.get(), Duration::from_secs(30));
        for (export, key) in [
            ("remote_write = \"ftp://x/y\"", "export.remote_write"),
            (
                "remote_write = \"http://x/\"\nremote_write_timeout = \"0s\"",
                "export.remote_write_timeout",
            ),
            (
                "remote_write = \"http://x/\"\nremote_write_headers = { Content-Encoding = \"gzip\" }",
                "export.remote_write_headers.Content-Encoding",
            ),
        ] {
            let err = with(export).unwrap_err().to_string();
            assert!(err.contains(key), "{export}: {err}");
            assert!(!err.contains("ftp://x"), "the URL is not repeated: {err}");
        }
    }

    #[test]
    fn a_reload_names_only_the_settings_that_wait_for_a_restart() {
        let base = "listen = \"127.0.0.1:7070\"\ndata_dir = \"d\"\n[auth]\ningest_tokens = [\"ingest-token-a\"]\n\
                    api_tokens = [\"reader-token-b\"]\n";
        let before = parse(base).unwrap();
        let tokens = parse(&base.replace("reader-token-b", "reader-token-c")).unwrap();
        assert!(before.restart_needed(&tokens).is_empty(), "tokens are reloaded");
        let hooks = parse(&format!(
            "{base}[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n"
        ))
        .unwrap();
        assert!(before.restart_needed(&hooks).is_empty(), "notifiers are reloaded");
        let moved = parse(&format!(
            "{}[retention]\nlogs_days = 3\n[syslog]\nudp = \"127.0.0.1:5514\"\n",
            base.replace("7070", "7071")
        ))
        .unwrap();
        assert_eq!(
            before.restart_needed(&moved),
            ["listen", "retention", "syslog (but its TLS files)"]
        );
    }

    const MINIMAL: &str = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[auth]\ningest_tokens = [\"ingest-token-a\"]\napi_tokens = [\"reader-token-b\"]\n";

    #[test]
    fn defaults_apply() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.retention.logs_days, 14);
        assert_eq!(config.retention.metrics_days, 30);
        assert_eq!(config.ingest.max_body_bytes.bytes(), 16 * 1024 * 1024);
        assert_eq!(config.ingest.max_decompressed_bytes.bytes(), 64 * 1024 * 1024);
        assert!(config.notifiers.is_empty() && config.smtp.is_none());
        assert!(config.tls.is_none());
        assert_eq!(config.sessions.idle_timeout.get(), Duration::from_secs(12 * 3600));
        assert_eq!(
            config.sessions.absolute_timeout.get(),
            Duration::from_secs(7 * 24 * 3600)
        );
    }

    #[test]
    fn archive_settings_are_checked() {
        let with = |section: &str| parse(&format!("{MINIMAL}[archive]\n{section}"));
        let s3 = with("to = \"s3://logs-bucket/lookout/a\"\nafter_days = 1\n").unwrap();
        assert_eq!(
            s3.archive.unwrap().target(),
            Ok(ArchiveTarget::S3 {
                bucket: "logs-bucket".into(),
                prefix: "lookout/a".into()
            })
        );
        let folder = with("to = \"/srv/archive\"\nafter_days = 14\n").unwrap();
        assert_eq!(
            folder.archive.unwrap().target(),
            Ok(ArchiveTarget::Folder("/srv/archive".into()))
        );
        for (section, key) in [
            ("to = \"archive\"\nafter_days = 1\n", "archive.to"),
            ("to = \"s3://Bad_Bucket\"\nafter_days = 1\n", "archive.to"),
            ("to = \"s3://bucket/a/../b\"\nafter_days = 1\n", "archive.to"),
            ("to = \"/srv/a\"\nafter_days = 0\n", "archive.after_days"),
            ("to = \"/srv/a\"\nafter_days = 15\n", "archive.after_days"),
            (
                "to = \"/srv/a\"\nafter_days = 1\ns3_region = \"eu-west-1\"\n",
                "archive.s3_region",
            ),
            (
                "to = \"s3://bucket\"\nafter_days = 1\ns3_endpoint = \"minio:9000\"\n",
                "archive.s3_endpoint",
            ),
            (
                "to = \"s3://bucket\"\nafter_days = 1\ns3_access_key_id = \"AKID\"\n",
                "archive.s3_secret_access_key",
            ),
        ] {
            let err = with(section).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{section}: {err}");
        }
        let inside = parse(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"/var/lib/lookout\"\n[auth]\ningest_tokens = [\"ingest-token-a\"]\n\
             api_tokens = [\"reader-token-b\"]\n[archive]\nto = \"/var/lib/lookout/archive\"\nafter_days = 1\n",
        )
        .unwrap_err();
        assert!(inside.reason.contains("inside data_dir"), "{inside}");
        let secret = with("to = \"s3://bucket\"\nafter_days = 1\ns3_access_key_id = \"AKID\"\ns3_secret_access_key = \"hush-hush-1\"\n")
            .unwrap();
        assert!(
            !format!("{secret:?}").contains("hush-hush-1"),
            "the secret key is never shown"
        );
    }

    #[test]
    fn tls_files_are_checked_when_loading() {
        let text = format!("{MINIMAL}[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("tls.cert"), "{err}");
        assert!(err.reason.contains("/nonexistent/cert.pem"), "{err}");
        let only_cert = format!("{MINIMAL}[tls]\ncert = \"c.pem\"\n");
        let err = parse(&only_cert).unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
    }

    #[test]
    fn syslog_listeners_are_checked() {
        let config = Config::from_toml(
            Path::new("t.toml"),
            &format!("{MINIMAL}[syslog]\ntcp = \"127.0.0.1:6514\"\nudp = \"127.0.0.1:6514\"\n"),
        )
        .unwrap();
        let syslog = config.syslog.unwrap();
        assert_eq!(syslog.max_message_bytes.bytes(), 64 * 1024);
        assert_eq!(
            (syslog.max_connections, syslog.idle_timeout.get()),
            (256, Duration::from_secs(600))
        );
        for (section, key) in [
            ("[syslog]\n", "syslog"),
            (
                "[syslog]\nudp = \"127.0.0.1:514\"\ntls = { cert = \"c\", key = \"k\" }\n",
                "syslog.tls",
            ),
            (
                "[syslog]\ntcp = \"127.0.0.1:514\"\nmax_message_bytes = \"100\"\n",
                "syslog.max_message_bytes",
            ),
            (
                "[syslog]\ntcp = \"127.0.0.1:514\"\ntimezone = \"Mars/Olympus\"\n",
                "syslog.timezone",
            ),
            (
                "[syslog]\ntcp = \"127.0.0.1:514\"\ntls = { cert = \"/nonexistent.pem\", key = \"k\" }\n",
                "syslog.tls.cert",
            ),
        ] {
            let err = Config::from_toml(Path::new("t.toml"), &format!("{MINIMAL}{section}")).unwrap_err();
            assert!(err.to_string().contains(key), "{section}: {err}");
        }
    }

    #[test]
    fn ingest_tokens_may_be_bound_to_hosts() {
        let text = MINIMAL.replace(
            "[\"ingest-token-a\"]",
            "[\"ingest-token-a\", { token = \"ingest-token-c\", hosts = [\"web-1\", \"db-*\"] }]",
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.auth.ingest_tokens[0].hosts(), None);
        let hosts = config.auth.ingest_tokens[1].hosts().unwrap();
        assert!(host_allowed(hosts, "web-1") && host_allowed(hosts, "db-7"));
        assert!(!host_allowed(hosts, "web-10") && !host_allowed(hosts, "xdb-1"));
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let cases = [
            (MINIMAL.replace("[\"ingest-token-a\"]", "[]"), "auth.ingest_tokens"),
            (
                MINIMAL.replace("[\"reader-token-b\"]", "[\"has a space in it\"]"),
                "auth.api_tokens[0]",
            ),
            (
                MINIMAL.replace("[\"reader-token-b\"]", "[\"short\"]"),
                "auth.api_tokens[0]",
            ),
            (
                MINIMAL.replace("[\"reader-token-b\"]", "[\"ingest-token-a\"]"),
                "auth.api_tokens[0]",
            ),
            (
                MINIMAL.replace("[\"ingest-token-a\"]", "[{ token = \"ingest-token-a\", hosts = [] }]"),
                "auth.ingest_tokens[0].hosts",
            ),
            (
                MINIMAL.replace(
                    "[\"ingest-token-a\"]",
                    "[{ token = \"ingest-token-a\", hosts = [\"a*b\"] }]",
                ),
                "auth.ingest_tokens[0].hosts",
            ),
            (format!("{MINIMAL}[retention]\nlogs_days = 0\n"), "retention.logs_days"),
            (
                format!("{MINIMAL}[sessions]\nidle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n"),
                "sessions.absolute_timeout",
            ),
            (
                format!("{MINIMAL}[[notifiers]]\nname = \"m\"\nkind = \"email\"\nto = [\"x@y\"]\n"),
                "notifiers[0]",
            ),
            (
                format!("{MINIMAL}[[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n"),
                "notifiers[0].url",
            ),
            (
                format!("{MINIMAL}[[notifiers]]\nname = \"c\"\nkind = \"slack\"\nurl = \"hooks.slack.com/x\"\n"),
                "notifiers[0].url",
            ),
            (
                format!(
                    "{MINIMAL}[[notifiers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://x:9093\"\n\
                     resend_interval = \"0s\"\n"
                ),
                "notifiers[0].resend_interval",
            ),
            (
                format!(
                    "{MINIMAL}[[notifiers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://x:9093\"\n\
                     headers = {{ \"Bad Name\" = \"v\" }}\n"
                ),
                "notifiers[0].headers.Bad Name",
            ),
            (
                format!(
                    "{MINIMAL}[[notifiers]]\nname = \"t\"\nkind = \"teams\"\nurl = \"https://x\"\ntimeout = \"0s\"\n"
                ),
                "notifiers[0].timeout",
            ),
            (
                format!(
                    "{MINIMAL}[[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://x\"\n\
                     [[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://y\"\n"
                ),
                "notifiers[1].name",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{err}");
        }
    }

    #[test]
    fn rules_file_after_the_notifiers_is_the_top_level_one() {
        let text = format!(
            "{MINIMAL}[[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://x\"\n\
             rules_file = \"../config/rules.toml\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.rules_file.as_deref(), Some(Path::new("../config/rules.toml")));
        assert!(
            config.rules.iter().any(|rule| rule.name == "SshBreakIn"),
            "the example rules load"
        );
        let twice = format!("rules_file = \"a.toml\"\n{text}");
        let err = parse(&twice).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("notifiers[0].rules_file"), "{err}");
    }

    #[test]
    fn notifier_options_have_defaults_and_parse() {
        let smtp = "[smtp]\nhost = \"127.0.0.1\"\nport = 2525\nfrom = \"l@example.com\"\n";
        let text = format!(
            "{MINIMAL}{smtp}[[notifiers]]\nname = \"m\"\nkind = \"email\"\nto = [\"x@y\"]\n\
             [[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://x\"\n\
             [[notifiers]]\nname = \"w2\"\nkind = \"webhook\"\nurl = \"https://x/h\"\nsecret = \"k\"\n\
             timeout = \"3s\"\nsend_resolved = false\nheaders = {{ Authorization = \"Bearer t\" }}\n"
        );
        let config = parse(&text).unwrap();
        let ten = std::time::Duration::from_secs(10);
        assert_eq!(config.smtp.as_ref().map(|s| s.timeout.get()), Some(ten));
        assert!(config.notifiers[0].send_resolved() && config.notifiers[1].send_resolved());
        match &config.notifiers[1] {
            NotifierConfig::Webhook {
                secret,
                timeout,
                headers,
                ..
            } => assert!(secret.is_none() && timeout.get() == ten && headers.is_empty()),
            other => panic!("not a webhook: {other:?}"),
        }
        assert!(!config.notifiers[2].send_resolved());
        match &config.notifiers[2] {
            NotifierConfig::Webhook {
                secret,
                timeout,
                headers,
                ..
            } => {
                assert_eq!(secret.as_ref().map(Secret::expose), Some("k"));
                assert_eq!(timeout.get(), std::time::Duration::from_secs(3));
                assert_eq!(headers.get("Authorization").map(Secret::expose), Some("Bearer t"));
            }
            other => panic!("not a webhook: {other:?}"),
        }
        let debug = format!("{config:?}");
        assert!(!debug.contains("Bearer t"), "{debug}");
    }

    #[test]
    fn bad_webhook_options_name_the_key() {
        let hook = format!("{MINIMAL}[[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://x\"\n");
        let cases = [
            (format!("{hook}timeout = \"0s\"\n"), "notifiers[0].timeout"),
            (format!("{hook}secret = \"\"\n"), "notifiers[0].secret"),
            (
                format!("{hook}headers = {{ \"Bad Name\" = \"v\" }}\n"),
                "notifiers[0].headers.Bad Name",
            ),
            (
                format!("{hook}headers = {{ X-Lookout-Signature = \"v\" }}\n"),
                "notifiers[0].headers.X-Lookout-Signature",
            ),
            (
                format!("{hook}headers = {{ X-A = \"v\\nInjected: 1\" }}\n"),
                "notifiers[0].headers.X-A",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{err}");
            assert!(!err.to_string().contains("Injected"), "{err}");
        }
        let unknown = parse(&format!("{hook}retries = 3\n")).unwrap_err();
        assert!(unknown.to_string().contains("retries"), "{unknown}");
        let chat = format!("{MINIMAL}[[notifiers]]\nname = \"c\"\nkind = \"slack\"\nurl = \"https://x/T0/B0/t\"\n");
        assert!(parse(&chat).is_ok());
        let unknown = parse(&format!("{chat}secret = \"k\"\n")).unwrap_err();
        assert!(unknown.to_string().contains("secret"), "{unknown}");
    }

    #[test]
    fn a_rule_file_error_names_the_file_rule_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.toml");
        std::fs::write(
            &rules,
            "[[rules]]\nname = \"Disk\"\nkind = \"threshold\"\nmetric = \"m\"\n",
        )
        .unwrap();
        let err = parse(&format!("rules_file = {:?}\n{MINIMAL}", rules.display().to_string())).unwrap_err();
        assert_eq!(err.file, rules);
        assert_eq!(err.key.as_deref(), Some("rules[0] (Disk).threshold"), "{err}");
        let missing = parse(&format!("rules_file = \"/nonexistent/rules.toml\"\n{MINIMAL}")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/rules.toml"), "{missing}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = parse(MINIMAL).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("\"a\"") && debug.contains("Secret(***)"), "{debug}");
    }
}
