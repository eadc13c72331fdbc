//! The log index's tantivy schema: the one place that knows how a record maps
//! to fields, both when a document is built at ingest and when a stored
//! document is turned back into a [`Hit`].

use lookout_shared::parse::fields::FieldValue;
use lookout_shared::time::rfc3339;
use lookout_shared::wire::record_id;
use serde::Serialize;
use std::collections::BTreeMap;
use tantivy::columnar::{Column, ColumnarReader, DynamicColumn, NumericalType, StrColumn};
use tantivy::index::SegmentComponent;
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, NumericOptions, OwnedValue, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::{DateTime, DocId, SegmentReader, TantivyDocument, Term};

/// Field names, as used in query strings (`host:web-1`) and fast-field lookups.
pub mod names {
    /// `<stream>-<offset>`, see `lookout_shared::wire::record_id`.
    pub const ID: &str = "id";
    /// Stream (file incarnation) id, 16 hex digits.
    pub const STREAM: &str = "stream";
    /// Byte offset of the record in its file.
    pub const OFFSET: &str = "offset";
    /// Event time, millisecond precision.
    pub const TIMESTAMP: &str = "timestamp";
    /// When the aggregator received the record, millisecond precision: what
    /// alert windows count by, since event times may be old (a replayed
    /// file) or skewed (a line in local time without a zone).
    pub const INGESTED: &str = "ingested";
    /// Host the record comes from.
    pub const HOST: &str = "host";
    /// File path the record was read from.
    pub const SOURCE: &str = "source";
    /// `error`, `warn`, `info`, `debug`, `trace` or empty.
    pub const LEVEL: &str = "level";
    /// The record's text (the default search field).
    pub const MESSAGE: &str = "message";
    /// The source's labels, as a JSON object (`labels.env:prod`).
    pub const LABELS: &str = "labels";
    /// Whether the agent cut the record short.
    pub const TRUNCATED: &str = "truncated";
    /// Fields extracted from the line, as a JSON object (`fields.status`,
    /// or `status` where the name is not one of the above).
    pub const FIELDS: &str = "fields";
    /// The extracted fields whose values are numbers, as a JSON object with
    /// columns only; queries still name them `fields.<name>`.
    pub const NUMBERS: &str = "field_numbers";
}

/// Longest message shown in a list of lines (search hits, context
/// neighbours, live tail); longer ones are cut and marked `cut`.
pub const MAX_LISTED_MESSAGE_BYTES: usize = 16 * 1024;

/// The earliest event time (Unix ms) a tantivy date holds: it counts
/// nanoseconds in an i64, so only about 1678..2262 fits.
pub const MIN_TIMESTAMP_MS: i64 = i64::MIN / 1_000_000 + 1;
/// The latest event time (Unix ms) a tantivy date holds.
pub const MAX_TIMESTAMP_MS: i64 = i64::MAX / 1_000_000;

/// The handle of `message` in every partition's schema (the eighth field):
/// what code that has no [`LogSchema`] at hand, such as a stored document's
/// deserializer, finds the message by.
pub const MESSAGE_FIELD: Field = Field::from_field_id(7);

