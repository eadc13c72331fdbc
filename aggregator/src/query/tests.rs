use super::matcher::Matcher;
use super::*;
use crate::store::schema::Hit;
use lookout_shared::parse::fields::FieldValue;
use pattern::Pattern;

fn word(text: &str) -> Expr {
    Expr::Leaf(Leaf::Message(vec![(0, text.to_owned())]))
}

fn not(expr: Expr) -> Expr {
    Expr::Not(Box::new(expr))
}

fn error(q: &str) -> String {
    parse(q).expect_err(q).to_string()
}

#[test]
fn precedence_is_not_then_and_then_or() {
    assert_eq!(
        parse("proxy AND NOT error").unwrap(),
        Expr::And(vec![word("proxy"), not(word("error"))])
    );
    assert_eq!(parse("proxy -error").unwrap(), parse("proxy AND NOT error").unwrap());
    assert_eq!(
        parse("a b OR c").unwrap(),
        Expr::Or(vec![Expr::And(vec![word("a"), word("b")]), word("c")])
    );
    assert_eq!(
        parse("a OR b AND c").unwrap(),
        Expr::Or(vec![word("a"), Expr::And(vec![word("b"), word("c")])])
    );
    assert_eq!(parse("NOT NOT a").unwrap(), word("a"));
    assert_eq!(
        parse("+a -(b OR c)").unwrap(),
        Expr::And(vec![word("a"), not(Expr::Or(vec![word("b"), word("c")]))])
    );
    assert_eq!(parse("NOT(a)").unwrap(), not(word("a")));
    assert_eq!(parse("  ").unwrap(), Expr::All);
    assert_eq!(parse("*").unwrap(), Expr::All);
    // Operators are whole upper-case words.
    assert_eq!(
        parse("NOTE ORACLE and").unwrap(),
        Expr::And(vec![word("note"), word("oracle"), word("and")])
    );
}

