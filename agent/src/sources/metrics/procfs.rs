//! Parsers of /proc files: pure functions over their text, so every odd line
//! a kernel may produce can be tested with a sample. A line that does not
//! parse is skipped, never a panic; a value that cannot be computed is `None`.

use std::collections::BTreeMap;

/// Bytes per sector in /proc/diskstats, whatever the device's own sector size.
const DISKSTATS_SECTOR_BYTES: u64 = 512;

/// Ticks one CPU (or all of them) spent, from a `cpu` line of /proc/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Idle ticks. iowait is not idle: a CPU waiting on a disk counts as busy,
    /// as in Telegraf's `usage_active`.
    pub idle: u64,
    /// user + nice + system + idle + iowait + irq + softirq + steal. guest and
    /// guest_nice are left out because the kernel already counts them in user
    /// and nice.
    pub total: u64,
}

/// The CPU lines of /proc/stat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuStat {
    /// The `cpu` line: all CPUs together.
    pub all: Option<CpuTimes>,
    /// The `cpuN` lines, by N (offline CPUs have no line, so N may skip).
    pub cores: BTreeMap<u32, CpuTimes>,
}

/// Parses the `cpu` and `cpuN` lines of /proc/stat.
pub fn parse_stat(text: &str) -> CpuStat {
    let mut stat = CpuStat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next().and_then(|name| name.strip_prefix("cpu")) else {
            continue;
        };
        let Some(times) = cpu_times(fields) else {
            continue;
        };
        if name.is_empty() {
            stat.all = Some(times);
        } else if let Ok(core) = name.parse() {
            stat.cores.insert(core, times);
        }
    }
    stat
}

fn cpu_times<'a>(fields: impl Iterator<Item = &'a str>) -> Option<CpuTimes> {
    // user nice system idle iowait irq softirq steal (guest guest_nice follow).
    let mut values = [0u64; 8];
    let mut count = 0;
    for (slot, field) in values.iter_mut().zip(fields) {
        *slot = field.parse().ok()?;
        count += 1;
    }
    // Kernels before 2.6 lack the later columns; the first four always exist.
    if count < 4 {
        return None;
    }
    let total = values.iter().try_fold(0u64, |sum, &value| sum.checked_add(value))?;
    Some(CpuTimes { idle: values[3], total })
}

/// Busy share of the time between two readings, in percent; `None` when no
/// time passed or a counter went backwards (a reset, or iowait, which the
/// kernel does not promise to keep monotonic).
pub fn cpu_usage_percent(previous: CpuTimes, current: CpuTimes) -> Option<f64> {
    let total = current.total.checked_sub(previous.total)?;
    let idle = current.idle.checked_sub(previous.idle)?;
    if total == 0 || idle > total {
        return None;
    }
    Some((total - idle) as f64 / total as f64 * 100.0)
}

/// The 1, 5 and 15 minute load averages of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace().map(|field| field.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// The figures of /proc/meminfo the metrics need, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total: Option<u64>,
    /// `MemAvailable` (kernels since 3.14): what can be allocated without
    /// swapping, page cache that can be dropped included.
    pub available: Option<u64>,
    /// `SwapTotal`.
    pub swap_total: Option<u64>,
    /// `SwapFree`.
    pub swap_free: Option<u64>,
}

impl MemInfo {
    /// (MemTotal − MemAvailable) / MemTotal, in percent.
    pub fn used_percent(&self) -> Option<f64> {
        percent_used(self.total?, self.available?)
    }

    /// (SwapTotal − SwapFree) / SwapTotal, in percent; `None` without swap.
    pub fn swap_used_percent(&self) -> Option<f64> {
        percent_used(self.swap_total?, self.swap_free?)
    }
}

fn percent_used(total: u64, free: u64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    Some(total.saturating_sub(free) as f64 / total as f64 * 100.0)
}

/// Parses /proc/meminfo (`MemTotal:  16314516 kB` lines).
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut info = MemInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut info.total,
            "MemAvailable" => &mut info.available,
            "SwapTotal" => &mut info.swap_total,
            "SwapFree" => &mut info.swap_free,
            _ => continue,
        };
        *slot = kibibytes(value);
    }
    info
}