/// The schema and its field handles.
#[derive(Clone)]
pub struct LogSchema {
    schema: Schema,
    /// `id`: no longer written. A record's id is its stream and offset
    /// (`Hit::id` is made from them, and `id:` queries match them), so a
    /// term per record is not worth its cost; the field stays so that the
    /// field numbers of partitions written before remain.
    pub id: Field,
    /// `stream`: exact-match, fast.
    pub stream: Field,
    /// `offset`: u64, fast (file-order tie-break, context, `id:`).
    pub offset: Field,
    /// `timestamp`: date (ms), fast (sort, ranges, histogram).
    pub timestamp: Field,
    /// `host`: exact-match, fast.
    pub host: Field,
    /// `source`: exact-match, fast.
    pub source: Field,
    /// `level`: exact-match, fast.
    pub level: Field,
    /// `message`: full text, which records hold each token (no positions:
    /// phrases are checked on the stored text, `store::phrase`), stored.
    pub message: Field,
    /// `labels`: JSON object, values exact-match, stored.
    pub labels: Field,
    /// `truncated`: bool, indexed, stored.
    pub truncated: Field,
    /// `ingested`: date (ms), fast (alert windows).
    pub ingested: Field,
    /// `fields`: JSON object of the extracted fields whose values are
    /// text; exact-match, fast ("has", and what a hit shows). Not stored
    /// since the columns hold every value: partitions written before stored
    /// them, and such documents are read from the doc store.
    pub fields: Field,
    /// `field_numbers`: JSON object of the extracted fields whose values
    /// are numbers; fast only (ranges, "has", what a hit shows). Numbers
    /// are matched on their columns, so a term per value (often one per
    /// record: a sequence number, a byte count) would be read by nothing.
    /// Partitions written before this field keep numbers in `fields`
    /// ([`NumbersLayout::InFields`]).
    pub numbers: Field,
}

/// Where a partition keeps the extracted fields whose values are numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumbersLayout {
    /// In `field_numbers`, apart from the text (partitions of this build).
    Apart,
    /// In `fields` with the text (partitions of earlier builds).
    InFields,
}

/// One record as it goes into the index.
pub struct RecordFields<'a> {
    /// Stream id.
    pub stream: &'a str,
    /// Byte offset in the stream.
    pub offset: u64,
    /// Event time, Unix ms, within [`MIN_TIMESTAMP_MS`, `MAX_TIMESTAMP_MS`].
    pub timestamp_ms: i64,
    /// Arrival time at the aggregator, Unix ms.
    pub ingested_ms: i64,
    /// Host.
    pub host: &'a str,
    /// File path.
    pub source: &'a str,
    /// Detected level or "".
    pub level: &'a str,
    /// Text.
    pub message: &'a str,
    /// The chunk's labels as a JSON object, when it has any.
    pub labels: Option<&'a OwnedValue>,
    /// Whether the agent cut the record short.
    pub truncated: bool,
    /// Extracted fields.
    pub fields: &'a BTreeMap<String, FieldValue>,
}

/// A stored record as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Record id (`<stream>-<offset>`).
    pub id: String,
    /// Event time, RFC 3339.
    pub timestamp: String,
    /// Host.
    pub host: String,
    /// File path.
    pub source: String,
    /// Level or "".
    pub level: String,
    /// Text.
    pub message: String,
    /// Present (true) only when the agent cut the record short.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Present (true) only when this answer shows the message shortened (a
    /// list of many lines); the context of the record shows all of it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
    /// Present only when the source has labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The record's pattern id, mined at ingest: the field `pattern`
    /// (`pattern:<id>` finds the pattern's lines), shown apart from the
    /// fields; absent for records stored before patterns were mined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Fields extracted from the line (`pattern` aside); present only when
    /// there are some.
    #[serde(skip_serializing_if = "only_pattern", serialize_with = "without_pattern")]
    pub fields: BTreeMap<String, FieldValue>,
    /// The `[from, to)` character ranges of the message that the query's
    /// words found (`query::highlight`); present only when there are some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<[usize; 2]>,
}

impl Hit {
    /// Shortens the message to at most `max_bytes` (at a character
    /// boundary) and marks it `cut` if it was longer; marks past the cut go
    /// (a word cut short is not the word found).
    pub fn cut_message(&mut self, max_bytes: usize) {
        if self.message.len() > max_bytes {
            let mut end = max_bytes;
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            self.message.truncate(end);
            self.cut = true;
            let chars = self.message.chars().count();
            self.marks.retain(|[_, to]| *to <= chars);
        }
    }
}

/// Whether `fields` holds nothing but the pattern.
fn only_pattern(fields: &BTreeMap<String, FieldValue>) -> bool {
    fields.keys().all(|name| name == PATTERN_FIELD)
}

