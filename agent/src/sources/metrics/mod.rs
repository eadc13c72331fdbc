//! Host metrics: every `[metrics] interval`, one [`IngestBatch`] of
//! [`MetricSample`]s, named as docs/SPEC.md fixes, sent down the same channel as
//! the tailer's batches, so metrics are sealed, spooled and shipped like logs
//! and outlive an aggregator outage. A metrics batch covers no byte ranges, so
//! its acknowledgement moves no checkpoint.
//!
//! Everything is read from /proc and /sys directly, plus `statvfs` for
//! filesystems, rather than through a crate such as sysinfo: the figures must
//! follow exact definitions (iowait counted busy, df's used percent,
//! MemAvailable), and reading a few small files into one reused buffer costs
//! well under a millisecond per collection, with no process spawned.
//!
//! | metrics | labels | read from |
//! |---|---|---|
//! | `cpu.usage_percent` | none, and `cpu` | /proc/stat |
//! | `load.1m`, `load.5m`, `load.15m` | | /proc/loadavg |
//! | `memory.used_percent`, `memory.available_bytes`, `swap.used_percent` | | /proc/meminfo |
//! | `fs.used_bytes`, `fs.total_bytes`, `fs.used_percent` | `mount` | /proc/self/mounts, statvfs |
//! | `disk.read_bytes_per_sec`, `disk.write_bytes_per_sec` | `device` | /proc/diskstats, /sys/class/block |
//! | `net.{rx,tx}_bytes_per_sec`, `net.{rx,tx}_utilization_percent` | `interface` | /proc/net/dev, /sys/class/net |
//! | `agent.lines_read`, `agent.bytes_read`, `agent.bytes_shipped` | | the log sources' and shipper's counters |
//! | `agent.records_missed` | | records a log source knows were gone before it read them (journal entries vacuumed while the agent was down) |
//! | `agent.spool_bytes`, `agent.oldest_unacked_age_seconds` | | the spool |
//! | `agent.cpu_percent`, `agent.rss_bytes` | | /proc/self/stat, /proc/self/status |
//!
//! Rates (CPU percentages, throughputs) are deltas between two collections
//! over the monotonic time between them, so the first collection after a
//! start sends none rather than a wrong zero, and a counter that went
//! backwards (a wrap, a reset, a device replaced under the same name) skips
//! its rate once. A file that cannot be read, or a line that does not parse,
//! only leaves out the figures it would have given.

pub mod devices;
pub mod filesystems;
pub mod procfs;

use self::procfs::{ByteCounts, CpuStat};
use crate::config::CompiledMetrics;
use crate::health;
use lookout_shared::time::now_ms;
use lookout_shared::wire::{IngestBatch, MetricSample};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Instant;

/// Everything the metrics thread needs from the rest of the agent.
#[derive(Debug)]
pub struct MetricsParts {
    /// Host name of the batches.
    pub host: String,
    /// The interval and what to measure.
    pub filters: CompiledMetrics,
    /// The parts whose health `agent.*` metrics report (values of one name
    /// summed).
    pub health: health::Parts,
    /// The sealer's channel, shared with the tailer.
    pub batches: SyncSender<IngestBatch>,
    /// Disconnected (its sender dropped) when the agent stops: the thread
    /// waits on it between collections, so a stop ends the wait at once.
    pub stop: Receiver<()>,
}

