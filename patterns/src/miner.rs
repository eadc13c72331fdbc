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
//! ([`Miner::canonical`]). An id once given keeps its lines; they are then
//! counted under the oldest pattern they turned out to be, whose template
//! shows the place as a variable.
//!
//! Memory and time are bounded: tokens per line and bytes per word
//! ([`crate::shape`]), clusters per leaf, clusters and patterns per source
//! and in all, the bytes of kept words in all, and sources. A line like no
//! cluster when no cluster may be made goes to its source's catch-all
//! pattern and changes no cluster.
//!
//! Words are numbered per source ([`Words`]) when a cluster or pattern
//! keeps them, so that a line is compared with clusters by integers; a word
//! no cluster keeps is looked up, not added, so words seen once cost no
//! memory.
//!
//! A shape given a pattern since the miner last changed is remembered with
//! it (within [`Settings::shape_cache_bytes`] of memory): the next line of
//! that shape gets it by one lookup, which took the benchmark dataset from
//! 1.0 M to 1.8 M lines a second on one core. Any change to the miner
//! forgets them all, so the answer is always the one mining would give
//! (`tests/loghub.rs` compares the two line by line).

use crate::shape::{Shape, Tok};
use crate::snapshot::{self, ClusterState, PatternState, Snapshot, SnapshotError, SourceState};
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
    /// Clusters in one leaf of the tree: each line is compared with all of them.
    pub max_clusters_per_leaf: usize,
    /// Clusters of one source.
    pub max_clusters_per_source: usize,
    /// Clusters of every source together.
    pub max_clusters: usize,
    /// Patterns of one source.
    pub max_patterns_per_source: usize,
    /// Patterns of every source together.
    pub max_patterns: usize,
    /// Bytes of the words every source keeps together.
    pub max_word_bytes: usize,
    /// Sources mined apart; lines of any further source (or of a name
    /// longer than [`MAX_SOURCE_NAME_BYTES`]) are mined together.
    pub max_sources: usize,
    /// Memory for shapes remembered with the pattern they were given
    /// ([`Miner::assign_shape`]), their keys and about 64 bytes each; when
    /// full, all are forgotten and remembering starts again. 0 remembers
    /// none.
    pub shape_cache_bytes: usize,
}

/// A longer source name is mined with the sources past the bound.
pub const MAX_SOURCE_NAME_BYTES: usize = 1024;
/// Most ids [`Miner::skip_to`] skips at once.
pub const MAX_SKIP: u32 = 1 << 20;

impl Settings {
    /// What the tree's layout follows: a snapshot keeps it.
    fn shape(&self) -> (usize, usize, usize) {
        (self.prefix, self.max_children, self.distinct_values)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: 2,
            similarity: 0.5,
            distinct_values: 4,
            max_children: 100,
            max_clusters_per_leaf: 100,
            max_clusters_per_source: 1_000,
            max_clusters: 50_000,
            max_patterns_per_source: 2_000,
            max_patterns: 100_000,
            max_word_bytes: 64 << 20,
            max_sources: 10_000,
            shape_cache_bytes: 4 << 20,
        }
    }
}

/// A pattern's number, unique within one [`Miner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatternId(pub u32);

/// A word's number in its source's [`Words`].
type Word = u32;
/// The number of a variable.
const WILD: Word = 0;
/// A word the source keeps nowhere: equal to no kept word.
const UNKNOWN: Word = Word::MAX;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The words a source's clusters and patterns keep, numbered; each as
/// [`encode`] writes it (its kind, then its text), held once.
#[derive(Debug)]
struct Words {
    texts: Vec<Box<[u8]>>,
    /// By the hash of its bytes, the newest word of that hash; `older`
    /// leads on to the others of the same hash.
    newest: Map<u64, Word>,
    older: Vec<Word>,
    hasher: foldhash::fast::RandomState,
    /// Bytes of the kept words.
    bytes: usize,
}

impl Words {
    fn new() -> Words {
        let mut words = Words {
            texts: Vec::new(),
            newest: Map::default(),
            older: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
            bytes: 0,
        };
        words.add(Tok::Wild);
        words
    }

    fn lookup(&self, bytes: &[u8]) -> (u64, Word) {
        let hash = self.hasher.hash_one(bytes);
        let mut id = self.newest.get(&hash).copied().unwrap_or(UNKNOWN);
        while id != UNKNOWN && *self.texts[id as usize] != *bytes {
            id = self.older[id as usize];
        }
        (hash, id)
    }

    /// The number of `tok`, or [`UNKNOWN`].
    fn find(&self, tok: Tok<'_>, scratch: &mut Vec<u8>) -> Word {
        if tok == Tok::Wild {
            return WILD;
        }
        encode(tok, scratch);
        self.lookup(scratch).1
    }