/// `  16314516 kB` → bytes.
fn kibibytes(value: &str) -> Option<u64> {
    let number = value.trim().strip_suffix("kB")?.trim_end();
    number.parse::<u64>().ok()?.checked_mul(1024)
}

/// Bytes in and out of a device or an interface since boot: read and written
/// for a block device, received and sent for a network interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteCounts {
    /// Bytes read, or received.
    pub input: u64,
    /// Bytes written, or sent.
    pub output: u64,
}

/// Parses /proc/diskstats into (device name, bytes read and written).
pub fn parse_diskstats(text: &str) -> Vec<(String, ByteCounts)> {
    text.lines()
        .filter_map(|line| {
            // major minor name reads merged sectors_read ms writes merged sectors_written …
            let fields: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
            let [_, _, name, _, _, read, _, _, _, written] = fields[..] else {
                return None;
            };
            let sectors = |field: &str| field.parse::<u64>().ok()?.checked_mul(DISKSTATS_SECTOR_BYTES);
            Some((
                name.to_string(),
                ByteCounts {
                    input: sectors(read)?,
                    output: sectors(written)?,
                },
            ))
        })
        .collect()
}

/// Parses /proc/net/dev into (interface name, bytes received and sent).
pub fn parse_net_dev(text: &str) -> Vec<(String, ByteCounts)> {
    text.lines()
        .filter_map(|line| {
            // `  eth0: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes …`;
            // the two header lines have no `:` before their counters and fail the parse.
            // Interface names cannot contain `:`, and old kernels put no space after it.
            let (name, counters) = line.split_once(':')?;
            let mut fields = counters.split_ascii_whitespace();
            let received = fields.next()?.parse().ok()?;
            let sent = fields.nth(7)?.parse().ok()?;
            Some((
                name.trim().to_string(),
                ByteCounts {
                    input: received,
                    output: sent,
                },
            ))
        })
        .collect()
}

/// utime + stime of /proc/self/stat, in clock ticks.
pub fn parse_process_cpu_ticks(text: &str) -> Option<u64> {
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so the
    // fields are counted from the last `)`. utime and stime are fields 14 and
    // 15 of the line, the 12th and 13th after comm.
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    user.checked_add(system)
}

/// `VmRSS` of /proc/self/status, in bytes.
pub fn parse_vm_rss(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(kibibytes)
}

