//! Finding the files the sources' globs name.
//!
//! Each include glob has a literal base folder (the part before the first glob
//! character); discovery walks below it, as deep as the glob can reach, and
//! keeps the regular files the source matches. The same base folders are what
//! the inotify watcher watches.

use super::open::is_readable_log;
use crate::config::CompiledSource;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Walks no deeper than this below a base folder, whatever `**` says.
const MAX_DEPTH: usize = 16;

/// A folder to walk, and how deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The literal base of a glob.
    pub dir: PathBuf,
    /// Levels of folders below `dir` the glob can match in (0 = files in `dir`).
    pub depth: usize,
}

/// The base folders of every source's include globs, deduplicated.
pub fn roots(sources: &[CompiledSource]) -> Vec<Root> {
    let mut deepest: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for source in sources {
        for pattern in &source.config.paths {
            let root = root_of(pattern);
            let depth = deepest.entry(root.dir).or_insert(0);
            *depth = (*depth).max(root.depth);
        }
    }
    deepest.into_iter().map(|(dir, depth)| Root { dir, depth }).collect()
}

/// The literal base folder of a glob: the part before its first glob character.
pub fn base_of(pattern: &str) -> PathBuf {
    root_of(pattern).dir
}

fn root_of(pattern: &str) -> Root {
    let components: Vec<&str> = pattern.split('/').collect();
    let is_glob = |part: &str| part.contains(['*', '?', '[', '{']);
    let literal = components
        .iter()
        .position(|part| is_glob(part))
        .unwrap_or(components.len().saturating_sub(1));
    let dir = components[..literal].join("/");
    let rest = &components[literal..];
    let depth = if rest.contains(&"**") {
        MAX_DEPTH
    } else {
        rest.len().saturating_sub(1)
    };
    Root {
        dir: PathBuf::from(if dir.is_empty() { "/".to_string() } else { dir }),
        depth,
    }
}

/// Every regular file a source matches, with the index of the first source
/// that matches it.
pub fn discover(sources: &[CompiledSource]) -> Vec<(PathBuf, usize)> {
    let mut found = Vec::new();
    for root in roots(sources) {
        walk(&root.dir, root.depth, sources, &mut found);
    }
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    found
}

fn walk(dir: &Path, depth: usize, sources: &[CompiledSource], found: &mut Vec<(PathBuf, usize)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if file_type.is_dir() {
            if depth > 0 {
                walk(&path, depth - 1, sources, found);
            }
            continue;
        }
        // Only regular files are logs (no FIFOs, sockets or devices). A
        // symlink counts where it leads to one within the source's bounds.
        if !file_type.is_file() && !file_type.is_symlink() {
            continue;
        }
        let Some(index) = sources.iter().position(|source| source.matches(&path)) else {
            continue;
        };
        if file_type.is_symlink() && !is_readable_log(&path, &sources[index].confinement(&path)) {
            tracing::debug!(file = %path.display(), "skipping a symlink that leads outside its source's folder or to no regular file");
            continue;
        }
        found.push((path, index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_stop_at_the_first_glob_component() {
        assert_eq!(
            root_of("/var/log/app/*.log"),
            Root {
                dir: "/var/log/app".into(),
                depth: 0
            }
        );
        assert_eq!(
            root_of("/var/log/**/*.log"),
            Root {
                dir: "/var/log".into(),
                depth: MAX_DEPTH
            }
        );
        assert_eq!(
            root_of("/srv/*/logs/*.log"),
            Root {
                dir: "/srv".into(),
                depth: 2
            }
        );
        assert_eq!(
            root_of("/var/log/syslog"),
            Root {
                dir: "/var/log".into(),
                depth: 0
            }
        );
    }
}
