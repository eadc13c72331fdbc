//! The online miner: a fixed-depth tree in the spirit of Drain, then a
//! split by words that take few values.
//!
//! **Clusters** (Drain). A line's shape ([`crate::shape`]) goes down a tree
//! keyed by its token count and its first [`Settings::prefix`] tokens (a
//! variable, or a word past [`Settings::max_children`] siblings, takes the
//! wildcard branch). Among the leaf's clusters the line joins the most
//! similar one, if its similarity reaches [`Settings::similarity`]: words
//! equal at the same place, over the places where either has a word. A
//! place where they differ becomes a wildcard of the cluster's template.
//!
//! **Patterns.** Drain alone cannot tell `user=root` from `user=<*>`: one
//! system logs a handful of users as separate events, another a varying
//! user in one. Each wildcard place of a cluster keeps the words seen there
//! until it has seen [`Settings::distinct_values`] different ones (or a
//! variable): until then its word is part of the pattern, after that it is
//! a variable. A pattern is thus a cluster and the words at its few-valued
//! places. When a place turns variable, patterns that differed only there
//! become one: the younger ones are aliases of the oldest
//! ([`Miner::canonical`]), so an id once given keeps meaning the same lines.
//!
//! Memory is bounded: clusters and patterns per source, patterns in all,
//! and sources. Past a bound, a line joins its leaf's most similar cluster
//! whatever the similarity, or its source's catch-all pattern.

use crate::shape::{Tok, shape};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// The miner's parameters, the same for every system.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Leading tokens that key the tree below the token count.
    pub prefix: usize,
    /// Least similarity to join a cluster.
    pub similarity: f64,
    /// Different words after which a place is a variable.
    pub distinct_values: usize,
    /// Children of a tree node before the rest share the wildcard branch.
    pub max_children: usize,
    /// Clusters of one source.
    pub max_clusters_per_source: usize,
    /// Patterns of one source.
    pub max_patterns_per_source: usize,
    /// Patterns of every source together.
    pub max_patterns: usize,
    /// Sources mined apart; lines of any further source are mined together.
    pub max_sources: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: 2,
            similarity: 0.5,
            distinct_values: 4,
            max_children: 100,
            max_clusters_per_source: 1_000,
            max_patterns_per_source: 2_000,
            max_patterns: 100_000,
            max_sources: 10_000,
        }
    }
}

/// A pattern's number, unique within one [`Miner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatternId(pub u32);

/// A token as a cluster keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Token {
    Wild,
    Text(Box<str>),
    KeyWild(Box<str>),
}

impl Token {
    fn of(tok: Tok<'_>) -> Token {
        match tok {
            Tok::Wild => Token::Wild,
            Tok::Text(text) => Token::Text(text.into()),
            Tok::KeyWild(key) => Token::KeyWild(key.into()),
        }
    }

    fn is(&self, tok: Tok<'_>) -> bool {
        match (self, tok) {
            (Token::Wild, Tok::Wild) => true,
            (Token::Text(a), Tok::Text(b)) | (Token::KeyWild(a), Tok::KeyWild(b)) => **a == *b,
            _ => false,
        }
    }

    fn as_tok(&self) -> Tok<'_> {
        match self {
            Token::Wild => Tok::Wild,
            Token::Text(text) => Tok::Text(text),
            Token::KeyWild(key) => Tok::KeyWild(key),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Token::Wild => out.push_str("<*>"),
            Token::Text(text) => out.push_str(text),
            Token::KeyWild(key) => {
                out.push_str(key);
                out.push_str("<*>");
            }
        }
    }
}

/// The words seen at one place of a cluster.
#[derive(Debug, Default)]
struct Place {
    /// Distinct, fewer than [`Settings::distinct_values`].
    words: Vec<Token>,
    /// A variable was seen here, or too many words.
    variable: bool,
}

#[derive(Debug)]
struct Cluster {
    template: Vec<Token>,
    places: Vec<Place>,
    /// Each pattern's id by the hash of its words at the split places.
    by_key: HashMap<u64, Vec<PatternId>, foldhash::fast::RandomState>,
    patterns: Vec<PatternId>,
}

impl Cluster {
    /// Places whose word is part of the pattern: wildcards of the
    /// template that have seen few words and no variable.
    fn is_split(&self, at: usize) -> bool {
        self.template[at] == Token::Wild && !self.places[at].variable
    }
}

#[derive(Debug, Default)]
struct Node {
    /// By the child's token as [`encode`] writes it.
    children: HashMap<Box<[u8]>, Node, foldhash::fast::RandomState>,
    clusters: Vec<u32>,
}

#[derive(Debug)]
struct Source {
    /// By token count.
    trees: HashMap<usize, Node, foldhash::fast::RandomState>,
    clusters: Vec<Cluster>,
    patterns: usize,
    /// Where lines go past a bound.
    catch_all: Option<PatternId>,
}