/// Per-second rate of a counter between two readings `seconds` apart; `None`
/// when the counter went backwards (a wrap, or a device or interface that was
/// reset or replaced under the same name): one rate is skipped, not a wrong one sent.
pub fn rate(previous: u64, current: u64, seconds: f64) -> Option<f64> {
    let delta = current.checked_sub(previous)?;
    (seconds > 0.0).then(|| delta as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  425467 0 19295 138019 601 0 301 3293 0 0
cpu0 213669 0 9709 68024 336 0 113 1623 0 0
cpu1 211798 0 9585 69994 265 0 188 1670 0 0
intr 12345 0 0
ctxt 987654
btime 1700000000
cpu3 1 2 3
cpufreq garbage
";

    #[test]
    fn stat_lines_become_cpu_times() {
        let stat = parse_stat(STAT);
        let all = stat.all.expect("the cpu line");
        assert_eq!(all.idle, 138019);
        assert_eq!(all.total, 425467 + 19295 + 138019 + 601 + 301 + 3293);
        assert_eq!(stat.cores.len(), 2, "short and garbage cpu lines are skipped: {stat:?}");
        assert_eq!(stat.cores[&1].idle, 69994);
        // A kernel without iowait/irq/steal columns still gives a reading.
        let old = parse_stat("cpu 10 0 5 85\n");
        assert_eq!(old.all, Some(CpuTimes { idle: 85, total: 100 }));
        assert_eq!(parse_stat(""), CpuStat::default());
    }

    #[test]
    fn iowait_counts_as_busy_and_guest_is_not_counted_twice() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let before = parse_stat("cpu 100 0 100 700 100 0 0 0 50 0\n").all.unwrap();
        // +10 user, +10 system, +40 idle, +40 iowait; guest +10 (already in user).
        let after = parse_stat("cpu 110 0 110 740 140 0 0 0 60 0\n").all.unwrap();
        let usage = cpu_usage_percent(before, after).unwrap();
        assert!((usage - 60.0).abs() < 1e-9, "60 of 100 ticks were not idle: {usage}");
        assert_eq!(cpu_usage_percent(after, after), None, "no time passed");
        assert_eq!(cpu_usage_percent(after, before), None, "counters went backwards");
    }

    #[test]
    fn loadavg_parses() {
        assert_eq!(parse_loadavg("2.21 2.07 1.93 3/113 21387\n"), Some([2.21, 2.07, 1.93]));
        assert_eq!(parse_loadavg("2.21 x 1.93"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn meminfo_gives_used_and_swap_percent() {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n\
                    Buffers:          100 kB\nSwapTotal:       2000000 kB\nSwapFree:        1500000 kB\nHugePages_Total:       0\n";
        let info = parse_meminfo(text);
        assert_eq!(info.available, Some(4_000_000 * 1024));
        assert_eq!(info.used_percent(), Some(75.0));
        assert_eq!(info.swap_used_percent(), Some(25.0));
        let no_swap = parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 250 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
        assert_eq!(no_swap.used_percent(), Some(75.0));
        assert_eq!(no_swap.swap_used_percent(), None, "no swap, no swap figure");
        let old_kernel = parse_meminfo("MemTotal: 1000 kB\nMemFree: 250 kB\n");
        assert_eq!(old_kernel.used_percent(), None, "no MemAvailable, no guess");
        assert_eq!(parse_meminfo("MemTotal: lots kB\n").total, None);
    }

    #[test]
    fn diskstats_counts_sectors_of_512_bytes() {
        let text = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 27852 5973 3004994 13629 74485 58527 17973576 86804 0 15060 105372 24129 7 5063192 4030 15954 908
 254       1 vda1 10 0 80 1 2 0 16 0 0 0 0
   8       0 short 1 2 3
";
        let disks = parse_diskstats(text);
        assert_eq!(disks.len(), 3, "the short line is skipped: {disks:?}");
        assert_eq!(disks[1].0, "vda");
        assert_eq!(
            disks[1].1,
            ByteCounts {
                input: 3004994 * 512,
                output: 17973576 * 512
            }
        );
        assert_eq!(disks[2].1.output, 16 * 512, "the first ten columns are all it needs");
    }

    #[test]
    fn net_dev_skips_headers_and_reads_rx_tx_bytes() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 798723808   44555    0    0    0     0          0         0 798723808   44555    0    0    0     0       0          0
  eth0:149255273    9905    0    0    0     0          0         0   824532    8871    0    0    0     0       0          0
  bad0: 1 2 3
";
        let interfaces = parse_net_dev(text);
        assert_eq!(interfaces.len(), 2, "{interfaces:?}");
        assert_eq!(interfaces[0].0, "lo");
        assert_eq!(
            interfaces[1],
            (
                "eth0".to_string(),
                ByteCounts {
                    input: 149255273,
                    output: 824532
                }
            )
        );
    }

    #[test]
    fn own_cpu_ticks_and_rss_parse() {
        let stat = "4242 (lookout agent) (x) S 1 4242 4242 0 -1 4194560 1500 0 0 0 70 30 0 0 20 0 9 0 123 45678 1234";
        assert_eq!(parse_process_cpu_ticks(stat), Some(100));
        assert_eq!(parse_process_cpu_ticks("4242 (x) S 1"), None);
        let status = "Name:\tlookout-agent\nVmPeak:\t  20000 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(parse_vm_rss(status), Some(8192 * 1024));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None, "kernel threads have no VmRSS");
    }

    #[test]
    fn a_counter_that_goes_backwards_gives_no_rate() {
        assert_eq!(rate(1000, 3000, 2.0), Some(1000.0));
        assert_eq!(rate(3000, 1000, 2.0), None);
        assert_eq!(
            rate(u64::from(u32::MAX) - 5, 10, 10.0),
            None,
            "a 32-bit wrap is skipped"
        );
        assert_eq!(rate(0, 10, 0.0), None);
    }
}