/// The metrics thread: collects and sends a batch every interval until the
/// agent stops or the sealer is gone.
pub fn run(parts: MetricsParts) {
    let MetricsParts {
        host,
        filters,
        health,
        batches,
        stop,
    } = parts;
    let interval = filters.interval;
    tracing::info!(interval_ms = interval.as_millis() as u64, "collecting host metrics");
    let mut collector = Collector::new(filters, health);
    let mut next = Instant::now();
    loop {
        let metrics = collector.collect();
        if !metrics.is_empty() {
            let batch = IngestBatch {
                host: host.clone(),
                streams: Vec::new(),
                metrics,
            };
            // Blocks while the spool is full, like the tailer; fails once the sealer has gone.
            if batches.send(batch).is_err() {
                return;
            }
        }
        next += interval;
        let now = Instant::now();
        // After a stall (a full spool), resume the rhythm instead of catching up in a burst.
        if next <= now {
            next = now + interval;
        }
        match stop.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Reads the host's figures, keeping the last counters to turn the next into rates.
#[derive(Debug)]
pub struct Collector {
    filters: CompiledMetrics,
    health: health::Parts,
    /// One buffer for every file read, so a collection allocates little.
    buffer: Vec<u8>,
    /// Unit of /proc/self/stat's CPU times.
    ticks_per_second: u64,
    previous: Option<Counters>,
}

/// The counters of one collection.
#[derive(Debug)]
struct Counters {
    at: Instant,
    cpu: CpuStat,
    /// The measured disks.
    disks: BTreeMap<String, ByteCounts>,
    /// The measured interfaces.
    interfaces: BTreeMap<String, ByteCounts>,
    /// The agent's own user + system CPU time, in ticks.
    own_cpu_ticks: Option<u64>,
}

impl Collector {
    /// A collector that has seen nothing yet.
    pub fn new(filters: CompiledMetrics, health: health::Parts) -> Collector {
        Collector {
            filters,
            health,
            buffer: Vec::with_capacity(16 * 1024),
            ticks_per_second: rustix::param::clock_ticks_per_second(),
            previous: None,
        }
    }

    /// One collection: the gauges, and the rates since the previous collection.
    pub fn collect(&mut self) -> Vec<MetricSample> {
        let mut out = Samples {
            time_ms: now_ms(),
            list: Vec::new(),
        };
        let counters = self.read_counters();
        if let Some(previous) = &self.previous {
            rate_samples(
                &mut out,
                previous,
                &counters,
                self.ticks_per_second,
                devices::link_speed_mbps,
            );
        }
        self.previous = Some(counters);
        self.load(&mut out);
        self.memory(&mut out);
        self.filesystems(&mut out);
        self.agent(&mut out);
        out.list
    }

    fn read_counters(&mut self) -> Counters {
        // One instant for all counters: they are read within a millisecond of it.
        let at = Instant::now();
        let cpu = read_text(&mut self.buffer, "/proc/stat")
            .map(|text| procfs::parse_stat(&text))
            .unwrap_or_default();
        let disks = read_text(&mut self.buffer, "/proc/diskstats")
            .map(|text| procfs::parse_diskstats(&text))
            .unwrap_or_default();
        let disks = devices::select_disks(disks, &self.filters, devices::disk_of_partition);
        let interfaces = read_text(&mut self.buffer, "/proc/net/dev")
            .map(|text| procfs::parse_net_dev(&text))
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| {
                self.filters
                    .wants_interface(name, || devices::is_physical_interface(name))
            })
            .collect();
        let own_cpu_ticks =
            read_text(&mut self.buffer, "/proc/self/stat").and_then(|text| procfs::parse_process_cpu_ticks(&text));
        Counters {
            at,
            cpu,
            disks: disks.into_iter().collect(),
            interfaces,
            own_cpu_ticks,
        }
    }

    fn load(&mut self, out: &mut Samples) {
        let Some([one, five, fifteen]) =
            read_text(&mut self.buffer, "/proc/loadavg").and_then(|text| procfs::parse_loadavg(&text))
        else {
            return;
        };
        out.host("load.1m", one);
        out.host("load.5m", five);
        out.host("load.15m", fifteen);
    }

    fn memory(&mut self, out: &mut Samples) {
        let Some(info) = read_text(&mut self.buffer, "/proc/meminfo").map(|text| procfs::parse_meminfo(&text)) else {
            return;
        };
        if let Some(percent) = info.used_percent() {
            out.host("memory.used_percent", percent);
        }
        if let Some(available) = info.available {
            out.host("memory.available_bytes", available as f64);
        }
        if let Some(percent) = info.swap_used_percent() {
            out.host("swap.used_percent", percent);
        }
    }

    fn filesystems(&mut self, out: &mut Samples) {
        let Some(table) = read(&mut self.buffer, "/proc/self/mounts") else {
            return;
        };
        for mount in filesystems::select_mounts(filesystems::parse_mounts(table), &self.filters) {
            let usage = match filesystems::usage(&mount.point) {
                Ok(Some(usage)) => usage,
                // No blocks: a pseudo filesystem the type list does not know.
                Ok(None) => continue,
                Err(err) => {
                    tracing::debug!(mount = %mount.point.display(), error = %err, "cannot measure a filesystem");
                    continue;
                }
            };
            let point = mount.point.to_string_lossy();
            out.labelled("fs.used_bytes", "mount", &point, usage.used_bytes as f64);
            out.labelled("fs.total_bytes", "mount", &point, usage.total_bytes as f64);
            if let Some(percent) = usage.used_percent {
                out.labelled("fs.used_percent", "mount", &point, percent);
            }
        }
    }

    fn agent(&mut self, out: &mut Samples) {
        let mut values: BTreeMap<&'static str, f64> = BTreeMap::new();
        for part in &self.health {
            part.report(&mut |name, value| *values.entry(name).or_default() += value);
        }
        for (name, value) in values {
            out.host(name, value);
        }
        if let Some(rss) = read_text(&mut self.buffer, "/proc/self/status").and_then(|text| procfs::parse_vm_rss(&text))
        {
            out.host("agent.rss_bytes", rss as f64);
        }
    }
}

/// The rates between two collections: CPU percentages, disk and network
/// throughput and link utilisation (against `link_speed_mbps`), and the
/// agent's own CPU share (of one core).
fn rate_samples(
    out: &mut Samples,
    previous: &Counters,
    current: &Counters,
    ticks_per_second: u64,
    link_speed_mbps: impl Fn(&str) -> Option<f64>,
) {
    let seconds = current.at.saturating_duration_since(previous.at).as_secs_f64();
    if seconds <= 0.0 {
        return;
    }
    if let (Some(before), Some(now)) = (previous.cpu.all, current.cpu.all)
        && let Some(percent) = procfs::cpu_usage_percent(before, now)
    {
        out.host("cpu.usage_percent", percent);
    }
    for (core, now) in &current.cpu.cores {
        if let Some(before) = previous.cpu.cores.get(core)
            && let Some(percent) = procfs::cpu_usage_percent(*before, *now)
        {
            out.labelled("cpu.usage_percent", "cpu", &core.to_string(), percent);
        }
    }
    for (device, now) in &current.disks {
        let Some(before) = previous.disks.get(device) else {
            continue;
        };
        if let Some(rate) = procfs::rate(before.input, now.input, seconds) {
            out.labelled("disk.read_bytes_per_sec", "device", device, rate);
        }
        if let Some(rate) = procfs::rate(before.output, now.output, seconds) {
            out.labelled("disk.write_bytes_per_sec", "device", device, rate);
        }
    }
    for (interface, now) in &current.interfaces {
        let Some(before) = previous.interfaces.get(interface) else {
            continue;
        };
        let received = procfs::rate(before.input, now.input, seconds);
        let sent = procfs::rate(before.output, now.output, seconds);
        if received.is_none() && sent.is_none() {
            continue;
        }
        let speed = link_speed_mbps(interface);
        for (rate, rate_name, utilization_name) in [
            (received, "net.rx_bytes_per_sec", "net.rx_utilization_percent"),
            (sent, "net.tx_bytes_per_sec", "net.tx_utilization_percent"),
        ] {
            let Some(rate) = rate else {
                continue;
            };
            out.labelled(rate_name, "interface", interface, rate);
            if let Some(speed) = speed {
                let percent = devices::utilization_percent(rate, speed);
                out.labelled(utilization_name, "interface", interface, percent);
            }
        }
    }
    if let (Some(before), Some(now)) = (previous.own_cpu_ticks, current.own_cpu_ticks)
        && let Some(ticks) = now.checked_sub(before)
        && ticks_per_second > 0
    {
        let percent = ticks as f64 / ticks_per_second as f64 / seconds * 100.0;
        out.host("agent.cpu_percent", percent);
    }
}

/// The samples of one collection, all stamped with its time.
struct Samples {
    time_ms: i64,
    list: Vec<MetricSample>,
}

impl Samples {
    /// A sample of the host as a whole.
    fn host(&mut self, name: &str, value: f64) {
        self.push(name, BTreeMap::new(), value);
    }

    /// A sample of one mount, device, interface or CPU.
    fn labelled(&mut self, name: &str, key: &str, label: &str, value: f64) {
        self.push(name, BTreeMap::from([(key.to_string(), label.to_string())]), value);
    }

    fn push(&mut self, name: &str, labels: BTreeMap<String, String>, value: f64) {
        // The wire format promises finite values; a division gone wrong is dropped.
        if value.is_finite() {
            self.list.push(MetricSample {
                name: name.to_string(),
                labels,
                time_ms: self.time_ms,
                value: lookout_shared::wire::round_value(value),
            });
        }
    }
}

/// Reads a whole file into `buffer`; `None` (logged at debug level) when it
/// cannot be read, as when /proc or /sys lack it on this kernel.
fn read<'a>(buffer: &'a mut Vec<u8>, path: &str) -> Option<&'a [u8]> {
    buffer.clear();
    match File::open(path).and_then(|mut file| file.read_to_end(buffer)) {
        Ok(_) => Some(buffer.as_slice()),
        Err(err) => {
            tracing::debug!(path, error = %err, "cannot read a metrics source");
            None
        }
    }
}

