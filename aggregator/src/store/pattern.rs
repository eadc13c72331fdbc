//! A query pattern (`crate::query::pattern`) over the values of one JSON
//! path (`labels.env:/prod-.*/`, `path:/^\/api\//`). tantivy's `RegexQuery`
//! runs a pattern over a field's whole terms, and a JSON field's terms start
//! with their path: this automaton takes that path first, then runs the
//! pattern on the value, and the weight reads only the path's part of the
//! dictionary.

use std::sync::Arc;
use tantivy::Term;
use tantivy::query::{AutomatonWeight, EnableScoring, Query, Weight};
use tantivy::schema::Field;
use tantivy_fst::{Automaton, Regex};

/// Records whose text value at one JSON path matches a pattern.
#[derive(Clone)]
pub struct JsonPathRegexQuery {
    field: Field,
    automaton: Arc<PathThenPattern>,
}

impl JsonPathRegexQuery {
    /// Text values at `path` (a JSON field's term up to its path,
    /// `LogSchema::path_term`) that `regex` matches.
    pub fn new(mut path: Term, regex: Arc<Regex>) -> Self {
        path.append_type_and_str("");
        JsonPathRegexQuery {
            field: path.field(),
            automaton: Arc::new(PathThenPattern {
                prefix: path.serialized_value_bytes().to_vec(),
                regex,
            }),
        }
    }
}

impl std::fmt::Debug for JsonPathRegexQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonPathRegexQuery")
            .field("field", &self.field)
            .field("prefix", &String::from_utf8_lossy(&self.automaton.prefix))
            .finish()
    }
}

impl Query for JsonPathRegexQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<PathThenPattern>::new_for_json_path(
            self.field,
            self.automaton.clone(),
            &self.automaton.prefix,
        )))
    }
}

/// Matches a term that is `prefix` and then a value `regex` matches.
struct PathThenPattern {
    prefix: Vec<u8>,
    regex: Arc<Regex>,
}

/// Where [`PathThenPattern`] is in a term.
#[derive(Clone)]
enum PathState {
    /// This many bytes of the prefix are matched.
    Prefix(usize),
    /// In the value, at this state of the pattern.
    Value(<Regex as Automaton>::State),
    /// The term left the prefix.
    Dead,
}

impl Automaton for PathThenPattern {
    type State = PathState;

    fn start(&self) -> PathState {
        if self.prefix.is_empty() {
            PathState::Value(self.regex.start())
        } else {
            PathState::Prefix(0)
        }
    }

    fn is_match(&self, state: &PathState) -> bool {
        match state {
            PathState::Value(inner) => self.regex.is_match(inner),
            PathState::Prefix(_) | PathState::Dead => false,
        }
    }

    fn can_match(&self, state: &PathState) -> bool {
        match state {
            PathState::Prefix(_) => true,
            PathState::Value(inner) => self.regex.can_match(inner),
            PathState::Dead => false,
        }
    }

    fn accept(&self, state: &PathState, byte: u8) -> PathState {
        match state {
            PathState::Prefix(matched) if self.prefix.get(*matched) == Some(&byte) => {
                if matched + 1 == self.prefix.len() {
                    PathState::Value(self.regex.start())
                } else {
                    PathState::Prefix(matched + 1)
                }
            }
            PathState::Value(inner) => PathState::Value(self.regex.accept(inner, byte)),
            PathState::Prefix(_) | PathState::Dead => PathState::Dead,
        }
    }
}
