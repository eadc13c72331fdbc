//! Rotation of the files the agent manages (`rotate = { ... }` on a source), so
//! a chatty application can no longer fill the disk.
//!
//! The tailer calls [`rotate`] only after it has read the file to its end, and
//! keeps reading the renamed file by its open descriptor, so rename mode loses
//! nothing. Copytruncate mode has a window that no tool can close: a line
//! written between the end of the copy and the truncation is in neither file.
//! The copy is repeated until the file stops growing before truncating, which
//! makes that window as short as one `ftruncate` call; the end-to-end tests
//! measure it.
//!
//! Rotated files are `app.log.1` (plain: writers and the tailer may still hold
//! it open) and `app.log.2.gz` … `app.log.<keep>.gz` when `compress` is set.

use crate::config::{RotateMode, RotatePolicy};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Where the content now is (`app.log.1`).
    pub rotated_to: PathBuf,
    /// Bytes that went into `rotated_to`.
    pub bytes: u64,
}

/// `path` with a rotation suffix: `.N`, or `.N.gz` when compressed.
pub fn rotated_name(path: &Path, index: u32, compressed: bool) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    if compressed {
        name.push(".gz");
    }
    PathBuf::from(name)
}

/// If `path` is a rotated name (`X.N` or `X.N.gz`), the `X` it came from.
pub fn original_of(path: &Path) -> Option<PathBuf> {
    let text = path.to_str()?;
    let text = text.strip_suffix(".gz").unwrap_or(text);
    let (base, index) = text.rsplit_once('.')?;
    (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())).then(|| PathBuf::from(base))
}

/// Rotates `path` by `policy`: shifts older rotations, deletes those beyond
/// `keep`, then renames or copies-and-truncates, then runs `post_command`.
pub fn rotate(path: &Path, policy: &RotatePolicy) -> io::Result<Rotation> {
    shift_older(path, policy)?;
    let rotated_to = rotated_name(path, 1, false);
    let bytes = match policy.mode {
        RotateMode::Rename => {
            let permissions = open_regular(path, false)?.metadata()?.permissions();
            fs::rename(path, &rotated_to)?;
            let fresh = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc_flags::NOFOLLOW)
                .open(path);
            match fresh {
                Ok(file) => file.set_permissions(fs::Permissions::from_mode(permissions.mode()))?,
                // The writer already created the new file: leave it.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
            fs::metadata(&rotated_to)?.len()
        }
        RotateMode::Copytruncate => copy_then_truncate(path, &rotated_to)?,
    };
    if let Some(command) = &policy.post_command {
        run_post_command(command, path);
    }
    Ok(Rotation { rotated_to, bytes })
}

/// `.1` → `.2(.gz)`, `.2(.gz)` → `.3(.gz)` …; what would pass `keep` is deleted.
/// A rotated name that is not a regular file (a planted symlink) is removed,
/// never shifted, read or written through.
fn shift_older(path: &Path, policy: &RotatePolicy) -> io::Result<()> {
    let exists = |index, compressed| -> io::Result<bool> {
        let name = rotated_name(path, index, compressed);
        match fs::symlink_metadata(&name) {
            Ok(metadata) if metadata.is_file() => Ok(true),
            Ok(_) => {
                tracing::warn!(file = %name.display(), "removing a rotated name that is not a regular file");
                remove_if_present(&name)?;
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    };
    // Anything at or beyond `keep` goes: it would be shifted past it.
    let mut index = policy.keep;
    while exists(index, false)? | exists(index, true)? {
        remove_if_present(&rotated_name(path, index, false))?;
        remove_if_present(&rotated_name(path, index, true))?;
        index += 1;
    }
    for index in (1..policy.keep).rev() {
        for compressed in [false, true] {
            if !exists(index, compressed)? {
                continue;
            }
            let from = rotated_name(path, index, compressed);
            if policy.compress && !compressed {
                gzip_to(&from, &rotated_name(path, index + 1, true))?;
                fs::remove_file(&from)?;
            } else {
                fs::rename(&from, rotated_name(path, index + 1, compressed))?;
            }
        }
    }
    Ok(())
}

/// Deletes `path` (the name itself, never what a link points at) if it exists.
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn gzip_to(from: &Path, to: &Path) -> io::Result<()> {
    let mut input = open_regular(from, false)?;
    let temp = to.with_extension("gz.tmp");
    let output = create_fresh(&temp, &input)?;
    let mut encoder = GzEncoder::new(output, Compression::default());
    io::copy(&mut input, &mut encoder)?;
    encoder.finish()?.sync_all()?;
    fs::rename(&temp, to)
}

/// Opens `path` without following a symlink at its end, and only if it is a
/// regular file: in a folder others can write to, a planted link must not
/// make the agent (root) read, truncate or overwrite what it points at.
fn open_regular(path: &Path, write: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc_flags::NOFOLLOW | libc_flags::NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file; not rotating it", path.display()),
        ));
    }
    Ok(file)
}

