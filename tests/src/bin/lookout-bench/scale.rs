//! `lookout-bench index FILE [DIR]`: the aggregator's indexing against a
//! plain tantivy indexer on the same file in the same run, and the search
//! page's busiest requests on what was indexed. With DIR, the aggregator's
//! data is kept there, and `lookout-bench first-view DIR` asks those
//! requests again of it (to measure a change to the query side without
//! indexing again). `lookout-bench space DIR` shows where the kept index's
//! bytes are, per field and per part (terms, postings, positions, columns,
//! doc store). `lookout-bench stats DIR` asks the stats pipes of a kept
//! index (made of `scripts/make-access-log.py`'s nginx log).

use super::{
    API_TOKEN, count_lines, http, process_usage, search_total, start_agent, start_aggregator, start_aggregator_with,
    wait_until, work_dir,
};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

/// Both indexers on `file`, then the busiest view's latencies; the
/// aggregator's data is kept in `keep`, if given.
pub fn bench_index(file: &Path, keep: Option<&Path>) {
    let lines = count_lines(file);
    let raw = fs::metadata(file).expect("dataset").len();
    println!("{lines} lines, {:.0} MB", raw as f64 / 1e6);
    println!("| indexer | wall | lines/s | CPU-s | lines per CPU-s | MB/s per core | peak RSS | index / raw |");
    println!("|---|---|---|---|---|---|---|---|");
    plain_tantivy(file, lines, raw);
    lookout_pipeline(file, lines, raw, keep, true);
    // The same with `[ingest] patterns = false`: what mining patterns costs.
    lookout_pipeline(file, lines, raw, None, false);
}

/// The busiest view's latencies on an aggregator started on `dir`, the
/// data a `lookout-bench index FILE DIR` kept.
pub fn bench_first_view(dir: &Path) {
    on_kept_index(dir, |url| first_view(url, search_total(url, "")));
}

/// Runs `ask` against an aggregator started on the data a `lookout-bench
/// index FILE DIR` kept in `dir`, then stops it.
fn on_kept_index(dir: &Path, ask: impl FnOnce(&str)) {
    assert!(
        dir.join("data").is_dir(),
        "{}: no `data` from `lookout-bench index FILE DIR`",
        dir.display()
    );
    let (mut aggregator, url) = start_aggregator(dir);
    ask(&url);
    let _ = aggregator.kill();
    let _ = aggregator.wait();
}

/// Stats tables of the access log kept in `dir` (`lookout-bench index
/// access.log DIR` of `scripts/make-access-log.py`'s output): each asked
/// 20 times over HTTP, as the UI asks.
pub fn bench_stats(dir: &Path) {
    on_kept_index(dir, |url| {
        let lines = search_total(url, "");
        let matches_404 = search_total(url, "status:404");
        println!("{lines} lines; `status:404` matches {matches_404}");
        println!("| query | groups | first | p50 | max |");
        println!("|---|---|---|---|---|");
        for q in STATS_QUERIES {
            let mut groups = 0;
            let ask = || {
                let mut response = http()
                    .get(format!("{url}/api/v1/logs/stats"))
                    .header("Authorization", format!("Bearer {API_TOKEN}"))
                    .query("q", q)
                    .call()
                    .unwrap_or_else(|err| panic!("{q}: {err}"));
                let answer: Value = response.body_mut().read_json().expect("json");
                answer["groups"].as_u64().expect("groups")
            };
            let (first, p50, max) = timed(|| groups = ask());
            println!("| `{q}` | {groups} | {first:.1} ms | {p50:.1} ms | {max:.1} ms |");
        }
    });
}

/// The stats benchmark's queries: the three, then percentiles
/// and time buckets.
const STATS_QUERIES: [&str; 7] = [
    "* | stats count() by host",
    "status:>=500 | stats count() by path",
    "status:404 | top 10 client",
    "* | top 10 client",
    "* | stats count(), avg(duration_ms), p99(duration_ms) by path | sort by p99(duration_ms) desc | limit 10",
    "* | stats count() by _time(1m), status",
    "method:POST | stats count_distinct(client), sum(bytes) by _time(1h)",
];

