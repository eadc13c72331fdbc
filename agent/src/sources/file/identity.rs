//! File identity: not the path, which rotation changes, but the inode plus a
//! fingerprint of the first line (as Vector's checksum fingerprint), so a
//! renamed file keeps its identity while a reused inode or a truncated and
//! rewritten file is told apart.

use super::open::{Confinement, open_log};
use lookout_shared::wire::content_hash;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// How many bytes of the first line the fingerprint covers at most.
pub const FINGERPRINT_BYTES: usize = 256;

/// Device and inode: which file a path or descriptor refers to right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// Device id.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileKey {
    /// The key of a file's metadata.
    pub fn of(metadata: &Metadata) -> FileKey {
        FileKey {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// What the start of a file says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The hash of the first line (or of the first [`FINGERPRINT_BYTES`]).
    Fingerprint(u64),
    /// The first line is not complete yet: nothing to identify, nothing to read.
    Incomplete,
    /// gzip, zstd, xz or bzip2 data: a rotated and compressed log, never read.
    Compressed,
}

/// Reads the head of `file` without moving its position.
pub fn read_head(file: &File) -> io::Result<Head> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let head = &head[..filled];
    if is_compressed(head) {
        return Ok(Head::Compressed);
    }
    let line = match memchr::memchr(b'\n', head) {
        Some(end) => &head[..=end],
        None if filled == FINGERPRINT_BYTES => head,
        None => return Ok(Head::Incomplete),
    };
    Ok(Head::Fingerprint(content_hash(line)))
}

/// The fingerprint of the regular file at `path` (reached within
/// `confinement`), if it has a complete first line.
pub fn fingerprint_of(path: &Path, confinement: &Confinement) -> Option<(FileKey, u64, u64)> {
    let file = open_log(path, confinement).ok()?;
    let metadata = file.metadata().ok()?;
    match read_head(&file).ok()? {
        Head::Fingerprint(fingerprint) => Some((FileKey::of(&metadata), fingerprint, metadata.len())),
        Head::Incomplete | Head::Compressed => None,
    }
}

fn is_compressed(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b],                         // gzip
        &[0x28, 0xb5, 0x2f, 0xfd],             // zstd
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00], // xz
        b"BZh",                                // bzip2
    ];
    MAGICS.iter().any(|magic| head.starts_with(magic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn head_of(bytes: &[u8]) -> Head {
        let path = std::env::temp_dir().join(format!("lookout-head-{}-{}", std::process::id(), content_hash(bytes)));
        File::create(&path).unwrap().write_all(bytes).unwrap();
        let head = read_head(&File::open(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        head
    }

    #[test]
    fn fingerprint_covers_the_first_line_only() {
        assert_eq!(head_of(b"first\nsecond\n"), head_of(b"first\nother\n"));
        assert_ne!(head_of(b"first\n"), head_of(b"First\n"));
        assert_eq!(head_of(b"no newline yet"), Head::Incomplete);
        assert_eq!(head_of(b""), Head::Incomplete);
        assert!(matches!(head_of(&[b'x'; 300]), Head::Fingerprint(_)));
        assert_eq!(head_of(&[0x1f, 0x8b, 8, 0, 1, 2, b'\n']), Head::Compressed);
    }
}