/// [`read`], as text; /proc's counter files are ASCII, so this rarely copies.
fn read_text<'a>(buffer: &'a mut Vec<u8>, path: &str) -> Option<Cow<'a, str>> {
    read(buffer, path).map(String::from_utf8_lossy)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::AgentConfig;
    use crate::ship::ShipStats;
    use crate::sources::SourceHealth;
    use crate::spool::Spool;
    use lookout_shared::config::parse_toml;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;
    use std::time::Duration;

    /// The metric filters of a `[metrics]` table holding `keys`.
    pub(crate) fn filters(keys: &str) -> CompiledMetrics {
        let file = Path::new("agent.toml");
        let text = format!("aggregator_url = \"http://127.0.0.1:7070\"\ntoken = \"t\"\n[metrics]\n{keys}\n");
        let config: AgentConfig = parse_toml(file, &text).unwrap();
        config.validate(file).unwrap().metrics.expect("metrics enabled")
    }

    fn health(name: &str) -> (health::Parts, PathBuf) {
        let dir = std::env::temp_dir().join(format!("lookout-metrics-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (spool, _) = Spool::open(&dir, 1 << 20).unwrap();
        let file = SourceHealth::default();
        file.count_read(3, 300);
        let journal = SourceHealth::default();
        journal.count_read(4, 400);
        journal.records_missed.store(5, Ordering::Relaxed);
        let health: health::Parts = vec![
            Arc::new(file),
            Arc::new(journal),
            Arc::new(ShipStats::default()),
            Arc::new(spool),
        ];
        (health, dir)
    }

    fn counters(at: Instant, stat: &str, diskstats: &str, net_dev: &str, own_ticks: u64) -> Counters {
        Counters {
            at,
            cpu: procfs::parse_stat(stat),
            disks: procfs::parse_diskstats(diskstats).into_iter().collect(),
            interfaces: procfs::parse_net_dev(net_dev).into_iter().collect(),
            own_cpu_ticks: Some(own_ticks),
        }
    }

    fn find<'a>(samples: &'a [MetricSample], name: &str, label: Option<(&str, &str)>) -> Option<&'a MetricSample> {
        samples.iter().find(|sample| {
            sample.name == name
                && match label {
                    Some((key, value)) => sample.labels.get(key).map(String::as_str) == Some(value),
                    None => sample.labels.is_empty(),
                }
        })
    }

    fn value(samples: &[MetricSample], name: &str, label: Option<(&str, &str)>) -> f64 {
        find(samples, name, label)
            .unwrap_or_else(|| panic!("no {name} {label:?} in {samples:#?}"))
            .value
    }

    #[test]
    fn rates_come_from_deltas_over_elapsed_time_and_skip_resets() {
        let start = Instant::now();
        let before = counters(
            start,
            "cpu 100 0 100 800 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0\n",
            " 254 0 vda 1 0 1000 0 1 0 2000 0 0 0 0\n",
            "eth0: 1000 0 0 0 0 0 0 0 5000 0 0 0 0 0 0 0\nlo: 90000 0 0 0 0 0 0 0 90000 0 0 0 0 0 0 0\n",
            100,
        );
        let after = counters(
            start + Duration::from_secs(10),
            // cpu0: +20 user, +60 idle, +20 iowait: 40 % busy, iowait
            // counted busy. cpu1's counters were reset: skipped.
            "cpu 150 0 100 850 40 0 0 0\ncpu0 70 0 50 460 20 0 0 0\ncpu1 1 0 1 1 0 0 0 0\n",
            " 254 0 vda 2 0 21000 0 2 0 2000 0 0 0 0\n",
            // lo was reset (an interface recreated under the same name).
            "eth0: 12501000 0 0 0 0 0 0 0 5000 0 0 0 0 0 0 0\nlo: 10 0 0 0 0 0 0 0 10 0 0 0 0 0 0 0\n",
            150,
        );
        let speed = |interface: &str| (interface == "eth0").then_some(10.0);
        let mut out = Samples {
            time_ms: 1,
            list: Vec::new(),
        };
        rate_samples(&mut out, &before, &after, 100, speed);
        let samples = out.list;
        // 90 of 140 ticks busy, sent to two decimals.
        assert_eq!(value(&samples, "cpu.usage_percent", None), 64.29);
        assert!((value(&samples, "cpu.usage_percent", Some(("cpu", "0"))) - 40.0).abs() < 1e-9);
        assert!(
            find(&samples, "cpu.usage_percent", Some(("cpu", "1"))).is_none(),
            "reset core skipped"
        );
        assert_eq!(
            value(&samples, "disk.read_bytes_per_sec", Some(("device", "vda"))),
            2000.0 * 512.0
        );
        assert_eq!(
            value(&samples, "disk.write_bytes_per_sec", Some(("device", "vda"))),
            0.0
        );
        assert_eq!(
            value(&samples, "net.rx_bytes_per_sec", Some(("interface", "eth0"))),
            1_250_000.0
        );
        // 1.25 MB/s = 10 Mbit/s on a 10 Mbit/s link.
        assert!((value(&samples, "net.rx_utilization_percent", Some(("interface", "eth0"))) - 100.0).abs() < 1e-9);
        assert_eq!(
            value(&samples, "net.tx_utilization_percent", Some(("interface", "eth0"))),
            0.0
        );
        assert!(
            !samples
                .iter()
                .any(|sample| sample.labels.get("interface").is_some_and(|name| name == "lo")),
            "reset interface skipped once; no speed, no utilisation"
        );
        // 50 ticks at 100 per second over 10 seconds: 5 % of one core.
        assert!((value(&samples, "agent.cpu_percent", None) - 5.0).abs() < 1e-9);

        // The next interval has rates for lo again.
        let later = counters(
            start + Duration::from_secs(20),
            "cpu 150 0 100 850 40 0 0 0\n",
            "",
            "lo: 1010 0 0 0 0 0 0 0 10 0 0 0 0 0 0 0\n",
            150,
        );
        let mut out = Samples {
            time_ms: 2,
            list: Vec::new(),
        };
        rate_samples(&mut out, &after, &later, 100, speed);
        assert_eq!(
            value(&out.list, "net.rx_bytes_per_sec", Some(("interface", "lo"))),
            100.0
        );
        assert!(find(&out.list, "net.rx_utilization_percent", Some(("interface", "lo"))).is_none());
        assert!(
            find(&out.list, "cpu.usage_percent", None).is_none(),
            "no time passed on the CPUs"
        );
    }

    #[test]
    fn collects_this_machine() {
        let (health, dir) = health("machine");
        // Every filesystem type (but automounts), so the temporary folder's
        // filesystem is measured even where it is an overlay or a tmpfs.
        let mut collector = Collector::new(filters("fs_types_exclude = [\"autofs\"]"), health);
        let first = collector.collect();
        let rates = |samples: &[MetricSample]| {
            samples
                .iter()
                .filter(|sample| {
                    sample.name == "cpu.usage_percent"
                        || sample.name.ends_with("_per_sec")
                        || sample.name.ends_with("_utilization_percent")
                        || sample.name == "agent.cpu_percent"
                })
                .count()
        };
        assert_eq!(rates(&first), 0, "the first collection has no rates: {first:#?}");
        std::thread::sleep(Duration::from_millis(300));
        let second = collector.collect();
        assert!(rates(&second) > 0, "the second has: {second:#?}");

        let cpu = value(&second, "cpu.usage_percent", None);
        assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
        assert!(find(&second, "cpu.usage_percent", Some(("cpu", "0"))).is_some());
        for samples in [&first, &second] {
            let memory = value(samples, "memory.used_percent", None);
            assert!(memory > 0.0 && memory <= 100.0, "memory {memory}");
            assert!(value(samples, "memory.available_bytes", None) > 0.0);
            assert!(value(samples, "load.1m", None) >= 0.0);
            assert!(value(samples, "agent.rss_bytes", None) > 1e6);
            assert_eq!(value(samples, "agent.spool_bytes", None), 0.0);
            // Summed over the log sources.
            assert_eq!(value(samples, "agent.lines_read", None), 7.0);
            assert_eq!(value(samples, "agent.bytes_read", None), 700.0);
            assert_eq!(value(samples, "agent.records_missed", None), 5.0);
        }
        assert!(find(&second, "agent.cpu_percent", None).is_some());

        // The filesystem holding the temporary folder: the longest mount point above it.
        let mount = second
            .iter()
            .filter(|sample| sample.name == "fs.used_percent")
            .filter_map(|sample| sample.labels.get("mount"))
            .filter(|mount| dir.starts_with(mount))
            .max_by_key(|mount| mount.len())
            .unwrap_or_else(|| panic!("no filesystem above {}: {second:#?}", dir.display()))
            .clone();
        let label = Some(("mount", mount.as_str()));
        let percent = value(&second, "fs.used_percent", label);
        let used = value(&second, "fs.used_bytes", label);
        let total = value(&second, "fs.total_bytes", label);
        assert!((0.0..=100.0).contains(&percent), "{mount}: {percent}");
        assert!(used <= total && total > 0.0, "{mount}: {used} of {total}");
        // df's Use% is the same ratio, rounded up; allow for a write in between.
        match std::process::Command::new("df").arg("-P").arg(&dir).output() {
            Ok(output) if output.status.success() => {
                let text = String::from_utf8_lossy(&output.stdout);
                let df_percent: f64 = text
                    .lines()
                    .nth(1)
                    .and_then(|line| line.split_whitespace().nth(4))
                    .and_then(|field| field.trim_end_matches('%').parse().ok())
                    .unwrap_or_else(|| panic!("unexpected df output: {text}"));
                assert!(
                    (df_percent - percent).abs() <= 1.5,
                    "{mount}: df says {df_percent}%, we say {percent}%"
                );
            }
            other => eprintln!("df not usable here ({other:?}); compared with the bounds only"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_thread_sends_batches_and_stops_promptly() {
        let (health, dir) = health("thread");
        let (batch_tx, batch_rx) = mpsc::sync_channel(2);
        let (stop_tx, stop_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            run(MetricsParts {
                host: "web-1".into(),
                filters: filters("interval = \"1h\""),
                health,
                batches: batch_tx,
                stop: stop_rx,
            })
        });
        let batch = batch_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(batch.host, "web-1");
        assert!(batch.streams.is_empty());
        assert!(find(&batch.metrics, "memory.used_percent", None).is_some());
        let asked = Instant::now();
        drop(stop_tx);
        while !thread.is_finished() {
            // Generous for a loaded CI machine; the interval is an hour.
            assert!(
                asked.elapsed() < Duration::from_millis(500),
                "a stop must end the wait at once, not after the interval"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
