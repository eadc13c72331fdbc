//! The agent's configuration file (`agent.toml`), as fixed by docs/SPEC.md, plus the
//! keys the issues add (multiline, labels, rotation, shipping limits).
//!
//! [`AgentConfig::load`] parses and then validates everything that can be
//! checked without touching the logs themselves (globs, regexes, the URL), so
//! `check-config` and a start share one path and one kind of error.

use crate::sources::file::container::ContainerFormat;
use crate::sources::file::open::Confinement;
use globset::{Glob, GlobSet, GlobSetBuilder};
use lookout_shared::config::{ByteSize, ConfigError, HumanDuration, load_toml};
use lookout_shared::wire::{Layout, LineFormat};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole `agent.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Base URL of the aggregator, e.g. `http://127.0.0.1:7070`.
    pub aggregator_url: String,
    /// Ingest token sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: String,
    /// A file holding the ingest token instead (readable by its owner and
    /// group only; spaces and line breaks around it are ignored), such as
    /// the one the Debian package makes.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for an `https://` aggregator,
    /// besides the system's roots (for a self-signed deployment).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Host name put on every record; defaults to the machine's hostname.
    #[serde(default)]
    pub host: Option<String>,
    /// Where checkpoints and the spool live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Log sources.
    #[serde(default)]
    pub logs: Vec<LogSourceConfig>,
    /// The systemd journal source; off when absent.
    #[serde(default)]
    pub journald: Option<JournaldConfig>,
    /// Host metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Batching, spooling and sending.
    #[serde(default)]
    pub shipper: ShipperConfig,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("./agent-state")
}

/// One `[[logs]]` table: a set of files and how to read them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceConfig {
    /// Include globs (`/var/log/**/*.log`).
    pub paths: Vec<String>,
    /// Exclude globs, matched against the whole path (`*.gz` excludes any `.gz`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in files found at the agent's very first start.
    #[serde(default)]
    pub start_at: StartAt,
    /// Joins continuation lines (stack traces) into one record.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// Longer records are cut to this size and marked truncated.
    #[serde(default = "default_max_record")]
    pub max_record_bytes: ByteSize,
    /// Labels put on every record of this source.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The agent rotates the files of this source itself when set.
    #[serde(default)]
    pub rotate: Option<RotatePolicy>,
    /// Follow symlinks wherever they point. By default a symlink is followed
    /// only while it stays within the glob's base folder, so that a link
    /// planted by whoever can write there cannot make the agent (root) ship
    /// a file they could not read themselves.
    #[serde(default)]
    pub follow_symlinks: bool,
    /// How lines are laid out: `plain` (the default: time and level are
    /// found where formats put them), `json`, `logfmt`, or a container
    /// runtime's files, `docker` (`json-file`) or `cri` (containerd, CRI-O).
    #[serde(default)]
    pub format: LogFormat,
    /// The zone (IANA name) of times that state none; default the host's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where the event time is, for lines detection does not read right.
    #[serde(default)]
    pub timestamp: Option<TimestampOverride>,
    /// The key holding the level in JSON or logfmt lines.
    #[serde(default)]
    pub level_field: Option<String>,
}

/// `[journald]`: the systemd journal, read through `journalctl`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournaldConfig {
    /// Whether the journal is read (default true once the table is there).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Units whose entries are kept (`_SYSTEMD_UNIT`), as globs; a name
    /// without a dot means its `.service`. Empty (the default): every entry.
    #[serde(default)]
    pub units: Vec<String>,
    /// A journal folder to read (`journalctl --directory`); default the
    /// system journal.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Where to start at the agent's very first start: the oldest entry the
    /// journal still holds, or only entries written from then on.
    #[serde(default)]
    pub start_at: StartAt,
    /// Further journal fields kept on each record (`_COMM`,
    /// `CONTAINER_NAME`), named in lowercase without leading underscores
    /// (`comm`, `container_name`).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Labels put on every record of the journal.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Longer messages are cut to this size and marked truncated.
    #[serde(default = "default_max_record")]
    pub max_record_bytes: ByteSize,
    /// The `journalctl` program.
    #[serde(default = "default_journalctl")]
    pub journalctl: PathBuf,
}

fn default_journalctl() -> PathBuf {
    PathBuf::from("/usr/bin/journalctl")
}

/// `[journald]` with its unit globs compiled.
#[derive(Debug, Clone)]
pub struct CompiledJournald {
    /// The configuration it was built from.
    pub config: JournaldConfig,
    /// `units` as one matcher; `None` keeps every entry.
    pub units: Option<GlobSet>,
}

impl CompiledJournald {
    /// Whether an entry of `unit` (its `_SYSTEMD_UNIT`, if any) is kept.
    pub fn wants_unit(&self, unit: Option<&str>) -> bool {
        match (&self.units, unit) {
            (None, _) => true,
            (Some(units), Some(unit)) => units.is_match(unit),
            (Some(_), None) => false,
        }
    }
}