/// Creates `path` as a new file (never through an existing name or link: one
/// planted there is removed first) with the permissions of `like`.
fn create_fresh(path: &Path, like: &File) -> io::Result<File> {
    remove_if_present(path)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc_flags::NOFOLLOW)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(
        like.metadata()?.permissions().mode() & 0o777,
    ))?;
    Ok(file)
}

/// `O_NOFOLLOW` and `O_NONBLOCK` as `OpenOptionsExt::custom_flags` takes them.
mod libc_flags {
    pub const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    pub const NONBLOCK: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
}

/// Copies until the source stops growing, then truncates it; returns the bytes copied.
fn copy_then_truncate(path: &Path, rotated_to: &Path) -> io::Result<u64> {
    let mut source = open_regular(path, true)?;
    let mut copy = create_fresh(rotated_to, &source)?;
    let mut copied = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        source.seek(SeekFrom::Start(copied))?;
        loop {
            let read = source.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            copy.write_all(&buffer[..read])?;
            copied += read as u64;
        }
        if source.metadata()?.len() == copied {
            source.set_len(0)?;
            break;
        }
    }
    copy.sync_all()?;
    Ok(copied)
}

fn run_post_command(command: &str, path: &Path) {
    match Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("LOOKOUT_ROTATED_FILE", path)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => tracing::warn!(%command, %status, "rotation post_command failed"),
        Err(err) => tracing::warn!(%command, error = %err, "rotation post_command could not start"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: RotateMode, keep: u32, compress: bool) -> RotatePolicy {
        RotatePolicy {
            max_size: None,
            max_age: None,
            keep,
            compress,
            mode,
            post_command: None,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lookout-rotate-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_round_trip() {
        let path = Path::new("/var/log/app.log");
        assert_eq!(rotated_name(path, 3, true), Path::new("/var/log/app.log.3.gz"));
        assert_eq!(original_of(Path::new("/var/log/app.log.3.gz")).as_deref(), Some(path));
        assert_eq!(original_of(Path::new("/var/log/app.log.1")).as_deref(), Some(path));
        assert_eq!(original_of(path), None);
    }

    #[test]
    fn rename_mode_keeps_at_most_keep_files_and_compresses_older_ones() {
        let dir = temp_dir("rename");
        let path = dir.join("app.log");
        for round in 0..5 {
            fs::write(&path, format!("round {round}\n")).unwrap();
            rotate(&path, &policy(RotateMode::Rename, 3, true)).unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"", "a new empty file takes its place");
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["app.log", "app.log.1", "app.log.2.gz", "app.log.3.gz"]);
        assert_eq!(fs::read_to_string(dir.join("app.log.1")).unwrap(), "round 4\n");
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(dir.join("app.log.3.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "round 2\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn copytruncate_keeps_the_inode_and_copies_everything() {
        let dir = temp_dir("copy");
        let path = dir.join("app.log");
        fs::write(&path, "a\nb\n").unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
        let rotation = rotate(&path, &policy(RotateMode::Copytruncate, 2, false)).unwrap();
        assert_eq!(rotation.bytes, 4);
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap()),
            inode
        );
        assert_eq!(fs::read_to_string(dir.join("app.log.1")).unwrap(), "a\nb\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn planted_symlinks_are_neither_followed_nor_written_through() {
        let dir = temp_dir("planted");
        let victim = dir.join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let path = dir.join("app.log");
        // The gzip step's temporary file and the copy's target, planted.
        std::os::unix::fs::symlink(&victim, dir.join("app.log.2.gz.tmp")).unwrap();
        for round in 0..2 {
            fs::write(&path, format!("round {round}\n")).unwrap();
            rotate(&path, &policy(RotateMode::Rename, 3, true)).unwrap();
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(dir.join("app.log.2.gz").is_file());

        fs::remove_file(dir.join("app.log.1")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("app.log.1")).unwrap();
        let copy = policy(RotateMode::Copytruncate, 3, false);
        fs::write(&path, "copied\n").unwrap();
        rotate(&path, &copy).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(fs::read_to_string(dir.join("app.log.1")).unwrap(), "copied\n");
        assert!(
            !dir.join("app.log.2").exists(),
            "the planted link was removed, not shifted"
        );

        // A managed file that is itself a link is not rotated (not truncated through).
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(rotate(&path, &copy).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
