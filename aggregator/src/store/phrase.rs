//! Phrases over a message field that keeps no positions.
//!
//! The index keeps, per message token, only which records hold it (tantivy's
//! `IndexRecordOption::Basic`): positions were a fifth of the index and a
//! sixth of the indexing thread's time, and only phrases need them. A
//! phrase (`"reset by peer"`, or a word that is several tokens: `10.0.0.1`,
//! `user@host`) is answered in two phases, as Elasticsearch's
//! `match_only_text` does: the records holding every token, then each one's
//! stored message checked for the tokens in order
//! ([`MessageTokens::has_phrase`], the check live tail makes). The answer is
//! exact.
//!
//! The second phase reads the doc store: about a second on both cores
//! (2 CPU-s) per 10 M records when the tokens are common. So a segment's candidates are
//! first checked one by one as the query reaches them, which lets the rest
//! of the query (a host, a time range) rule records out before they are
//! read. Past [`CHECKS_BEFORE_WHOLE`] checks in a segment whose rarest token
//! is in more than [`FEW_CANDIDATES`] records, the segment's whole answer is
//! worked out once, on every core, and kept in a [`PhraseCache`]: the search
//! page asks the same query for its hits, histogram and three facets at
//! once, and those wait for the one answer instead of each reading the doc
//! store again. One whole answer is worked out at a time in the process, so
//! a query of many phrases queues instead of multiplying the load. Segments
//! never change, so a kept answer stays true.

use super::scan;
use crate::query::message_analyzer;
use crate::query::tokens::MessageTokens;
use crate::store::schema::MESSAGE_FIELD;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, EmptyScorer, EnableScoring, Explanation, Occur, Query, Scorer, TermQuery, Weight};
use tantivy::schema::document::{DeserializeError, DocumentDeserialize, DocumentDeserializer};
use tantivy::schema::{IndexRecordOption, OwnedValue};
use tantivy::store::StoreReader;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocId, DocSet, Score, SeekDangerResult, SegmentReader, TERMINATED, TantivyError, Term};

/// A phrase's tokens: `(offset from the first token, token)`, offsets
/// growing from 0, as [`crate::query::Leaf::Message`] holds them.
type Phrase = Arc<[(usize, String)]>;

/// A segment whose rarest phrase token is in at most this many records is
/// only ever checked one candidate at a time: its whole answer is not
/// worth keeping. (Tests use small figures, so every way is taken.)
const FEW_CANDIDATES: u32 = if cfg!(test) { 8 } else { 64 };
/// Candidates checked one at a time in a segment before its whole answer is
/// worked out instead. Each check of a scattered candidate decompresses a
/// doc-store block (some 0.1 ms at 128 KiB, 0.2 ms at 256 KiB), so this bounds what a query narrowed by
/// other clauses pays before, and what a broad one pays on top of, the
/// whole answer. Checking one at a time without end took a phrase with a
/// token in some thousand records 190 ms on every asking at 1 M lines.
const CHECKS_BEFORE_WHOLE: u32 = if cfg!(test) { 4 } else { 256 };
/// Candidates one thread checks before a second is worth starting.
const CANDIDATES_PER_THREAD: usize = if cfg!(test) { 16 } else { 4096 };

/// Records whose message holds the phrase.
#[derive(Clone)]
pub struct VerifiedPhraseQuery {
    phrase: Phrase,
    cache: Arc<PhraseCache>,
}

impl std::fmt::Debug for VerifiedPhraseQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPhraseQuery")
            .field("phrase", &self.phrase)
            .finish()
    }
}

impl VerifiedPhraseQuery {
    /// The phrase `tokens` in the message, whole answers kept in `cache`.
    pub fn new(tokens: &[(usize, String)], cache: Arc<PhraseCache>) -> Self {
        VerifiedPhraseQuery {
            phrase: tokens.into(),
            cache,
        }
    }
}

