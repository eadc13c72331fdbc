//! A tmpfs of a known size, for filling a filesystem past a threshold for
//! real: the agent measures it through statvfs like any other mount.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: usize = 1024 * 1024;

/// A mounted tmpfs, unmounted when dropped. Mounting needs root (the test
/// setup runs as root).
#[derive(Debug)]
pub struct Tmpfs {
    /// The mount point.
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_mib` MiB at `path` (created if missing).
    pub fn mount(path: &Path, size_mib: usize) -> Tmpfs {
        fs::create_dir_all(path).expect("can create the mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "lookout-test"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (mounting needs root)",
            path.display()
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Writes `mib` MiB into `name`, synced, so statvfs counts it at once.
    pub fn fill(&self, name: &str, mib: usize) {
        let mut file = fs::File::create(self.path.join(name)).expect("can create the ballast");
        let chunk = vec![0x5au8; MIB];
        for _ in 0..mib {
            file.write_all(&chunk).expect("the tmpfs has room");
        }
        file.sync_all().expect("sync");
    }

    /// Deletes `name`.
    pub fn remove(&self, name: &str) {
        fs::remove_file(self.path.join(name)).expect("the ballast exists");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