/// `fields` without the pattern, which a hit shows apart.
fn without_pattern<S: serde::Serializer>(fields: &BTreeMap<String, FieldValue>, out: S) -> Result<S::Ok, S::Error> {
    out.collect_map(fields.iter().filter(|(name, _)| *name != PATTERN_FIELD))
}

/// The field a record's pattern id is kept in (`crate::ingest::patterns`).
pub const PATTERN_FIELD: &str = "pattern";

impl Hit {
    /// The hit with [`Hit::pattern`] read from its fields.
    pub fn with_pattern(mut self) -> Hit {
        self.pattern = match self.fields.get(PATTERN_FIELD) {
            Some(FieldValue::Text(id)) => Some(id.clone()),
            _ => None,
        };
        self
    }
}

impl LogSchema {
    /// Builds the schema new partitions are created with.
    ///
    /// What is only looked up is not indexed: event and arrival times and
    /// offsets are matched by range on their fast columns (tantivy's
    /// `RangeQuery` does so for a fast field), so they need no terms, which
    /// would be nearly one per record. What a fast column holds is not
    /// stored again: a hit reads host, source, level, stream, time, offset
    /// and extracted fields from the columns ([`RecordMeta`]), so the doc
    /// store keeps the message, labels and the truncated mark.
    pub fn new() -> Self {
        let mut builder = Schema::builder();
        // Fieldnorms only serve BM25 scoring; results are ordered by time, so
        // none of the fields keeps them.
        let exact = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        );
        let exact_fast = exact.clone().set_fast("raw");
        let id = builder.add_text_field(names::ID, exact);
        let stream = builder.add_text_field(names::STREAM, exact_fast.clone());
        let offset = builder.add_u64_field(names::OFFSET, NumericOptions::default().set_fast());
        let timestamp = builder.add_date_field(
            names::TIMESTAMP,
            DateOptions::default()
                .set_fast()
                .set_precision(DateTimePrecision::Milliseconds),
        );
        let host = builder.add_text_field(names::HOST, exact_fast.clone());
        let source = builder.add_text_field(names::SOURCE, exact_fast.clone());
        let level = builder.add_text_field(names::LEVEL, exact_fast);
        let message = builder.add_text_field(
            names::MESSAGE,
            TextOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("default")
                        .set_fieldnorms(false)
                        .set_index_option(IndexRecordOption::Basic),
                )
                .set_stored(),
        );
        let labels = builder.add_json_field(
            names::LABELS,
            JsonObjectOptions::default().set_stored().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        );
        let truncated = builder.add_bool_field(names::TRUNCATED, NumericOptions::default().set_indexed().set_stored());
        let ingested = builder.add_date_field(
            names::INGESTED,
            DateOptions::default()
                .set_fast()
                .set_precision(DateTimePrecision::Milliseconds),
        );
        // Dotted names (`user.id`) are paths, as nested JSON objects are.
        let fields = builder.add_json_field(
            names::FIELDS,
            JsonObjectOptions::default()
                .set_fast("raw")
                .set_expand_dots_enabled()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("raw")
                        .set_fieldnorms(false)
                        .set_index_option(IndexRecordOption::Basic),
                ),
        );
        let numbers = builder.add_json_field(
            names::NUMBERS,
            JsonObjectOptions::default().set_fast("raw").set_expand_dots_enabled(),
        );
        // Phrases find the stored message by this handle (`store::phrase`).
        assert_eq!(message, MESSAGE_FIELD, "message is the eighth field");
        LogSchema {
            schema: builder.build(),
            fields,
            id,
            stream,
            offset,
            timestamp,
            host,
            source,
            level,
            message,
            labels,
            truncated,
            ingested,
            numbers,
        }
    }

    /// Whether an index written with `other` can be read and added to with
    /// this schema's field handles and documents: the same field names in
    /// the same order, each of the same type, and the same fast columns,
    /// except that `other` may end before `field_numbers`
    /// ([`NumbersLayout::InFields`]). Partitions made by earlier builds
    /// differ otherwise only in what they index and store (they indexed
    /// times and offsets, and stored everything).
    pub fn is_compatible_with(&self, other: &Schema) -> bool {
        let ours: Vec<_> = self.schema.fields().collect();
        let theirs: Vec<_> = other.fields().collect();
        let same_count = ours.len() == theirs.len();
        let before_numbers = theirs.len() + 1 == ours.len() && ours.last().is_some_and(|(f, _)| *f == self.numbers);
        (same_count || before_numbers)
            && ours.iter().zip(&theirs).all(|((a_field, a), (b_field, b))| {
                a_field == b_field
                    && a.name() == b.name()
                    && a.field_type().value_type() == b.field_type().value_type()
                    && a.is_fast() == b.is_fast()
            })
    }

    /// The tantivy schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The term of the JSON field `field` (labels, fields or numbers) at
    /// the key `name`, before its type and value: labels were written
    /// without expanding dots, extracted fields with.
    pub fn path_term(&self, field: Field, name: &str) -> Term {
        Term::from_field_json_path(field, &json_path(name), field != self.labels)
    }

    /// Where a partition whose index has `schema` (one this schema
    /// [`is_compatible_with`](Self::is_compatible_with)) keeps numbers.
    pub fn numbers_layout(schema: &Schema) -> NumbersLayout {
        match schema.get_field(names::NUMBERS) {
            Ok(_) => NumbersLayout::Apart,
            Err(_) => NumbersLayout::InFields,
        }
    }

    /// The document for one record, for a partition of `layout`.
    pub fn document(&self, record: &RecordFields<'_>, layout: NumbersLayout) -> TantivyDocument {
        // One allocation sized for the whole document instead of several growths.
        let size = record.message.len() + record.source.len() + record.host.len() + 96;
        let mut doc = TantivyDocument::with_capacity(size);
        doc.add_text(self.stream, record.stream);
        doc.add_u64(self.offset, record.offset);
        doc.add_date(self.timestamp, DateTime::from_timestamp_millis(record.timestamp_ms));
        doc.add_text(self.host, record.host);
        doc.add_text(self.source, record.source);
        doc.add_text(self.level, record.level);
        doc.add_text(self.message, record.message);
        if let Some(labels) = record.labels {
            doc.add_field_value(self.labels, labels);
        }
        doc.add_bool(self.truncated, record.truncated);
        doc.add_date(self.ingested, DateTime::from_timestamp_millis(record.ingested_ms));
        let (mut text, mut numbers) = (Vec::new(), Vec::new());
        for (name, value) in record.fields {
            match value {
                FieldValue::Text(t) => text.push((name.clone(), OwnedValue::Str(t.clone()))),
                FieldValue::Number(n) => numbers.push((name.clone(), OwnedValue::F64(*n))),
            }
        }
        if layout == NumbersLayout::InFields {
            text.append(&mut numbers);
        }
        if !text.is_empty() {
            doc.add_field_value(self.fields, &OwnedValue::Object(text));
        }
        if !numbers.is_empty() {
            doc.add_field_value(self.numbers, &OwnedValue::Object(numbers));
        }
        doc
    }

    /// A record as the API shows it, from what the doc store keeps of it
    /// (message, labels, truncated, and fields in partitions that stored
    /// them) and what its fast columns hold.
    pub fn stored_hit(&self, doc: &TantivyDocument, meta: RecordMeta) -> Hit {
        let mut labels = BTreeMap::new();
        if let Some(object) = doc.get_first(self.labels).and_then(|v| v.as_object()) {
            for (key, value) in object {
                if let Some(value) = value.as_str() {
                    labels.insert(key.to_owned(), value.to_owned());
                }
            }
        }
        // Partitions of this build keep fields in columns only (`meta`), and
        // those of earlier builds store them (and `meta` has none).
        let mut fields = meta.fields;
        if let Some(object) = doc.get_first(self.fields).and_then(|v| v.as_object()) {
            for (key, value) in object {
                let value = if let Some(n) = value.as_f64() {
                    FieldValue::Number(n)
                } else if let Some(text) = value.as_str() {
                    FieldValue::Text(text.to_owned())
                } else {
                    continue;
                };
                fields.insert(key.to_owned(), value);
            }
        }
        Hit {
            id: record_id(&meta.stream, meta.offset),
            timestamp: rfc3339(meta.timestamp_ms),
            host: meta.host,
            source: meta.source,
            level: meta.level,
            message: doc
                .get_first(self.message)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            truncated: doc.get_first(self.truncated).and_then(|v| v.as_bool()).unwrap_or(false),
            cut: false,
            labels,
            pattern: None,
            fields,
            marks: Vec::new(),
        }
        .with_pattern()
    }
}

