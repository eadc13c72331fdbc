//! The newest values in Prometheus's text exposition format (version
//! 0.0.4), for a Prometheus-compatible system to scrape
//! (`GET /api/v1/metrics/prometheus`). Pure.
//!
//! Names follow Prometheus's conventions: `lookout_` and the metric's name
//! with `.` as `_` and `per_sec` as `per_second`
//! (`cpu.usage_percent` is `lookout_cpu_usage_percent`,
//! `net.rx_bytes_per_sec` is `lookout_net_rx_bytes_per_second`); a
//! character a name may not hold becomes `_`. Every value is a gauge (the
//! agent sends rates and levels, not counters), labelled by `host` and the
//! series' labels, and stamped with its sample's time.

use super::recent::LatestSample;
use std::fmt::Write as _;

/// The exposition of `samples` (ordered by name, as [`super::recent::Recent::latest`] gives them).
pub fn render(samples: &[LatestSample]) -> String {
    let mut out = String::new();
    let mut last_name = String::new();
    for sample in samples {
        let name = metric_name(&sample.name);
        if name != last_name {
            let _ = writeln!(out, "# TYPE {name} gauge");
            last_name.clone_from(&name);
        }
        out.push_str(&name);
        out.push_str("{host=\"");
        escape_into(&sample.host, &mut out);
        out.push('"');
        for (label, value) in &sample.labels {
            let label = label_name(label);
            // A label of the series never hides the host.
            if label == "host" {
                continue;
            }
            let _ = write!(out, ",{label}=\"");
            escape_into(value, &mut out);
            out.push('"');
        }
        let _ = writeln!(out, "}} {} {}", number(sample.value), sample.time_ms);
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

/// A label name Prometheus takes: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name(name: &str) -> String {
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
fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
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
    use std::collections::BTreeMap;

    fn sample(name: &str, host: &str, labels: &[(&str, &str)], value: f64) -> LatestSample {
        LatestSample {
            name: name.into(),
            host: host.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            time_ms: 1_733_580_000_000,
            value,
        }
    }

    #[test]
    fn names_follow_prometheus_and_values_are_escaped() {
        assert_eq!(metric_name("cpu.usage_percent"), "lookout_cpu_usage_percent");
        assert_eq!(metric_name("net.rx_bytes_per_sec"), "lookout_net_rx_bytes_per_second");
        assert_eq!(metric_name("app.queue-depth"), "lookout_app_queue_depth");
        let text = render(&[
            sample("cpu.usage_percent", "web-1", &[], 12.5),
            sample("cpu.usage_percent", "web-2", &[("cpu", "0")], 3.0),
            sample(
                "fs.used_percent",
                "db \"1\"",
                &[("mount", "/var\\x\n"), ("9bad", "v"), ("host", "x")],
                f64::NAN,
            ),
        ]);
        assert_eq!(
            text,
            "# TYPE lookout_cpu_usage_percent gauge\n\
             lookout_cpu_usage_percent{host=\"web-1\"} 12.5 1733580000000\n\
             lookout_cpu_usage_percent{host=\"web-2\",cpu=\"0\"} 3 1733580000000\n\
             # TYPE lookout_fs_used_percent gauge\n\
             lookout_fs_used_percent{host=\"db \\\"1\\\"\",_9bad=\"v\",mount=\"/var\\\\x\\n\"} NaN 1733580000000\n"
        );
    }
}