impl Query for VerifiedPhraseQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let mut terms: Vec<Term> = self
            .phrase
            .iter()
            .map(|(_, token)| Term::from_field_text(MESSAGE_FIELD, token))
            .collect();
        terms.sort_unstable();
        terms.dedup();
        let every_token = BooleanQuery::new(
            terms
                .iter()
                .map(|term| {
                    let query: Box<dyn Query> = Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic));
                    (Occur::Must, query)
                })
                .collect(),
        );
        Ok(Box::new(VerifiedPhraseWeight {
            terms,
            parts: Arc::new(Parts {
                phrase: self.phrase.clone(),
                candidates: every_token.weight(enable_scoring)?,
                cache: self.cache.clone(),
            }),
        }))
    }
}

struct VerifiedPhraseWeight {
    /// The phrase's distinct tokens as terms.
    terms: Vec<Term>,
    parts: Arc<Parts>,
}

/// What a scorer needs to work a segment's whole answer out.
struct Parts {
    phrase: Phrase,
    /// Records holding every token.
    candidates: Box<dyn Weight>,
    cache: Arc<PhraseCache>,
}

impl Parts {
    /// The segment's whole answer, kept or worked out.
    fn whole_answer(&self, reader: &SegmentReader) -> tantivy::Result<Arc<[DocId]>> {
        self.cache
            .answer(reader.segment_id(), &self.phrase, || self.work_out(reader))
    }

    /// Every record of the segment whose message holds the phrase, in doc
    /// order; the candidates are split in runs checked on several threads.
    fn work_out(&self, reader: &SegmentReader) -> tantivy::Result<Vec<DocId>> {
        let mut candidates = Vec::new();
        self.candidates
            .for_each_no_score(reader, &mut |docs| candidates.extend_from_slice(docs))?;
        let threads = (candidates.len() / CANDIDATES_PER_THREAD).clamp(1, scan::cores().min(scan::MAX_THREADS));
        let run = candidates.len().div_ceil(threads).max(1);
        let answers = scan::on_threads(threads, |i| -> tantivy::Result<Vec<DocId>> {
            let mut checker = Checker::new(reader, self.phrase.clone())?;
            let mut held = Vec::new();
            for &doc in candidates.chunks(run).nth(i).unwrap_or(&[]) {
                if checker.holds(doc)? {
                    held.push(doc);
                }
            }
            Ok(held)
        });
        let mut held = Vec::new();
        for answer in answers {
            held.extend(answer?);
        }
        Ok(held)
    }
}

/// A segment's scorer before it is placed on its first match.
enum Unplaced {
    /// No record holds every token.
    Empty,
    /// The segment's whole answer was kept.
    Kept(Answer),
    /// On the first candidate, not yet checked.
    Checking(Box<PhraseScorer>),
}

impl VerifiedPhraseWeight {
    fn unplaced(&self, reader: &SegmentReader) -> tantivy::Result<Unplaced> {
        let index = reader.inverted_index(MESSAGE_FIELD)?;
        let mut rarest = u32::MAX;
        for term in &self.terms {
            rarest = rarest.min(index.doc_freq(term)?);
        }
        if rarest == 0 {
            return Ok(Unplaced::Empty);
        }
        let parts = &self.parts;
        if let Some(docs) = parts.cache.kept(reader.segment_id(), &parts.phrase) {
            return Ok(Unplaced::Kept(Answer { docs, at: 0 }));
        }
        Ok(Unplaced::Checking(Box::new(PhraseScorer {
            candidates: parts.candidates.scorer(reader, 1.0)?,
            checker: Checker::new(reader, parts.phrase.clone())?,
            failed: false,
            checks: 0,
            whole: (rarest > FEW_CANDIDATES).then(|| reader.clone()),
            parts: parts.clone(),
            segment: reader.segment_id(),
            walked: Some(Vec::new()),
            answer: None,
        })))
    }
}

