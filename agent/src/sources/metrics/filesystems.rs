//! Filesystems: the mount table (/proc/self/mounts), which mounts to measure,
//! and their usage from `statvfs`, in df's terms.

use crate::config::CompiledMetrics;
use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// What is mounted: a device (`/dev/vda1`), a remote share
    /// (`server:/export`), or a placeholder (`tmpfs`, `none`).
    pub source: String,
    /// Where. A path may hold any byte but NUL, so it is kept as bytes.
    pub point: PathBuf,
    /// The filesystem type (`ext4`, `fuse.sshfs`).
    pub fs_type: String,
}

/// Parses /proc/self/mounts. It is read as bytes because mount points need
/// not be UTF-8; the kernel escapes only space, tab, newline and backslash.
pub fn parse_mounts(text: &[u8]) -> Vec<Mount> {
    text.split(|&byte| byte == b'\n')
        .filter_map(|line| {
            let mut fields = line.split(|&byte| byte == b' ').filter(|field| !field.is_empty());
            let source = fields.next()?;
            let point = fields.next()?;
            let fs_type = fields.next()?;
            Some(Mount {
                source: String::from_utf8_lossy(&unescape(source)).into_owned(),
                point: PathBuf::from(OsString::from_vec(unescape(point))),
                fs_type: String::from_utf8_lossy(fs_type).into_owned(),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` is a space).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = match tail {
            [a, b, c, ..] if byte == b'\\' => octal_byte([*a, *b, *c]),
            _ => None,
        };
        match escaped {
            Some(value) => {
                out.push(value);
                rest = &tail[3..];
            }
            None => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

fn octal_byte(digits: [u8; 3]) -> Option<u8> {
    let mut value: u16 = 0;
    for digit in digits {
        if !(b'0'..=b'7').contains(&digit) {
            return None;
        }
        value = value * 8 + u16::from(digit - b'0');
    }
    u8::try_from(value).ok()
}

/// The mounts to measure, in table order: those the filters want, without a
/// second mount of a device already listed (a bind mount, or the same disk
/// mounted twice: same figures, so the first mount point is kept) and
/// without a mount point listed twice (stacked mounts; statvfs sees the top one).
pub fn select_mounts(mounts: Vec<Mount>, filters: &CompiledMetrics) -> Vec<Mount> {
    let mut devices = HashSet::new();
    let mut points = HashSet::new();
    mounts
        .into_iter()
        .filter(|mount| filters.wants_mount(&mount.point, &mount.fs_type))
        .filter(|mount| !names_a_device(&mount.source) || devices.insert(mount.source.clone()))
        .filter(|mount| points.insert(mount.point.clone()))
        .collect()
}

/// Whether a mount source identifies what is mounted: a device node, or a
/// remote share (`server:/export`, `//server/share`). Placeholders such as
/// `tmpfs` or `none` name no device, so their mounts are never merged.
fn names_a_device(source: &str) -> bool {
    source.starts_with('/') || source.contains(":/")
}

/// A filesystem's usage, as df shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsUsage {
    /// Bytes in use: all blocks but the free ones (root's reserve counts as free).
    pub used_bytes: u64,
    /// Size of the filesystem.
    pub total_bytes: u64,
    /// used / (used + available to non-root users), in percent: df's `Use%`,
    /// which reaches 100 when ordinary users can write no more.
    pub used_percent: Option<f64>,
}

/// df's arithmetic over statvfs figures (`blocks` … in units of `fragment_size`);
/// `None` for a filesystem without blocks (a pseudo filesystem).
pub fn df_usage(fragment_size: u64, blocks: u64, free: u64, available: u64) -> Option<FsUsage> {
    if blocks == 0 {
        return None;
    }
    let used_blocks = blocks.saturating_sub(free);
    let used_bytes = used_blocks.saturating_mul(fragment_size);
    let reachable = used_blocks.saturating_add(available);
    Some(FsUsage {
        used_bytes,
        total_bytes: blocks.saturating_mul(fragment_size),
        used_percent: (reachable > 0).then(|| used_blocks as f64 / reachable as f64 * 100.0),
    })
}

/// Measures the filesystem mounted at `point`.
pub fn usage(point: &Path) -> io::Result<Option<FsUsage>> {
    let stat = rustix::fs::statvfs(point)?;
    // f_frsize is the unit of the block counts; a few old filesystems leave it 0.
    let fragment_size = if stat.f_frsize > 0 { stat.f_frsize } else { stat.f_bsize };
    Ok(df_usage(fragment_size, stat.f_blocks, stat.f_bfree, stat.f_bavail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::metrics::tests::filters;

    const MOUNTS: &[u8] = b"\
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
/dev/vda / ext4 rw,relatime,discard 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24682416k 0 0
tmpfs /run tmpfs rw,nosuid 0 0
/dev/vdb1 /srv/my\\040data ext4 rw 0 0
/dev/vda /var/lib/docker/bind ext4 rw 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
lxcfs /proc/cpuinfo fuse.lxcfs rw 0 0
server:/export /mnt/nfs nfs4 rw 0 0
overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0
/dev/vdc /weird\\134name\\011tab\\777 xfs rw 0 0
broken-line-without-fields
";

    fn points(mounts: &[Mount]) -> Vec<&str> {
        mounts.iter().map(|mount| mount.point.to_str().unwrap()).collect()
    }

    #[test]
    fn mount_table_parses_and_unescapes() {
        let mounts = parse_mounts(MOUNTS);
        assert_eq!(mounts.len(), 12, "the broken line is skipped");
        assert_eq!(
            mounts[5],
            Mount {
                source: "/dev/vdb1".into(),
                point: PathBuf::from("/srv/my data"),
                fs_type: "ext4".into(),
            }
        );
        assert_eq!(
            mounts[11].point,
            PathBuf::from("/weird\\name\ttab\\777"),
            "backslash and tab unescaped; \\777 is no byte and stays as written"
        );
        let non_utf8 = parse_mounts(b"/dev/sda1 /mnt/caf\xe9 ext4 rw 0 0\n");
        assert_eq!(non_utf8[0].point.as_os_str().as_encoded_bytes(), b"/mnt/caf\xe9");
    }

    #[test]
    fn pseudo_filesystems_and_second_mounts_are_left_out() {
        let selected = select_mounts(parse_mounts(MOUNTS), &filters(""));
        assert_eq!(
            points(&selected),
            ["/", "/srv/my data", "/mnt/nfs", "/weird\\name\ttab\\777"],
            "pseudo filesystems, tmpfs, overlay and the bind mount of /dev/vda are left out"
        );
    }

    #[test]
    fn include_exclude_and_type_lists_apply() {
        let selected = select_mounts(
            parse_mounts(MOUNTS),
            &filters("mounts_include = [\"/srv/**\", \"/mnt/*\", \"/dev/shm\"]\nmounts_exclude = [\"/mnt/nfs\"]"),
        );
        assert_eq!(points(&selected), ["/srv/my data"], "tmpfs stays excluded by type");

        let selected = select_mounts(
            parse_mounts(MOUNTS),
            &filters("fs_types_exclude = [\"proc\", \"sysfs\", \"cgroup2\", \"nfs4\"]"),
        );
        assert_eq!(
            points(&selected),
            [
                "/",
                "/dev/shm",
                "/run",
                "/srv/my data",
                "/proc/cpuinfo",
                "/var/lib/docker/overlay2/x/merged",
                "/weird\\name\ttab\\777"
            ],
            "the list replaces the defaults; tmpfs instances are distinct filesystems, never merged"
        );
    }

    #[test]
    fn usage_follows_df() {
        // 1000 blocks of 4 KiB, 300 free, of which 250 available to non-root.
        let usage = df_usage(4096, 1000, 300, 250).unwrap();
        assert_eq!(usage.used_bytes, 700 * 4096);
        assert_eq!(usage.total_bytes, 1000 * 4096);
        let percent = usage.used_percent.unwrap();
        assert!((percent - 700.0 / 950.0 * 100.0).abs() < 1e-9, "{percent}");
        // The reserve is used up: full for users although root could still write.
        assert_eq!(df_usage(4096, 1000, 50, 0).unwrap().used_percent, Some(100.0));
        assert_eq!(df_usage(4096, 0, 0, 0), None, "no blocks: a pseudo filesystem");
        assert_eq!(
            df_usage(4096, 10, 10, 0).unwrap().used_percent,
            None,
            "nothing usable at all"
        );
    }
}