/// What a record's fast columns hold: the part of a hit the doc store does
/// not keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordMeta {
    /// Stream id.
    pub stream: String,
    /// Offset in the stream.
    pub offset: u64,
    /// Event time, Unix ms.
    pub timestamp_ms: i64,
    /// Host.
    pub host: String,
    /// Source.
    pub source: String,
    /// Level or "".
    pub level: String,
    /// Extracted fields.
    pub fields: BTreeMap<String, FieldValue>,
}

/// A segment's columns that hold [`RecordMeta`], opened once for the hits
/// of one answer (opening a text column reads its dictionary's index).
pub struct MetaColumns {
    stream: Option<StrColumn>,
    host: Option<StrColumn>,
    source: Option<StrColumn>,
    level: Option<StrColumn>,
    timestamp: Column<DateTime>,
    offset: Column<u64>,
    /// The columns under `fields`, by field name (`user.name`).
    fields: Vec<(String, FieldColumn)>,
}

/// The column of one extracted field's values of one type.
enum FieldColumn {
    Text(StrColumn),
    Number(Column<f64>),
}

impl MetaColumns {
    /// Opens the columns of `segment`. Extracted fields are read from
    /// columns only in partitions of this build: earlier ones stored every
    /// record's fields, and reading their columns would be work thrown away.
    pub fn open(segment: &SegmentReader) -> tantivy::Result<MetaColumns> {
        let columns = segment.fast_fields();
        let fields = match LogSchema::numbers_layout(segment.schema()) {
            NumbersLayout::Apart => field_columns(segment)?,
            NumbersLayout::InFields => Vec::new(),
        };
        Ok(MetaColumns {
            stream: columns.str(names::STREAM)?,
            host: columns.str(names::HOST)?,
            source: columns.str(names::SOURCE)?,
            level: columns.str(names::LEVEL)?,
            timestamp: columns.date(names::TIMESTAMP)?,
            offset: columns.u64(names::OFFSET)?,
            fields,
        })
    }