/// Bytes of the index kept in `dir`, per field and part, over every
/// partition and segment.
pub fn bench_space(dir: &Path) {
    use std::collections::BTreeMap;
    let logs = dir.join("data/logs");
    let partitions = fs::read_dir(&logs).unwrap_or_else(|err| panic!("{}: {err}", logs.display()));
    // (field, part) → bytes
    let mut parts: BTreeMap<(String, &str), u64> = BTreeMap::new();
    let (mut store, mut docs, mut segments) = (0u64, 0u64, 0usize);
    for partition in partitions {
        let path = partition.expect("partition").path();
        let index = tantivy::Index::open_in_dir(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let searcher = index.reader().expect("reader").searcher();
        let usage = searcher.space_usage().expect("space usage");
        for segment in usage.segments() {
            segments += 1;
            docs += u64::from(segment.num_docs());
            store += segment.store().total().get_bytes();
            for (part, fields) in [
                ("terms", segment.termdict()),
                ("postings", segment.postings()),
                ("positions", segment.positions()),
                ("columns", segment.fast_fields()),
                ("norms", segment.fieldnorms()),
            ] {
                for field in fields.fields() {
                    // One row for the columns of all extracted fields.
                    let name = match field.field_name() {
                        name if name.starts_with("fields.") => "fields.*",
                        name if name.starts_with("field_numbers.") => "field_numbers.*",
                        name => name,
                    };
                    *parts.entry((name.to_owned(), part)).or_default() += field.total().get_bytes();
                }
            }
        }
    }
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!("{docs} records in {segments} segments");
    println!("| field | part | MB | bytes per record |");
    println!("|---|---|---|---|");
    // Parts under 0.05 MB are left out.
    let mut rows: Vec<_> = parts.into_iter().filter(|(_, bytes)| *bytes >= 50_000).collect();
    rows.push((("(all)".to_owned(), "doc store"), store));
    rows.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    for ((field, part), bytes) in rows {
        println!(
            "| {field} | {part} | {:.1} | {:.2} |",
            mb(bytes),
            bytes as f64 / docs.max(1) as f64
        );
    }
}

fn row(name: &str, lines: u64, raw: u64, wall: f64, cpu: f64, rss_kb: u64, index_bytes: u64) {
    println!(
        "| {name} | {wall:.1} s | {:.0} k | {cpu:.1} | {:.1} k | {:.1} | {:.0} MB | {:.2} |",
        lines as f64 / wall / 1e3,
        lines as f64 / cpu / 1e3,
        raw as f64 / 1e6 / cpu,
        rss_kb as f64 / 1e3,
        index_bytes as f64 / raw as f64
    );
}

/// The baseline of issue 13: one document per line (time, host and level as
/// fast strings, the message with tantivy's default tokenizer and
/// positions, everything stored, LZ4 doc store), 2 indexing threads with
/// 96 MB each, one commit at the end. Time and level are found with the
/// aggregator's own detection, so the difference to Lookout is the index.
fn plain_tantivy(file: &Path, lines: u64, raw: u64) {
    use tantivy::schema::{FAST, STORED, STRING, Schema, TEXT};
    let dir = work_dir("plain-tantivy");
    let mut builder = Schema::builder();
    let time = builder.add_text_field("time", STRING | STORED | FAST);
    let host = builder.add_text_field("host", STRING | STORED | FAST);
    let level = builder.add_text_field("level", STRING | STORED | FAST);
    let message = builder.add_text_field("message", TEXT | STORED);
    let index = tantivy::Index::create_in_dir(&dir, builder.build()).expect("index");
    let (cpu_before, _) = process_usage(std::process::id());
    let started = Instant::now();
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(2, 2 * 96_000_000).expect("writer");
    let rules = lookout_shared::parse::LineRules::default();
    let read_at = jiff::Timestamp::now();
    let mut reader = BufReader::with_capacity(1 << 20, fs::File::open(file).expect("dataset"));
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        let text = line.trim_end_matches('\n');
        let detected = rules.detect(text, read_at);
        let mut doc = tantivy::TantivyDocument::default();
        doc.add_text(time, detected.timestamp.unwrap_or(read_at).to_string());
        doc.add_text(host, "bench");
        doc.add_text(level, detected.level.map_or("", |l| l.as_str()));
        doc.add_text(message, text);
        writer.add_document(doc).expect("add");
        line.clear();
    }
    writer.commit().expect("commit");
    writer.wait_merging_threads().expect("merges");
    let wall = started.elapsed().as_secs_f64();
    let (cpu_after, rss) = process_usage(std::process::id());
    let indexed = dir_bytes(&dir);
    row(
        "plain tantivy 0.27 (2 threads × 96 MB, one commit)",
        lines,
        raw,
        wall,
        cpu_after - cpu_before,
        rss,
        indexed,
    );
    plain_queries(&index, message);
    let _ = fs::remove_dir_all(&dir);
}

/// [`TERMS`] on the plain index, in process (tantivy's query parser,
/// phrases by positions): the count and the newest 100 by time, 20 times.
fn plain_queries(index: &tantivy::Index, message: tantivy::schema::Field) {
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::QueryParser;
    let reader = index.reader().expect("reader");
    let searcher = reader.searcher();
    let parser = QueryParser::for_index(index, vec![message]);
    for q in TERMS {
        // The parser takes an unquoted address as one term of the raw text;
        // quoted, it is the phrase of its tokens, as Lookout reads it.
        let phrase = if q.starts_with('"') {
            q.to_string()
        } else {
            format!("\"{q}\"")
        };
        let query = parser.parse_query(&phrase).expect("query");
        let (first, p50, max) = timed(|| {
            let top = TopDocs::with_limit(100).order_by_string_fast_field("time", tantivy::Order::Desc);
            let _ = searcher.search(&query, &(Count, top)).expect("search");
        });
        println!("| plain tantivy `{q}` newest 100 | {first:.1} ms | {p50:.1} ms | {max:.1} ms |");
    }
}