impl Weight for VerifiedPhraseWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.unplaced(reader)? {
            Unplaced::Empty => Box::new(EmptyScorer),
            Unplaced::Kept(answer) => Box::new(answer),
            Unplaced::Checking(mut scorer) => {
                let first = scorer.candidates.doc();
                if first != TERMINATED && !scorer.holds(first) {
                    scorer.advance();
                }
                scorer
            }
        })
    }

    /// Within an intersection, the clauses before this one say where to
    /// start: candidates before `target` are never read from the doc store.
    fn scorer_danger(
        &self,
        reader: &SegmentReader,
        target: DocId,
        _boost: Score,
    ) -> tantivy::Result<(SeekDangerResult, Box<dyn Scorer>)> {
        let (doc, scorer): (DocId, Box<dyn Scorer>) = match self.unplaced(reader)? {
            Unplaced::Empty => (TERMINATED, Box::new(EmptyScorer)),
            Unplaced::Kept(mut answer) => (answer.seek(target), Box::new(answer)),
            Unplaced::Checking(mut scorer) => {
                let first = scorer.candidates.doc();
                let doc = if first < target {
                    // The first candidate is passed over unchecked.
                    scorer.walked = None;
                    scorer.seek(target)
                } else if first == TERMINATED || scorer.holds(first) {
                    first
                } else {
                    scorer.advance()
                };
                (doc, scorer)
            }
        };
        let placed = if doc == target {
            SeekDangerResult::Found
        } else {
            SeekDangerResult::SeekLowerBound(doc)
        };
        Ok((placed, scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.doc() <= doc && scorer.seek(doc) == doc {
            Ok(Explanation::new("verified phrase", 1.0))
        } else {
            Err(TantivyError::InvalidArgument(format!("document {doc} does not match")))
        }
    }
}

/// Checks stored messages of one segment for a phrase.
struct Checker {
    phrase: Phrase,
    // Records are checked in doc order, so one cached block serves a run.
    store: StoreReader,
    analyzer: TextAnalyzer,
    message: MessageTokens,
}

impl Checker {
    fn new(reader: &SegmentReader, phrase: Phrase) -> tantivy::Result<Self> {
        Ok(Checker {
            phrase,
            store: reader.get_store_reader(1)?,
            analyzer: message_analyzer(),
            message: MessageTokens::default(),
        })
    }

    /// Whether the stored message of `doc` holds the phrase.
    fn holds(&mut self, doc: DocId) -> tantivy::Result<bool> {
        Ok(match self.store.get::<StoredMessage>(doc)? {
            StoredMessage(Some(message)) => {
                self.message.read(&mut self.analyzer, &message);
                self.message.has_phrase(&self.phrase)
            }
            StoredMessage(None) => false,
        })
    }
}

/// A segment's phrase matches: candidates checked as the query reaches
/// them, then, past [`CHECKS_BEFORE_WHOLE`] checks, the whole answer.
struct PhraseScorer {
    candidates: Box<dyn Scorer>,
    checker: Checker,
    /// Whether a stored message could not be read. A `DocSet` cannot fail,
    /// so such a record is not a match, logged once per segment and query.
    failed: bool,
    checks: u32,
    /// The segment the whole answer is worked out on; `None` once asked
    /// for, or when the segment's candidates are few.
    whole: Option<SegmentReader>,
    parts: Arc<Parts>,
    segment: SegmentId,
    /// The matches so far while every candidate from the segment's first
    /// has been checked, in order; `None` once one was passed over (a
    /// seek), a check failed, or the whole answer was taken. At most
    /// [`CHECKS_BEFORE_WHOLE`] long, or [`FEW_CANDIDATES`] without a whole
    /// answer. When the candidates run out it is the segment's whole answer,
    /// and is kept as one: a segment too small to reach the switch would
    /// otherwise be checked again on every asking.
    walked: Option<Vec<DocId>>,
    answer: Option<Answer>,
}

impl PhraseScorer {
    fn holds(&mut self, doc: DocId) -> bool {
        self.checks = self.checks.saturating_add(1);
        let held = self.checker.holds(doc).unwrap_or_else(|err| {
            self.log_failure(&err, doc);
            false
        });
        if held
            && let Some(walked) = &mut self.walked
            && walked.last().is_none_or(|&last| last < doc)
        {
            walked.push(doc);
        }
        held
    }

    /// Keeps the walked answer once the candidates have run out.
    fn ran_out(&mut self) {
        if let Some(walked) = self.walked.take() {
            self.parts.cache.keep(self.segment, &self.parts.phrase, walked);
        }
    }

    fn log_failure(&mut self, err: &TantivyError, doc: DocId) {
        self.walked = None;
        if !self.failed {
            tracing::error!(error = %err, doc, "cannot read a stored message to check a phrase");
            self.failed = true;
        }
    }

    /// Takes the whole answer, when enough single checks were made, and
    /// returns it (positioned at its start).
    fn switch(&mut self) -> Option<&mut Answer> {
        if self.answer.is_none() && self.checks >= CHECKS_BEFORE_WHOLE {
            let reader = self.whole.take()?;
            match self.parts.whole_answer(&reader) {
                Ok(docs) => {
                    self.walked = None;
                    self.answer = Some(Answer { docs, at: 0 });
                }
                // Checking one at a time goes on.
                Err(err) => self.log_failure(&err, self.candidates.doc()),
            }
        }
        self.answer.as_mut()
    }
}

impl DocSet for PhraseScorer {
    fn advance(&mut self) -> DocId {
        let mut doc = self.doc();
        loop {
            if doc == TERMINATED {
                return TERMINATED;
            }
            if let Some(answer) = self.switch() {
                return answer.seek(doc + 1);
            }
            doc = self.candidates.advance();
            if doc == TERMINATED {
                self.ran_out();
                return doc;
            }
            if self.holds(doc) {
                return doc;
            }
        }
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if let Some(answer) = self.switch() {
            return answer.seek(target);
        }
        // Seeking past the next document may pass candidates unchecked.
        if target > self.candidates.doc().saturating_add(1) {
            self.walked = None;
        }
        let doc = self.candidates.seek(target);
        if doc == TERMINATED {
            self.ran_out();
            return doc;
        }
        if self.holds(doc) {
            return doc;
        }
        self.advance()
    }

    fn doc(&self) -> DocId {
        match &self.answer {
            Some(answer) => answer.doc(),
            None => self.candidates.doc(),
        }
    }

    fn size_hint(&self) -> u32 {
        match &self.answer {
            Some(answer) => answer.size_hint(),
            None => self.candidates.size_hint(),
        }
    }

    /// Checking a candidate reads and tokenizes its message: a hundred
    /// times a posting's step, so an intersection lets every cheaper part of
    /// the query rule records out first.
    fn cost(&self) -> u64 {
        match &self.answer {
            Some(answer) => answer.cost(),
            None => self.candidates.cost().saturating_mul(100),
        }
    }
}

impl Scorer for PhraseScorer {
    fn score(&mut self) -> Score {
        1.0
    }
}

/// A segment's whole answer, in doc order.
struct Answer {
    docs: Arc<[DocId]>,
    at: usize,
}

impl DocSet for Answer {
    fn advance(&mut self) -> DocId {
        self.at = (self.at + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.at += self.docs[self.at..].partition_point(|&doc| doc < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        (self.docs.len() - self.at) as u32
    }
}

impl Scorer for Answer {
    fn score(&mut self) -> Score {
        1.0
    }
}

/// Most bytes a [`PhraseCache`] keeps: 4 per matching record, and the
/// phrases themselves.
const CACHE_BYTES: usize = 32 << 20;
/// Most answers a [`PhraseCache`] keeps.
const CACHE_ENTRIES: usize = 1024;

/// Whole phrase answers per segment, first kept first dropped, within
/// [`CACHE_BYTES`] and [`CACHE_ENTRIES`]. One request works an answer out
/// while the others asking for it wait, and one answer is worked out at a
/// time.
#[derive(Default)]
pub struct PhraseCache {
    entries: Mutex<Entries>,
    /// Held while an answer is worked out (that takes every core).
    working: Mutex<()>,
}

type Key = (SegmentId, Phrase);
/// One answer: `None` until worked out (or after that failed).
type Slot = Arc<Mutex<Option<Arc<[DocId]>>>>;

#[derive(Default)]
struct Entries {
    /// Each answer's slot and the bytes it holds (with its key's).
    slots: HashMap<Key, (Slot, usize)>,
    /// Keys in the order they came; may name keys dropped since.
    order: VecDeque<Key>,
    bytes: usize,
}

impl Entries {
    /// Drops the first kept answers until the bounds hold again.
    fn shrink(&mut self) {
        while self.bytes > CACHE_BYTES || self.slots.len() > CACHE_ENTRIES {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some((_, size)) = self.slots.remove(&oldest) {
                self.bytes -= size;
            }
        }
    }
}

/// Bytes a key holds.
fn key_bytes(phrase: &Phrase) -> usize {
    phrase
        .iter()
        .map(|(_, token)| size_of::<(usize, String)>() + token.len())
        .sum::<usize>()
        + size_of::<Key>()
}

impl PhraseCache {
    /// The answer kept for `phrase` in `segment`, if it is worked out.
    fn kept(&self, segment: SegmentId, phrase: &Phrase) -> Option<Arc<[DocId]>> {
        let slot = self.lock().slots.get(&(segment, phrase.clone()))?.0.clone();
        let answer = slot.try_lock().ok()?;
        answer.clone()
    }

    /// The answer kept for `phrase` in `segment`, or the one `work_out`
    /// gives (kept unless it failed).
    fn answer(
        &self,
        segment: SegmentId,
        phrase: &Phrase,
        work_out: impl FnOnce() -> tantivy::Result<Vec<DocId>>,
    ) -> tantivy::Result<Arc<[DocId]>> {
        let key = (segment, phrase.clone());
        let slot = {
            let mut entries = self.lock();
            let entries = &mut *entries;
            match entries.slots.get(&key) {
                Some((slot, _)) => slot.clone(),
                None => {
                    let slot = Slot::default();
                    let bytes = key_bytes(phrase);
                    entries.slots.insert(key.clone(), (slot.clone(), bytes));
                    entries.order.push_back(key.clone());
                    entries.bytes += bytes;
                    entries.shrink();
                    slot
                }
            }
        };
        let mut answer = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(docs) = &*answer {
            return Ok(docs.clone());
        }
        let docs: Arc<[DocId]> = {
            let _turn = self.working.lock().unwrap_or_else(|e| e.into_inner());
            work_out()?.into()
        };
        *answer = Some(docs.clone());
        drop(answer);
        let mut entries = self.lock();
        let bytes = docs.len() * size_of::<DocId>();
        if let Some((kept, size)) = entries.slots.get_mut(&key)
            && Arc::ptr_eq(kept, &slot)
        {
            *size += bytes;
            entries.bytes += bytes;
        }
        entries.shrink();
        Ok(docs)
    }

    /// Keeps `docs` as the answer for `phrase` in `segment`, found by
    /// checking every candidate, unless an answer is kept or being worked
    /// out (never waits for one).
    fn keep(&self, segment: SegmentId, phrase: &Phrase, docs: Vec<DocId>) {
        let key = (segment, phrase.clone());
        let mut entries = self.lock();
        if entries.slots.contains_key(&key) {
            return;
        }
        let bytes = key_bytes(phrase) + docs.len() * size_of::<DocId>();
        let answer: Arc<[DocId]> = docs.into();
        entries
            .slots
            .insert(key.clone(), (Arc::new(Mutex::new(Some(answer))), bytes));
        entries.order.push_back(key);
        entries.bytes += bytes;
        entries.shrink();
    }

    // A poisoned lock only means a thread panicked holding it; the map is
    // consistent after every statement.
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A document's message. It is stored first (`LogSchema::document`), so
/// the rest (labels, fields) is never decoded; partitions of earlier builds,
/// which stored every field, are read on to it.
struct StoredMessage(Option<String>);

impl DocumentDeserialize for StoredMessage {
    fn deserialize<'de, D>(mut deserializer: D) -> Result<Self, DeserializeError>
    where
        D: DocumentDeserializer<'de>,
    {
        while let Some((field, value)) = deserializer.next_field::<OwnedValue>()? {
            if field == MESSAGE_FIELD {
                return Ok(StoredMessage(match value {
                    OwnedValue::Str(text) => Some(text),
                    _ => None,
                }));
            }
        }
        Ok(StoredMessage(None))
    }
}

#[cfg(test)]
mod tests {
    use crate::query::tokens::MessageTokens;
    use crate::query::{Expr, Leaf, message_analyzer, parse};
    use crate::store::LogStore;
    use crate::store::schema::{NumbersLayout, RecordFields};
    use crate::store::search::{LogFilter, SearchRequest, SortOrder};
    use jiff::civil::Date;
    use lookout_shared::parse::fields::FieldValue;
    use std::collections::BTreeMap;
    use tantivy::collector::Count;
    use tantivy::query::PhraseQuery;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, Term};

    const LOGHUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/loghub");

    /// Lines of real logs with addresses, `user@host`, paths and ids.
    fn lines() -> Vec<String> {
        let mut lines = Vec::new();
        for system in ["OpenSSH", "Linux", "Apache", "HDFS", "Proxifier", "Zookeeper"] {
            let path = format!("{LOGHUB}/{system}_2k.log");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
            lines.extend(text.lines().map(str::to_owned));
        }
        // Tokens of 40 bytes or more are not indexed but keep their place,
        // and a phrase may repeat a token.
        let long = "x".repeat(45);
        for extra in [
            format!("session key {long} expired for a a b"),
            format!("session key {long} {long} expired"),
            "session key expired after a b a".to_owned(),
        ] {
            lines.push(extra);
        }
        lines
    }

    /// Phrases taken from the lines (two or three neighbouring words, and
    /// single words that are several tokens), each also with its first two
    /// words swapped, which mostly should not match.
    fn phrases(lines: &[String]) -> Vec<String> {
        let mut phrases = Vec::new();
        for (i, line) in lines.iter().enumerate().step_by(97) {
            let words: Vec<&str> = line.split_whitespace().filter(|w| !w.contains('"')).collect();
            if words.len() < 4 {
                continue;
            }
            let at = i % (words.len() - 3);
            let length = 2 + i % 2;
            phrases.push(format!("\"{}\"", words[at..at + length].join(" ")));
            phrases.push(format!("\"{} {}\"", words[at + 1], words[at]));
            if let Some(word) = words
                .iter()
                .find(|w| w.chars().filter(|c| c.is_ascii_punctuation()).count() >= 2)
            {
                phrases.push(format!("\"{word}\""));
            }
        }
        let long = "y".repeat(41);
        phrases.extend([
            format!("\"key {long} expired\""),
            format!("\"key {long} {long} expired\""),
            "\"key expired\"".to_owned(),
            "\"a a b\"".to_owned(),
            "\"b a\"".to_owned(),
        ]);
        phrases
    }

    /// Line `i` of one stream, the `i`th millisecond after 1 s.
    fn line_record(i: usize, line: &str) -> RecordFields<'_> {
        static NO_FIELDS: BTreeMap<String, FieldValue> = BTreeMap::new();
        RecordFields {
            stream: "00000000000000aa",
            offset: i as u64,
            timestamp_ms: 1_000 + i as i64,
            ingested_ms: 1_000 + i as i64,
            host: "h",
            source: "/s",
            level: "",
            message: line,
            labels: None,
            truncated: false,
            fields: &NO_FIELDS,
        }
    }

    fn tokens(q: &str) -> Option<Vec<(usize, String)>> {
        match parse(q).ok()? {
            Expr::Leaf(Leaf::Message(tokens)) if tokens.len() > 1 => Some(tokens),
            _ => None,
        }
    }

    #[test]
    fn phrases_find_exactly_the_lines_that_hold_them() {
        let lines = lines();
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = LogStore::open(tmp.path()).unwrap();
        let schema = store.schema().clone();
        let partition = store.create_partition(Date::new(2024, 5, 1).unwrap()).unwrap();
        let mut writer: tantivy::IndexWriter = partition.index().writer(15_000_000).unwrap();
        // The index of earlier builds: the same messages with positions.
        let mut positional = Schema::builder();
        let text = positional.add_text_field("message", TEXT);
        let positional = Index::create_in_ram(positional.build());
        let mut positional_writer: tantivy::IndexWriter = positional.writer(15_000_000).unwrap();
        for (i, line) in lines.iter().enumerate() {
            writer
                .add_document(schema.document(&line_record(i, line), NumbersLayout::Apart))
                .unwrap();
            positional_writer
                .add_document(tantivy::doc!(text => line.as_str()))
                .unwrap();
            // Several segments, so candidates cross segment bounds.
            if i % 5_000 == 4_999 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        positional_writer.commit().unwrap();
        partition.set_time_range(Some((1_000, 1_000 + lines.len() as i64)));
        partition.reload().unwrap();
        let positional = positional.reader().unwrap().searcher();

        let analyzer = &mut message_analyzer();
        let tokenized: Vec<MessageTokens> = lines
            .iter()
            .map(|line| {
                let mut tokens = MessageTokens::default();
                tokens.read(analyzer, line);
                tokens
            })
            .collect();
        let mut checked = 0;
        let mut matched = 0;
        for q in phrases(&lines) {
            let Some(tokens) = tokens(&q) else { continue };
            let holding: Vec<bool> = tokenized.iter().map(|line| line.has_phrase(&tokens)).collect();
            let expected: Vec<&str> = lines
                .iter()
                .zip(&holding)
                .filter(|(_, holds)| **holds)
                .map(|(line, _)| line.as_str())
                .collect();
            let result = store
                .search(&SearchRequest {
                    filter: LogFilter {
                        q: q.clone(),
                        ..LogFilter::default()
                    },
                    limit: lines.len(),
                    offset: 0,
                    order: SortOrder::Asc,
                })
                .unwrap();
            let found: Vec<&str> = result.hits.iter().map(|hit| hit.message.as_str()).collect();
            assert_eq!(found, expected, "{q}");
            assert_eq!(result.total, expected.len() as u64, "{q}");
            let with_positions = PhraseQuery::new_with_offset(
                tokens
                    .iter()
                    .map(|(offset, token)| (*offset, Term::from_field_text(text, token)))
                    .collect(),
            );
            assert_eq!(
                positional.search(&with_positions, &Count).unwrap(),
                expected.len(),
                "{q}: a positional index answers the same"
            );
            // A phrase inside a larger query: only records the rest allows.
            let narrowed = store
                .search(&SearchRequest {
                    filter: LogFilter {
                        q: format!("{q} AND offset:<5000"),
                        ..LogFilter::default()
                    },
                    limit: 0,
                    offset: 0,
                    order: SortOrder::Asc,
                })
                .unwrap();
            let first_part = holding[..5_000].iter().filter(|holds| **holds).count();
            assert_eq!(narrowed.total, first_part as u64, "{q} AND offset:<5000");
            // Excluded, and in a union: tantivy drives the scorer otherwise.
            let count = |q: String| {
                store
                    .search(&SearchRequest {
                        filter: LogFilter {
                            q,
                            ..LogFilter::default()
                        },
                        limit: 0,
                        offset: 0,
                        order: SortOrder::Asc,
                    })
                    .unwrap()
                    .total
            };
            if checked % 8 == 0 {
                assert_eq!(
                    count(format!("NOT {q}")),
                    (lines.len() - expected.len()) as u64,
                    "NOT {q}"
                );
                let zookeeper = [(0, "zookeeper".to_owned())];
                let either = tokenized
                    .iter()
                    .zip(&holding)
                    .filter(|(line, holds)| **holds || line.has_phrase(&zookeeper))
                    .count();
                assert_eq!(count(format!("{q} OR zookeeper")), either as u64, "{q} OR zookeeper");
            }
            checked += 1;
            matched += usize::from(!expected.is_empty());
        }
        // A segment outside the time range never works a phrase out: only
        // the last of the three holds records from offset 11,000 on.
        let ask = |q: &str, start: Option<i64>| {
            store
                .search(&SearchRequest {
                    filter: LogFilter {
                        q: q.into(),
                        start,
                        ..LogFilter::default()
                    },
                    limit: 10,
                    offset: 0,
                    order: SortOrder::Desc,
                })
                .unwrap()
        };
        let before = store.queries().phrases.lock().slots.len();
        ask("\"0 1\"", Some(1_000 + 11_000));
        let in_range = store.queries().phrases.lock().slots.len();
        assert!(
            in_range - before <= 1,
            "{} segments worked the phrase out",
            in_range - before
        );
        ask("\"0 1\"", None);
        assert!(store.queries().phrases.lock().slots.len() - in_range >= 2);
        // After the time clause, the phrase's scorer starts where the
        // range does, and answers exactly.
        let broken = [
            (0, "connection".to_owned()),
            (1, "broken".to_owned()),
            (2, "for".to_owned()),
            (3, "id".to_owned()),
        ];
        let late = tokenized[11_000..]
            .iter()
            .filter(|line| line.has_phrase(&broken))
            .count();
        assert!(late > 0);
        let found = ask("\"connection broken for id\"", Some(1_000 + 11_000));
        assert_eq!(found.total, late as u64);
        assert!(checked >= 200, "{checked} phrases checked");
        assert!(matched >= checked / 3, "{matched} of {checked} phrases occur");
        eprintln!("{checked} phrases checked, {matched} of them occur");
    }

    #[test]
    fn a_segment_whose_candidates_are_all_checked_keeps_its_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = LogStore::open(tmp.path()).unwrap();
        let schema = store.schema().clone();
        let partition = store.create_partition(Date::new(2024, 5, 1).unwrap()).unwrap();
        let mut writer: tantivy::IndexWriter = partition.index().writer(15_000_000).unwrap();
        // Fewer candidates than `FEW_CANDIDATES` (8 in tests): never a whole
        // answer worked out, so each asking would check them all again.
        let lines = [
            "disk sda full",
            "disk full sda",
            "sda disk full",
            "noise",
            "disk sda full again",
        ];
        for (i, line) in lines.iter().enumerate() {
            writer
                .add_document(schema.document(&line_record(i, line), NumbersLayout::Apart))
                .unwrap();
        }
        writer.commit().unwrap();
        partition.set_time_range(Some((1_000, 1_004)));
        partition.reload().unwrap();
        let phrase: super::Phrase = vec![(0, "disk".to_owned()), (1, "sda".to_owned())].into();
        let segment = partition.searcher().segment_reader(0).segment_id();
        let total = |q: &str| {
            store
                .search(&SearchRequest {
                    filter: LogFilter {
                        q: q.into(),
                        ..LogFilter::default()
                    },
                    limit: 10,
                    offset: 0,
                    order: SortOrder::Asc,
                })
                .unwrap()
                .total
        };
        let cache = || store.queries().phrases.clone();
        // Narrowed by a clause that passes candidates over: not the whole answer.
        assert_eq!(total("\"disk sda\" AND offset:>=2"), 1);
        assert!(cache().kept(segment, &phrase).is_none());
        assert_eq!(total("\"disk sda\""), 2);
        assert_eq!(cache().kept(segment, &phrase).as_deref(), Some(&[0, 4][..]));
        assert_eq!(total("\"disk sda\" AND offset:>=2"), 1, "the kept answer, narrowed");
        assert_eq!(total("NOT \"disk sda\""), 3);
    }

    #[test]
    fn a_whole_answer_is_worked_out_once_and_the_cache_stays_bounded() {
        use super::{CACHE_ENTRIES, Phrase, PhraseCache};
        use tantivy::index::SegmentId;
        let cache = PhraseCache::default();
        let phrase: Phrase = vec![(0, "reset".to_owned()), (1, "by".to_owned())].into();
        let segment = SegmentId::generate_random();
        let failed = cache.answer(segment, &phrase, || {
            Err(tantivy::TantivyError::InvalidArgument("broken".into()))
        });
        assert!(failed.is_err());
        // A failure is not kept: the next request works it out again.
        let first = cache.answer(segment, &phrase, || Ok(vec![1, 5, 9])).unwrap();
        let again = cache.answer(segment, &phrase, || panic!("worked out twice")).unwrap();
        assert_eq!(&*first, &[1, 5, 9]);
        assert_eq!(&*again, &[1, 5, 9]);
        // Another segment has its own answer.
        let other = cache
            .answer(SegmentId::generate_random(), &phrase, || Ok(vec![2]))
            .unwrap();
        assert_eq!(&*other, &[2]);
        for _ in 0..CACHE_ENTRIES + 10 {
            cache
                .answer(SegmentId::generate_random(), &phrase, || Ok(vec![3]))
                .unwrap();
        }
        assert!(cache.lock().slots.len() <= CACHE_ENTRIES);
        // The first answers were the first dropped.
        let worked_out = std::cell::Cell::new(false);
        cache
            .answer(segment, &phrase, || {
                worked_out.set(true);
                Ok(vec![1, 5, 9])
            })
            .unwrap();
        assert!(worked_out.get());
    }
}