/// `format` of a `[[logs]]` source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Any text.
    #[default]
    Plain,
    /// A JSON object per line.
    Json,
    /// `key=value` pairs per line.
    Logfmt,
    /// Docker's `json-file` lines, unwrapped; the text inside is read as
    /// plain.
    Docker,
    /// CRI lines (`<time> <stream> <P|F> <text>`), unwrapped; the text
    /// inside is read as plain.
    Cri,
}

impl LogFormat {
    /// How the aggregator reads the (unwrapped) lines.
    pub fn layout(self) -> Layout {
        match self {
            LogFormat::Plain | LogFormat::Docker | LogFormat::Cri => Layout::Plain,
            LogFormat::Json => Layout::Json,
            LogFormat::Logfmt => Layout::Logfmt,
        }
    }

    /// The container runtime whose lines these are, if any.
    pub fn container(self) -> Option<ContainerFormat> {
        match self {
            LogFormat::Docker => Some(ContainerFormat::Docker),
            LogFormat::Cri => Some(ContainerFormat::Cri),
            _ => None,
        }
    }
}

/// `timestamp = { field = "when", format = "%d/%m/%Y %H:%M:%S" }`: the key
/// holding the time (JSON or logfmt), its layout in `strftime` directives,
/// or both. A format alone is matched at the start of the line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampOverride {
    /// The key (dotted for nested JSON: `event.created`).
    #[serde(default)]
    pub field: Option<String>,
    /// The layout, e.g. `%Y-%m-%d %H:%M:%S%.f` or `%s` for Unix seconds.
    #[serde(default)]
    pub format: Option<String>,
}

fn default_max_record() -> ByteSize {
    ByteSize(256 * 1024)
}

/// `start_at` of docs/SPEC.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Read files found at the first start from their first byte.
    #[default]
    Beginning,
    /// Skip what files found at the first start already hold.
    End,
}

/// `multiline = { start_pattern = "^\\d{4}-", timeout = "1s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A line matching this regex starts a new record; others continue the last.
    pub start_pattern: String,
    /// A record with no new line for this long is sent as it is.
    #[serde(default = "default_multiline_timeout")]
    pub timeout: HumanDuration,
}

fn default_multiline_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

/// `rotate = { max_size = "100MB", max_age = "1d", keep = 5, compress = true, mode = "rename" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatePolicy {
    /// Rotate once the file is this large.
    #[serde(default)]
    pub max_size: Option<ByteSize>,
    /// Rotate once the file is this old (since it was created or last rotated).
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
    /// How many rotated files to keep (`app.log.1` … `app.log.N`).
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// Gzip rotated files from the second one on (`app.log.2.gz`), so the
    /// newest rotated file stays plain while writers may still hold it open.
    #[serde(default = "default_true")]
    pub compress: bool,
    /// How the file is rotated.
    #[serde(default)]
    pub mode: RotateMode,
    /// Run with `sh -c` after each rotation (e.g. to make the writer reopen).
    #[serde(default)]
    pub post_command: Option<String>,
}

fn default_keep() -> u32 {
    5
}

fn default_true() -> bool {
    true
}

/// Rotation modes, as in logrotate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotateMode {
    /// Rename the file to `.1` and create a new empty one (logrotate `create`).
    #[default]
    Rename,
    /// Copy the file to `.1`, then truncate it (for writers that never reopen).
    Copytruncate,
}

/// `[metrics]`: host metrics, and which filesystems, devices and interfaces
/// they cover.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Collects host metrics at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Collection interval.
    #[serde(default = "default_metrics_interval")]
    pub interval: HumanDuration,
    /// Globs on mount points; when given, only matching filesystems are
    /// measured (and `fs_types_exclude` still applies to them).
    #[serde(default)]
    pub mounts_include: Vec<String>,
    /// Globs on mount points that are not measured.
    #[serde(default)]
    pub mounts_exclude: Vec<String>,
    /// Filesystem types that are not measured; when given, replaces the
    /// built-in list of pseudo filesystems ([`DEFAULT_FS_TYPES_EXCLUDE`]).
    #[serde(default)]
    pub fs_types_exclude: Option<Vec<String>>,
    /// Interface names (globs allowed); when given, only these are measured,
    /// even virtual and loopback ones.
    #[serde(default)]
    pub interfaces_include: Vec<String>,
    /// Interface names (globs allowed) that are not measured.
    #[serde(default)]
    pub interfaces_exclude: Vec<String>,
    /// Block device names (globs allowed) that are not measured, besides the
    /// loop, ram and zram devices, which never are.
    #[serde(default)]
    pub devices_exclude: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            interval: default_metrics_interval(),
            mounts_include: Vec::new(),
            mounts_exclude: Vec::new(),
            fs_types_exclude: None,
            interfaces_include: Vec::new(),
            interfaces_exclude: Vec::new(),
            devices_exclude: Vec::new(),
        }
    }
}