    /// The number of `tok`, added if need be.
    fn add(&mut self, tok: Tok<'_>) -> Word {
        let mut bytes = Vec::new();
        encode(tok, &mut bytes);
        let (hash, found) = self.lookup(&bytes);
        if found != UNKNOWN {
            return found;
        }
        // Bounded by the clusters' and patterns' words, far below 2^32.
        let id = Word::try_from(self.texts.len()).unwrap_or(UNKNOWN - 1);
        self.bytes += bytes.len();
        self.texts.push(bytes.into());
        self.older.push(self.newest.insert(hash, id).unwrap_or(UNKNOWN));
        id
    }

    /// Writes word `id` as a template shows it.
    fn write(&self, id: Word, out: &mut String) {
        let Some((tag, text)) = self.texts.get(id as usize).and_then(|bytes| bytes.split_first()) else {
            out.push_str("<*>");
            return;
        };
        // Kept words were `&str`s.
        out.push_str(&String::from_utf8_lossy(text));
        if *tag != 1 {
            out.push_str("<*>");
        }
    }
}

/// The words seen at one place of a cluster.
#[derive(Debug, Default)]
struct Place {
    /// Distinct, fewer than [`Settings::distinct_values`].
    words: Vec<Word>,
    /// A variable was seen here, or too many words.
    variable: bool,
}

#[derive(Debug)]
struct Cluster {
    /// The tree branch it hangs on: its token count's tree, then these children.
    path: Vec<Word>,
    template: Vec<Word>,
    places: Vec<Place>,
    /// Each pattern's id by the hash of its words at the split places.
    by_key: Map<u64, Vec<PatternId>>,
    patterns: Vec<PatternId>,
}

impl Cluster {
    /// Places whose word is part of the pattern: wildcards of the
    /// template that have seen few words and no variable.
    fn is_split(&self, at: usize) -> bool {
        self.template[at] == WILD && !self.places[at].variable
    }

    /// The hash of `words` at the split places.
    fn key(&self, words: &[Word], hasher: &foldhash::fast::RandomState) -> u64 {
        let mut hasher = hasher.build_hasher();
        for (at, word) in words.iter().enumerate() {
            if self.is_split(at) {
                at.hash(&mut hasher);
                word.hash(&mut hasher);
            }
        }
        hasher.finish()
    }

    /// Whether `a` and `b` have the same words at the split places.
    fn same_key(&self, a: &[Word], b: &[Word]) -> bool {
        a.iter()
            .zip(b)
            .enumerate()
            .all(|(at, (a, b))| !self.is_split(at) || a == b)
    }
}

#[derive(Debug, Default)]
struct Node {
    children: Map<Word, Node>,
    clusters: Vec<u32>,
}

#[derive(Debug)]
struct Source {
    name: Box<str>,
    words: Words,
    /// By token count.
    trees: Map<usize, Node>,
    clusters: Vec<Cluster>,
    patterns: usize,
    /// Where lines go past a bound.
    catch_all: Option<PatternId>,
}

#[derive(Debug)]
struct Pattern {
    /// `None`: an id reserved ([`Miner::skip_to`]) and never given.
    source: Option<u32>,
    /// `None`: a source's catch-all.
    cluster: Option<u32>,
    /// The words of its first line.
    exemplar: Vec<Word>,
    /// The oldest pattern with the same words at the cluster's split
    /// places (itself unless it became an alias).
    canonical: PatternId,
}

