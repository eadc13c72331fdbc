//! Grouping accuracy on the 16 Loghub systems, with one setting for all.
//!
//! Each `<System>_2k.log_structured.csv` (the repository's copy in
//! `testdata/loghub`, with Loghub's licence) gives every line's message
//! (`Content`) and its true template (`EventId`), labelled by Loghub's
//! authors. The messages go through one [`Miner`] per system, in file order,
//! as they would arrive; each line's pattern is the canonical id of the one
//! it was given, as a query asks after the fact.
//!
//! Grouping accuracy is the Loghub papers' measure (logparser's
//! `evaluator.py`): a line counts as right when the lines of its pattern are
//! exactly the lines of its true template; the share of right lines. The
//! same measure on the raw lines (time, host and level included) is printed
//! beside it, not asserted. Drain's
//! published figures (logpai/logparser's benchmark, tuned per system) are
//! printed beside ours. Run with `--nocapture` to see the table.

use lookout_patterns::{Miner, PatternId, Settings};
use std::collections::HashMap;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/loghub");

/// System and Drain's grouping accuracy in logparser's benchmark
/// (`logparser/Drain/README.md` of logpai/logparser).
const SYSTEMS: [(&str, f64); 16] = [
    ("Android", 0.911),
    ("Apache", 1.0),
    ("BGL", 0.9625),
    ("HDFS", 0.9975),
    ("HPC", 0.887),
    ("Hadoop", 0.9475),
    ("HealthApp", 0.78),
    ("Linux", 0.69),
    ("Mac", 0.7865),
    ("OpenSSH", 0.7875),
    ("OpenStack", 0.7325),
    ("Proxifier", 0.5265),
    ("Spark", 0.92),
    ("Thunderbird", 0.955),
    ("Windows", 0.997),
    ("Zookeeper", 0.9665),
];

/// The targets: on average, and for every system.
const AVERAGE: f64 = 0.90;
const LEAST: f64 = 0.75;

/// Messages and true template ids of a system, in file order.
fn lines(system: &str) -> Vec<(String, String)> {
    let path = format!("{DATA}/{system}_2k.log_structured.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let headers = reader.headers().expect("headers").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{path}: no {name} column"))
    };
    let (content, event) = (column("Content"), column("EventId"));
    reader
        .records()
        .map(|record| {
            let record = record.unwrap_or_else(|err| panic!("{path}: {err}"));
            (record[content].to_owned(), record[event].to_owned())
        })
        .collect()
}

/// The share of lines whose pattern's lines are exactly their template's.
fn grouping_accuracy(predicted: &[PatternId], truth: &[String]) -> f64 {
    let mut template_sizes: HashMap<&str, usize> = HashMap::new();
    for id in truth {
        *template_sizes.entry(id).or_default() += 1;
    }
    let mut groups: HashMap<PatternId, Vec<&str>> = HashMap::new();
    for (pattern, id) in predicted.iter().zip(truth) {
        groups.entry(*pattern).or_default().push(id);
    }
    let right: usize = groups
        .values()
        .filter(|ids| ids.iter().all(|id| *id == ids[0]) && template_sizes[ids[0]] == ids.len())
        .map(Vec::len)
        .sum();
    right as f64 / truth.len() as f64
}

/// Grouping accuracy when the miner is given each raw line of
/// `<System>_2k.log` as a shipper sends it: without its own time, where
/// the aggregator's detection finds it (as ingest mines them), and whole
/// (time, host, process and level included).
fn raw_lines(system: &str, truth: &[String]) -> (f64, f64) {
    let path = format!("{DATA}/{system}_2k.log");
    let text = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let text = String::from_utf8_lossy(&text);
    let raw: Vec<&str> = text.lines().collect();
    assert_eq!(raw.len(), truth.len(), "{path}: one line per labelled line");
    let rules = lookout_shared::parse::LineRules::default();
    let read_at = jiff_now();
    // As ingest does: the line without its own time.
    let without_time: Vec<String> = raw
        .iter()
        .map(|line| match rules.detect(line, read_at).time_span {
            Some(span) => format!("{}{}", &line[..span.start], &line[span.end..]),
            None => (*line).to_owned(),
        })
        .collect();
    let after: Vec<&str> = without_time.iter().map(String::as_str).collect();
    let accuracy = |messages: &[&str]| {
        let mut miner = Miner::default();
        let given: Vec<PatternId> = messages.iter().map(|line| miner.assign(system, line)).collect();
        let predicted: Vec<PatternId> = given.iter().map(|id| miner.canonical(*id)).collect();
        grouping_accuracy(&predicted, truth)
    };
    (accuracy(&after), accuracy(&raw))
}