fn default_metrics_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// Filesystem types not measured unless `fs_types_exclude` says otherwise:
/// kernel pseudo filesystems (no disk behind them), memory-backed ones, and
/// read-only images, which are always full and would only trip disk alerts.
pub const DEFAULT_FS_TYPES_EXCLUDE: &[&str] = &[
    "aufs",
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "erofs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Block devices never measured: loop devices count the I/O of files already
/// counted on their backing disk, and ram/zram devices are memory.
const BUILTIN_DEVICE_PREFIXES_EXCLUDE: &[&str] = &["loop", "ram", "zram"];

/// `[shipper]`: batching and delivery limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipperConfig {
    /// A batch is sent once its messages add up to this many bytes …
    #[serde(default = "default_batch_bytes")]
    pub batch_max_bytes: ByteSize,
    /// … or once its first record is this old.
    #[serde(default = "default_batch_wait")]
    pub batch_max_wait: HumanDuration,
    /// Batches sent at once.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// The on-disk spool's bound; reading pauses when it is full.
    #[serde(default = "default_spool_bytes")]
    pub spool_max_bytes: ByteSize,
    /// Timeout of one ingest request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// How long a file that was renamed away or deleted is still read after it
    /// last grew (writers may hold it open for a while).
    #[serde(default = "default_rotate_wait")]
    pub rotate_wait: HumanDuration,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            batch_max_bytes: default_batch_bytes(),
            batch_max_wait: default_batch_wait(),
            max_in_flight: default_in_flight(),
            spool_max_bytes: default_spool_bytes(),
            request_timeout: default_request_timeout(),
            rotate_wait: default_rotate_wait(),
        }
    }
}

fn default_batch_bytes() -> ByteSize {
    ByteSize(1024 * 1024)
}
fn default_batch_wait() -> HumanDuration {
    HumanDuration(Duration::from_millis(500))
}
fn default_in_flight() -> usize {
    4
}
fn default_spool_bytes() -> ByteSize {
    ByteSize(1024 * 1024 * 1024)
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_rotate_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// A source with its globs and patterns compiled.
#[derive(Debug, Clone)]
pub struct CompiledSource {
    /// The configuration it was built from.
    pub config: LogSourceConfig,
    /// `paths` as one matcher.
    pub include: GlobSet,
    /// `exclude` as one matcher.
    pub exclude: GlobSet,
    /// `multiline.start_pattern`, compiled.
    pub multiline_start: Option<regex::bytes::Regex>,
    /// How the aggregator reads the lines (sent with each chunk); the
    /// timezone is always set, to the host's zone by default.
    pub line_format: LineFormat,
}

/// `[metrics]` with its globs compiled; what the metrics collector filters by.
#[derive(Debug, Clone)]
pub struct CompiledMetrics {
    /// Collection interval.
    pub interval: Duration,
    mounts_include: Option<GlobSet>,
    mounts_exclude: GlobSet,
    fs_types_exclude: Vec<String>,
    interfaces_include: Option<GlobSet>,
    interfaces_exclude: GlobSet,
    devices_exclude: GlobSet,
}

impl CompiledMetrics {
    /// Whether the filesystem of type `fs_type` mounted at `point` is measured.
    pub fn wants_mount(&self, point: &Path, fs_type: &str) -> bool {
        !self.fs_types_exclude.iter().any(|excluded| excluded == fs_type)
            && self
                .mounts_include
                .as_ref()
                .is_none_or(|include| include.is_match(point))
            && !self.mounts_exclude.is_match(point)
    }

    /// Whether interface `name` is measured. `is_physical` (a look in /sys) is
    /// only asked when no include list decides.
    pub fn wants_interface(&self, name: &str, is_physical: impl FnOnce() -> bool) -> bool {
        let included = match &self.interfaces_include {
            Some(include) => include.is_match(name),
            None => is_physical(),
        };
        included && !self.interfaces_exclude.is_match(name)
    }

    /// Whether block device `name` (as in /proc/diskstats) is measured.
    pub fn wants_device(&self, name: &str) -> bool {
        !BUILTIN_DEVICE_PREFIXES_EXCLUDE
            .iter()
            .any(|prefix| name.starts_with(prefix))
            && !self.devices_exclude.is_match(name)
    }
}

/// What validation compiles from the configuration.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The log sources.
    pub sources: Vec<CompiledSource>,
    /// The journal source, when enabled.
    pub journald: Option<CompiledJournald>,
    /// The metric filters; `None` when `metrics.enabled` is false.
    pub metrics: Option<CompiledMetrics>,
}