#[test]
fn words_become_index_tokens() {
    assert_eq!(
        parse("\"Disk  is FULL\"").unwrap(),
        Expr::Leaf(Leaf::Message(vec![
            (0, "disk".into()),
            (1, "is".into()),
            (2, "full".into())
        ]))
    );
    assert_eq!(
        parse("user@host").unwrap(),
        Expr::Leaf(Leaf::Message(vec![(0, "user".into()), (1, "host".into())]))
    );
    assert_eq!(
        parse(r#""say \"hi\"""#).unwrap(),
        Expr::Leaf(Leaf::Message(vec![(0, "say".into()), (1, "hi".into())]))
    );
    assert!(error("==>").contains("nothing to search for"));
}

#[test]
fn fields_values_and_ranges() {
    assert_eq!(
        parse("host:web-1").unwrap(),
        Expr::Leaf(Leaf::Keyword(Keyword::Host, "web-1".into()))
    );
    assert_eq!(
        parse("source:\"/var/log/my app.log\"").unwrap(),
        Expr::Leaf(Leaf::Keyword(Keyword::Source, "/var/log/my app.log".into()))
    );
    assert_eq!(
        parse("labels.env:prod").unwrap(),
        Expr::Leaf(Leaf::Label("env".into(), "prod".into()))
    );
    assert_eq!(
        parse("offset:[10 TO 20}").unwrap(),
        Expr::Leaf(Leaf::Offset(Bound::Included(10), Bound::Excluded(20)))
    );
    assert_eq!(
        parse("offset:>=7").unwrap(),
        Expr::Leaf(Leaf::Offset(Bound::Included(7), Bound::Unbounded))
    );
    assert_eq!(
        parse("timestamp:[2024-01-01T00:00:00Z TO *]").unwrap(),
        Expr::Leaf(Leaf::Timestamp(Bound::Included(1_704_067_200_000), Bound::Unbounded))
    );
    assert_eq!(
        parse("host:{a TO m]").unwrap(),
        Expr::Leaf(Leaf::KeywordRange(
            Keyword::Host,
            Bound::Excluded("a".into()),
            Bound::Included("m".into())
        ))
    );
    assert_eq!(parse("truncated:true").unwrap(), Expr::Leaf(Leaf::Truncated(true)));
    assert_eq!(parse("level:*").unwrap(), Expr::Leaf(Leaf::HasLevel));
    // Every record has these: "has a value" is everything, not a 500.
    for q in ["message:*", "id:*", "truncated:*", "host:*", "timestamp:*"] {
        assert_eq!(parse(q).unwrap(), Expr::All, "{q}");
    }
    assert_eq!(parse("message:Timeout").unwrap(), word("timeout"));
}

#[test]
fn errors_say_what_and_where() {
    assert_eq!(
        error("\"open"),
        "query syntax error at position 5: the phrase started at position 0 has no closing `\"`"
    );
    assert_eq!(
        error("a AND"),
        "query syntax error at position 5: the query ends where a word, a phrase or a group was expected"
    );
    assert_eq!(error("(a"), "query syntax error at position 2: missing `)`");
    assert_eq!(
        error("a)"),
        "query syntax error at position 1: `)` without a matching `(`"
    );
    assert!(error("labels:x").contains("`labels:` needs a name"));
    assert!(error("fields:x").contains("`fields:` needs a name"));
    assert!(error("has:*").contains("takes a field name"));
    assert!(error("status:[a TO 5]").contains("takes numbers"));
    assert!(error("labels.env:*").contains("not supported"));
    assert!(error("offset:abc").contains("whole number"));
    assert!(error("timestamp:yesterday").contains("RFC 3339"));
    assert!(error("message:[a TO b]").contains("ranges work on"));
    assert!(error("err*").contains("wildcards"));
    assert!(error("a - b").contains("must stand right before"));
    assert!(error("OR a").contains("`OR` where"));
    assert!(error("a\"b\"").contains("a quote must start a phrase"));
    assert!(error("host:").contains("needs a value"));
    // Positions count characters, not bytes.
    assert_eq!(error("ünïcödé (x"), "query syntax error at position 10: missing `)`");
}

#[test]
fn a_query_holds_at_most_sixteen_phrases() {
    let phrases = |n: usize| {
        (0..n)
            .map(|i| format!("\"error {i}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    assert!(parse(&phrases(super::MAX_PHRASES)).is_ok());
    let refused = error(&phrases(super::MAX_PHRASES + 1));
    assert!(refused.contains("17 phrases"), "{refused}");
    // A word of several tokens is a phrase; single words are not.
    let addresses = (0..17).map(|i| format!("10.0.0.{i}")).collect::<Vec<_>>().join(" ");
    assert!(error(&addresses).contains("17 phrases"));
    let words = (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" OR ");
    assert!(parse(&words).is_ok());
}

#[test]
fn hostile_queries_are_refused_without_recursing_deeply() {
    let deep = format!("{}a{}", "(".repeat(700), ")".repeat(700));
    assert!(error(&deep).contains("nested more than 32 deep"));
    let unclosed = "(".repeat(100_000);
    assert!(error(&unclosed).contains("at most 4096"));
    let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&ok).unwrap(), word("a"));
    let many = "a ".repeat(MAX_LEAVES + 1);
    assert!(error(&many).contains("more than 256 terms"));
    let nots = format!("{}a", "NOT ".repeat(1000));
    assert_eq!(parse(&nots).unwrap(), word("a"));
    let signs = format!("{}a", "-".repeat(4000));
    assert_eq!(parse(&signs).unwrap(), word("a"));
}

fn hit(host: &str, level: &str, message: &str) -> Hit {
    Hit {
        id: "00000000000000ab-42".into(),
        timestamp: "2024-01-01T00:00:00Z".into(),
        host: host.into(),
        source: "/var/log/app.log".into(),
        level: level.into(),
        message: message.into(),
        truncated: false,
        cut: false,
        labels: [("env".to_owned(), "prod".to_owned())].into(),
        pattern: None,
        fields: Default::default(),
        marks: Vec::new(),
    }
}

fn matches(q: &str, hit: &Hit) -> bool {
    Matcher::new(parse(q).unwrap()).matches(hit)
}

#[test]
fn matcher_gives_the_index_meaning() {
    let full = hit("web-1", "error", "now: DISK /var is full!");
    assert!(matches("Disk \"is full\" host:web-1 AND level:error +now", &full));
    assert!(!matches(
        "disk \"is full\"",
        &hit("web-1", "error", "disk is almost full")
    ));
    // Tokens, not substrings.
    assert!(!matches("disk", &hit("web-1", "error", "disks")));
    assert!(matches("proxy AND NOT error", &hit("h", "", "proxy open")));
    assert!(!matches("proxy AND NOT error", &hit("h", "", "proxy error")));
    assert!(matches("NOT debug", &hit("h", "", "anything")));
    assert!(matches("a OR b", &hit("h", "", "b")));
    assert!(matches(
        "labels.env:prod stream:00000000000000ab offset:[40 TO 42]",
        &full
    ));
    assert!(!matches("offset:>42", &full));
    assert!(matches("timestamp:[2024-01-01T00:00:00Z TO 1704067200001}", &full));
    assert!(matches("level:* truncated:false host:[w TO x]", &full));
    assert!(!matches("level:*", &hit("h", "", "x")));
    // A token of 40 bytes or more is not indexed, so a phrase skips its position.
    let long = "x".repeat(41);
    assert!(matches("\"alpha beta\"", &hit("h", "", "alpha beta")));
    assert!(!matches("\"alpha beta\"", &hit("h", "", &format!("alpha {long} beta"))));
}

#[test]
fn patterns_between_slashes() {
    let pattern = |q: &str| match parse(q).unwrap() {
        Expr::Leaf(Leaf::Regex(target, pattern)) => (target, pattern.source().to_owned()),
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(
        pattern("message:/time(d)?out/"),
        (RegexTarget::Message, "time(d)?out".into())
    );
    assert_eq!(
        pattern(r"path:/^\/api\//"),
        (RegexTarget::Field("path".into()), "^/api/".into()),
        "`\\/` is a slash"
    );
    assert_eq!(
        pattern(r"host:/web-\d+/"),
        (RegexTarget::Keyword(Keyword::Host), r"web-\d+".into())
    );
    assert_eq!(
        pattern("labels.env:/prod|stage/"),
        (RegexTarget::Label("env".into()), "prod|stage".into())
    );
    // A path is a value, not a pattern: the closing slash must end the word.
    assert_eq!(
        parse("source:/var/log/syslog").unwrap(),
        Expr::Leaf(Leaf::Keyword(Keyword::Source, "/var/log/syslog".into()))
    );
    assert_eq!(
        parse("(host:/a/)").unwrap(),
        Expr::Leaf(Leaf::Regex(
            RegexTarget::Keyword(Keyword::Host),
            Pattern::new("a").unwrap()
        ))
    );
    assert!(error("offset:/1/").contains("patterns work on message, host"));
    assert!(error("id:/x/").contains("not a pattern"));
    assert!(
        error("host:/(web/").contains("cannot be used"),
        "{}",
        error("host:/(web/")
    );
    let fifth = error("host:/a/ host:/b/ host:/c/ host:/d/ host:/e/");
    assert!(fifth.contains("position 36: more than 4 patterns"), "{fifth}");
    // The closing slash must end the word, and a slash inside is escaped.
    assert_eq!(
        pattern(r"source:/a\/b/"),
        (RegexTarget::Keyword(Keyword::Source), "a/b".into())
    );
    assert_eq!(
        parse("source:/a/b/").unwrap(),
        Expr::Leaf(Leaf::Keyword(Keyword::Source, "/a/b/".into()))
    );
}

#[test]
fn live_tail_matches_patterns_as_the_index_holds_values() {
    let mut hit = hit("web-12", "", "Connection TimedOut after 30s");
    hit.fields = [("path".to_owned(), FieldValue::Text("/api/users".into()))].into();
    let matches = |q: &str| Matcher::new(parse(q).unwrap()).matches(&hit);
    assert!(matches("message:/time(d)?out/"), "words are lower case in the index");
    assert!(!matches("message:/TimedOut/"));
    assert!(!matches("message:/connection timedout/"), "a pattern matches one word");
    assert!(matches("host:/^web-[0-9]+$/") && !matches("host:/^eb/"));
    assert!(matches(r"path:/^\/api\//") && !matches(r"path:/^\/v1/"));
    assert!(!matches("status:/.*/"), "no such field");
}

mod pipes {
    use super::super::pipe::{Aggregate, Function, GroupKey, RowStep, StatsField};
    use super::*;

    fn stats_of(q: &str) -> pipe::Stats {
        parse_query(q).expect(q).stats.expect("a pipe")
    }

    fn pipe_error(q: &str) -> String {
        parse_query(q).expect_err(q).to_string()
    }

    fn field(name: &str) -> StatsField {
        StatsField::Field(name.to_owned())
    }

    #[test]
    fn stats_reads_aggregates_keys_and_names_columns() {
        let query = parse_query("status:>=500 | stats count(), p95(duration_ms) as slow by host, _time(5m)").unwrap();
        assert_eq!(query.filter_text, "status:>=500");
        assert!(matches!(query.filter, Expr::Leaf(Leaf::FieldRange(..))));
        let stats = query.stats.unwrap();
        assert_eq!(stats.columns, ["host", "_time(5m)", "count()", "slow"]);
        assert_eq!(
            stats.by,
            [
                GroupKey::Field(StatsField::Keyword(Keyword::Host)),
                GroupKey::TimeBucket(300_000)
            ]
        );
        assert_eq!(
            stats.aggregates,
            [
                Aggregate {
                    function: Function::Count,
                    field: None
                },
                Aggregate {
                    function: Function::Percentile(0.95),
                    field: Some(field("duration_ms"))
                },
            ]
        );
        assert!(stats.rows.is_empty(), "rows in key order");
        // A pipe alone means every record; spaces and parentheses are free.
        let bare = parse_query("|stats count( path ),sum(bytes) by (fields.host)").unwrap();
        assert_eq!(bare.filter, Expr::All);
        assert_eq!(bare.filter_text, "");
        assert_eq!(
            bare.stats.unwrap().columns,
            ["fields.host", "count(path)", "sum(bytes)"]
        );
        assert_eq!(
            stats_of("* | stats median(x)").aggregates[0].function,
            Function::Percentile(0.5)
        );
        assert_eq!(
            stats_of("* | stats min(_time)").aggregates[0].field,
            Some(StatsField::Time)
        );
    }

    #[test]
    fn top_sort_and_limit_shape_the_rows_in_the_order_written() {
        let top = stats_of("error | top 3 client");
        assert_eq!(top.columns, ["client", "count"]);
        assert_eq!(top.rows, [RowStep::Sort(vec![(1, true)]), RowStep::Limit(3)]);
        assert_eq!(stats_of("| top by (client, path)").rows[1], RowStep::Limit(10));
        let sorted = stats_of("* | stats count(), avg(took) as t by path | sort by t desc, count() | limit 5");
        assert_eq!(
            sorted.rows,
            [RowStep::Sort(vec![(2, true), (1, false)]), RowStep::Limit(5)]
        );
        // The three most frequent, then in client order: not the first three clients.
        assert_eq!(
            stats_of("| top 3 client | sort by client").rows,
            [
                RowStep::Sort(vec![(1, true)]),
                RowStep::Limit(3),
                RowStep::Sort(vec![(0, false)])
            ]
        );
        assert_eq!(
            stats_of("* | stats count() by path | sort by (count() desc)").rows,
            [RowStep::Sort(vec![(1, true)])]
        );
        // A bucket is named in one unit, and `sort` finds it however written.
        let buckets = stats_of("| stats count() by _time(1 m), _time(90s) | sort by _time(60s) desc");
        assert_eq!(buckets.columns, ["_time(1m)", "_time(90s)", "count()"]);
        assert_eq!(buckets.rows, [RowStep::Sort(vec![(0, true)])]);
        assert_eq!(stats_of("| stats count() by _time(24h)").columns[0], "_time(1d)");
    }

    #[test]
    fn a_bar_ends_a_word_and_quotes_keep_it() {
        assert_eq!(parse_query("a|stats count()").unwrap().filter, word("a"));
        assert!(parse_query("\"a | b\"").unwrap().stats.is_none());
        assert!(parse_query("path:/a|b/").unwrap().stats.is_none());
        // Search and live tail answer lines: a pipe is refused there, by name.
        assert!(error("error | stats count()").contains("/api/v1/logs/stats"));
    }

    #[test]
    fn pipe_errors_name_the_position() {
        for (q, position, needle) in [
            ("a | stats foo(x)", 10, "unknown aggregate `foo`"),
            ("a | sort by x", 4, "put `| stats …` or `| top …` before it"),
            ("a | stats count() | stats count()", 20, "only one"),
            ("| stats count() by _time(1m), _time(60s)", 30, "grouped by twice"),
            ("| stats sum()", 8, "needs a field"),
            ("| stats sum(host)", 8, "is text"),
            ("| stats avg(_time)", 8, "does not take `_time`"),
            ("| stats count() by labels.env", 19, "not kept as columns"),
            ("| stats count() by message", 19, "cannot be grouped"),
            ("| stats count() by _time", 19, "`_time(1m)`"),
            ("| stats count() by _time(500ms)", 25, "whole number of seconds"),
            ("| stats count() by host, host", 25, "grouped by twice"),
            ("| stats count(), count()", 17, "two columns are named `count()`"),
            (
                "| stats count() by path | sort by nope",
                34,
                "not a column: path, count()",
            ),
            ("| top 0 client", 6, "from 1 to 10000"),
            ("| limit 5", 2, "before it"),
            ("| grep x", 2, "unknown pipe `grep`"),
            ("| stats count() x", 16, "unexpected `x`"),
            ("(a | stats count())", 3, "inside parentheses"),
            ("host:| stats count()", 5, "needs a value"),
            ("a |", 3, "a pipe name"),
        ] {
            let message = pipe_error(q);
            assert!(
                message.contains(&format!("position {position}:")) && message.contains(needle),
                "{q}: {message}"
            );
        }
    }
}