    /// The values of document `doc`.
    pub fn read(&self, doc: DocId) -> tantivy::Result<RecordMeta> {
        let text = |column: &Option<StrColumn>| -> tantivy::Result<String> {
            let mut value = String::new();
            if let Some(column) = column
                && let Some(ord) = column.term_ords(doc).next()
            {
                column.ord_to_str(ord, &mut value)?;
            }
            Ok(value)
        };
        Ok(RecordMeta {
            stream: text(&self.stream)?,
            offset: self.offset.first(doc).unwrap_or(0),
            timestamp_ms: self.timestamp.first(doc).map_or(0, DateTime::into_timestamp_millis),
            host: text(&self.host)?,
            source: text(&self.source)?,
            level: text(&self.level)?,
            fields: self.fields_of(doc)?,
        })
    }

    fn fields_of(&self, doc: DocId) -> tantivy::Result<BTreeMap<String, FieldValue>> {
        let mut fields = BTreeMap::new();
        for (name, column) in &self.fields {
            let value = match column {
                FieldColumn::Text(column) => match column.term_ords(doc).next() {
                    Some(ord) => {
                        let mut text = String::new();
                        column.ord_to_str(ord, &mut text)?;
                        FieldValue::Text(text)
                    }
                    None => continue,
                },
                FieldColumn::Number(column) => match column.first(doc) {
                    Some(n) => FieldValue::Number(n),
                    None => continue,
                },
            };
            fields.insert(name.clone(), value);
        }
        Ok(fields)
    }
}