impl CompiledSource {
    /// Whether a path belongs to this source.
    pub fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path) && !self.exclude.is_match(path)
    }

    /// Where opening `path` may lead: anywhere with `follow_symlinks`, else
    /// below the deepest base folder of the source's globs that holds it
    /// (below the path's own folder for a file no glob's base holds, such as
    /// a rotated copy moved elsewhere).
    pub fn confinement(&self, path: &Path) -> Confinement {
        if self.config.follow_symlinks {
            return Confinement::Anywhere;
        }
        let base = self
            .config
            .paths
            .iter()
            .map(|pattern| crate::sources::file::discover::base_of(pattern))
            .filter(|base| path.starts_with(base))
            .max_by_key(|base| base.components().count())
            .or_else(|| path.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/"));
        Confinement::Beneath(base)
    }
}

impl AgentConfig {
    /// What is valid but likely not what the operator wants, one line each.
    pub fn warnings(&self) -> Vec<String> {
        self.logs
            .iter()
            .enumerate()
            .filter_map(|(i, source)| {
                let rotate = source.rotate.as_ref()?;
                (rotate.mode == RotateMode::Rename && rotate.post_command.is_none()).then(|| {
                    format!(
                        "logs[{i}].rotate: mode = \"rename\" without post_command: a writer that keeps its \
                         file open (most do) goes on writing to the renamed file; the agent notices and \
                         falls back to copytruncate, but set post_command to make the writer reopen its \
                         log, or mode = \"copytruncate\""
                    )
                })
            })
            .collect()
    }

    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<(AgentConfig, Compiled), ConfigError> {
        let mut config: AgentConfig = load_toml(file)?;
        if let Some(path) = &config.token_file {
            if !config.token.is_empty() {
                return Err(ConfigError::at_key(
                    file,
                    "token_file",
                    "give `token` or `token_file`, not both",
                ));
            }
            let text = lookout_shared::config::read_secret_file(path)
                .map_err(|reason| ConfigError::at_key(file, "token_file", reason))?;
            config.token = text.trim().to_owned();
        }
        let compiled = config.validate(file)?;
        Ok((config, compiled))
    }

    /// Checks what serde cannot, and compiles the sources and metric filters.
    pub fn validate(&self, file: &Path) -> Result<Compiled, ConfigError> {
        match reqwest::Url::parse(&self.aggregator_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => {
                return Err(ConfigError::at_key(
                    file,
                    "aggregator_url",
                    format!("scheme `{}` is not http or https", url.scheme()),
                ));
            }
            Err(err) => {
                return Err(ConfigError::at_key(
                    file,
                    "aggregator_url",
                    format!("`{}` is not a URL: {err}", self.aggregator_url),
                ));
            }
        }
        if self.token.trim().is_empty() {
            return Err(ConfigError::at_key(
                file,
                "token",
                "must not be empty (give the aggregator's ingest token, or `token_file`)",
            ));
        }
        if self.token.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::at_key(
                file,
                "token",
                "must not contain spaces or control characters",
            ));
        }
        if let Some(ca_file) = &self.ca_file {
            read_ca_file(ca_file).map_err(|reason| ConfigError::at_key(file, "ca_file", reason))?;
        }
        if matches!(&self.host, Some(host) if host.trim().is_empty()) {
            return Err(ConfigError::at_key(file, "host", "must not be empty when set"));
        }
        if self.shipper.max_in_flight == 0 {
            return Err(ConfigError::at_key(file, "shipper.max_in_flight", "must be at least 1"));
        }
        if self.shipper.batch_max_bytes.bytes() == 0 {
            return Err(ConfigError::at_key(
                file,
                "shipper.batch_max_bytes",
                "must be at least 1 byte",
            ));
        }
        let sources = self
            .logs
            .iter()
            .enumerate()
            .map(|(index, source)| compile_source(file, index, source))
            .collect::<Result<_, _>>()?;
        let metrics = compile_metrics(file, &self.metrics)?;
        let journald = match &self.journald {
            Some(journald) if journald.enabled => Some(compile_journald(file, journald)?),
            _ => None,
        };
        Ok(Compiled {
            sources,
            journald,
            metrics: self.metrics.enabled.then_some(metrics),
        })
    }

    /// The certificates of `ca_file`, if set.
    pub fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, String> {
        self.ca_file.as_deref().map_or(Ok(Vec::new()), read_ca_file)
    }

    /// The host name records carry.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(machine_hostname)
    }

    /// The settings that differ between `self` (in force) and `newer` and
    /// take effect only at a restart, by key. A reload applies the rest: the
    /// `[[logs]]` sources, `[journald]`, `[metrics]` and `token`.
    pub fn restart_needed(&self, newer: &AgentConfig) -> Vec<&'static str> {
        [
            ("aggregator_url", self.aggregator_url != newer.aggregator_url),
            ("ca_file", self.ca_file != newer.ca_file),
            ("host", self.host != newer.host),
            ("state_dir", self.state_dir != newer.state_dir),
            ("shipper", self.shipper != newer.shipper),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
    }
}