#[derive(Debug)]
struct Pattern {
    source: u32,
    /// `None`: a source's catch-all.
    cluster: Option<u32>,
    /// The shape of its first line.
    exemplar: Vec<Token>,
    /// The oldest pattern with the same words at the cluster's split
    /// places (itself unless it became an alias).
    canonical: PatternId,
}

/// Mines patterns from messages, source by source.
#[derive(Debug)]
pub struct Miner {
    settings: Settings,
    sources: Vec<Source>,
    source_ids: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    patterns: Vec<Pattern>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Miner {
    fn default() -> Self {
        Miner::new(Settings::default())
    }
}

impl Miner {
    /// A miner that has seen nothing.
    pub fn new(settings: Settings) -> Miner {
        Miner {
            settings,
            sources: Vec::new(),
            source_ids: HashMap::default(),
            patterns: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Patterns made so far (aliases included).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether no pattern was made.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The pattern of `message`, a line of `source`: the canonical id as of now.
    pub fn assign(&mut self, source: &str, message: &str) -> PatternId {
        let source = self.source(source);
        let mut toks = Vec::new();
        shape(message, &mut toks);
        let Some(cluster) = self.cluster_for(source, &toks) else {
            return self.catch_all(source);
        };
        self.pattern_in(source, cluster, &toks)
    }

    /// The pattern `id` stands for now: itself, or the older pattern it
    /// turned out to be.
    pub fn canonical(&self, id: PatternId) -> PatternId {
        self.patterns.get(id.0 as usize).map_or(id, |p| p.canonical)
    }

    /// The template of `id` (as of now): words, `<*>` for variables.
    pub fn template(&self, id: PatternId) -> Option<String> {
        let pattern = self.patterns.get(self.canonical(id).0 as usize)?;
        let Some(cluster) = pattern.cluster else {
            return Some("<*>".to_owned());
        };
        let cluster = &self.sources[pattern.source as usize].clusters[cluster as usize];
        let mut out = String::new();
        for (at, token) in cluster.template.iter().enumerate() {
            if at > 0 {
                out.push(' ');
            }
            if cluster.is_split(at) {
                pattern.exemplar[at].write(&mut out);
            } else {
                token.write(&mut out);
            }
        }
        Some(out)
    }

    fn source(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.source_ids.get(name) {
            return id;
        }
        // Past the bound, every further source is mined as one: "".
        let name = if self.sources.len() + 1 >= self.settings.max_sources {
            ""
        } else {
            name
        };
        if let Some(&id) = self.source_ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.sources.len()).unwrap_or(u32::MAX);
        self.sources.push(Source {
            trees: HashMap::default(),
            clusters: Vec::new(),
            patterns: 0,
            catch_all: None,
        });
        self.source_ids.insert(name.into(), id);
        id
    }

    /// The cluster `toks` joins (made if need be), or `None` past the
    /// source's bound with no cluster to join.
    fn cluster_for(&mut self, source: u32, toks: &[Tok<'_>]) -> Option<u32> {
        let settings = &self.settings;
        let src = &mut self.sources[source as usize];
        let mut node = src.trees.entry(toks.len()).or_default();
        let mut key = Vec::new();
        for tok in toks.iter().take(settings.prefix) {
            encode(*tok, &mut key);
            if !node.children.contains_key(key.as_slice()) && node.children.len() >= settings.max_children {
                encode(Tok::Wild, &mut key);
            }
            // Known children are found without allocating.
            if !node.children.contains_key(key.as_slice()) {
                node.children.insert(key.as_slice().into(), Node::default());
            }
            // Present: inserted just above if it was not.
            node = node.children.get_mut(key.as_slice())?;
        }
        let mut best: Option<(u32, f64)> = None;
        for &index in &node.clusters {
            let similarity = similarity(&src.clusters[index as usize].template, toks);
            if best.is_none_or(|(_, score)| similarity > score) {
                best = Some((index, similarity));
            }
        }
        let full = src.clusters.len() >= settings.max_clusters_per_source;
        let index = match best {
            Some((index, score)) if score >= settings.similarity || full => index,
            _ if full => return None,
            _ => {
                let index = u32::try_from(src.clusters.len()).unwrap_or(u32::MAX);
                node.clusters.push(index);
                src.clusters.push(Cluster {
                    template: toks.iter().map(|tok| Token::of(*tok)).collect(),
                    places: toks.iter().map(|_| Place::default()).collect(),
                    by_key: HashMap::default(),
                    patterns: Vec::new(),
                });
                index
            }
        };
        Some(index)
    }

    /// Records `toks` in `cluster` and answers its pattern.
    fn pattern_in(&mut self, source: u32, cluster_index: u32, toks: &[Tok<'_>]) -> PatternId {
        let distinct_values = self.settings.distinct_values;
        let cluster = &mut self.sources[source as usize].clusters[cluster_index as usize];
        let mut split_changed = false;
        for (at, tok) in toks.iter().enumerate() {
            let place = &mut cluster.places[at];
            let template = &mut cluster.template[at];
            if *template != Token::Wild && !template.is(*tok) {
                *template = Token::Wild;
                split_changed |= !place.variable;
            }
            if place.variable {
                continue;
            }
            if *tok == Tok::Wild {
                place.variable = true;
                place.words.clear();
                split_changed |= *template == Token::Wild;
            } else if !place.words.iter().any(|word| word.is(*tok)) {
                if place.words.len() + 1 >= distinct_values {
                    place.variable = true;
                    place.words.clear();
                    split_changed |= *template == Token::Wild;
                } else {
                    place.words.push(Token::of(*tok));
                }
            }
        }
        if split_changed {
            self.rekey(source, cluster_index);
        }
        let cluster = &self.sources[source as usize].clusters[cluster_index as usize];
        let key = self.key_of_line(cluster, toks);
        if let Some(ids) = cluster.by_key.get(&key)
            && let Some(&id) = ids
                .iter()
                .find(|id| self.same_words(cluster, &self.patterns[id.0 as usize].exemplar, toks))
        {
            return id;
        }
        let src = &self.sources[source as usize];
        if src.patterns >= self.settings.max_patterns_per_source || self.patterns.len() >= self.settings.max_patterns {
            return self.catch_all(source);
        }
        let id = PatternId(u32::try_from(self.patterns.len()).unwrap_or(u32::MAX));
        self.patterns.push(Pattern {
            source,
            cluster: Some(cluster_index),
            exemplar: toks.iter().map(|tok| Token::of(*tok)).collect(),
            canonical: id,
        });
        let src = &mut self.sources[source as usize];
        src.patterns += 1;
        let cluster = &mut src.clusters[cluster_index as usize];
        cluster.patterns.push(id);
        cluster.by_key.entry(key).or_default().push(id);
        id
    }

    /// After a cluster's split places changed: each of its patterns' key,
    /// and the oldest of each key as the canonical of the others.
    fn rekey(&mut self, source: u32, cluster_index: u32) {
        let cluster = &self.sources[source as usize].clusters[cluster_index as usize];
        let mut by_key: HashMap<u64, Vec<PatternId>, foldhash::fast::RandomState> = HashMap::default();
        let mut canonical = Vec::with_capacity(cluster.patterns.len());
        // Patterns are in the order made, so the first of a key is the oldest.
        for &id in &cluster.patterns {
            let exemplar = &self.patterns[id.0 as usize].exemplar;
            let key = self.key_of_exemplar(cluster, exemplar);
            let same = by_key.entry(key).or_default();
            let oldest = same.iter().copied().find(|other| {
                let theirs = &self.patterns[other.0 as usize].exemplar;
                (0..cluster.template.len()).all(|at| !cluster.is_split(at) || theirs[at] == exemplar[at])
            });
            match oldest {
                Some(oldest) => canonical.push((id, oldest)),
                None => {
                    same.push(id);
                    canonical.push((id, id));
                }
            }
        }
        for (id, oldest) in canonical {
            self.patterns[id.0 as usize].canonical = oldest;
        }
        self.sources[source as usize].clusters[cluster_index as usize].by_key = by_key;
    }

    fn key_of_line(&self, cluster: &Cluster, toks: &[Tok<'_>]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        for (at, tok) in toks.iter().enumerate() {
            if cluster.is_split(at) {
                at.hash(&mut hasher);
                hash_tok(*tok, &mut hasher);
            }
        }
        hasher.finish()
    }

    fn key_of_exemplar(&self, cluster: &Cluster, exemplar: &[Token]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        for (at, token) in exemplar.iter().enumerate() {
            if cluster.is_split(at) {
                at.hash(&mut hasher);
                hash_tok(token.as_tok(), &mut hasher);
            }
        }
        hasher.finish()
    }

    fn same_words(&self, cluster: &Cluster, exemplar: &[Token], toks: &[Tok<'_>]) -> bool {
        toks.iter()
            .enumerate()
            .all(|(at, tok)| !cluster.is_split(at) || exemplar[at].is(*tok))
    }

    fn catch_all(&mut self, source: u32) -> PatternId {
        if let Some(id) = self.sources[source as usize].catch_all {
            return id;
        }
        let id = PatternId(u32::try_from(self.patterns.len()).unwrap_or(u32::MAX));
        self.patterns.push(Pattern {
            source,
            cluster: None,
            exemplar: Vec::new(),
            canonical: id,
        });
        self.sources[source as usize].catch_all = Some(id);
        id
    }
}

/// A tree key: the token's kind, then its text.
fn encode(tok: Tok<'_>, out: &mut Vec<u8>) {
    out.clear();
    let (tag, text) = match tok {
        Tok::Wild => (0u8, ""),
        Tok::Text(text) => (1, text),
        Tok::KeyWild(key) => (2, key),
    };
    out.push(tag);
    out.extend_from_slice(text.as_bytes());
}

/// Hashes a line's token and a kept one alike.
fn hash_tok(tok: Tok<'_>, hasher: &mut impl Hasher) {
    let (tag, text) = match tok {
        Tok::Wild => (0u8, ""),
        Tok::Text(text) => (1, text),
        Tok::KeyWild(key) => (2, key),
    };
    hasher.write_u8(tag);
    hasher.write(text.as_bytes());
    hasher.write_u8(0xff);
}

/// Words equal at the same place, over the places where either has a word.
fn similarity(template: &[Token], toks: &[Tok<'_>]) -> f64 {
    let (mut same, mut words) = (0usize, 0usize);
    for (token, tok) in template.iter().zip(toks) {
        if *token == Token::Wild && *tok == Tok::Wild {
            continue;
        }
        words += 1;
        if *token != Token::Wild && token.is(*tok) {
            same += 1;
        }
    }
    if words == 0 { 1.0 } else { same as f64 / words as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_valued_words_split_and_a_place_that_turns_variable_merges_them() {
        let mut miner = Miner::default();
        let line = |user: &str| format!("session opened for user {user} by (uid=0)");
        let root = miner.assign("auth", &line("root"));
        assert_eq!(miner.assign("auth", &line("root")), root);
        let guest = miner.assign("auth", &line("guest"));
        let test = miner.assign("auth", &line("test"));
        assert!(root != guest && guest != test, "three users, three patterns so far");
        assert_eq!(
            miner.template(guest).as_deref(),
            Some("session opened for user guest by <*>")
        );
        // A fourth user: the place is a variable; the patterns are one, the oldest.
        let admin = miner.assign("auth", &line("admin"));
        assert_eq!(admin, root);
        for id in [root, guest, test] {
            assert_eq!(miner.canonical(id), root, "an id once given keeps its lines");
        }
        assert_eq!(
            miner.template(test).as_deref(),
            Some("session opened for user <*> by <*>")
        );
        assert_eq!(miner.assign("auth", &line("nobody")), root);
    }

    #[test]
    fn numbers_never_split_and_other_words_make_other_patterns() {
        let mut miner = Miner::default();
        let first = miner.assign("dfs", "PacketResponder 0 for block blk_-69522958 terminating");
        assert_eq!(
            miner.assign("dfs", "PacketResponder 1 for block blk_38865049 terminating"),
            first
        );
        assert_eq!(
            miner.template(first).as_deref(),
            Some("PacketResponder <*> for block <*> terminating")
        );
        let received = miner.assign("dfs", "Received block blk_35875 of size 67108864 from /10.251.42.84");
        assert_ne!(received, first);
        // The same message from another source is another source's pattern.
        assert_ne!(
            miner.assign("other", "PacketResponder 0 for block blk_1 terminating"),
            first
        );
        assert_eq!(miner.template(PatternId(9_999)), None);
    }

    #[test]
    fn past_its_bounds_a_source_shares_a_catch_all() {
        let settings = Settings {
            max_clusters_per_source: 2,
            max_patterns_per_source: 3,
            max_sources: 3,
            ..Settings::default()
        };
        let mut miner = Miner::new(settings);
        let a = miner.assign("s", "alpha beta c d e");
        miner.assign("s", "one two");
        // No cluster left to make: the line joins the closest of its leaf (2/5 alike).
        let joined = miner.assign("s", "alpha beta f g h");
        assert_ne!(joined, a, "its own words, its own pattern");
        assert_eq!(miner.template(joined).as_deref(), Some("alpha beta f g h"));
        assert_eq!(miner.template(a).as_deref(), Some("alpha beta c d e"));
        // No leaf to join, then no pattern left to make: the catch-all.
        let lonely = miner.assign("s", "a line of six words here");
        assert_eq!(miner.template(lonely).as_deref(), Some("<*>"));
        assert_eq!(miner.assign("s", "alpha beta x y z"), lonely);
        assert_eq!(miner.assign("s", "seven words in a line of text"), lonely);
        // Sources past the bound are mined as one.
        let x = miner.assign("x", "hello there");
        let y = miner.assign("y", "hello there");
        let z = miner.assign("z", "hello there");
        assert_ne!(x, y);
        assert_eq!(y, z, "y and z share the last source");
        assert!(miner.len() <= 3 + 3 + 1);
    }
}
