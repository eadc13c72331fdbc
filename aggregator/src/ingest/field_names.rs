//! The bound on distinct extracted field names per source.
//!
//! Every distinct name is a new path in the index (a column, terms, a
//! filter in the UI), so a source that writes ids or timestamps as keys
//! (`{"user-8812": ...}`) would grow the index without bound. Each
//! `(host, source)` may bring at most [`MAX_NAMES_PER_SOURCE`] names; fields
//! of further names are dropped (the line's text keeps them searchable),
//! counted in `lookout_fields_dropped_total` and warned about once per
//! source. The memory of names is itself bounded over all sources
//! ([`MAX_BYTES_REMEMBERED`], counting source paths too), so many sources
//! cannot make it grow either.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use lookout_shared::parse::fields::FieldValue;

/// Distinct field names one source may bring.
pub const MAX_NAMES_PER_SOURCE: usize = 1000;

/// Bytes of source keys and names remembered over all sources. Past it,
/// the sources that have not reached their bound are forgotten first (they
/// may bring names again, within their bound); only if that is not enough
/// is everything forgotten, which lets each source bring its names again: a
/// bound on this memory, not on the index.
pub const MAX_BYTES_REMEMBERED: usize = 16 * 1024 * 1024;

/// The names seen per `(host, source)` since the aggregator started (or
/// since the memory was last started afresh).
#[derive(Default)]
pub struct FieldNames {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    sources: HashMap<(String, String), Source>,
    /// Bytes of keys and names over all sources.
    bytes: usize,
}

impl Seen {
    /// Forgets sources until the memory is under its bound again.
    fn shrink(&mut self) {
        self.sources
            .retain(|_, source| source.names.len() >= MAX_NAMES_PER_SOURCE);
        self.bytes = self.sources.iter().map(|(key, source)| source_bytes(key, source)).sum();
        if self.bytes >= MAX_BYTES_REMEMBERED {
            *self = Seen::default();
        }
    }
}

fn source_bytes((host, source): &(String, String), names: &Source) -> usize {
    host.len() + source.len() + names.names.iter().map(String::len).sum::<usize>()
}

#[derive(Default)]
struct Source {
    names: HashSet<String>,
    warned: bool,
}

impl FieldNames {
    /// Keeps the fields whose names this source may have and drops the
    /// rest, for each record of one of its chunks; returns how many were
    /// dropped.
    pub fn admit<'a>(
        &self,
        host: &str,
        source: &str,
        records: impl Iterator<Item = &'a mut BTreeMap<String, FieldValue>>,
    ) -> u64 {
        let mut records = records.filter(|fields| !fields.is_empty()).peekable();
        if records.peek().is_none() {
            return 0;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.bytes >= MAX_BYTES_REMEMBERED {
            seen.shrink();
        }
        let Seen { sources, bytes } = &mut *seen;
        let key = (host.to_owned(), source.to_owned());
        if !sources.contains_key(&key) {
            *bytes += host.len() + source.len();
        }
        let entry = sources.entry(key).or_default();
        let mut dropped = 0;
        for fields in records {
            let before = fields.len();
            fields.retain(|name, _| {
                if entry.names.contains(name) {
                    return true;
                }
                if entry.names.len() < MAX_NAMES_PER_SOURCE {
                    entry.names.insert(name.clone());
                    *bytes += name.len();
                    return true;
                }
                false
            });
            dropped += (before - fields.len()) as u64;
        }
        if dropped > 0 && !entry.warned {
            entry.warned = true;
            tracing::warn!(
                host,
                source,
                "this source has brought {MAX_NAMES_PER_SOURCE} distinct field names; fields of new names are \
                 not extracted (the lines stay searchable by their text)"
            );
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_brings_at_most_the_bound_of_names() {
        let names = FieldNames::default();
        let mut total_dropped = 0;
        for i in 0..MAX_NAMES_PER_SOURCE + 10 {
            let mut fields = BTreeMap::from([
                (format!("k{i}"), FieldValue::Number(1.0)),
                ("status".to_owned(), FieldValue::Number(200.0)),
            ]);
            total_dropped += names.admit("h", "/a.log", std::iter::once(&mut fields));
            // Names already known are always kept.
            assert!(fields.contains_key("status"));
        }
        assert_eq!(total_dropped, 11);
        // Another source has its own bound.
        let mut fields = BTreeMap::from([("k5000".to_owned(), FieldValue::Number(1.0))]);
        assert_eq!(names.admit("h", "/b.log", std::iter::once(&mut fields)), 0);
    }

    #[test]
    fn the_memory_of_names_is_bounded_over_all_sources() {
        let names = FieldNames::default();
        // A full source keeps its bound while many others come and go.
        let mut full: Vec<BTreeMap<String, FieldValue>> = (0..MAX_NAMES_PER_SOURCE)
            .map(|i| BTreeMap::from([(format!("k{i}"), FieldValue::Number(1.0))]))
            .collect();
        names.admit("h", "/full.log", full.iter_mut());
        let long_path = "/".to_owned() + &"p".repeat(4000);
        for source in 0..6000 {
            let mut record = BTreeMap::from([("n".to_owned(), FieldValue::Number(1.0))]);
            names.admit("h", &format!("{long_path}{source}"), std::iter::once(&mut record));
            assert!(names.seen.lock().unwrap().bytes <= MAX_BYTES_REMEMBERED + 8192);
        }
        let mut new_name = BTreeMap::from([("brand-new".to_owned(), FieldValue::Number(1.0))]);
        assert_eq!(
            names.admit("h", "/full.log", std::iter::once(&mut new_name)),
            1,
            "the full source's bound held"
        );
    }
}