/// The CA certificates of a PEM file; an error names the file and what is wrong.
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let bytes = std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if !bytes.windows(27).any(|window| window == b"-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    reqwest::Certificate::from_pem_bundle(&bytes)
        .map_err(|err| format!("{} is not a valid PEM certificate file: {err}", path.display()))
}

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn compile_source(file: &Path, index: usize, source: &LogSourceConfig) -> Result<CompiledSource, ConfigError> {
    let key = |name: &str| format!("logs[{index}].{name}");
    if source.paths.is_empty() {
        return Err(ConfigError::at_key(file, key("paths"), "needs at least one glob"));
    }
    for path in &source.paths {
        if !path.starts_with('/') {
            return Err(ConfigError::at_key(
                file,
                key("paths"),
                format!("`{path}` is not an absolute path"),
            ));
        }
    }
    let include = glob_set(&source.paths).map_err(|reason| ConfigError::at_key(file, key("paths"), reason))?;
    let exclude = glob_set(&source.exclude).map_err(|reason| ConfigError::at_key(file, key("exclude"), reason))?;
    let multiline_start = match &source.multiline {
        Some(multiline) => Some(regex::bytes::Regex::new(&multiline.start_pattern).map_err(|err| {
            ConfigError::at_key(
                file,
                key("multiline.start_pattern"),
                format!("not a valid regex: {err}"),
            )
        })?),
        None => None,
    };
    if source.max_record_bytes.bytes() < 64 {
        return Err(ConfigError::at_key(
            file,
            key("max_record_bytes"),
            "must be at least 64 bytes",
        ));
    }
    if let Some(rotate) = &source.rotate {
        if rotate.max_size.is_none() && rotate.max_age.is_none() {
            return Err(ConfigError::at_key(
                file,
                key("rotate"),
                "needs max_size, max_age or both",
            ));
        }
        if rotate.keep == 0 {
            return Err(ConfigError::at_key(file, key("rotate.keep"), "must be at least 1"));
        }
    }
    let line_format = line_format(source).map_err(|(name, reason)| ConfigError::at_key(file, key(name), reason))?;
    Ok(CompiledSource {
        config: source.clone(),
        include,
        exclude,
        multiline_start,
        line_format,
    })
}

/// What the aggregator needs to read a source's lines: checked here, so a
/// zone or time format it would not understand is a configuration error.
fn line_format(source: &LogSourceConfig) -> Result<LineFormat, (&'static str, String)> {
    let timezone = match &source.timezone {
        Some(name) => {
            lookout_shared::parse::zone(name).map_err(|reason| ("timezone", reason))?;
            name.clone()
        }
        None => lookout_shared::parse::local_zone_name(),
    };
    let (mut timestamp_field, mut timestamp_format) = (None, None);
    if let Some(timestamp) = &source.timestamp {
        if timestamp.field.is_none() && timestamp.format.is_none() {
            return Err(("timestamp", "needs field, format or both".into()));
        }
        if timestamp.field.as_ref().is_some_and(String::is_empty) {
            return Err(("timestamp.field", "must not be empty".into()));
        }
        if let Some(format) = &timestamp.format {
            check_time_format(format).map_err(|reason| ("timestamp.format", reason))?;
        }
        timestamp_field = timestamp.field.clone();
        timestamp_format = timestamp.format.clone();
    }
    if source.level_field.as_ref().is_some_and(String::is_empty) {
        return Err(("level_field", "must not be empty".into()));
    }
    Ok(LineFormat {
        timezone: Some(timezone),
        layout: source.format.layout(),
        timestamp_field,
        timestamp_format,
        level_field: source.level_field.clone(),
    })
}

/// A `strftime` layout that names at least a time (or `%s`) and that jiff
/// can use: formatting a known time with it must work.
fn check_time_format(format: &str) -> Result<(), String> {
    if !format.contains('%') {
        return Err(format!("`{format}` has no `%` directive"));
    }
    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(format, &sample)
        .map(drop)
        .map_err(|err| format!("`{format}` is not a valid time format: {err}"))
}

/// Most further journal fields a record may keep: with the four kept by
/// default they stay within the aggregator's 64 fields a source may state.
const MAX_JOURNAL_FIELDS: usize = 32;

fn compile_journald(file: &Path, journald: &JournaldConfig) -> Result<CompiledJournald, ConfigError> {
    let units = if journald.units.is_empty() {
        None
    } else {
        let patterns: Vec<String> = journald
            .units
            .iter()
            .map(|unit| {
                if unit.contains('.') {
                    unit.clone()
                } else {
                    format!("{unit}.service")
                }
            })
            .collect();
        Some(glob_set(&patterns).map_err(|reason| ConfigError::at_key(file, "journald.units", reason))?)
    };
    if journald.fields.len() > MAX_JOURNAL_FIELDS {
        return Err(ConfigError::at_key(
            file,
            "journald.fields",
            format!("{} fields, more than {MAX_JOURNAL_FIELDS}", journald.fields.len()),
        ));
    }
    for name in &journald.fields {
        let valid = !name.trim_start_matches('_').is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(ConfigError::at_key(
                file,
                "journald.fields",
                format!("{name:?} is not a journal field name (uppercase letters, digits and `_`, such as `_COMM`)"),
            ));
        }
    }
    if journald.max_record_bytes.bytes() == 0 {
        return Err(ConfigError::at_key(
            file,
            "journald.max_record_bytes",
            "must be at least 1 byte",
        ));
    }
    Ok(CompiledJournald {
        config: journald.clone(),
        units,
    })
}

