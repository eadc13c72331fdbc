//! Block devices and network interfaces: which to measure, from what /sys
//! says about them, and the link speed utilisation is measured against.

use super::procfs::ByteCounts;
use crate::config::CompiledMetrics;
use std::path::{Path, PathBuf};

/// The disks to measure among the lines of /proc/diskstats: those the
/// filters want, without the partitions of a disk that is itself listed (its
/// figures already include theirs). `disk_of` names the disk a partition
/// belongs to, `None` for anything that is not a partition.
pub fn select_disks(
    disks: Vec<(String, ByteCounts)>,
    filters: &CompiledMetrics,
    disk_of: impl Fn(&str) -> Option<String>,
) -> Vec<(String, ByteCounts)> {
    let listed: Vec<String> = disks.iter().map(|(name, _)| name.clone()).collect();
    disks
        .into_iter()
        .filter(|(name, _)| filters.wants_device(name))
        .filter(|(name, _)| disk_of(name).is_none_or(|disk| !listed.contains(&disk)))
        .collect()
}

/// The disk a partition belongs to, from /sys (`/sys/class/block/vda1` links
/// to `…/block/vda/vda1` and holds a `partition` file); `None` for a whole
/// disk or a device /sys does not know.
pub fn disk_of_partition(device: &str) -> Option<String> {
    // /sys spells a `/` of a device name (`cciss/c0d0`) as `!`.
    let entry = Path::new("/sys/class/block").join(device.replace('/', "!"));
    if !entry.join("partition").exists() {
        return None;
    }
    let target = std::fs::read_link(&entry).ok()?;
    let disk = target.parent()?.file_name()?.to_str()?;
    Some(disk.replace('!', "/"))
}

/// Whether an interface is backed by hardware: physical NICs (and virtio
/// ones) have a `device` link in /sys; loopback, bridges, veth, tunnels and
/// other virtual interfaces live under /sys/devices/virtual and have none.
pub fn is_physical_interface(name: &str) -> bool {
    interface_dir(name).join("device").exists()
}

/// The link speed in Mbit/s from /sys; `None` where the file is missing or
/// unreadable (virtual interfaces answer EINVAL) or the speed is unknown
/// (-1 while the link is down, 0 on some drivers).
pub fn link_speed_mbps(name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(interface_dir(name).join("speed")).ok()?;
    parse_speed(&text)
}

fn interface_dir(name: &str) -> PathBuf {
    Path::new("/sys/class/net").join(name)
}

fn parse_speed(text: &str) -> Option<f64> {
    let speed: i64 = text.trim().parse().ok()?;
    (speed > 0).then_some(speed as f64)
}

/// A byte rate as a share of a link speed, in percent.
pub fn utilization_percent(bytes_per_second: f64, speed_mbps: f64) -> f64 {
    bytes_per_second * 8.0 / (speed_mbps * 1e6) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::metrics::tests::filters;

    fn disk(name: &str) -> (String, ByteCounts) {
        (name.to_string(), ByteCounts { input: 0, output: 0 })
    }

    fn names(disks: &[(String, ByteCounts)]) -> Vec<&str> {
        disks.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn partitions_of_listed_disks_loop_and_ram_devices_are_left_out() {
        let disks = [
            "loop0",
            "ram0",
            "zram0",
            "vda",
            "vda1",
            "nvme0n1",
            "nvme0n1p2",
            "dm-0",
            "sdz3",
        ]
        .map(disk);
        let disk_of = |name: &str| match name {
            "vda1" => Some("vda".to_string()),
            "nvme0n1p2" => Some("nvme0n1".to_string()),
            // A partition whose disk is not listed is the only view of that disk.
            "sdz3" => Some("sdz".to_string()),
            _ => None,
        };
        let selected = select_disks(disks.to_vec(), &filters(""), disk_of);
        assert_eq!(names(&selected), ["vda", "nvme0n1", "dm-0", "sdz3"]);

        let selected = select_disks(disks.to_vec(), &filters("devices_exclude = [\"dm-*\"]"), disk_of);
        assert_eq!(names(&selected), ["vda", "nvme0n1", "sdz3"]);
    }

    #[test]
    fn virtual_interfaces_are_left_out_unless_included() {
        let physical = |name: &str| name.starts_with("eth");
        let wanted = |config: &str| {
            let filters = filters(config);
            ["lo", "eth0", "eth1", "docker0", "veth12ab"]
                .into_iter()
                .filter(|name| filters.wants_interface(name, || physical(name)))
                .collect::<Vec<_>>()
        };
        assert_eq!(wanted(""), ["eth0", "eth1"]);
        assert_eq!(wanted("interfaces_exclude = [\"eth1\"]"), ["eth0"]);
        assert_eq!(wanted("interfaces_include = [\"lo\", \"veth*\"]"), ["lo", "veth12ab"]);
        assert_eq!(
            wanted("interfaces_include = [\"lo\", \"eth*\"]\ninterfaces_exclude = [\"eth0\"]"),
            ["lo", "eth1"]
        );
    }

    #[test]
    fn unknown_speeds_give_no_utilisation() {
        assert_eq!(parse_speed("1000\n"), Some(1000.0));
        assert_eq!(parse_speed("-1\n"), None);
        assert_eq!(parse_speed("0"), None);
        assert_eq!(parse_speed(""), None);
        // 12.5 MB/s on a 1 Gbit/s link is 10 %.
        assert!((utilization_percent(12_500_000.0, 1000.0) - 10.0).abs() < 1e-9);
    }
}
