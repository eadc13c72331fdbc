//! Container runtimes' log files: Docker's `json-file` lines
//! (`{"log":"…\n","stream":"stdout","time":"…"}`) and the CRI format of
//! containerd, CRI-O and Kubernetes (`<time> <stream> <P|F> <text>`).
//!
//! Pure policy: [`unwrap`] reads one line of such a file; the record reader
//! joins a line's parts (Docker cuts lines at 16 KiB and leaves the `\n` off
//! all parts but the last; CRI marks parts `P` and the last `F`).
//! [`path_fields`] reads what the file's path says about its container.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// Which runtime wrote the file (`format` of a `[[logs]]` source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerFormat {
    /// Docker's `json-file` driver.
    Docker,
    /// The Kubernetes CRI log format (containerd, CRI-O).
    Cri,
}

/// The output stream a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl IoStream {
    /// `stdout` or `stderr`, the `log.iostream` field.
    pub fn as_str(self) -> &'static str {
        match self {
            IoStream::Stdout => "stdout",
            IoStream::Stderr => "stderr",
        }
    }

    fn parse(name: &str) -> Option<IoStream> {
        match name {
            "stdout" => Some(IoStream::Stdout),
            "stderr" => Some(IoStream::Stderr),
            _ => None,
        }
    }
}

/// One line of a container log, unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// When the runtime received it, Unix ms.
    pub time_ms: i64,
    /// Where the container wrote it.
    pub stream: IoStream,
    /// The container's text, without the line's newline.
    pub text: Cow<'a, [u8]>,
    /// Whether more of the same line follows in the next part.
    pub partial: bool,
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    stream: &'a str,
    time: &'a str,
}

/// `line` unwrapped, or `None` when it is not a line of `format` (kept as
/// it is by the caller).
pub fn unwrap(format: ContainerFormat, line: &[u8]) -> Option<Part<'_>> {
    match format {
        ContainerFormat::Docker => {
            let parsed: DockerLine<'_> = serde_json::from_slice(line).ok()?;
            let stream = IoStream::parse(parsed.stream)?;
            let time_ms = time_ms(parsed.time)?;
            let (text, partial) = match parsed.log {
                Cow::Borrowed(log) => match log.strip_suffix('\n') {
                    Some(whole) => (Cow::Borrowed(whole.as_bytes()), false),
                    None => (Cow::Borrowed(log.as_bytes()), true),
                },
                Cow::Owned(mut log) => {
                    let partial = !log.ends_with('\n');
                    if !partial {
                        log.pop();
                    }
                    (Cow::Owned(log.into_bytes()), partial)
                }
            };
            Some(Part {
                time_ms,
                stream,
                text,
                partial,
            })
        }
        ContainerFormat::Cri => {
            let mut fields = line.splitn(4, |b| *b == b' ');
            let time = std::str::from_utf8(fields.next()?).ok()?;
            let stream = IoStream::parse(std::str::from_utf8(fields.next()?).ok()?)?;
            // Tags are `:`-separated; the first says partial or full.
            let partial = match fields.next()?.split(|b| *b == b':').next()? {
                b"P" => true,
                b"F" => false,
                _ => return None,
            };
            Some(Part {
                time_ms: time_ms(time)?,
                stream,
                text: Cow::Borrowed(fields.next().unwrap_or_default()),
                partial,
            })
        }
    }
}