fn compile_metrics(file: &Path, metrics: &MetricsConfig) -> Result<CompiledMetrics, ConfigError> {
    let globs = |key: &str, patterns: &[String]| {
        glob_set(patterns).map_err(|reason| ConfigError::at_key(file, format!("metrics.{key}"), reason))
    };
    // An empty include list would measure nothing; it means "no list", like a missing key.
    let include = |key: &str, patterns: &[String]| {
        if patterns.is_empty() {
            Ok(None)
        } else {
            globs(key, patterns).map(Some)
        }
    };
    let interval = metrics.interval.get();
    // Rates need a measurable time between samples, and a zero interval would spin.
    if interval < Duration::from_secs(1) {
        return Err(ConfigError::at_key(file, "metrics.interval", "must be at least 1s"));
    }
    let fs_types_exclude = match &metrics.fs_types_exclude {
        Some(types) => {
            if let Some(blank) = types
                .iter()
                .find(|name| name.trim().is_empty() || name.trim() != name.as_str())
            {
                return Err(ConfigError::at_key(
                    file,
                    "metrics.fs_types_exclude",
                    format!("`{blank}` is not a filesystem type"),
                ));
            }
            types.clone()
        }
        None => DEFAULT_FS_TYPES_EXCLUDE.iter().map(|name| name.to_string()).collect(),
    };
    Ok(CompiledMetrics {
        interval,
        mounts_include: include("mounts_include", &metrics.mounts_include)?,
        mounts_exclude: globs("mounts_exclude", &metrics.mounts_exclude)?,
        fs_types_exclude,
        interfaces_include: include("interfaces_include", &metrics.interfaces_include)?,
        interfaces_exclude: globs("interfaces_exclude", &metrics.interfaces_exclude)?,
        devices_exclude: globs("devices_exclude", &metrics.devices_exclude)?,
    })
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|err| format!("`{pattern}` is not a valid glob: {err}"))?;
        builder.add(glob);
    }
    builder.build().map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_shared::config::parse_toml;

    fn check(text: &str) -> Result<Compiled, ConfigError> {
        let file = Path::new("agent.toml");
        let config: AgentConfig = parse_toml(file, text)?;
        config.validate(file)
    }

    const MINIMAL: &str = "aggregator_url = \"http://127.0.0.1:7070\"\ntoken = \"t\"\n";

    #[test]
    fn the_token_can_come_from_a_private_file_but_not_from_both() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("agent.token");
        std::fs::write(&token, "ingest-token-from-file\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.path().join("agent.toml");
        let write = |text: String| std::fs::write(&config, text).unwrap();
        write(format!(
            "aggregator_url = \"http://127.0.0.1:7070\"\ntoken_file = {:?}\n",
            token.display().to_string()
        ));
        assert_eq!(AgentConfig::load(&config).unwrap().0.token, "ingest-token-from-file");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o604)).unwrap();
        let err = AgentConfig::load(&config).unwrap_err().to_string();
        assert!(err.contains("token_file") && err.contains("chmod"), "{err}");
        assert!(!err.contains("ingest-token-from-file"), "{err}");
        write(format!("{MINIMAL}token_file = {:?}\n", token.display().to_string()));
        let both = AgentConfig::load(&config).unwrap_err().to_string();
        assert!(both.contains("not both"), "{both}");
    }

    #[test]
    fn spec_example_is_valid() {
        let text = format!(
            "{MINIMAL}host = \"web-1\"\nstate_dir = \"./agent-state\"\n[[logs]]\npaths = [\"/var/log/app/*.log\"]\nexclude = [\"*.gz\"]\nstart_at = \"beginning\"\n[metrics]\ninterval = \"10s\"\n"
        );
        let sources = check(&text).unwrap().sources;
        assert!(sources[0].matches(Path::new("/var/log/app/web.log")));
        assert!(!sources[0].matches(Path::new("/var/log/app/web.log.gz")));
        assert!(!sources[0].matches(Path::new("/var/log/other/web.log")));
    }

    #[test]
    fn rename_without_post_command_is_warned_about() {
        let file = Path::new("agent.toml");
        let with = |rotate: &str| -> AgentConfig {
            parse_toml(
                file,
                &format!("{MINIMAL}[[logs]]\npaths = [\"/l/*.log\"]\nrotate = {rotate}\n"),
            )
            .unwrap()
        };
        let warnings = with("{ max_size = \"1MB\" }").warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("logs[0].rotate: mode = \"rename\" without post_command"),
            "{warnings:?}"
        );
        assert!(
            with("{ max_size = \"1MB\", post_command = \"pkill -HUP app\" }")
                .warnings()
                .is_empty()
        );
        assert!(
            with("{ max_size = \"1MB\", mode = \"copytruncate\" }")
                .warnings()
                .is_empty()
        );
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let file = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.toml"));
        let (config, compiled) = AgentConfig::load(file).unwrap();
        assert_eq!(compiled.sources.len(), 5);
        assert!(compiled.sources[0].multiline_start.is_some());
        assert_eq!(
            compiled.sources[2].config.format.container(),
            Some(ContainerFormat::Docker)
        );
        assert_eq!(
            compiled.sources[3].config.format.container(),
            Some(ContainerFormat::Cri)
        );
        assert_eq!(compiled.sources[3].line_format.layout, Layout::Plain);
        let journald = compiled.journald.expect("[journald] is on");
        assert_eq!(journald.config.start_at, StartAt::End);
        assert_eq!(journald.config.fields, ["_COMM"]);
        assert_eq!(
            compiled.sources[0].line_format.timezone.as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(compiled.sources[1].line_format.layout, Layout::Json);
        assert_eq!(config.shipper.max_in_flight, 4);
        let metrics = compiled.metrics.expect("metrics are on by default");
        assert_eq!(metrics.interval, Duration::from_secs(10));
        assert!(!metrics.wants_mount(Path::new("/boot/efi"), "vfat"));
        assert!(metrics.wants_mount(Path::new("/"), "ext4"));
    }

    #[test]
    fn journald_units_are_globs_and_bare_names_mean_services() {
        let compiled = check(&format!(
            "{MINIMAL}[journald]\nunits = [\"ssh\", \"nginx*\", \"user@*.slice\"]\n"
        ))
        .unwrap();
        let journald = compiled.journald.unwrap();
        assert!(journald.wants_unit(Some("ssh.service")));
        assert!(!journald.wants_unit(Some("sshd.service")));
        assert!(journald.wants_unit(Some("nginx-proxy.service")));
        assert!(journald.wants_unit(Some("user@1000.slice")));
        assert!(
            !journald.wants_unit(None),
            "with a unit list, entries of no unit are left out"
        );
        let all = check(&format!("{MINIMAL}[journald]\n")).unwrap().journald.unwrap();
        assert!(all.wants_unit(None) && all.wants_unit(Some("cron.service")));
        assert!(
            check(&format!("{MINIMAL}[journald]\nenabled = false\n"))
                .unwrap()
                .journald
                .is_none()
        );
        let too_many = format!("[{}]", vec!["\"A\""; 33].join(","));
        for fields in ["[\"comm\"]", "[\"__\"]", too_many.as_str()] {
            let err = check(&format!("{MINIMAL}[journald]\nfields = {fields}\n")).unwrap_err();
            assert_eq!(err.key.as_deref(), Some("journald.fields"), "{err}");
        }
    }

    #[test]
    fn an_unusable_ca_file_is_a_config_error() {
        let garbage = std::env::temp_dir().join(format!("lookout-ca-garbage-{}.pem", std::process::id()));
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        for (path, reason) in [
            (Path::new("/nonexistent/ca.pem"), "cannot read /nonexistent/ca.pem"),
            (garbage.as_path(), "holds no PEM certificate"),
        ] {
            let text = format!("{MINIMAL}ca_file = \"{}\"\n", path.display());
            let err = check(&text).unwrap_err();
            assert_eq!(err.key.as_deref(), Some("ca_file"), "{err}");
            assert!(err.reason.contains(reason), "{err}");
        }
        std::fs::remove_file(&garbage).unwrap();
    }

    #[test]
    fn line_format_is_sent_with_the_zone_set() {
        let compiled = check(&format!(
            "{MINIMAL}[[logs]]\npaths = [\"/a/*.log\"]\n\
             [[logs]]\npaths = [\"/b/*.log\"]\nformat = \"json\"\ntimezone = \"Europe/Berlin\"\n\
             timestamp = {{ field = \"when\", format = \"%d/%m/%Y %H:%M:%S\" }}\nlevel_field = \"sev\"\n"
        ))
        .expect("valid");
        let plain = &compiled.sources[0].line_format;
        assert_eq!(plain.layout, Layout::Plain);
        assert_eq!(
            plain.timezone.as_deref(),
            Some(lookout_shared::parse::local_zone_name().as_str())
        );
        let json = &compiled.sources[1].line_format;
        assert_eq!(
            json,
            &LineFormat {
                timezone: Some("Europe/Berlin".into()),
                layout: Layout::Json,
                timestamp_field: Some("when".into()),
                timestamp_format: Some("%d/%m/%Y %H:%M:%S".into()),
                level_field: Some("sev".into()),
            }
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (format!("{MINIMAL}[[logs]]\npaths = [\"/x/[\"]\n"), "logs[0].paths"),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"relative/*.log\"]\n"),
                "logs[0].paths",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\nmultiline = {{ start_pattern = \"(\" }}\n"),
                "logs[0].multiline.start_pattern",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\nrotate = {{ keep = 2 }}\n"),
                "logs[0].rotate",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\nrotate = {{ max_size = \"lots\" }}\n"),
                "logs[0].rotate.max_size",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\ncolour = 1\n"),
                "logs[0].colour",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\ntimezone = \"Mars/Olympus\"\n"),
                "logs[0].timezone",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\nformat = \"yaml\"\n"),
                "logs[0].format",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\ntimestamp = {{ format = \"yyyy-MM-dd HH:mm:ss\" }}\n"),
                "logs[0].timestamp.format",
            ),
            (
                format!("{MINIMAL}[[logs]]\npaths = [\"/x\"]\ntimestamp = {{}}\n"),
                "logs[0].timestamp",
            ),
            (
                "aggregator_url = \"ftp://x\"\ntoken = \"t\"\n".to_string(),
                "aggregator_url",
            ),
            (
                format!("{MINIMAL}[metrics]\ninterval = \"500ms\"\n"),
                "metrics.interval",
            ),
            (
                format!("{MINIMAL}[metrics]\nmounts_include = [\"/data/[\"]\n"),
                "metrics.mounts_include",
            ),
            (
                format!("{MINIMAL}[metrics]\nmounts_exclude = [\"{{\"]\n"),
                "metrics.mounts_exclude",
            ),
            (
                format!("{MINIMAL}[metrics]\nfs_types_exclude = [\"\"]\n"),
                "metrics.fs_types_exclude",
            ),
            (
                format!("{MINIMAL}[metrics]\ninterfaces_include = [\"eth[\"]\n"),
                "metrics.interfaces_include",
            ),
            (
                format!("{MINIMAL}[metrics]\ninterfaces_exclude = [\"[\"]\n"),
                "metrics.interfaces_exclude",
            ),
            (
                format!("{MINIMAL}[metrics]\ndevices_exclude = [\"sd[\"]\n"),
                "metrics.devices_exclude",
            ),
            (format!("{MINIMAL}[metrics]\nmounts = [\"/\"]\n"), "metrics.mounts"),
        ];
        for (text, key) in cases {
            let err = check(&text).expect_err(&text);
            let shown = err.to_string();
            assert!(shown.contains(key), "expected key {key} in: {shown}");
        }
    }

    #[test]
    fn metrics_keys_select_what_is_measured() {
        let text = format!(
            "{MINIMAL}[metrics]\nenabled = true\ninterval = \"30s\"\nmounts_include = [\"/\", \"/data/**\"]\n\
             mounts_exclude = [\"/data/scratch\"]\nfs_types_exclude = [\"nfs4\"]\ninterfaces_include = [\"lo\", \"eth*\"]\n\
             interfaces_exclude = [\"eth9\"]\ndevices_exclude = [\"dm-*\"]\n"
        );
        let metrics = check(&text).unwrap().metrics.unwrap();
        assert_eq!(metrics.interval, Duration::from_secs(30));
        assert!(metrics.wants_mount(Path::new("/"), "ext4"));
        assert!(
            metrics.wants_mount(Path::new("/data/a"), "tmpfs"),
            "the type list was replaced"
        );
        assert!(!metrics.wants_mount(Path::new("/data/scratch"), "ext4"));
        assert!(!metrics.wants_mount(Path::new("/data/b"), "nfs4"));
        assert!(!metrics.wants_mount(Path::new("/home"), "ext4"), "not included");
        assert!(metrics.wants_interface("lo", || false), "included, although virtual");
        assert!(!metrics.wants_interface("eth9", || true));
        assert!(
            !metrics.wants_interface("wlan0", || true),
            "not included, although physical"
        );
        assert!(metrics.wants_device("sda") && !metrics.wants_device("dm-0") && !metrics.wants_device("loop3"));

        let defaults = check(MINIMAL).unwrap().metrics.unwrap();
        assert!(defaults.wants_mount(Path::new("/home"), "ext4"));
        assert!(!defaults.wants_mount(Path::new("/run"), "tmpfs"));
        assert!(!defaults.wants_mount(Path::new("/"), "overlay"));
        assert!(!defaults.wants_interface("lo", || false));
        assert!(defaults.wants_interface("eth0", || true));
        assert!(defaults.wants_device("dm-0"));

        let off = format!("{MINIMAL}[metrics]\nenabled = false\n");
        assert!(check(&off).unwrap().metrics.is_none());
    }
}