/// `name` as tantivy reads a JSON path (in a term or a field name such as
/// `fields.<path>`): it splits at `.` and unescapes `\`, but a label's name
/// is one key (`k8s.app`, the labels field does not expand dots), and an
/// extracted field's name, dots and all, is the path it was written at.
pub fn json_path(name: &str) -> String {
    name.replace('\\', "\\\\").replace('.', "\\.")
}

/// What tantivy joins a JSON path's segments with in a column's name
/// (`tantivy_common::JSON_PATH_SEGMENT_SEP`, not re-exported by tantivy).
const JSON_PATH_SEGMENT_SEP: char = '\u{1}';

/// The columns of `segment`'s extracted fields (`fields` and
/// `field_numbers`). A hit checks each of them: ingest bounds the names
/// per source, not over all sources, so a partition with very many names
/// makes each hit cost that many column lookups. tantivy names a JSON
/// field's column by its path, the segments joined by `\x01` (a dot in a
/// name splits it into segments, as `expand_dots` says), so the name is the
/// path with dots again. Numbers are read as `f64` whichever numeric type
/// tantivy chose for the column.
fn field_columns(segment: &SegmentReader) -> tantivy::Result<Vec<(String, FieldColumn)>> {
    let columnar = ColumnarReader::open(segment.open_read(SegmentComponent::FastFields)?)?;
    let prefixes = [names::FIELDS, names::NUMBERS].map(|field| format!("{field}{JSON_PATH_SEGMENT_SEP}"));
    let mut columns = Vec::new();
    for (path, handle) in columnar.iter_columns()? {
        let Some(name) = prefixes.iter().find_map(|prefix| path.strip_prefix(prefix.as_str())) else {
            continue;
        };
        let column = match handle.open()? {
            DynamicColumn::Str(column) => FieldColumn::Text(column),
            numeric => match numeric.coerce_numerical(NumericalType::F64) {
                Some(DynamicColumn::F64(column)) => FieldColumn::Number(column),
                _ => continue,
            },
        };
        let name = name.replace(JSON_PATH_SEGMENT_SEP, ".");
        columns.push((name, column));
    }
    Ok(columns)
}

/// The columns of the extracted field `name` in `segment`: its text, and
/// its numbers as `f64` (in `field_numbers`, or in `fields` in partitions
/// of earlier builds). A record has at most one value per name, so at most
/// one of them holds a value for it.
pub fn field_column(segment: &SegmentReader, name: &str) -> tantivy::Result<(Option<StrColumn>, Vec<Column<f64>>)> {
    let columnar = ColumnarReader::open(segment.open_read(SegmentComponent::FastFields)?)?;
    let path = name.replace('.', &JSON_PATH_SEGMENT_SEP.to_string());
    let mut text = None;
    let mut numbers = Vec::new();
    for field in [names::FIELDS, names::NUMBERS] {
        for handle in columnar.read_columns(&format!("{field}{JSON_PATH_SEGMENT_SEP}{path}"))? {
            match handle.open()? {
                DynamicColumn::Str(column) => text = Some(column),
                numeric => {
                    if let Some(DynamicColumn::F64(column)) = numeric.coerce_numerical(NumericalType::F64) {
                        numbers.push(column);
                    }
                }
            }
        }
    }
    Ok((text, numbers))
}