/// An RFC 3339 time with nanoseconds, as runtimes write it, in Unix ms.
fn time_ms(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

/// What a container log's path says about its container:
/// - Kubernetes' `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`:
///   namespace, pod, pod uid and container;
/// - its links `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`:
///   pod, namespace, container and container id;
/// - Docker's `/var/lib/docker/containers/<id>/<id>-json.log`: the id.
///
/// Field names follow OpenTelemetry's: `container.id`, `k8s.namespace.name`,
/// `k8s.pod.name`, `k8s.pod.uid`, `k8s.container.name`.
pub fn path_fields(path: &Path) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let parts: Vec<&str> = path.iter().filter_map(|part| part.to_str()).collect();
    let mut put = |name: &str, value: &str| {
        if !value.is_empty() {
            fields.insert(name.to_owned(), value.to_owned());
        }
    };
    if let Some(at) = parts.windows(2).position(|pair| pair == ["log", "pods"]) {
        if let Some(pod_dir) = parts.get(at + 2) {
            let mut pieces = pod_dir.splitn(3, '_');
            if let (Some(namespace), Some(pod), Some(uid)) = (pieces.next(), pieces.next(), pieces.next()) {
                put("k8s.namespace.name", namespace);
                put("k8s.pod.name", pod);
                put("k8s.pod.uid", uid);
            }
            if parts.len() > at + 4 {
                put("k8s.container.name", parts[at + 3]);
            }
        }
        return fields;
    }
    let file_stem = parts.last().and_then(|name| name.strip_suffix(".log")).unwrap_or("");
    if parts.len() >= 2 && parts[parts.len() - 2] == "containers" {
        // `<pod>_<namespace>_<container>-<64 hex>`
        if let Some((rest, id)) = file_stem.rsplit_once('-').filter(|(_, id)| is_container_id(id)) {
            let mut pieces = rest.splitn(3, '_');
            if let (Some(pod), Some(namespace), Some(container)) = (pieces.next(), pieces.next(), pieces.next()) {
                put("k8s.pod.name", pod);
                put("k8s.namespace.name", namespace);
                put("k8s.container.name", container);
                put("container.id", id);
                return fields;
            }
        }
    }
    if let Some(id) = parts.iter().rev().skip(1).find(|part| is_container_id(part)) {
        put("container.id", id);
    } else if let Some(id) = file_stem.split('-').find(|piece| is_container_id(piece)) {
        put("container.id", id);
    }
    fields
}

/// A full container id: 64 lowercase hex digits.
fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

    #[test]
    fn docker_lines_and_their_parts() {
        let line = br#"{"log":"GET /healthz 200\n","stream":"stdout","time":"2024-05-01T10:11:12.123456789Z"}"#;
        let part = unwrap(ContainerFormat::Docker, line).unwrap();
        assert_eq!(part.text.as_ref(), b"GET /healthz 200");
        assert_eq!((part.stream, part.partial), (IoStream::Stdout, false));
        assert_eq!(part.time_ms, 1_714_558_272_123);
        let escaped = br#"{"log":"a \"quoted\" \u00e9 part","stream":"stderr","time":"2024-05-01T10:11:12Z"}"#;
        let part = unwrap(ContainerFormat::Docker, escaped).unwrap();
        assert_eq!(part.text.as_ref(), "a \"quoted\" é part".as_bytes());
        assert!(part.partial, "no newline: more follows");
        assert_eq!(part.stream, IoStream::Stderr);
        assert!(unwrap(ContainerFormat::Docker, b"plain text").is_none());
        assert!(
            unwrap(
                ContainerFormat::Docker,
                br#"{"log":"x","stream":"stdin","time":"2024-05-01T10:11:12Z"}"#
            )
            .is_none()
        );
    }

    #[test]
    fn cri_lines_and_their_parts() {
        let part = unwrap(ContainerFormat::Cri, b"2024-05-01T10:11:12.5+02:00 stderr P first half").unwrap();
        assert_eq!(part.text.as_ref(), b"first half");
        assert_eq!((part.stream, part.partial), (IoStream::Stderr, true));
        assert_eq!(part.time_ms, 1_714_551_072_500);
        let empty = unwrap(ContainerFormat::Cri, b"2024-05-01T10:11:12Z stdout F").unwrap();
        assert_eq!((empty.text.as_ref(), empty.partial), (&b""[..], false));
        assert!(unwrap(ContainerFormat::Cri, b"2024-05-01T10:11:12Z stdout X text").is_none());
        assert!(unwrap(ContainerFormat::Cri, b"not a time stdout F text").is_none());
    }

    #[test]
    fn paths_name_their_container() {
        let pods = path_fields(Path::new(
            "/var/log/pods/shop_cart-7d9f_0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e/cart/0.log",
        ));
        assert_eq!(pods["k8s.namespace.name"], "shop");
        assert_eq!(pods["k8s.pod.name"], "cart-7d9f");
        assert_eq!(pods["k8s.pod.uid"], "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e");
        assert_eq!(pods["k8s.container.name"], "cart");
        let links = path_fields(Path::new(&format!("/var/log/containers/cart-7d9f_shop_cart-{ID}.log")));
        assert_eq!(links["k8s.pod.name"], "cart-7d9f");
        assert_eq!(links["k8s.namespace.name"], "shop");
        assert_eq!(links["k8s.container.name"], "cart");
        assert_eq!(links["container.id"], ID);
        let docker = path_fields(Path::new(&format!("/var/lib/docker/containers/{ID}/{ID}-json.log")));
        assert_eq!(docker.len(), 1);
        assert_eq!(docker["container.id"], ID);
        assert!(path_fields(Path::new("/var/log/syslog")).is_empty());
    }
}
