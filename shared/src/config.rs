//! Configuration loading shared by both binaries.
//!
//! Every config file is TOML with unknown keys rejected (`deny_unknown_fields` on
//! each struct). [`load_toml`] turns any failure into a [`ConfigError`] that names
//! the file, the key (as a path such as `logs[0].rotate.max_size`) and the reason,
//! which is what `check-config` prints before exiting with code 2.
//!
//! [`HumanDuration`] and [`ByteSize`] read the human units operators write:
//! `"500ms"`, `"10s"`, `"5m"`, `"1d"` and `"1MB"`, `"100MiB"`, `"1GiB"`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration file that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{}", file.display(), key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default(), reason)]
pub struct ConfigError {
    /// The file that was read.
    pub file: PathBuf,
    /// The offending key as a dotted path, when the error is about one key.
    pub key: Option<String>,
    /// What is wrong, for a person to read.
    pub reason: String,
}

impl ConfigError {
    /// An error about `key` in `file`.
    pub fn at_key(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            key: Some(key.into()),
            reason: reason.into(),
        }
    }
}

/// Reads a file that holds secrets (tokens), refusing one that users other
/// than its owner and group may read or write: a token readable by anyone
/// on the machine is no secret. The error says what to do.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(format!(
            "{} is open to every user (mode {mode:o}); `chmod o-rwx` it (0640 or 0600)",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

/// Reads and deserialises a TOML file; errors name the file, key and reason.
pub fn load_toml<T: DeserializeOwned>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|err| ConfigError {
        file: file.to_path_buf(),
        key: None,
        reason: format!("cannot read the file: {err}"),
    })?;
    parse_toml(file, &text)
}

/// Deserialises TOML text read from `file` (named in errors only).
pub fn parse_toml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|err| ConfigError {
        file: file.to_path_buf(),
        key: None,
        reason: reason(&err, text),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = err.path().to_string();
        ConfigError {
            file: file.to_path_buf(),
            key: (key != ".").then_some(key),
            reason: reason(&err.into_inner(), text),
        }
    })
}

/// toml's message with where it is (`line 3, column 15: …`), but not the
/// line itself, which toml quotes: a broken line may hold a token, and the
/// error goes to the log.
fn reason(err: &toml::de::Error, text: &str) -> String {
    let message = one_line(err.message());
    let Some(before) = err.span().and_then(|span| text.get(..span.start)) else {
        return message;
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |start| start.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

/// One line of a message that may run over several: one line reads better
/// in a log and in `check-config`'s output.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration written as `"250ms"`, `"10s"`, `"5m"`, `"1h"`, `"1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|err| format!("`{text}` is not a duration such as \"10s\", \"5m\" or \"1d\": {err}"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size written as `"1MB"` (10^6 bytes), `"100MiB"` (2^20), `"1GiB"` or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .parse::<bytesize::ByteSize>()
            .map(|size| ByteSize(size.as_u64()))
            .map_err(|err| format!("`{text}` is not a size such as \"1MB\", \"100MiB\" or \"1GiB\": {err}"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        name: String,
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        every: HumanDuration,
        size: ByteSize,
    }

    fn parse(text: &str) -> Result<Sample, ConfigError> {
        parse_toml(Path::new("sample.toml"), text)
    }

    #[test]
    fn units_parse() {
        let sample = parse(
            "name = \"x\"\n[[inner]]\nevery = \"1m\"\nsize = \"1MB\"\n[[inner]]\nevery = \"250ms\"\nsize = \"2MiB\"\n",
        )
        .unwrap();
        assert_eq!(sample.inner[0].every.get(), Duration::from_secs(60));
        assert_eq!(sample.inner[0].size.bytes(), 1_000_000);
        assert_eq!(sample.inner[1].every.get(), Duration::from_millis(250));
        assert_eq!(sample.inner[1].size.bytes(), 2 * 1024 * 1024);
    }

    #[test]
    fn a_syntax_error_says_where_without_quoting_the_line() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Tokens {
            token: String,
        }
        let err = parse_toml::<Tokens>(Path::new("a.toml"), "# tokens\ntoken = \"s3cret-token-value\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml: line 2, column "), "{err}");
        assert!(
            !err.contains("s3cret"),
            "the line, and the token in it, is not quoted: {err}"
        );
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let err = parse("name = \"x\"\n[[inner]]\nevery = \"soon\"\nsize = 1\n").unwrap_err();
        let text = err.to_string();
        assert_eq!(err.key.as_deref(), Some("inner[0].every"), "{text}");
        assert!(text.starts_with("sample.toml: key `inner[0].every`: "), "{text}");
        assert!(text.contains("soon"), "{text}");

        let err = parse("name = \"x\"\ninner = []\ncolour = \"red\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");

        let err = parse("name = \"x\n").unwrap_err();
        assert_eq!(err.key, None);
        assert!(err.to_string().starts_with("sample.toml: "), "{err}");
    }
}