/// Mines patterns from messages, source by source.
#[derive(Debug)]
pub struct Miner {
    settings: Settings,
    sources: Vec<Source>,
    source_ids: Map<Box<str>, u32>,
    patterns: Vec<Pattern>,
    /// Patterns made (ids skipped and catch-alls aside), clusters, and
    /// bytes of kept words, over every source.
    made: usize,
    clusters: usize,
    word_bytes: usize,
    hasher: foldhash::fast::RandomState,
    /// Reused by every line: its shape's words, and a word's bytes.
    line: Vec<Word>,
    scratch: Vec<u8>,
    /// Changes to clusters' templates and places, counted: with the counts
    /// above, what tells that the miner changed ([`Miner::state`]).
    edits: u64,
    /// Shapes given a pattern since the miner last changed, by their
    /// source and tokens ([`shape_key`]), and the memory they take.
    shapes: Map<Box<[u8]>, PatternId>,
    shape_bytes: usize,
    key: Vec<u8>,
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
            source_ids: Map::default(),
            patterns: Vec::new(),
            made: 0,
            clusters: 0,
            word_bytes: 0,
            hasher: foldhash::fast::RandomState::default(),
            line: Vec::new(),
            scratch: Vec::new(),
            edits: 0,
            shapes: Map::default(),
            shape_bytes: 0,
            key: Vec::new(),
        }
    }

    /// Ids given or skipped so far (aliases, catch-alls and skipped ids
    /// included): the next new pattern's id.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Shapes remembered with their pattern now ([`Settings::shape_cache_bytes`]).
    pub fn remembered_shapes(&self) -> usize {
        self.shapes.len()
    }

    /// Whether no id was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Patterns made from lines (aliases included; catch-alls and skipped
    /// ids not).
    pub fn made(&self) -> usize {
        self.made
    }

    /// The pattern of `message`, a line of `source`: the canonical id as of now.
    pub fn assign(&mut self, source: &str, message: &str) -> PatternId {
        self.assign_shape(source, &Shape::of(message))
    }

    /// The pattern of a line of `source` of this shape: what
    /// [`Miner::assign`] does after shaping, so that a caller sharing the
    /// miner behind a lock can shape its lines before taking it.
    ///
    /// A shape given a pattern since the miner last changed gets that
    /// pattern again without being mined: assigning a shape a second time
    /// in a row changes nothing and gives the same id, so as long as
    /// nothing changed the answer is the one remembered. Most lines of a
    /// busy source repeat a shape seen moments before.
    pub fn assign_shape(&mut self, source: &str, shape: &Shape<'_>) -> PatternId {
        let toks = shape.toks();
        let before = self.state();
        let source = self.source(source);
        let mut key = std::mem::take(&mut self.key);
        shape_key(source, toks, &mut key);
        if let Some(&id) = self.shapes.get(key.as_slice()) {
            self.key = key;
            return id;
        }
        let id = self.mine(source, toks);
        // A line joins a cluster it made only if its similarity to itself
        // (1) reaches the setting: above 1 (or NaN) mining the same shape
        // again makes another pattern, so nothing may be remembered.
        let repeatable = self.settings.similarity <= 1.0;
        let cost = key.len() + SHAPE_ENTRY_BYTES;
        if self.state() != before || self.shape_bytes + cost > self.settings.shape_cache_bytes {
            self.forget_shapes();
        }
        if repeatable && cost <= self.settings.shape_cache_bytes {
            self.shape_bytes += cost;
            self.shapes.insert(key.as_slice().into(), id);
        }
        self.key = key;
        id
    }

    /// Forgets every remembered shape, and the table's memory with them
    /// (a cleared table would keep its largest size).
    fn forget_shapes(&mut self) {
        if !self.shapes.is_empty() {
            self.shapes = Map::default();
        }
        self.shape_bytes = 0;
    }

    /// What changes whenever mining changes anything that a later line's
    /// pattern depends on: sources, clusters, ids, kept words, and edits of
    /// templates and places (which are what re-keys patterns). Tree nodes
    /// are not counted: a new branch below the root ends in a new cluster
    /// (or the catch-all, a new id), and an empty node changes no answer.
    fn state(&self) -> (usize, usize, usize, usize, u64) {
        (
            self.sources.len(),
            self.clusters,
            self.patterns.len(),
            self.word_bytes,
            self.edits,
        )
    }

    /// Mines a line of `source` of these tokens.
    fn mine(&mut self, source: u32, toks: &[Tok<'_>]) -> PatternId {
        let mut line = std::mem::take(&mut self.line);
        let words = &self.sources[source as usize].words;
        line.clear();
        line.extend(toks.iter().map(|tok| words.find(*tok, &mut self.scratch)));
        let bytes_before = self.sources[source as usize].words.bytes;
        let id = match self.cluster_for(source, toks, &mut line) {
            Some(cluster) => self.pattern_in(source, cluster, toks, &mut line),
            None => self.catch_all(source),
        };
        self.word_bytes += self.sources[source as usize].words.bytes - bytes_before;
        self.line = line;
        id
    }

    /// Gives no id below `next` from now on (at most [`MAX_SKIP`] past
    /// the ids given): ids a lost state may have given (those past its
    /// last snapshot) are never given again.
    pub fn skip_to(&mut self, next: u32) {
        let next = next.min(
            u32::try_from(self.patterns.len())
                .unwrap_or(u32::MAX)
                .saturating_add(MAX_SKIP),
        );
        while self.patterns.len() < next as usize {
            let id = PatternId(u32::try_from(self.patterns.len()).unwrap_or(u32::MAX));
            self.patterns.push(Pattern {
                source: None,
                cluster: None,
                exemplar: Vec::new(),
                canonical: id,
            });
        }
    }

    /// The miner's state as data.
    pub fn snapshot(&self) -> Snapshot {
        let sources = self
            .sources
            .iter()
            .map(|source| SourceState {
                name: source.name.to_string(),
                words: source
                    .words
                    .texts
                    .iter()
                    .map(|bytes| match bytes.split_first() {
                        Some((tag, text)) => (*tag, String::from_utf8_lossy(text).into_owned()),
                        None => (0, String::new()),
                    })
                    .collect(),
                clusters: source
                    .clusters
                    .iter()
                    .map(|cluster| ClusterState {
                        path: cluster.path.clone(),
                        template: cluster.template.clone(),
                        places: cluster
                            .places
                            .iter()
                            .map(|place| (place.words.clone(), place.variable))
                            .collect(),
                        patterns: cluster.patterns.iter().map(|id| id.0).collect(),
                    })
                    .collect(),
                catch_all: source.catch_all.map(|id| id.0),
            })
            .collect();
        let patterns = self
            .patterns
            .iter()
            .map(|pattern| PatternState {
                source: pattern.source,
                cluster: pattern.cluster,
                exemplar: pattern.exemplar.clone(),
                canonical: pattern.canonical.0,
            })
            .collect();
        Snapshot {
            version: snapshot::VERSION,
            shape: self.settings.shape(),
            sources,
            patterns,
        }
    }

    /// The miner `snapshot` was taken of, mining on with `settings` (whose
    /// prefix, children and distinct values must be the snapshot's: the
    /// tree's layout follows them). Every number and link in it is checked;
    /// a damaged snapshot is refused.
    pub fn restore(settings: Settings, snapshot: Snapshot) -> Result<Miner, SnapshotError> {
        let refuse = |what: String| Err(SnapshotError(what));
        if snapshot.version != snapshot::VERSION {
            return refuse(format!(
                "version {} (this build reads {})",
                snapshot.version,
                snapshot::VERSION
            ));
        }
        if snapshot.shape != settings.shape() {
            return refuse(format!(
                "taken with prefix, children and distinct values {:?}, not {:?}",
                snapshot.shape,
                settings.shape()
            ));
        }
        let pattern_count = snapshot.patterns.len();
        let mut miner = Miner::new(settings);
        for (index, state) in snapshot.sources.into_iter().enumerate() {
            let at = |what: &str| SnapshotError(format!("source {index}: {what}"));
            if miner.source_ids.contains_key(state.name.as_str()) {
                return Err(at("its name is another source's"));
            }
            let mut words = Words::new();
            for (number, (tag, text)) in state.words.iter().enumerate() {
                let tok = match tag {
                    0 if text.is_empty() => Tok::Wild,
                    1 => Tok::Text(text),
                    2 => Tok::KeyWild(text),
                    _ => return Err(at(&format!("word {number} is of no known kind"))),
                };
                if words.add(tok) as usize != number {
                    return Err(at(&format!("word {number} is out of place or twice")));
                }
            }
            let word_count = words.texts.len();
            let known = |ids: &[Word]| ids.iter().all(|id| (*id as usize) < word_count);
            miner.word_bytes += words.bytes;
            let mut source = Source {
                name: state.name.as_str().into(),
                words,
                trees: Map::default(),
                clusters: Vec::with_capacity(state.clusters.len()),
                patterns: 0,
                catch_all: state.catch_all.map(PatternId),
            };
            for (number, cluster) in state.clusters.into_iter().enumerate() {
                let length = cluster.template.len();
                let fits = cluster.places.len() == length
                    && cluster.path.len() <= length
                    && known(&cluster.path)
                    && known(&cluster.template)
                    && cluster.places.iter().all(|(words, _)| known(words))
                    && cluster.patterns.iter().all(|id| (*id as usize) < pattern_count)
                    // Oldest first, each once: `rekey` keeps the first of a key.
                    && cluster.patterns.windows(2).all(|pair| pair[0] < pair[1]);
                if !fits {
                    return Err(at(&format!("cluster {number} does not fit together")));
                }
                let mut node = source.trees.entry(length).or_default();
                for word in &cluster.path {
                    node = node.children.entry(*word).or_default();
                }
                node.clusters.push(u32::try_from(number).unwrap_or(u32::MAX));
                source.patterns += cluster.patterns.len();
                source.clusters.push(Cluster {
                    path: cluster.path,
                    template: cluster.template,
                    places: cluster
                        .places
                        .into_iter()
                        .map(|(words, variable)| Place { words, variable })
                        .collect(),
                    by_key: Map::default(),
                    patterns: cluster.patterns.into_iter().map(PatternId).collect(),
                });
            }
            miner.clusters += source.clusters.len();
            miner.made += source.patterns;
            miner
                .source_ids
                .insert(source.name.clone(), u32::try_from(index).unwrap_or(u32::MAX));
            miner.sources.push(source);
        }
        for (number, state) in snapshot.patterns.into_iter().enumerate() {
            let fits = match (state.source, state.cluster) {
                // Skipped ids and catch-alls stand for themselves.
                (None, None) => state.exemplar.is_empty() && state.canonical as usize == number,
                (None, Some(_)) => false,
                (Some(source), None) => {
                    (source as usize) < miner.sources.len()
                        && state.exemplar.is_empty()
                        && state.canonical as usize == number
                }
                (Some(source), Some(cluster)) => miner
                    .sources
                    .get(source as usize)
                    .and_then(|source| Some(source).zip(source.clusters.get(cluster as usize)))
                    .is_some_and(|(source, cluster)| {
                        cluster.template.len() == state.exemplar.len()
                            && state
                                .exemplar
                                .iter()
                                .all(|id| (*id as usize) < source.words.texts.len())
                            && cluster
                                .patterns
                                .binary_search(&PatternId(u32::try_from(number).unwrap_or(u32::MAX)))
                                .is_ok()
                            && (state.canonical as usize) < pattern_count
                    }),
            };
            if !fits {
                return refuse(format!("pattern {number} does not fit together"));
            }
            miner.patterns.push(Pattern {
                source: state.source,
                cluster: state.cluster,
                exemplar: state.exemplar,
                canonical: PatternId(state.canonical),
            });
        }
        // Every pattern a cluster lists is that cluster's (each listed once, by the order checked above).
        let listed: usize = miner.sources.iter().map(|source| source.patterns).sum();
        let in_clusters = miner
            .patterns
            .iter()
            .filter(|pattern| pattern.cluster.is_some())
            .count();
        if listed != in_clusters {
            return refuse("a cluster lists a pattern of another cluster".to_owned());
        }
        for (index, source) in miner.sources.iter().enumerate() {
            if let Some(id) = source.catch_all {
                let pattern = miner.patterns.get(id.0 as usize);
                if !pattern.is_some_and(|p| p.cluster.is_none() && p.source.is_some_and(|s| s as usize == index)) {
                    return refuse(format!("source {index}: its catch-all is not its own"));
                }
            }
        }
        for source in 0..miner.sources.len() {
            for cluster in 0..miner.sources[source].clusters.len() {
                let (source, cluster) = (
                    u32::try_from(source).unwrap_or(u32::MAX),
                    u32::try_from(cluster).unwrap_or(u32::MAX),
                );
                miner.rekey(source, cluster);
            }
        }
        Ok(miner)
    }

    /// The pattern `id` stands for now: itself, or the older pattern it
    /// turned out to be.
    pub fn canonical(&self, id: PatternId) -> PatternId {
        self.patterns.get(id.0 as usize).map_or(id, |p| p.canonical)
    }

    /// Every id that stands for what `id` stands for now (`id` among them):
    /// the lines of a pattern are those given any of these.
    pub fn aliases(&self, id: PatternId) -> Vec<PatternId> {
        let canonical = self.canonical(id);
        // Aliases are made within a cluster only (`rekey`).
        let cluster = self.patterns.get(canonical.0 as usize).and_then(|pattern| {
            let source = self.sources.get(pattern.source? as usize)?;
            source.clusters.get(pattern.cluster? as usize)
        });
        match cluster {
            Some(cluster) => cluster
                .patterns
                .iter()
                .copied()
                .filter(|member| self.canonical(*member) == canonical)
                .collect(),
            None => vec![id],
        }
    }

    /// The source `id` was made for, as a number of this miner's (the
    /// order sources were first seen); `None` for an id never given.
    pub fn source_of(&self, id: PatternId) -> Option<u32> {
        self.patterns.get(id.0 as usize)?.source
    }

    /// The template of `id` (as of now): words, `<*>` for variables.
    pub fn template(&self, id: PatternId) -> Option<String> {
        let pattern = self.patterns.get(self.canonical(id).0 as usize)?;
        let source = &self.sources[pattern.source? as usize];
        let Some(cluster) = pattern.cluster else {
            return Some("<*>".to_owned());
        };
        let cluster = &source.clusters[cluster as usize];
        let mut out = String::new();
        for (at, word) in cluster.template.iter().enumerate() {
            if at > 0 {
                out.push(' ');
            }
            let word = if cluster.is_split(at) {
                pattern.exemplar[at]
            } else {
                *word
            };
            source.words.write(word, &mut out);
        }
        Some(out)
    }

    fn source(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.source_ids.get(name) {
            return id;
        }
        // Past the bound, every further source is mined as one: "".
        let name = if self.sources.len() + 1 >= self.settings.max_sources || name.len() > MAX_SOURCE_NAME_BYTES {
            ""
        } else {
            name
        };
        if let Some(&id) = self.source_ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.sources.len()).unwrap_or(u32::MAX);
        self.sources.push(Source {
            name: name.into(),
            words: Words::new(),
            trees: Map::default(),
            clusters: Vec::new(),
            patterns: 0,
            catch_all: None,
        });
        self.source_ids.insert(name.into(), id);
        id
    }

    /// The cluster the line joins (made if need be, its words then kept),
    /// or `None` when it is like no cluster and none may be made.
    fn cluster_for(&mut self, source: u32, toks: &[Tok<'_>], line: &mut [Word]) -> Option<u32> {
        let settings = &self.settings;
        let src = &mut self.sources[source as usize];
        // A new cluster needs a new pattern too.
        let line_bytes: usize = toks.iter().map(|tok| encoded_len(*tok)).sum();
        let full = src.clusters.len() >= settings.max_clusters_per_source
            || self.clusters >= settings.max_clusters
            || src.patterns >= settings.max_patterns_per_source
            || self.made >= settings.max_patterns
            || self.word_bytes + line_bytes > settings.max_word_bytes;
        let mut node = src.trees.entry(toks.len()).or_default();
        let mut path = Vec::with_capacity(settings.prefix);
        for (at, tok) in toks.iter().enumerate().take(settings.prefix) {
            let mut word = line[at];
            if !node.children.contains_key(&word) && node.children.len() >= settings.max_children {
                word = WILD;
            }
            if !node.children.contains_key(&word) {
                if full {
                    return None;
                }
                if word != WILD {
                    word = src.words.add(*tok);
                    line[at] = word;
                }
            }
            path.push(word);
            node = node.children.entry(word).or_default();
        }
        let mut best: Option<(u32, f64)> = None;
        for &index in &node.clusters {
            let similarity = similarity(&src.clusters[index as usize].template, line);
            if best.is_none_or(|(_, score)| similarity > score) {
                best = Some((index, similarity));
            }
        }
        match best {
            Some((index, score)) if score >= settings.similarity => Some(index),
            // A line like no cluster never erodes one, even past the bounds.
            _ if full || node.clusters.len() >= settings.max_clusters_per_leaf => None,
            _ => {
                self.clusters += 1;
                let index = u32::try_from(src.clusters.len()).unwrap_or(u32::MAX);
                for (word, tok) in line.iter_mut().zip(toks) {
                    *word = src.words.add(*tok);
                }
                node.clusters.push(index);
                src.clusters.push(Cluster {
                    path,
                    template: line.to_vec(),
                    places: line.iter().map(|_| Place::default()).collect(),
                    by_key: Map::default(),
                    patterns: Vec::new(),
                });
                Some(index)
            }
        }
    }

    /// Records the line in `cluster` and answers its pattern.
    fn pattern_in(&mut self, source: u32, cluster_index: u32, toks: &[Tok<'_>], line: &mut [Word]) -> PatternId {
        let distinct_values = self.settings.distinct_values;
        let src = &mut self.sources[source as usize];
        let cluster = &mut src.clusters[cluster_index as usize];
        let mut split_changed = false;
        let mut edited = false;
        for at in 0..line.len() {
            let word = line[at];
            let place = &mut cluster.places[at];
            let template = &mut cluster.template[at];
            if *template != WILD && *template != word {
                *template = WILD;
                split_changed |= !place.variable;
                edited = true;
            }
            if place.variable || place.words.contains(&word) {
                continue;
            }
            edited = true;
            // Words past the byte budget are not kept: the place is then a variable.
            let over_budget = self.word_bytes + encoded_len(toks[at]) > self.settings.max_word_bytes;
            if word == WILD || place.words.len() + 1 >= distinct_values || over_budget {
                place.variable = true;
                place.words.clear();
                split_changed |= *template == WILD;
            } else {
                place.words.push(src.words.add(toks[at]));
                line[at] = *place.words.last().unwrap_or(&word);
            }
        }
        if edited {
            self.edits += 1;
        }
        if split_changed {
            self.rekey(source, cluster_index);
        }
        let cluster = &self.sources[source as usize].clusters[cluster_index as usize];
        let key = cluster.key(line, &self.hasher);
        if let Some(ids) = cluster.by_key.get(&key)
            && let Some(&id) = ids
                .iter()
                .find(|id| cluster.same_key(&self.patterns[id.0 as usize].exemplar, line))
        {
            return id;
        }
        if self.sources[source as usize].patterns >= self.settings.max_patterns_per_source
            || self.made >= self.settings.max_patterns
        {
            return self.catch_all(source);
        }
        self.made += 1;
        let id = PatternId(u32::try_from(self.patterns.len()).unwrap_or(u32::MAX));
        // A word no cluster keeps is at a variable place, never split again.
        let exemplar: Vec<Word> = line
            .iter()
            .map(|&word| if word == UNKNOWN { WILD } else { word })
            .collect();
        let src = &mut self.sources[source as usize];
        src.patterns += 1;
        let cluster = &mut src.clusters[cluster_index as usize];
        cluster.patterns.push(id);
        cluster.by_key.entry(key).or_default().push(id);
        self.patterns.push(Pattern {
            source: Some(source),
            cluster: Some(cluster_index),
            exemplar,
            canonical: id,
        });
        id
    }

    /// After a cluster's split places changed: each of its patterns' key,
    /// and the oldest of each key as the canonical of the others.
    fn rekey(&mut self, source: u32, cluster_index: u32) {
        let cluster = &self.sources[source as usize].clusters[cluster_index as usize];
        let mut by_key: Map<u64, Vec<PatternId>> = Map::default();
        let mut canonical = Vec::with_capacity(cluster.patterns.len());
        // Patterns are in the order made, so the first of a key is the oldest.
        for &id in &cluster.patterns {
            let exemplar = &self.patterns[id.0 as usize].exemplar;
            let same = by_key.entry(cluster.key(exemplar, &self.hasher)).or_default();
            let oldest = same
                .iter()
                .copied()
                .find(|other| cluster.same_key(&self.patterns[other.0 as usize].exemplar, exemplar));
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

    fn catch_all(&mut self, source: u32) -> PatternId {
        if let Some(id) = self.sources[source as usize].catch_all {
            return id;
        }
        let id = PatternId(u32::try_from(self.patterns.len()).unwrap_or(u32::MAX));
        self.patterns.push(Pattern {
            source: Some(source),
            cluster: None,
            exemplar: Vec::new(),
            canonical: id,
        });
        self.sources[source as usize].catch_all = Some(id);
        id
    }
}

/// What one remembered shape costs besides its key: the key's box, the
/// table's slot and the allocator's share, about.
const SHAPE_ENTRY_BYTES: usize = 64;

/// The bytes a shape is remembered by: its source, then each token's kind,
/// length and text.
fn shape_key(source: u32, toks: &[Tok<'_>], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&source.to_le_bytes());
    for &tok in toks {
        let (tag, text) = tag_and_text(tok);
        out.push(tag);
        out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
}

/// The length of [`encode`]'s bytes for `tok`.
fn encoded_len(tok: Tok<'_>) -> usize {
    match tok {
        Tok::Wild => 1,
        Tok::Text(text) | Tok::KeyWild(text) => 1 + text.len(),
    }
}

/// A token's kind as a byte, and its text.
fn tag_and_text(tok: Tok<'_>) -> (u8, &str) {
    match tok {
        Tok::Wild => (0, ""),
        Tok::Text(text) => (1, text),
        Tok::KeyWild(key) => (2, key),
    }
}

/// A word's bytes as [`Words`] keeps them: its kind, then its text.
fn encode(tok: Tok<'_>, out: &mut Vec<u8>) {
    out.clear();
    let (tag, text) = tag_and_text(tok);
    out.push(tag);
    out.extend_from_slice(text.as_bytes());
}

/// Words equal at the same place, over the places where either has a word.
fn similarity(template: &[Word], line: &[Word]) -> f64 {
    let (mut same, mut words) = (0usize, 0usize);
    for (&kept, &word) in template.iter().zip(line) {
        if kept == WILD && word == WILD {
            continue;
        }
        words += 1;
        same += usize::from(kept != WILD && kept == word);
    }
    if words == 0 { 1.0 } else { same as f64 / words as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: [&str; 8] = [
        "session opened for user root by (uid=0)",
        "session opened for user guest by (uid=0)",
        "Received block blk_35875 of size 67108864 from /10.251.42.84",
        "session opened for user test by (uid=0)",
        "PacketResponder 1 for block blk_38865049 terminating",
        "session opened for user admin by (uid=0)",
        "Received block blk_1 of size 1 from /10.0.0.1",
        "connection from 24.54.76.216 () at Fri Jun 17 07:07:00 2005",
    ];

    fn restored(miner: &Miner) -> Miner {
        let text = serde_json::to_string(&miner.snapshot()).unwrap();
        Miner::restore(Settings::default(), serde_json::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn a_restored_miner_gives_the_ids_the_first_would_have() {
        let mut first = Miner::default();
        for line in &LINES[..4] {
            first.assign("auth", line);
        }
        first.assign("other", "hello there");
        let mut second = restored(&first);
        assert_eq!(second.snapshot(), first.snapshot());
        for line in &LINES[4..] {
            assert_eq!(second.assign("auth", line), first.assign("auth", line), "{line}");
        }
        for id in 0..first.len() {
            let id = PatternId(u32::try_from(id).unwrap());
            assert_eq!(second.canonical(id), first.canonical(id));
            assert_eq!(second.template(id), first.template(id));
        }
        // Ids a lost state may have given are skipped.
        let next = u32::try_from(second.len()).unwrap() + 100;
        second.skip_to(next);
        assert_eq!(second.template(PatternId(next - 1)), None);
        assert_eq!(second.assign("auth", "a line never seen"), PatternId(next));
        assert_eq!(restored(&second).snapshot(), second.snapshot(), "the gap is kept");
    }

    #[test]
    fn a_damaged_snapshot_is_refused_not_trusted() {
        let mut miner = Miner::default();
        for line in LINES {
            miner.assign("auth", line);
        }
        let good = serde_json::to_value(miner.snapshot()).unwrap();
        let mut wrong_version = good.clone();
        wrong_version["version"] = 99.into();
        let refused = Miner::restore(Settings::default(), serde_json::from_value(wrong_version).unwrap());
        assert!(refused.unwrap_err().to_string().contains("version 99"));
        let other_shape = Settings {
            prefix: 3,
            ..Settings::default()
        };
        let refused = Miner::restore(other_shape, serde_json::from_value(good.clone()).unwrap());
        assert!(refused.unwrap_err().to_string().contains("prefix"));
        let mut two = Miner::default();
        two.assign("a", "x y");
        two.assign("b", "x y");
        let mut same_names = serde_json::to_value(two.snapshot()).unwrap();
        same_names["sources"][1]["name"] = "a".into();
        let refused = Miner::restore(Settings::default(), serde_json::from_value(same_names).unwrap());
        assert!(refused.unwrap_err().to_string().contains("another source's"));
        // Every number in turn set out of range, then to 0: refused, or a miner that mines on.
        let mut paths = Vec::new();
        numbers(&good, &mut Vec::new(), &mut paths);
        assert!(paths.len() > 50, "{}", paths.len());
        for path in paths {
            for value in [0u64, 1, 9_999] {
                let mut damaged = good.clone();
                *at(&mut damaged, &path) = value.into();
                let Ok(snapshot) = serde_json::from_value::<Snapshot>(damaged) else {
                    continue;
                };
                if let Ok(mut miner) = Miner::restore(Settings::default(), snapshot) {
                    for line in LINES {
                        let id = miner.assign("auth", line);
                        let _ = miner.template(id);
                    }
                }
            }
        }
    }

    /// The paths of every number in `value`.
    fn numbers(value: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match value {
            serde_json::Value::Number(_) => out.push(path.clone()),
            serde_json::Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(index.to_string());
                    numbers(item, path, out);
                    path.pop();
                }
            }
            serde_json::Value::Object(map) => {
                for (key, item) in map {
                    path.push(key.clone());
                    numbers(item, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn at<'v>(value: &'v mut serde_json::Value, path: &[String]) -> &'v mut serde_json::Value {
        path.iter().fold(value, |value, key| match value {
            serde_json::Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            other => &mut other[key.as_str()],
        })
    }

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
        assert_eq!(miner.aliases(test), [root, guest, test]);
        assert_eq!(miner.aliases(PatternId(77)), [PatternId(77)], "an unknown id is itself");
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
        // Like a cluster (3/5 alike): joins it, with its own words its own pattern.
        let joined = miner.assign("s", "alpha beta c f g");
        assert_ne!(joined, a);
        assert_eq!(miner.template(joined).as_deref(), Some("alpha beta c f g"));
        assert_eq!(miner.template(a).as_deref(), Some("alpha beta c d e"));
        // Like no cluster (2/5), and none may be made: the catch-all, the cluster untouched.
        let lonely = miner.assign("s", "alpha beta x y z");
        assert_eq!(miner.template(lonely).as_deref(), Some("<*>"));
        assert_eq!(miner.template(a).as_deref(), Some("alpha beta c d e"));
        assert_eq!(miner.assign("s", "a line of six words here"), lonely);
        // No pattern left to make: the catch-all too.
        assert_eq!(miner.assign("s", "alpha beta c h i"), lonely);
        assert_eq!(miner.made(), 3);
        // Sources past the bound, or of an overlong name, are mined as one.
        let x = miner.assign("x", "hello there");
        let y = miner.assign("y", "hello there");
        assert_ne!(x, y);
        assert_eq!(miner.assign("z", "hello there"), y, "y and z share the last source");
        assert_eq!(miner.assign(&"n".repeat(2_000), "hello there"), y);
    }

    #[test]
    fn bounds_over_every_source_hold() {
        let settings = Settings {
            max_clusters: 3,
            ..Settings::default()
        };
        let mut miner = Miner::new(settings);
        for source in ["a", "b", "c"] {
            miner.assign(source, "disk is full");
        }
        let full = miner.assign("d", "disk is full");
        assert_eq!(
            miner.template(full).as_deref(),
            Some("<*>"),
            "no fourth cluster anywhere"
        );
        // A small word budget: no cluster whose words would pass it.
        let settings = Settings {
            max_word_bytes: 40,
            ..Settings::default()
        };
        let mut miner = Miner::new(settings);
        let kept = miner.assign("s", "short line");
        assert_eq!(miner.template(kept).as_deref(), Some("short line"));
        let over = miner.assign("s", "a considerably longer line of words than the budget");
        assert_eq!(miner.template(over).as_deref(), Some("<*>"));
        // A leaf holds a bounded number of clusters.
        let settings = Settings {
            max_clusters_per_leaf: 2,
            ..Settings::default()
        };
        let mut miner = Miner::new(settings);
        miner.assign("s", "job one started a b");
        miner.assign("s", "job one stopped c d");
        let third = miner.assign("s", "job one crashed e f");
        assert_eq!(miner.template(third).as_deref(), Some("<*>"));
        // Skipping ids is bounded too.
        let before = miner.len();
        miner.skip_to(u32::MAX);
        assert_eq!(miner.len(), before + MAX_SKIP as usize);
        assert_eq!(miner.made(), 2, "skipped ids are no patterns");
    }

    #[test]
    fn a_similarity_above_one_remembers_no_shape() {
        // A line then makes a new cluster each time it is mined: the
        // second answer is a new id, as mining gives it.
        let mut miner = Miner::new(Settings {
            similarity: 1.5,
            ..Settings::default()
        });
        let first = miner.assign("s", "a b");
        assert_ne!(miner.assign("s", "a b"), first);
        assert_eq!(miner.remembered_shapes(), 0);
    }
}
