//! Opening log files as root without being tricked.
//!
//! The agent runs as root and reads folders that unprivileged programs write
//! to. Two plants must not work there:
//!
//! - a symlink (`app.log -> /etc/shadow`) that makes the agent ship a file its
//!   planter cannot read: unless the source says `follow_symlinks = true`, a
//!   path is resolved with `openat2(RESOLVE_BENEATH)` below a folder the
//!   operator named (the glob's base folder, or for a rotated copy the
//!   folder it sits in), so a link may point within that folder but never out
//!   of it, and the check and the open are one system call (no window for a
//!   swap in between);
//! - a FIFO or a device, whose `open` or `read` blocks the tailer forever:
//!   files are opened with `O_NONBLOCK` and kept only when `fstat` says they
//!   are regular files.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How far a source's paths may lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confinement {
    /// Resolve only below this folder.
    Beneath(PathBuf),
    /// Follow symlinks wherever they lead (`follow_symlinks = true`).
    Anywhere,
}

const FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// Opens `path` for reading if it is a regular file reached within
/// `confinement`; any other kind of file is refused with an error that says so.
pub fn open_log(path: &Path, confinement: &Confinement) -> io::Result<File> {
    let file = match confinement {
        Confinement::Anywhere => File::from(rustix::fs::open(path, FLAGS, Mode::empty())?),
        Confinement::Beneath(base) => open_beneath(base, path)?,
    };
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a regular file ({kind:?}); only regular files are read",
                path.display()
            ),
        ));
    }
    Ok(file)
}

fn open_beneath(base: &Path, path: &Path) -> io::Result<File> {
    let relative = path.strip_prefix(base).map_err(|_| outside(path, base))?;
    match openat2_beneath(base, relative) {
        // The kernel refuses absolute links outright, even to a file within
        // `base`. Resolve such a link here; the open of what it resolves to
        // is confined again, so a swap in between cannot lead out.
        Err(rustix::io::Errno::XDEV) => {
            let (base, target) = (std::fs::canonicalize(base)?, std::fs::canonicalize(path)?);
            let relative = target.strip_prefix(&base).map_err(|_| outside(path, &base))?;
            openat2_beneath(&base, relative).map_err(|err| match err {
                rustix::io::Errno::XDEV => outside(path, &base),
                other => other.into(),
            })
        }
        other => other.map_err(io::Error::from),
    }
}

/// `relative` opened below `base` by `openat2(RESOLVE_BENEATH)`.
fn openat2_beneath(base: &Path, relative: &Path) -> Result<File, rustix::io::Errno> {
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(rustix::io::Errno::XDEV);
    }
    let dir = rustix::fs::open(base, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(&dir, relative, FLAGS, Mode::empty(), resolve).map(File::from)
}

fn outside(path: &Path, base: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} leads outside {} (a symlink out of the source's folder); set follow_symlinks = true to read it",
            path.display(),
            base.display()
        ),
    )
}

/// Whether `path` resolves to a regular file within `confinement`, without
/// keeping it open: what discovery asks before it lists a file.
pub fn is_readable_log(path: &Path, confinement: &Confinement) -> bool {
    open_log(path, confinement).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_within_the_folder_are_followed_and_links_out_of_it_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root only\n").unwrap();
        std::fs::write(logs.join("real.log"), "line\n").unwrap();
        symlink(logs.join("real.log"), logs.join("alias.log")).unwrap();
        symlink(&secret, logs.join("planted.log")).unwrap();
        symlink("../secret", logs.join("relative.log")).unwrap();

        assert!(open_log(&logs.join("alias.log"), &Confinement::Beneath(logs.clone())).is_ok());
        for planted in ["planted.log", "relative.log"] {
            let err = open_log(&logs.join(planted), &Confinement::Beneath(logs.clone())).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{planted}: {err}");
        }
        assert!(open_log(&logs.join("../secret"), &Confinement::Beneath(logs.clone())).is_err());
        assert!(open_log(&logs.join("planted.log"), &Confinement::Anywhere).is_ok());
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.log");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = open_log(&fifo, &Confinement::Beneath(dir.path().to_path_buf())).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(!is_readable_log(&fifo, &Confinement::Anywhere));
    }
}
