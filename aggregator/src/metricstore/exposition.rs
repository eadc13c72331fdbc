//! The newest values in Prometheus's text exposition format (version
//! 0.0.4), for a Prometheus-compatible system to scrape
//! (`GET /api/v1/metrics/prometheus`). Pure.
//!
//! Names follow Prometheus's conventions: `lookout_` and the metric's name
//! with `.` as `_` and `per_sec` as `per_second`
//! (`cpu.usage_percent` is `lookout_cpu_usage_percent`,
//! `net.rx_bytes_per_sec` is `lookout_net_rx_bytes_per_second`); a
//! character a name may not hold becomes `_`. Every value is written as a
//! gauge (most are rates and levels; the agent's own counts, such as
//! `agent.lines_read`, are running totals, which a gauge carries too),
//! labelled by `host` and the series' labels, without a timestamp: the
//! scraper stamps it, so an agent's clock ahead of time cannot push its
//! series into the future.
//!
//! What Prometheus would refuse is made whole: label names it cannot take
//! are rewritten ([`label_name`]), a series label named `host` or starting
//! with `__` is written as `exported_…`, an empty value is left out, and of
//! two series that come out alike (`a.b` and `a_b`) the newest sample is
//! kept, so one odd series never fails the whole scrape.

use super::recent::LatestSample;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Series whose newest sample is older than this are not exported: a host
/// that stopped reporting, an unmounted filesystem.
pub const EXPORTED_WITHIN: Duration = Duration::from_secs(600);

/// A series' labels, sorted by name, each name once.
type Labels = Vec<(String, String)>;

/// The exposition of `samples`.
pub fn render(samples: &[LatestSample]) -> String {
    // Name, then labels, to the newest sample (time, value): one `# TYPE`
    // per name, each series once.
    let mut metrics: BTreeMap<String, BTreeMap<Labels, (i64, f64)>> = BTreeMap::new();
    for sample in samples {
        let labels = series_labels(&sample.host, &sample.labels);
        let series = metrics.entry(metric_name(&sample.name)).or_default();
        let newest = series
            .entry(labels.into_iter().collect())
            .or_insert((sample.time_ms, sample.value));
        if sample.time_ms > newest.0 {
            *newest = (sample.time_ms, sample.value);
        }
    }
    let mut out = String::new();
    for (name, series) in metrics {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, (_, value)) in series {
            out.push_str(&name);
            out.push('{');
            for (at, (label, value)) in labels.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{label}=\"{}\"", label_value(value));
            }
            let _ = writeln!(out, "}} {}", number(value));
        }
    }
    out
}

/// A series' labels as Prometheus takes them, sorted by name: `host`, and
/// the series' own labels with names rewritten ([`label_name`]), `host` and
/// `__…` as `exported_…`, empty values left out, and of names that come out
/// alike the first.
pub fn series_labels(host: &str, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("host".to_owned(), host.to_owned());
    for (name, value) in labels {
        let mut name = label_name(name);
        if name == "host" || name.starts_with("__") {
            name = format!("exported_{name}");
        }
        if !value.is_empty() {
            out.entry(name).or_insert_with(|| value.clone());
        }
    }
    out
}

/// `cpu.usage_percent` as `lookout_cpu_usage_percent`.
pub fn metric_name(name: &str) -> String {
    let mut out = String::from("lookout_");
    out.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    match out.strip_suffix("_per_sec") {
        Some(stem) => format!("{stem}_per_second"),
        None => out,
    }
}

/// A name as Prometheus takes a label name (`[a-zA-Z_][a-zA-Z0-9_]*`):
/// other characters as `_`, and `_` before a leading digit (or for nothing).
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// A label value with `\`, `"` and line breaks escaped.
pub fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A value as the format writes it (`NaN`, `+Inf`, `-Inf` spelled out).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, host: &str, labels: &[(&str, &str)], time_ms: i64, value: f64) -> LatestSample {
        LatestSample {
            name: name.into(),
            host: host.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            time_ms,
            value,
        }
    }

    #[test]
    fn names_follow_prometheus_and_values_are_escaped() {
        assert_eq!(metric_name("cpu.usage_percent"), "lookout_cpu_usage_percent");
        assert_eq!(metric_name("net.rx_bytes_per_sec"), "lookout_net_rx_bytes_per_second");
        assert_eq!(metric_name("app.queue-depth"), "lookout_app_queue_depth");
        let text = render(&[
            sample("cpu.usage_percent", "web-1", &[], 1, 12.5),
            sample("cpu.usage_percent", "web-2", &[("cpu", "0")], 1, 3.0),
            sample(
                "fs.used_percent",
                "db \"1\"",
                &[("mount", "/var\\x\n"), ("9bad", "v")],
                1,
                f64::NAN,
            ),
        ]);
        assert_eq!(
            text,
            "# TYPE lookout_cpu_usage_percent gauge\n\
             lookout_cpu_usage_percent{cpu=\"0\",host=\"web-2\"} 3\n\
             lookout_cpu_usage_percent{host=\"web-1\"} 12.5\n\
             # TYPE lookout_fs_used_percent gauge\n\
             lookout_fs_used_percent{_9bad=\"v\",host=\"db \\\"1\\\"\",mount=\"/var\\\\x\\n\"} NaN\n"
        );
    }

    #[test]
    fn series_that_come_out_alike_are_one_and_nothing_prometheus_refuses_is_written() {
        let text = render(&[
            // Two names, one Prometheus name: one TYPE line, the newest sample.
            sample("app.depth", "h", &[], 5, 1.0),
            sample("app_depth", "h", &[], 9, 2.0),
            // Two label names that come out alike, `__name__`, a `host` label, an empty value.
            sample(
                "x",
                "h",
                &[
                    ("a.b", "1"),
                    ("a_b", "2"),
                    ("__name__", "n"),
                    ("host", "other"),
                    ("empty", ""),
                ],
                1,
                3.0,
            ),
        ]);
        assert_eq!(
            text,
            "# TYPE lookout_app_depth gauge\n\
             lookout_app_depth{host=\"h\"} 2\n\
             # TYPE lookout_x gauge\n\
             lookout_x{a_b=\"1\",exported___name__=\"n\",exported_host=\"other\",host=\"h\"} 3\n"
        );
    }
}
