//! The query language means what it says: a few hundred generated queries
//! (words, phrases, `field:value`, patterns, `AND`, `OR`, `NOT`, `-`, `+`,
//! implicit AND, groups) are answered by the search API, by the facet counts (the
//! group collector alert rules count with) and by live tail's matcher, and
//! every answer must equal a small reference evaluator's over the same
//! records. The reference is written here, apart from the code under test:
//! its own tokenizer (runs of letters and digits, lower-cased, tokens of 40
//! bytes or more dropped) and a direct walk of the generated tree.
//!
//! The records are real logs (three loghub systems, `testdata/loghub`).

mod common;

use common::{Rng, Server, batch, chunk, config, enc, records_of, stream};
use lookout_aggregator::query::matcher::Matcher;
use lookout_aggregator::store::schema::Hit;
use std::collections::HashMap;

const SYSTEMS: [(&str, &str); 3] = [
    ("proxy-1", "Proxifier_2k.log"),
    ("ssh-1", "OpenSSH_2k.log"),
    ("web-1", "Apache_2k.log"),
];
const QUERIES: usize = 400;

/// A generated query: the reference's view of it.
#[derive(Debug, Clone)]
enum Q {
    /// Consecutive message tokens (one: a word).
    Phrase(Vec<String>),
    Host(String),
    Level(String),
    /// `message:/^prefix/`: a word starts with it.
    WordStarts(String),
    /// `message:/part/`: a word holds it.
    WordHas(String),
    /// `host:/^(a|b)$/`: the host is one of them.
    HostIn(Vec<String>),
    Not(Box<Q>),
    And(Vec<Q>),
    Or(Vec<Q>),
}

/// The reference tokenizer: (position, token) of runs of letters and digits.
fn tokens(text: &str) -> Vec<(usize, String)> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .enumerate()
        .filter(|(_, t)| t.len() < 40)
        .map(|(i, t)| (i, t.to_lowercase()))
        .collect()
}

struct Record {
    host: String,
    level: String,
    tokens: Vec<(usize, String)>,
}

fn eval(q: &Q, r: &Record) -> bool {
    match q {
        Q::Phrase(words) => r.tokens.iter().any(|(start, _)| {
            words
                .iter()
                .enumerate()
                .all(|(k, word)| r.tokens.iter().any(|(p, t)| *p == start + k && t == word))
        }),
        Q::Host(h) => &r.host == h,
        Q::Level(l) => &r.level == l,
        Q::WordStarts(prefix) => r.tokens.iter().any(|(_, t)| t.starts_with(prefix.as_str())),
        Q::WordHas(part) => r.tokens.iter().any(|(_, t)| t.contains(part.as_str())),
        Q::HostIn(hosts) => hosts.contains(&r.host),
        Q::Not(inner) => !eval(inner, r),
        Q::And(parts) => parts.iter().all(|p| eval(p, r)),
        Q::Or(parts) => parts.iter().any(|p| eval(p, r)),
    }
}

struct Vocabulary {
    words: Vec<String>,
    phrases: Vec<Vec<String>>,
    hosts: Vec<String>,
    levels: Vec<String>,
}

fn leaf(rng: &mut Rng, v: &Vocabulary) -> Q {
    // The first few characters of a word, as a pattern's text.
    let part = |rng: &mut Rng| -> String {
        let word = rng.pick(&v.words).clone();
        let length = 1 + rng.below(3);
        word.chars().take(length).collect()
    };
    match rng.below(13) {
        0..=4 => Q::Phrase(vec![rng.pick(&v.words).clone()]),
        5..=6 => Q::Phrase(rng.pick(&v.phrases).clone()),
        7..=8 => Q::Host(rng.pick(&v.hosts).clone()),
        9 => Q::WordStarts(part(rng)),
        10 => Q::WordHas(part(rng)),
        11 => Q::HostIn(vec![rng.pick(&v.hosts).clone(), rng.pick(&v.hosts).clone()]),
        _ => Q::Level(rng.pick(&v.levels).clone()),
    }
}

/// The patterns `q` holds (a query may hold at most 4).
fn patterns(q: &Q) -> usize {
    match q {
        Q::WordStarts(_) | Q::WordHas(_) | Q::HostIn(_) => 1,
        Q::Not(inner) => patterns(inner),
        Q::And(parts) | Q::Or(parts) => parts.iter().map(patterns).sum(),
        Q::Phrase(_) | Q::Host(_) | Q::Level(_) => 0,
    }
}

fn generate(rng: &mut Rng, v: &Vocabulary, depth: usize) -> Q {
    if depth == 0 || rng.below(3) == 0 {
        let q = leaf(rng, v);
        return if rng.below(4) == 0 { Q::Not(Box::new(q)) } else { q };
    }
    let parts = (0..2 + rng.below(2)).map(|_| generate(rng, v, depth - 1)).collect();
    let q = if rng.below(2) == 0 { Q::And(parts) } else { Q::Or(parts) };
    if rng.below(5) == 0 { Q::Not(Box::new(q)) } else { q }
}