impl Default for LogSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// The chunk labels as the JSON value stored in `labels`, or `None` without labels.
pub fn labels_value(labels: &BTreeMap<String, String>) -> Option<OwnedValue> {
    if labels.is_empty() {
        return None;
    }
    Some(OwnedValue::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), OwnedValue::Str(v.clone())))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_document_and_its_columns_make_the_hit() {
        let schema = LogSchema::new();
        let mut labels = BTreeMap::new();
        labels.insert("env".to_owned(), "prod".to_owned());
        let labels_json = labels_value(&labels);
        let doc = schema.document(
            &RecordFields {
                stream: "00000000000000ab",
                offset: 7,
                timestamp_ms: 1_700_000_000_123,
                ingested_ms: 1_700_000_000_456,
                host: "web-1",
                source: "/var/log/a.log",
                level: "error",
                message: "boom",
                labels: labels_json.as_ref(),
                truncated: true,
                fields: &BTreeMap::from([
                    ("status".to_owned(), FieldValue::Number(503.0)),
                    ("user.name".to_owned(), FieldValue::Text("ann".to_owned())),
                ]),
            },
            NumbersLayout::Apart,
        );
        // Through a real index: what the doc store keeps and the columns hold.
        let index = tantivy::Index::create_in_ram(schema.schema().clone());
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        writer.add_document(doc).unwrap();
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let address = tantivy::DocAddress::new(0, 0);
        let stored: TantivyDocument = searcher.doc(address).unwrap();
        let columns = MetaColumns::open(searcher.segment_reader(0)).unwrap();
        let hit = schema.stored_hit(&stored, columns.read(0).unwrap());
        assert_eq!(hit.id, "00000000000000ab-7");
        assert_eq!(hit.timestamp, "2023-11-14T22:13:20.123Z");
        assert_eq!((hit.host.as_str(), hit.source.as_str()), ("web-1", "/var/log/a.log"));
        assert_eq!((hit.level.as_str(), hit.message.as_str()), ("error", "boom"));
        assert!(hit.truncated);
        assert_eq!(hit.labels, labels);
        assert_eq!(hit.fields.get("status"), Some(&FieldValue::Number(503.0)));
        assert_eq!(hit.fields.get("user.name"), Some(&FieldValue::Text("ann".into())));
    }

    #[test]
    fn extracted_fields_read_back_from_their_columns_as_they_went_in() {
        let text = |t: &str| FieldValue::Text(t.to_owned());
        let records: Vec<BTreeMap<String, FieldValue>> = vec![
            BTreeMap::from([
                ("status".to_owned(), FieldValue::Number(503.0)),
                ("took".to_owned(), FieldValue::Number(-0.25)),
                ("big".to_owned(), FieldValue::Number(1e300)),
                ("a.b.c".to_owned(), text("deep")),
                ("empty".to_owned(), text("")),
                ("odd..name".to_owned(), text("two dots")),
            ]),
            BTreeMap::new(),
            // The same name as text in one record and a number in another.
            BTreeMap::from([("status".to_owned(), text("n/a")), ("a".to_owned(), text("top"))]),
            BTreeMap::from([("count".to_owned(), FieldValue::Number(9_007_199_254_740_992.0))]),
        ];
        let schema = LogSchema::new();
        let index = tantivy::Index::create_in_ram(schema.schema().clone());
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        for (offset, fields) in records.iter().enumerate() {
            writer
                .add_document(schema.document(
                    &RecordFields {
                        stream: "00000000000000ab",
                        offset: offset as u64,
                        timestamp_ms: 1_700_000_000_000,
                        ingested_ms: 1_700_000_000_000,
                        host: "h",
                        source: "/s",
                        level: "",
                        message: "m",
                        labels: None,
                        truncated: false,
                        fields,
                    },
                    NumbersLayout::Apart,
                ))
                .unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let columns = MetaColumns::open(searcher.segment_reader(0)).unwrap();
        for (doc, fields) in records.iter().enumerate() {
            let stored: TantivyDocument = searcher.doc(tantivy::DocAddress::new(0, doc as u32)).unwrap();
            assert!(stored.get_first(schema.fields).is_none(), "fields are not stored");
            assert!(stored.get_first(schema.numbers).is_none(), "numbers are not stored");
            let hit = schema.stored_hit(&stored, columns.read(doc as u32).unwrap());
            assert_eq!(&hit.fields, fields, "record {doc}");
        }
    }
}