/// A real agent ships `file` to a real aggregator; measured until a search
/// counts every line. Then the search page's first view, asked over
/// everything: the newest 100, the histogram and the three facets.
fn lookout_pipeline(file: &Path, lines: u64, raw: u64, keep: Option<&Path>, patterns: bool) {
    let dir = match keep {
        Some(dir) => {
            // Only an empty directory or an earlier run's is replaced.
            let earlier_run = dir.join("aggregator.toml").is_file() && dir.join("data").is_dir();
            let empty = fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none());
            assert!(
                empty || earlier_run,
                "{}: not empty and not an earlier `lookout-bench index` directory; name a new one",
                dir.display()
            );
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir).expect("data directory");
            dir.to_path_buf()
        }
        None => work_dir("index"),
    };
    let (mut aggregator, url) = if patterns {
        start_aggregator(&dir)
    } else {
        start_aggregator_with(&dir, "", "[ingest]\npatterns = false\n")
    };
    let started = Instant::now();
    let mut agent = start_agent(&dir, &url, file);
    let pid = aggregator.id();
    let mut usage = (0.0, 0);
    wait_until("every line searchable", Duration::from_secs(3600), || {
        std::thread::sleep(Duration::from_millis(200));
        usage = process_usage(pid);
        search_total(&url, "") >= lines
    });
    let wall = started.elapsed().as_secs_f64();
    let _ = agent.kill();
    let _ = agent.wait();
    // The size once merges are done: the aggregator's CPU stops moving.
    let mut last = process_usage(pid).0;
    wait_until("merges finished", Duration::from_secs(600), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = process_usage(pid).0;
        let idle = now - last < 0.1;
        last = now;
        idle
    });
    let indexed = dir_bytes(&dir.join("data/logs"));
    row(
        if patterns {
            "lookout-aggregator (agent → HTTP → index)"
        } else {
            "lookout-aggregator, `[ingest] patterns = false`"
        },
        lines,
        raw,
        wall,
        usage.0,
        usage.1,
        indexed,
    );
    if patterns {
        first_view(&url, lines);
    }
    let _ = aggregator.kill();
    let _ = aggregator.wait();
    if keep.is_none() {
        let _ = fs::remove_dir_all(&dir);
    }
}

/// The search page's first view, asked over everything, and [`TERMS`], 20
/// times each: the first time apart, then p50 and max.
fn first_view(url: &str, lines: u64) {
    let search = |params: &[(&str, &str)], path: &str| {
        let mut request = http()
            .get(format!("{url}{path}"))
            .header("Authorization", format!("Bearer {API_TOKEN}"));
        for (key, value) in params {
            request = request.query(*key, *value);
        }
        let mut response = request.call().expect("answer");
        let _: Value = response.body_mut().read_json().expect("json");
    };
    println!("| request ({lines} lines) | first | p50 | max |");
    println!("|---|---|---|---|");
    let mut requests: Vec<(String, &str, Params)> = vec![
        (
            "`q=*` newest 100".into(),
            "/api/v1/logs/search",
            vec![("q", "*"), ("limit", "100")],
        ),
        (
            "histogram `q=*`, 100 buckets".into(),
            "/api/v1/logs/histogram",
            vec![("q", "*"), ("buckets", "100")],
        ),
        (
            "facets `q=*` host".into(),
            "/api/v1/logs/facets",
            vec![("q", "*"), ("field", "host")],
        ),
        (
            "facets `q=*` source".into(),
            "/api/v1/logs/facets",
            vec![("q", "*"), ("field", "source")],
        ),
        (
            "facets `q=*` level".into(),
            "/api/v1/logs/facets",
            vec![("q", "*"), ("field", "level")],
        ),
    ];
    requests.extend(TERMS.iter().map(|q| {
        (
            format!("`{q}` newest 100"),
            "/api/v1/logs/search",
            vec![("q", *q), ("limit", "100")],
        )
    }));
    for (name, path, params) in &requests {
        let (first, p50, max) = timed(|| search(params, path));
        println!("| {name} | {first:.1} ms | {p50:.1} ms | {max:.1} ms |");
    }
}

/// `ask` 20 times: the first time apart (a phrase's first asking works
/// its answer out; the rest find it kept), then p50 and max, in ms.
fn timed(mut ask: impl FnMut()) -> (f64, f64, f64) {
    let mut took: Vec<f64> = (0..20)
        .map(|_| {
            let asked = Instant::now();
            ask();
            asked.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let first = took[0];
    took.sort_by(f64::total_cmp);
    (first, took[10], took[19])
}

/// Words and phrases both indexers are asked for: a word, phrases of rare
/// and of common words, and a word of several tokens (an address).
const TERMS: [&str; 5] = [
    "interrupt",
    "\"POSSIBLE BREAK-IN ATTEMPT\"",
    "\"Found block\"",
    "\"authentication failure\"",
    "187.141.143.180",
];

/// A request's query parameters.
type Params = Vec<(&'static str, &'static str)>;

/// Bytes of every file under `dir`.
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_bytes(&entry.path()),
            _ => entry.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