/// The read time the lines are detected at: the end of 2005, when the
/// year-less ones were written (as the detection's own Loghub test reads them).
fn jiff_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_136_000_000).expect("a valid time")
}

#[test]
fn patterns_group_every_loghub_system_like_its_true_templates() {
    println!(
        "| system | lines | templates | patterns | grouping accuracy | raw lines without their time | whole raw lines | Drain, tuned per system |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut scores = Vec::new();
    for (system, drain) in SYSTEMS {
        let lines = lines(system);
        let mut miner = Miner::default();
        let given: Vec<PatternId> = lines.iter().map(|(message, _)| miner.assign(system, message)).collect();
        let predicted: Vec<PatternId> = given.iter().map(|id| miner.canonical(*id)).collect();
        let truth: Vec<String> = lines.into_iter().map(|(_, id)| id).collect();
        let score = grouping_accuracy(&predicted, &truth);
        let (after, whole) = raw_lines(system, &truth);
        let templates = truth.iter().collect::<std::collections::HashSet<_>>().len();
        let patterns = predicted.iter().collect::<std::collections::HashSet<_>>().len();
        println!(
            "| {system} | {} | {templates} | {patterns} | {score:.3} | {after:.3} | {whole:.3} | {drain} |",
            truth.len()
        );
        scores.push((system, score, after, whole));
    }
    let mean = |pick: fn(&(&str, f64, f64, f64)) -> f64| scores.iter().map(pick).sum::<f64>() / scores.len() as f64;
    let (average, after, whole) = (mean(|s| s.1), mean(|s| s.2), mean(|s| s.3));
    let drain = SYSTEMS.iter().map(|(_, d)| d).sum::<f64>() / SYSTEMS.len() as f64;
    println!("| average | | | | {average:.3} | {after:.3} | {whole:.3} | {drain:.3} |");
    assert!(average >= AVERAGE, "average grouping accuracy {average:.3} < {AVERAGE}");
    for (system, score, _, _) in scores {
        assert!(score >= LEAST, "{system}: grouping accuracy {score:.3} < {LEAST}");
    }
}

/// Remembering shapes changes no answer: a miner that remembers them and
/// one that mines every line give each line the same id and end in the
/// same state. The feed interleaves the 16 systems line by line (raw lines
/// and messages, each system its own source, and all of them again as one
/// source) and goes through twice, each line given twice in a row (the
/// second is answered from memory whatever the first changed). It runs with
/// the default bounds; with bounds tight enough that catch-alls, the word
/// budget and the wildcard branch are reached; and with few sources (the
/// rest mined as one) and a small memory, so that it fills up.
#[test]
fn remembered_shapes_give_the_ids_mining_gives() {
    let mut streams: Vec<Vec<(String, String)>> = Vec::new();
    for (system, _) in SYSTEMS {
        let path = format!("{DATA}/{system}_2k.log");
        let text = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
        let raw: Vec<String> = String::from_utf8_lossy(&text).lines().map(str::to_owned).collect();
        let mut stream: Vec<(String, String)> = Vec::new();
        for (line, (message, _)) in raw.iter().zip(lines(system)) {
            stream.push((system.to_owned(), line.clone()));
            stream.push((format!("{system} messages"), message));
            stream.push(("all".to_owned(), line.clone()));
        }
        streams.push(stream);
    }
    let longest = streams.iter().map(Vec::len).max().unwrap_or(0);
    let feed: Vec<&(String, String)> = (0..longest)
        .flat_map(|at| streams.iter().filter_map(move |stream| stream.get(at)))
        .collect();
    let tight = Settings {
        max_children: 5,
        max_clusters_per_leaf: 4,
        max_clusters_per_source: 40,
        max_clusters: 400,
        max_patterns_per_source: 60,
        max_patterns: 600,
        max_word_bytes: 40_000,
        ..Settings::default()
    };
    let crowded = Settings {
        max_sources: 6,
        shape_cache_bytes: 2_000,
        ..tight.clone()
    };
    for settings in [Settings::default(), tight, crowded] {
        let mut remembering = Miner::new(settings.clone());
        let mut mining = Miner::new(Settings {
            shape_cache_bytes: 0,
            ..settings
        });
        let mut remembered_at_most = 0;
        for _ in 0..2 {
            for (source, line) in &feed {
                for _ in 0..2 {
                    assert_eq!(
                        remembering.assign(source, line),
                        mining.assign(source, line),
                        "{source}: {line}"
                    );
                }
                remembered_at_most = remembered_at_most.max(remembering.remembered_shapes());
            }
        }
        assert_eq!(remembering.snapshot(), mining.snapshot());
        assert_eq!(mining.remembered_shapes(), 0);
        assert!(remembered_at_most > 10, "shapes were remembered: {remembered_at_most}");
    }
}