/// Writes `q` in the query syntax, choosing among equivalent spellings.
fn render(q: &Q, rng: &mut Rng) -> String {
    match q {
        Q::Phrase(words) if words.len() == 1 => {
            if rng.below(5) == 0 {
                format!("+{}", words[0])
            } else {
                words[0].clone()
            }
        }
        Q::Phrase(words) => format!("\"{}\"", words.join(" ")),
        Q::Host(h) => format!("host:{h}"),
        Q::Level(l) => format!("level:{l}"),
        Q::WordStarts(prefix) => format!("message:/^{prefix}/"),
        Q::WordHas(part) => format!("message:/{part}/"),
        Q::HostIn(hosts) => format!("host:/^({})$/", hosts.join("|")),
        Q::Not(inner) => {
            let inner = match **inner {
                Q::And(_) | Q::Or(_) => format!("({})", render(inner, rng)),
                _ => render(inner, rng),
            };
            if rng.below(2) == 0 {
                format!("NOT {inner}")
            } else {
                format!("-{inner}")
            }
        }
        Q::And(parts) => parts
            .iter()
            .map(|p| match p {
                Q::Or(_) => format!("({})", render(p, rng)),
                _ => render(p, rng),
            })
            .collect::<Vec<_>>()
            .join(if rng.below(2) == 0 { " AND " } else { " " }),
        Q::Or(parts) => parts
            .iter()
            .map(|p| match p {
                // AND binds tighter than OR: parentheses only sometimes.
                Q::And(_) if rng.below(2) == 0 => format!("({})", render(p, rng)),
                _ => render(p, rng),
            })
            .collect::<Vec<_>>()
            .join(" OR "),
    }
}

#[tokio::test]
async fn generated_queries_agree_with_the_reference_evaluator() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(config(tmp.path(), "")).await;
    let loghub = lookout_tests::loghub_dir();
    for (n, (host, file)) in SYSTEMS.iter().enumerate() {
        let text = std::fs::read_to_string(loghub.join(file)).unwrap();
        let lines: Vec<common::Line<'_>> = text
            .lines()
            .map(|message| common::Line {
                message,
                read_at_ms: 1_700_000_000_000,
            })
            .collect();
        let path = format!("/var/log/{file}");
        server
            .ingest_ok(&batch(host, vec![chunk(&stream(host, n as u64), &path, 0, &lines)]))
            .await;
    }

    // What the aggregator stored, as the reference sees it.
    let all = server.get_ok("/api/v1/logs/search?limit=10000").await;
    let hits: Vec<Hit> = records_of(&all);
    assert_eq!(hits.len(), 6000);
    let records: Vec<Record> = hits
        .iter()
        .map(|hit| Record {
            host: hit.host.clone(),
            level: hit.level.clone(),
            tokens: tokens(&hit.message),
        })
        .collect();

    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for record in &records {
        for (_, token) in &record.tokens {
            *frequency.entry(token.as_str()).or_default() += 1;
        }
    }
    let mut words: Vec<(&str, usize)> = frequency.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    // Common words and rare ones, and a word no line has.
    let mut vocabulary: Vec<String> = words.iter().take(40).map(|(w, _)| w.to_string()).collect();
    vocabulary.extend(words.iter().rev().take(20).map(|(w, _)| w.to_string()));
    vocabulary.push("nosuchwordanywhere".into());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let phrases: Vec<Vec<String>> = (0..40)
        .filter_map(|_| {
            let record = rng.pick(&records);
            let pair = record.tokens.windows(2).nth(rng.below(record.tokens.len().max(1)))?;
            (pair[1].0 == pair[0].0 + 1).then(|| vec![pair[0].1.clone(), pair[1].1.clone()])
        })
        .collect();
    let mut levels: Vec<String> = records
        .iter()
        .map(|r| r.level.clone())
        .filter(|l| !l.is_empty())
        .collect();
    levels.sort();
    levels.dedup();
    let v = Vocabulary {
        words: vocabulary,
        phrases,
        hosts: SYSTEMS
            .iter()
            .map(|(h, _)| h.to_string())
            .chain(["nohost".to_string()])
            .collect(),
        levels,
    };

    let mut checked = 0;
    let mut nonempty = 0;
    for i in 0..QUERIES {
        let q = loop {
            let q = generate(&mut rng, &v, 3);
            if patterns(&q) <= 4 {
                break q;
            }
        };
        let text = render(&q, &mut rng);
        let expected: Vec<&Record> = records.iter().filter(|r| eval(&q, r)).collect();
        let total = server.total(&format!("q={}&limit=0", enc(&text))).await;
        assert_eq!(total, expected.len() as u64, "query {i}: {text}\n{q:?}");

        let mut matcher = Matcher::new(lookout_aggregator::query::parse(&text).unwrap());
        let tailed = hits.iter().filter(|hit| matcher.matches(hit)).count();
        assert_eq!(tailed, expected.len(), "live tail, query {i}: {text}");

        if i % 4 == 0 {
            let facets = server
                .get_ok(&format!("/api/v1/logs/facets?field=host&q={}", enc(&text)))
                .await;
            for (host, _) in SYSTEMS {
                let counted = facets["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|value| value["value"] == host)
                    .map_or(0, |value| value["count"].as_u64().unwrap());
                let want = expected.iter().filter(|r| r.host == host).count() as u64;
                assert_eq!(counted, want, "facet {host}, query {i}: {text}");
            }
        }
        checked += 1;
        nonempty += usize::from(!expected.is_empty() && expected.len() < records.len());
    }
    println!("{checked} generated queries agree; {nonempty} of them select some but not all lines");
    assert!(
        nonempty > QUERIES / 4,
        "the generator should make selective queries: {nonempty}"
    );

    // The finding that started this: `X AND NOT Y` was silently empty.
    let proxy = server.total(&format!("q={}", enc("proxy AND NOT error"))).await;
    assert_eq!(proxy, server.total(&format!("q={}", enc("proxy -error"))).await);
    assert!(proxy > 1000, "{proxy}");
    server.stop().await;
}
