//! The bound on distinct extracted field names per source.
//!
//! Every distinct name is a new path in the index (a column, terms, a
//! filter in the UI), so a source that writes ids or timestamps as keys
//! (`{"user-8812": ...}`) would grow the index without bound. Each
//! `(host, source)` may bring at most [`MAX_NAMES_PER_SOURCE`] names; fields
//! of further names are dropped (the line's text keeps them searchable),
//! counted in `lookout_fields_dropped_total` and warned about once per
//! source. The memory of names is itself bounded over all sources
//! ([`MAX_NAMES_REMEMBERED`]), so many sources cannot make it grow either.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use lookout_shared::parse::fields::FieldValue;

/// Distinct field names one source may bring.
pub const MAX_NAMES_PER_SOURCE: usize = 1000;

/// Names remembered over all sources (about 13 MB at the longest names);
/// past it the memory is started afresh, which lets each source bring its
/// names again: a bound on this memory, not on the index.
pub const MAX_NAMES_REMEMBERED: usize = 100_000;

/// The names seen per `(host, source)` since the aggregator started (or
/// since the memory was last started afresh).
#[derive(Default)]
pub struct FieldNames {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    sources: HashMap<(String, String), Source>,
    /// Names over all sources.
    names: usize,
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
        if seen.names >= MAX_NAMES_REMEMBERED {
            *seen = Seen::default();
        }
        let Seen { sources, names } = &mut *seen;
        let entry = sources.entry((host.to_owned(), source.to_owned())).or_default();
        let mut dropped = 0;
        for fields in records {
            let before = fields.len();
            fields.retain(|name, _| {
                if entry.names.contains(name) {
                    return true;
                }
                if entry.names.len() < MAX_NAMES_PER_SOURCE {
                    entry.names.insert(name.clone());
                    *names += 1;
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
        for source in 0..MAX_NAMES_REMEMBERED / MAX_NAMES_PER_SOURCE + 5 {
            let mut records: Vec<BTreeMap<String, FieldValue>> = (0..MAX_NAMES_PER_SOURCE)
                .map(|i| BTreeMap::from([(format!("k{i}"), FieldValue::Number(1.0))]))
                .collect();
            names.admit("h", &format!("/{source}.log"), records.iter_mut());
            assert!(names.seen.lock().unwrap().names <= MAX_NAMES_REMEMBERED);
        }
    }
}
