//! `lookout-bench`: the figures of BENCHMARKS.md, measured on this machine with
//! the release binaries (`cargo build --release --workspace` first).
//!
//! - `lookout-bench agent FILE`: the agent ships FILE to an HTTP sink that
//!   acknowledges at once; prints lines/s, MiB/s, CPU seconds, lines per
//!   CPU-second and peak RSS of the agent. Done when the agent's checkpoint
//!   reaches the end of the file (every byte acknowledged).
//! - `lookout-bench pipeline FILE`: the agent ships FILE to a real aggregator;
//!   prints end-to-end lines/s until every line is searchable, the time from a
//!   line written to it being searchable (p50 over 10 lines), and search latency
//!   (p50/p99 over 200 term queries) on what was indexed.
//!
//! - `lookout-bench rsyslog FILE`: Debian's rsyslogd (imfile, inotify) ships
//!   FILE over TCP (omfwd, RFC 5424) to a loopback socket sink, measured the
//!   same way as the agent, so both figures come from one machine.
//!
//! - `lookout-bench idle SECONDS`: an idle host. The agent (metrics every
//!   10 s, one quiet log folder) and Debian's prometheus-node-exporter (scraped
//!   every 10 s) run side by side; prints each one's CPU share and RSS.
//!
//! - `lookout-bench alert-latency ROUNDS`: a 16 MiB tmpfs filled past 80 %
//!   while the agent samples it every 10 s; prints the time from the moment
//!   the filesystem crosses 80 % (the ballast synced) to the FIRING email
//!   accepted by a real SMTP server (aiosmtpd), per round and p50/max. The
//!   rule has `for = "0s"`; `group_wait` is 0 (a group's first message is not
//!   held back) and evaluation runs at its default 15 s interval plus on every
//!   metric batch. Needs root (mount).
//!
//! - `lookout-bench ui-search FILE|DIR`: the agent ships FILE to a real
//!   aggregator (or one is started on the data a `lookout-bench index FILE
//!   DIR` kept, with a user of the bench's own); then headless Chromium
//!   (Debian's `chromium` and `chromium-driver`, see
//!   `lookout_tests::webdriver`) logs in to the search page over all time,
//!   asks the first view 10 times (Enter on `*`: the newest hits, histogram
//!   and facets over all time), then runs 20 term queries by typing each
//!   into `#query` and pressing Enter. Each is timed in the page with
//!   `performance.now()`, from the Enter keydown to the mutation of
//!   `#result-count` (the search, histogram and facet answers received and
//!   the results drawn into the DOM; layout and paint not included); prints
//!   p50 and max of each kind.
//!
//! - `lookout-bench patterns FILE...`: pattern assignment alone
//!   (`lookout_patterns::Miner::assign`) on one thread, each file's lines in
//!   memory, one source per file, each file read over and over until a
//!   million lines were assigned; prints lines/s, patterns made (aliases
//!   included) and the time of the first pass (while patterns are being
//!   learnt). Whole lines, timestamps included: ingest will mine the
//!   message without its timestamp, as the accuracy test does.
//!
//! - `lookout-bench detect FILE`: the aggregator's per-line detection over
//!   every line of FILE on one thread, the file already in memory: event
//!   time and level alone, then with field extraction (all that ingest
//!   derives from a line); prints lines/s of each and what was found.
//!
//! - `lookout-bench journald ENTRIES`: a real systemd-journald of the
//!   bench's own (`lookout_tests::journald`) is given ENTRIES entries of the
//!   benchmark dataset's kind of text by `systemd-cat` (3 identifiers);
//!   then `journalctl --output=export > /dev/null` reads them all (the
//!   ceiling: the journal's own reader), and the agent's journal source
//!   ships them to the null HTTP sink; prints entries/s, CPU seconds,
//!   entries per CPU-second and peak RSS of each. Done when the agent's
//!   journal checkpoint passes the last entry. Needs root (mount namespace).
//!
//! - `lookout-bench receivers FILE`: every line of FILE into a real
//!   aggregator through each way in, a fresh aggregator each: the agent's
//!   protocol (`/api/v1/ingest`, JSON batches of 5,000 lines), the
//!   Elasticsearch bulk API (NDJSON of 5,000 documents) and syslog over TCP
//!   (RFC 5424, LF framing, 2 connections), each from a generator in this
//!   process whose requests are built before the clock starts; then syslog
//!   from Debian's rsyslogd (imfile → omfwd, octet-counted RFC 5424).
//!   Prints, until every line is searchable, lines/s and the aggregator's
//!   CPU per line, and that cost against the agent protocol's.
//!
//! - `lookout-bench index FILE [DIR]`: a plain tantivy indexer (the baseline of
//!   issue 13, in this process) and then a real agent into a real
//!   aggregator index FILE, one after the other; prints for each wall time,
//!   lines/s, CPU seconds, lines per CPU-second, MB/s per core, peak RSS and
//!   index size against the file's, then the latency (the first asking,
//!   p50 and max of 20) of the search page's first view on the aggregator:
//!   `q=*` newest 100, the histogram, the three facets, a term, three
//!   phrases and an address; the plain index is asked the same term,
//!   phrases and address in process. Last, the agent and aggregator again
//!   with `[ingest] patterns = false` (a row of its own: what mining
//!   patterns costs). With DIR, the aggregator's data stays
//!   in DIR, and `lookout-bench first-view DIR` asks the first view again
//!   of an aggregator started on it; `lookout-bench space DIR` shows its
//!   bytes per field and part (terms, postings, positions, columns, doc
//!   store).
//!
//! - `lookout-bench fleet HOSTS [SECONDS [LINES]]`: HOSTS simulated agents
//!   (LINES lines a second each, default 10, and a real agent's metric set
//!   every 10 s) against one aggregator with its alert rules on, for SECONDS
//!   (default 60); see `fleet.rs`.
//! - `lookout-bench metric-storage HOSTS HOURS`: HOURS of past metric sets
//!   of HOSTS hosts sent as a backlog; bytes per sample once compacted.
//! - `lookout-bench archive FILE HOSTS [LINES]`: FILE's lines from HOSTS
//!   hosts in turn, LINES a request, their day archived to a folder and
//!   restored; see `archive.rs`.
//!
//! Make FILE with `python3 scripts/make-dataset.py FILE N`.

mod archive;
mod fleet;
mod scale;

use lookout_tests::{API_TOKEN, INGEST_TOKEN, free_port, http, wait_until};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(file)) = (args.get(1), args.get(2)) else {
        eprintln!(
            "usage: lookout-bench agent|pipeline|rsyslog|detect|receivers FILE | ui-search FILE|DIR | index FILE [DIR] | first-view DIR | space DIR | stats DIR | idle SECONDS | alert-latency ROUNDS | journald ENTRIES | fleet HOSTS [SECONDS [LINES]] | metric-storage HOSTS HOURS"
        );
        std::process::exit(2);
    };
    if mode == "alert-latency" {
        bench_alert_latency(
            file.parse()
                .unwrap_or_else(|_| panic!("`{file}` is not a number of rounds")),
        );
        return;
    }
    if mode == "journald" {
        bench_journald(
            file.parse()
                .unwrap_or_else(|_| panic!("`{file}` is not a number of entries")),
        );
        return;
    }
    if mode == "fleet" {
        let number = |at: usize, default: u64| {
            args.get(at).map_or(default, |text| {
                text.parse().unwrap_or_else(|_| panic!("`{text}` is not a number"))
            })
        };
        fleet::bench_fleet(number(2, 0) as usize, number(3, 60), number(4, 10));
        return;
    }
    if mode == "metric-storage" {
        let number = |at: usize| {
            args.get(at)
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("usage: lookout-bench metric-storage HOSTS HOURS"))
        };
        fleet::bench_metric_storage(number(2) as usize, number(3) as i64);
        return;
    }
    if mode == "idle" {
        bench_idle(
            file.parse()
                .unwrap_or_else(|_| panic!("`{file}` is not a number of seconds")),
        );
        return;
    }
    if mode == "patterns" {
        bench_patterns(&args[2..]);
        return;
    }
    let file = fs::canonicalize(file).unwrap_or_else(|err| panic!("{file}: {err}"));
    match mode.as_str() {
        "agent" => bench_agent(&file),
        "pipeline" => bench_pipeline(&file),
        "rsyslog" => bench_rsyslog(&file),
        "ui-search" => bench_ui_search(&file),
        "detect" => bench_detect(&file),
        "receivers" => bench_receivers(&file),
        "index" => scale::bench_index(&file, args.get(3).map(Path::new)),
        "first-view" => scale::bench_first_view(&file),
        "space" => scale::bench_space(&file),
        "stats" => scale::bench_stats(&file),
        "archive" => archive::bench_archive(
            &file,
            args.get(3)
                .and_then(|hosts| hosts.parse().ok())
                .unwrap_or_else(|| panic!("usage: lookout-bench archive FILE HOSTS [LINES]")),
            args.get(4).map_or(100, |lines| {
                lines
                    .parse()
                    .unwrap_or_else(|_| panic!("`{lines}` is not a number of lines"))
            }),
        ),
        other => {
            eprintln!(
                "unknown mode {other}: agent, pipeline, rsyslog, ui-search, detect, patterns, receivers, index, first-view, space, stats, archive, idle, alert-latency, journald, fleet or metric-storage"
            );
            std::process::exit(2);
        }
    }
}

/// Pattern assignment alone, per file: one thread, no I/O in the timed loop.
fn bench_patterns(files: &[String]) {
    const ASSIGNED: usize = 1_000_000;
    println!("| file | lines | patterns made | first pass | lines/s over {ASSIGNED} assigned |");
    println!("|---|---|---|---|---|");
    let (mut all_lines, mut all_seconds) = (0usize, 0f64);
    for file in files {
        let text = fs::read_to_string(file).unwrap_or_else(|err| panic!("{file}: {err}"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.is_empty(), "{file} has no lines");
        let mut miner = lookout_patterns::Miner::default();
        let started = Instant::now();
        let mut first_pass = None;
        let mut assigned = 0;
        while assigned < ASSIGNED {
            for line in &lines {
                std::hint::black_box(miner.assign(file, line));
            }
            assigned += lines.len();
            first_pass.get_or_insert(started.elapsed());
        }
        let seconds = started.elapsed().as_secs_f64();
        let name = Path::new(file)
            .file_name()
            .map_or(file.as_str(), |n| n.to_str().unwrap_or(file));
        println!(
            "| {name} | {} | {} | {:.1} ms | {:.0} |",
            lines.len(),
            miner.made(),
            first_pass.unwrap_or_default().as_secs_f64() * 1000.0,
            assigned as f64 / seconds
        );
        all_lines += assigned;
        all_seconds += seconds;
    }
    println!("all files: {:.0} lines/s", all_lines as f64 / all_seconds);
}

/// Detection alone: no I/O in the timed loop, one thread, as one ingest
/// request is enriched. Twice: event time and level only, then all that
/// ingest derives from a line (time, level and extracted fields).
fn bench_detect(file: &Path) {
    let text = fs::read_to_string(file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
    let lines: Vec<&str> = text.lines().collect();
    let read_at = jiff::Timestamp::now();
    let zone = jiff::tz::TimeZone::UTC;
    let started = Instant::now();
    let (mut timed, mut leveled) = (0u64, 0u64);
    for line in &lines {
        timed += u64::from(lookout_shared::parse::parse_timestamp(line, read_at, &zone).is_some());
        leveled += u64::from(lookout_shared::parse::detect_level(line).is_some());
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "time and level: {} lines in {elapsed:.2} s = {:.0} lines/s; {timed} with a time, {leveled} with a level",
        lines.len(),
        lines.len() as f64 / elapsed
    );
    let rules = lookout_shared::parse::LineRules::default();
    let started = Instant::now();
    let mut fields = 0u64;
    for line in &lines {
        fields += rules.detect(line, read_at).fields.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "time, level and fields: {} lines in {elapsed:.2} s = {:.0} lines/s; {fields} fields",
        lines.len(),
        lines.len() as f64 / elapsed
    );
}

fn release_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let path = exe.parent().expect("in a folder").join(name);
    assert!(
        path.exists(),
        "{} missing: cargo build --release --workspace",
        path.display()
    );
    path
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lookout-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn count_lines(file: &Path) -> u64 {
    let mut reader = BufReader::with_capacity(1 << 20, fs::File::open(file).expect("dataset"));
    let mut lines = 0;
    loop {
        let buffer = reader.fill_buf().expect("read");
        if buffer.is_empty() {
            return lines;
        }
        lines += newline_count(buffer);
        let consumed = buffer.len();
        reader.consume(consumed);
    }
}

fn newline_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Starts a release aggregator with its data in `dir`; returns it and its URL
/// once it answers `/healthz`.
fn start_aggregator(dir: &Path) -> (Child, String) {
    start_aggregator_with(dir, "", "")
}

/// [`start_aggregator`] with extra top-level keys and sections in its config.
fn start_aggregator_with(dir: &Path, top_level: &str, sections: &str) -> (Child, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    fs::write(
        dir.join("aggregator.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{top_level}\n[auth]\ningest_tokens = [\"{INGEST_TOKEN}\"]\napi_tokens = [\"{API_TOKEN}\"]\n{sections}\n",
            dir.join("data").display()
        ),
    )
    .expect("config");
    let aggregator = Command::new(release_binary("lookout-aggregator"))
        .arg("--config")
        .arg(dir.join("aggregator.toml"))
        .env("RUST_LOG", "warn")
        .stderr(fs::File::create(dir.join("aggregator.log")).expect("log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("aggregator starts");
    wait_until("aggregator ready", Duration::from_secs(60), || {
        http()
            .get(format!("{url}/healthz"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });
    (aggregator, url)
}

/// Starts the agent on `file` (read from its beginning) against `url`.
fn start_agent(dir: &Path, url: &str, file: &Path) -> Child {
    start_agent_with(dir, url, &format!("[[logs]]\npaths = [\"{}\"]\n", file.display()))
}

/// Starts the agent with `sources` (TOML tables) against `url`.
fn start_agent_with(dir: &Path, url: &str, sources: &str) -> Child {
    let config = format!(
        "aggregator_url = \"{url}\"\ntoken = \"{INGEST_TOKEN}\"\nhost = \"bench\"\nstate_dir = \"{}\"\n{sources}",
        dir.join("agent-state").display(),
    );
    fs::write(dir.join("agent.toml"), config).expect("config");
    Command::new(release_binary("lookout-agent"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("RUST_LOG", "warn")
        .stderr(fs::File::create(dir.join("agent.log")).expect("log"))
        .spawn()
        .expect("agent starts")
}

/// The offset the agent's checkpoint has reached for its only file.
fn checkpoint_offset(dir: &Path) -> u64 {
    highest_checkpoint(dir, "streams")
}

/// The highest offset among the checkpoint file's entries of `section`
/// (`streams` for files, `journal` for journal sequences).
fn highest_checkpoint(dir: &Path, section: &str) -> u64 {
    let Ok(text) = fs::read_to_string(dir.join("agent-state/checkpoints.json")) else {
        return 0;
    };
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    value[section]
        .as_array()
        .map(|entries| entries.iter().filter_map(|s| s["offset"].as_u64()).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Waits until `done`, then kills the agent; returns the wall seconds since
/// `started`, and the agent's CPU seconds and peak RSS (kB) up to then.
fn measure_until(mut agent: Child, started: Instant, what: &str, mut done: impl FnMut() -> bool) -> (f64, f64, u64) {
    let pid = agent.id();
    let mut usage = (0.0, 0);
    wait_until(what, Duration::from_secs(1800), || {
        usage = process_usage(pid);
        done()
    });
    let wall = started.elapsed().as_secs_f64();
    let _ = agent.kill();
    let _ = agent.wait();
    (wall, usage.0, usage.1)
}

/// CPU seconds (user + system) and peak RSS (kB) of a running process.
fn process_usage(pid: u32) -> (f64, u64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks / 100.0, status_kb(pid, "VmHWM"))
}

/// A kB figure of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`, …); 0
/// when the process or the field is gone.
fn status_kb(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 sink on loopback that reads each request body and
/// answers 200 at once, counting requests.
fn null_sink(requests: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let requests = Arc::clone(&requests);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    let answer = "{\"accepted\":0,\"duplicates\":0}";
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn bench_agent(file: &Path) {
    let size = fs::metadata(file).expect("dataset").len();
    let lines = count_lines(file);
    let dir = work_dir("agent");
    let requests = Arc::new(AtomicU64::new(0));
    let port = null_sink(Arc::clone(&requests));
    let started = Instant::now();
    let agent = start_agent(&dir, &format!("http://127.0.0.1:{port}"), file);
    let (wall, cpu, rss_kb) = measure_until(agent, started, "the agent to ship the whole file", || {
        checkpoint_offset(&dir) >= size
    });
    println!(
        "agent → null HTTP sink: {lines} lines, {:.1} MiB, {} requests",
        size as f64 / 1048576.0,
        requests.load(Ordering::Relaxed)
    );
    println!(
        "| lookout-agent | tail → http (json, zstd) → null HTTP sink | {wall:.1} s | {:.0} k | {:.0} | {cpu:.1} | {:.0} k | {:.0} MB |",
        lines as f64 / wall / 1000.0,
        size as f64 / 1048576.0 / wall,
        lines as f64 / cpu.max(0.001) / 1000.0,
        rss_kb as f64 / 1000.0
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The journal source against the journal's own reader, on the same entries.
fn bench_journald(entries: u64) {
    let dir = work_dir("journald");
    let journald = lookout_tests::journald::Journald::start(&dir);
    const IDENTIFIERS: [&str; 3] = ["nginx", "postgres", "app"];
    let per_identifier = entries.div_ceil(3);
    for (i, identifier) in IDENTIFIERS.iter().enumerate() {
        let lines: Vec<String> = (0..per_identifier)
            .map(|n| {
                let number = n * 3 + i as u64;
                format!(
                    "<{}>request {number} GET /api/v1/orders/{} from 10.{}.{}.{} took {} ms user=u{}",
                    [6, 6, 6, 4, 3][(number % 5) as usize],
                    number % 9973,
                    number % 256,
                    (number / 256) % 256,
                    number % 200,
                    number % 997,
                    number % 5000
                )
            })
            .collect();
        journald.write(identifier, &lines);
    }
    let last = format!("request {} ", (per_identifier - 1) * 3 + 2);
    let mut last_seqnum = 0;
    wait_until("journald to write every entry", Duration::from_secs(600), || {
        let output = Command::new("journalctl")
            .arg("--directory")
            .arg(journald.directory())
            .args(["--output=export", "--lines=1", "--output-fields=MESSAGE"])
            .output()
            .expect("journalctl runs");
        let text = String::from_utf8_lossy(&output.stdout);
        last_seqnum = text
            .lines()
            .find_map(|line| line.strip_prefix("__CURSOR="))
            .and_then(|cursor| cursor.split(';').find_map(|item| item.strip_prefix("i=")))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .unwrap_or(0);
        text.contains(&last)
    });
    let total = entries_in_journal(journald.directory());
    let journal_bytes: u64 = fs::read_dir(journald.directory())
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|machine| fs::read_dir(machine.path()).into_iter().flatten().flatten())
        .filter_map(|file| file.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();

    // The ceiling: journalctl alone, its output thrown away.
    let started = Instant::now();
    let mut reader = Command::new("journalctl")
        .arg("--directory")
        .arg(journald.directory())
        .args(["--output=export", "--no-pager"])
        .stdout(Stdio::null())
        .spawn()
        .expect("journalctl runs");
    let pid = reader.id();
    let mut usage = (0.0, 0);
    while reader.try_wait().expect("journalctl").is_none() {
        usage = process_usage(pid);
        std::thread::sleep(Duration::from_millis(20));
    }
    let ceiling_wall = started.elapsed().as_secs_f64();
    let (ceiling_cpu, ceiling_rss) = usage;

    let requests = Arc::new(AtomicU64::new(0));
    let port = null_sink(Arc::clone(&requests));
    let sources = format!(
        "[journald]\ndirectory = \"{}\"\nstart_at = \"beginning\"\n",
        journald.directory().display()
    );
    let started = Instant::now();
    let agent = start_agent_with(&dir, &format!("http://127.0.0.1:{port}"), &sources);
    let (wall, cpu, rss_kb) = measure_until(agent, started, "the agent to ship every entry", || {
        highest_checkpoint(&dir, "journal") > last_seqnum
    });
    println!(
        "{total} journal entries ({:.1} MiB of journal files), {} requests",
        journal_bytes as f64 / 1048576.0,
        requests.load(Ordering::Relaxed)
    );
    println!("| reader | wall | entries/s | CPU s | entries per CPU-s | peak RSS |");
    println!(
        "| `journalctl --output=export > /dev/null` (ceiling) | {ceiling_wall:.2} s | {:.0} k | {ceiling_cpu:.2} | {:.0} k | {:.0} MB |",
        total as f64 / ceiling_wall / 1000.0,
        total as f64 / ceiling_cpu.max(0.001) / 1000.0,
        ceiling_rss as f64 / 1000.0
    );
    println!(
        "| lookout-agent `[journald]` → null HTTP sink (agent process alone; its journalctl child apart) | {wall:.2} s | {:.0} k | {cpu:.2} | {:.0} k | {:.0} MB |",
        total as f64 / wall / 1000.0,
        total as f64 / cpu.max(0.001) / 1000.0,
        rss_kb as f64 / 1000.0
    );
    drop(journald);
    let _ = fs::remove_dir_all(&dir);
}

/// How many entries the journal in `directory` holds.
fn entries_in_journal(directory: &Path) -> u64 {
    let output = Command::new("journalctl")
        .arg("--directory")
        .arg(directory)
        .args(["--output=cat", "--output-fields=PRIORITY", "--no-pager"])
        .output()
        .expect("journalctl runs");
    newline_count(&output.stdout)
}

/// How many records match `query`. Asks for no hits: the benches poll
/// this while they measure the aggregator's CPU, and a count alone is read
/// from segment sizes where it can be.
fn search_total(url: &str, query: &str) -> u64 {
    let mut response = http()
        .get(format!("{url}/api/v1/logs/search"))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .query("q", query)
        .query("limit", "0")
        .call()
        .expect("search");
    let body: Value = response.body_mut().read_json().expect("json");
    body["total"].as_u64().unwrap_or(0)
}

fn bench_pipeline(file: &Path) {
    let lines = count_lines(file);
    let dir = work_dir("pipeline");
    let (mut aggregator, url) = start_aggregator(&dir);
    let count = |query: &str| search_total(&url, query);

    let live = dir.join("live.log");
    fs::write(&live, "bench live file start\n").expect("live file");
    let started = Instant::now();
    let mut agent = start_agent(&dir, &url, file);
    wait_until("every line searchable", Duration::from_secs(3600), || {
        std::thread::sleep(Duration::from_millis(400));
        count("") >= lines
    });
    let wall = started.elapsed().as_secs_f64();
    let size = fs::metadata(file).expect("dataset").len();
    let (agg_cpu, agg_rss) = process_usage(aggregator.id());
    println!(
        "pipeline: {lines} lines in {wall:.1} s: {:.0} lines/s, {:.1} MiB/s end to end (aggregator {agg_cpu:.1} CPU-s, peak RSS {:.0} MB)",
        lines as f64 / wall,
        size as f64 / 1048576.0 / wall,
        agg_rss as f64 / 1000.0
    );

    let _ = agent.kill();
    let _ = agent.wait();
    let config = fs::read_to_string(dir.join("agent.toml")).expect("config");
    fs::write(
        dir.join("agent.toml"),
        config.replace(&file.display().to_string(), &live.display().to_string()),
    )
    .expect("config");
    let mut agent = Command::new(release_binary("lookout-agent"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("RUST_LOG", "warn")
        .stderr(
            fs::File::options()
                .append(true)
                .open(dir.join("agent.log"))
                .expect("log"),
        )
        .spawn()
        .expect("agent starts");
    let mut to_searchable = Vec::new();
    for round in 0..10 {
        let marker = format!("freshmarker{round}x");
        let written = Instant::now();
        let mut handle = fs::File::options().append(true).open(&live).expect("live");
        writeln!(handle, "2026-11-22T10:00:00Z INFO {marker}").expect("write");
        drop(handle);
        wait_until("the fresh line", Duration::from_secs(30), || count(&marker) == 1);
        to_searchable.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    to_searchable.sort_by(f64::total_cmp);
    println!(
        "time to searchable: p50 {:.0} ms, max {:.0} ms",
        to_searchable[5], to_searchable[9]
    );

    let terms = [
        "error",
        "session",
        "block",
        "terminating",
        "failed",
        "connection",
        "kernel",
        "INFO",
        "user",
        "received",
    ];
    let mut latencies = Vec::new();
    for round in 0..200 {
        let term = terms[round % terms.len()];
        let asked = Instant::now();
        let mut response = http()
            .get(format!("{url}/api/v1/logs/search"))
            .header("Authorization", format!("Bearer {API_TOKEN}"))
            .query("q", term)
            .call()
            .expect("search");
        let _: Value = response.body_mut().read_json().expect("json");
        latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "search (term query, limit 100, {lines} lines): p50 {:.1} ms, p99 {:.1} ms",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = aggregator.kill();
    let _ = aggregator.wait();
    let _ = fs::remove_dir_all(&dir);
}

/// A TCP sink on loopback that counts the lines it receives.
fn line_counting_sink(lines: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 1 << 20];
                while let Ok(read) = stream.read(&mut buffer) {
                    if read == 0 {
                        return;
                    }
                    lines.fetch_add(newline_count(&buffer[..read]), Ordering::Relaxed);
                }
            });
        }
    });
    port
}

fn bench_rsyslog(file: &Path) {
    let size = fs::metadata(file).expect("dataset").len();
    let lines = count_lines(file);
    let dir = work_dir("rsyslog");
    let received = Arc::new(AtomicU64::new(0));
    let port = line_counting_sink(Arc::clone(&received));
    let config = format!(
        "global(workDirectory=\"WORKDIR\")\n\
         module(load=\"imfile\" mode=\"inotify\")\n\
         input(type=\"imfile\" File=\"{file}\" Tag=\"bench\" freshStartTail=\"off\")\n\
         action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" template=\"RSYSLOG_SyslogProtocol23Format\")\n",
        file = file.display()
    );
    let started = Instant::now();
    let mut rsyslog = lookout_tests::rsyslog::start(&dir, "rsyslog", &config);
    let pid = rsyslog.pid().expect("rsyslogd runs");
    let mut usage = (0.0, 0);
    wait_until("rsyslog to ship the whole file", Duration::from_secs(1800), || {
        usage = process_usage(pid);
        received.load(Ordering::Relaxed) >= lines
    });
    let wall = started.elapsed().as_secs_f64();
    rsyslog.kill();
    let (cpu, rss_kb) = usage;
    println!(
        "| rsyslogd | imfile (inotify) → omfwd tcp (RFC 5424) → socket sink | {wall:.1} s | {:.0} k | {:.0} | {cpu:.1} | {:.0} k | {:.0} MB |",
        lines as f64 / wall / 1000.0,
        size as f64 / 1048576.0 / wall,
        lines as f64 / cpu.max(0.001) / 1000.0,
        rss_kb as f64 / 1000.0
    );
    let _ = fs::remove_dir_all(&dir);
}

/// How one way in is fed in [`bench_receivers`].
enum Feed {
    /// HTTP request bodies to POST to a path, from 2 threads.
    Http(&'static str, Vec<Vec<u8>>),
    /// Byte streams to write to the syslog TCP port, one connection each.
    SyslogTcp(Vec<Vec<u8>>),
    /// Debian's rsyslogd reading FILE and forwarding it over TCP.
    Rsyslog,
}

fn bench_receivers(file: &Path) {
    let text = String::from_utf8_lossy(&fs::read(file).expect("dataset")).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len() as u64;
    const BATCH: usize = 5000;
    let agent_bodies = lines
        .chunks(BATCH)
        .enumerate()
        .map(|(i, chunk)| {
            let mut offset = 0;
            let records = chunk
                .iter()
                .map(|line| {
                    let record = lookout_shared::wire::WireRecord {
                        offset,
                        read_at_ms: 1_790_000_000_000,
                        message: (*line).to_owned(),
                        ..Default::default()
                    };
                    offset += line.len() as u64 + 1;
                    record
                })
                .collect();
            let batch = lookout_shared::wire::IngestBatch {
                host: "bench".into(),
                streams: vec![lookout_shared::wire::StreamChunk {
                    stream: lookout_shared::wire::stream_id("bench", i as u64, 0, 0),
                    source: "/var/log/bench.log".into(),
                    start: 0,
                    end: offset,
                    records,
                    ..Default::default()
                }],
                metrics: Vec::new(),
            };
            serde_json::to_vec(&batch).expect("serialises")
        })
        .collect();
    let bulk_bodies = lines
        .chunks(BATCH)
        .map(|chunk| {
            let mut body = Vec::new();
            for line in chunk {
                body.extend_from_slice(b"{\"index\":{\"_index\":\"bench\"}}\n");
                serde_json::to_writer(&mut body, &serde_json::json!({"message": line, "host": "bench"}))
                    .expect("serialises");
                body.push(b'\n');
            }
            body
        })
        .collect();
    let half = lines.len().div_ceil(2);
    let syslog_streams = lines
        .chunks(half.max(1))
        .map(|part| {
            part.iter()
                .flat_map(|line| format!("<14>1 - bench bench - - - {line}\n").into_bytes())
                .collect()
        })
        .collect();
    println!(
        "| way in | lines | wall | lines/s | aggregator CPU-s | aggregator µs per line | per line vs agent protocol |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut agent_cost = None;
    for (name, feed) in [
        (
            "agent protocol (`/api/v1/ingest`, JSON) from a generator",
            Feed::Http("/api/v1/ingest", agent_bodies),
        ),
        (
            "Elasticsearch bulk (`/_bulk`, NDJSON) from a generator",
            Feed::Http("/_bulk", bulk_bodies),
        ),
        (
            "syslog TCP (RFC 5424, LF) from a generator, 2 connections",
            Feed::SyslogTcp(syslog_streams),
        ),
        (
            "syslog TCP from rsyslogd (imfile → omfwd, octet-counted)",
            Feed::Rsyslog,
        ),
    ] {
        let (wall, cpu) = feed_aggregator(file, total, feed);
        let per_line = cpu / total as f64 * 1e6;
        let ratio = agent_cost.map_or("1.00×".to_owned(), |agent: f64| format!("{:.2}×", per_line / agent));
        agent_cost.get_or_insert(per_line);
        println!(
            "| {name} | {total} | {wall:.1} s | {:.0} k | {cpu:.1} | {per_line:.1} | {ratio} |",
            total as f64 / wall / 1000.0
        );
    }
}

/// Feeds a fresh aggregator; returns the wall seconds until all `total`
/// lines are searchable and the aggregator's CPU seconds by then.
fn feed_aggregator(file: &Path, total: u64, feed: Feed) -> (f64, f64) {
    let dir = work_dir("receivers");
    let syslog_port = free_port();
    let (mut aggregator, url) =
        start_aggregator_with(&dir, "", &format!("[syslog]\ntcp = \"127.0.0.1:{syslog_port}\"\n"));
    let started = Instant::now();
    let mut rsyslog = None;
    let senders: Vec<std::thread::JoinHandle<()>> = match feed {
        Feed::Http(path, bodies) => {
            // Every other body to each of two senders.
            let mut parts = [Vec::new(), Vec::new()];
            for (i, body) in bodies.into_iter().enumerate() {
                parts[i % 2].push(body);
            }
            parts
                .into_iter()
                .map(|part| {
                    let url = format!("{url}{path}");
                    std::thread::spawn(move || {
                        for body in part {
                            let status = http()
                                .post(&url)
                                .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
                                .header("Content-Type", "application/json")
                                .send(&body[..])
                                .expect("the aggregator answers")
                                .status();
                            assert_eq!(status, 200, "POST {url}");
                        }
                    })
                })
                .collect()
        }
        Feed::SyslogTcp(streams) => streams
            .into_iter()
            .map(|bytes| {
                std::thread::spawn(move || {
                    let mut stream = std::net::TcpStream::connect(("127.0.0.1", syslog_port)).expect("connects");
                    stream.write_all(&bytes).expect("the aggregator reads");
                })
            })
            .collect(),
        Feed::Rsyslog => {
            let config = format!(
                "global(workDirectory=\"WORKDIR\" localHostName=\"bench\")\n\
                 module(load=\"imfile\" mode=\"inotify\")\n\
                 input(type=\"imfile\" File=\"{file}\" Tag=\"bench\" freshStartTail=\"off\")\n\
                 action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{syslog_port}\" protocol=\"tcp\" \
                 TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")\n",
                file = file.display()
            );
            rsyslog = Some(lookout_tests::rsyslog::start(&dir, "rsyslog", &config));
            Vec::new()
        }
    };
    let pid = aggregator.id();
    let mut cpu = 0.0;
    wait_until("every line searchable", Duration::from_secs(3600), || {
        std::thread::sleep(Duration::from_millis(200));
        cpu = process_usage(pid).0;
        search_total(&url, "") >= total
    });
    let wall = started.elapsed().as_secs_f64();
    for sender in senders {
        sender.join().expect("the sender finished");
    }
    if let Some(mut rsyslog) = rsyslog {
        rsyslog.kill();
    }
    let _ = aggregator.kill();
    let _ = aggregator.wait();
    let _ = fs::remove_dir_all(&dir);
    (wall, cpu)
}

/// Current RSS in kB.
fn current_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

fn bench_idle(seconds: u64) {
    let dir = work_dir("idle");
    let quiet = dir.join("quiet");
    fs::create_dir_all(&quiet).expect("quiet folder");
    fs::write(quiet.join("app.log"), "a quiet log\n").expect("quiet log");
    let (mut aggregator, url) = start_aggregator(&dir);
    let config = format!(
        "aggregator_url = \"{url}\"\ntoken = \"{INGEST_TOKEN}\"\nhost = \"idle\"\nstate_dir = \"{}\"\n[[logs]]\npaths = [\"{}/*.log\"]\n[metrics]\ninterval = \"10s\"\n",
        dir.join("agent-state").display(),
        quiet.display()
    );
    fs::write(dir.join("agent.toml"), config).expect("config");
    let mut agent = Command::new(release_binary("lookout-agent"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("RUST_LOG", "warn")
        .stderr(fs::File::create(dir.join("agent.log")).expect("log"))
        .spawn()
        .expect("agent starts");
    let exporter_port = free_port();
    let mut exporter = Command::new("/usr/bin/prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-node-exporter starts (apt-get install prometheus-node-exporter)");
    let scrape = || {
        let _ = http().get(format!("http://127.0.0.1:{exporter_port}/metrics")).call();
    };
    // Warm up: both started, the agent's first samples sent, one scrape done.
    std::thread::sleep(Duration::from_secs(12));
    scrape();
    let (agent_cpu0, _) = process_usage(agent.id());
    let (exporter_cpu0, _) = process_usage(exporter.id());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(10));
        scrape();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (agent_cpu1, agent_peak) = process_usage(agent.id());
    let (exporter_cpu1, exporter_peak) = process_usage(exporter.id());
    for (name, pid, cpu, peak) in [
        (
            "lookout-agent (metrics every 10 s, 1 quiet log)",
            agent.id(),
            agent_cpu1 - agent_cpu0,
            agent_peak,
        ),
        (
            "prometheus-node-exporter (scraped every 10 s)",
            exporter.id(),
            exporter_cpu1 - exporter_cpu0,
            exporter_peak,
        ),
    ] {
        println!(
            "| {name} | {elapsed:.0} s | {cpu:.2} CPU-s | {:.3} % of a core | RSS {:.1} MiB (peak {:.1} MiB) |",
            cpu / elapsed * 100.0,
            current_rss_kb(pid) as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    for child in [&mut agent, &mut exporter, &mut aggregator] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = fs::remove_dir_all(&dir);
}

fn bench_alert_latency(rounds: usize) {
    use lookout_tests::smtp::SmtpSink;
    use lookout_tests::tmpfs::Tmpfs;
    let dir = work_dir("alert-latency");
    let disk = Tmpfs::mount(&dir.join("mnt"), 16);
    let smtp = SmtpSink::start(&dir);
    let rules = dir.join("rules.toml");
    fs::write(
        &rules,
        "default_rules = false\n[[rules]]\nname = \"DiskFull\"\nkind = \"threshold\"\nmetric = \"fs.used_percent\"\n\
         op = \">=\"\nthreshold = 80.0\nclear_threshold = 75.0\nfor = \"0s\"\n",
    )
    .expect("rules");
    let (mut aggregator, url) = start_aggregator_with(
        &dir,
        &format!("rules_file = {:?}", rules.display().to_string()),
        &format!(
            "[alerting]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
             from = \"lookout@example.com\"\n[[notifiers]]\nname = \"mail\"\nkind = \"email\"\nto = [\"oncall@example.com\"]\n",
            smtp.port()
        ),
    );
    fs::write(
        dir.join("agent.toml"),
        format!(
            "aggregator_url = \"{url}\"\ntoken = \"{INGEST_TOKEN}\"\nhost = \"bench\"\nstate_dir = \"{}\"\n\
             [metrics]\ninterval = \"10s\"\nmounts_include = [{:?}]\nfs_types_exclude = []\n",
            dir.join("agent-state").display(),
            disk.path.display().to_string()
        ),
    )
    .expect("config");
    let mut agent = Command::new(release_binary("lookout-agent"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("RUST_LOG", "warn")
        .stderr(fs::File::create(dir.join("agent.log")).expect("log"))
        .spawn()
        .expect("agent starts");
    // Let the first samples (which carry no rates) arrive.
    wait_until("the mount's first sample", Duration::from_secs(60), || {
        let answer = http()
            .get(format!("{url}/api/v1/hosts"))
            .header("Authorization", format!("Bearer {API_TOKEN}"))
            .call();
        answer.is_ok_and(|mut r| {
            r.body_mut()
                .read_to_string()
                .unwrap_or_default()
                .contains("fullest_filesystem\":{")
        })
    });
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let before = smtp.messages().len();
        // Start at a different phase of the agent's 10 s interval each round.
        std::thread::sleep(Duration::from_millis(1700 * round as u64 % 10_000));
        disk.fill("ballast", 14);
        let crossed = Instant::now();
        let mail = wait_for_mail(&smtp, before + 1);
        let latency = crossed.elapsed();
        assert!(mail.starts_with("[FIRING"), "unexpected mail {mail}");
        println!("round {round}: {:.2} s ({mail})", latency.as_secs_f64());
        latencies.push(latency.as_secs_f64());
        disk.remove("ballast");
        let resolved = wait_for_mail(&smtp, before + 2);
        assert!(resolved.starts_with("[RESOLVED"), "unexpected mail {resolved}");
    }
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies[latencies.len() / 2];
    let max = latencies.last().copied().unwrap_or_default();
    println!("alert latency, crossing 80 % -> email accepted: p50 {p50:.2} s, max {max:.2} s over {rounds} rounds");
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = aggregator.kill();
    let _ = aggregator.wait();
}

/// Waits until the sink holds `count` messages; the subject of the last.
fn wait_for_mail(smtp: &lookout_tests::smtp::SmtpSink, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let messages = smtp.messages();
        if messages.len() >= count {
            return messages[count - 1].subject.clone();
        }
        assert!(Instant::now() < deadline, "no email {count} within 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Installed once in the search page: the Enter keydown in `#query` starts a
/// clock, the next mutation of `#result-count` stops it.
const UI_TIMER: &str = "\
window.__bench = { t0: null, t1: null };
const count = document.getElementById('result-count');
new MutationObserver(() => {
  if (window.__bench.t0 !== null && window.__bench.t1 === null) window.__bench.t1 = performance.now();
}).observe(count, { childList: true, characterData: true, subtree: true, attributes: true });
document.getElementById('query').addEventListener('keydown', (event) => {
  if (event.key === 'Enter') window.__bench = { t0: performance.now(), t1: null };
}, { capture: true });
return true;";

/// `ui-search FILE` indexes FILE first; `ui-search DIR` asks the data a
/// `lookout-bench index FILE DIR` kept (as a user of its own).
fn bench_ui_search(file: &Path) {
    use lookout_tests::webdriver::{Browser, ENTER};
    let kept = file.is_dir();
    let (dir, mut aggregator, url, lines, login) = if kept {
        let dir = file.to_path_buf();
        let (aggregator, url) = start_aggregator(&dir);
        let login = (
            format!("bench-{}", std::process::id()),
            "bench-ui-password-1".to_string(),
        );
        let mut add = Command::new(release_binary("lookout-aggregator"))
            .arg("--config")
            .arg(dir.join("aggregator.toml"))
            .args(["user", "add", "--admin", &login.0])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("user add");
        if let Some(mut stdin) = add.stdin.take() {
            writeln!(stdin, "{}", login.1).expect("password");
        }
        assert!(add.wait().is_ok_and(|status| status.success()), "user add failed");
        let lines = search_total(&url, "");
        (dir, aggregator, url, lines, login)
    } else {
        let lines = count_lines(file);
        let dir = work_dir("ui-search");
        let (aggregator, url) = start_aggregator(&dir);
        let mut agent = start_agent(&dir, &url, file);
        wait_until("every line searchable", Duration::from_secs(3600), || {
            std::thread::sleep(Duration::from_millis(400));
            search_total(&url, "") >= lines
        });
        let _ = agent.kill();
        let _ = agent.wait();
        // The first admin's generated password, printed once to stderr (aggregator.log).
        let log = fs::read_to_string(dir.join("aggregator.log")).expect("log");
        let password = log
            .lines()
            .skip_while(|line| !line.contains("the user `admin` was created"))
            .find_map(|line| line.strip_prefix("    "))
            .expect("the first-admin password in the aggregator's output")
            .trim()
            .to_string();
        (dir, aggregator, url, lines, ("admin".to_string(), password))
    };

    let browser = Browser::start(&dir).expect("chromium and chromedriver start");
    browser.goto(&format!("{url}/login")).expect("login page");
    let find = |css: &str| browser.find(css).unwrap_or_else(|err| panic!("{css}: {err}"));
    browser.send_keys(&find("#username"), &login.0).expect("type");
    browser.send_keys(&find("#password"), &login.1).expect("type");
    browser.click(&find("form button[type=submit]")).expect("click");
    wait_until("logged in", Duration::from_secs(60), || {
        browser.url().is_ok_and(|u| !u.contains("/login"))
    });
    // All time: the dataset's lines carry their original (old) timestamps.
    let end = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .expect("time");
    browser
        .goto(&format!("{url}/search?start=1970-01-01T00:00:00Z&end={end}"))
        .expect("search page");
    wait_until("the search page", Duration::from_secs(60), || {
        browser.find_all("#query").is_ok_and(|found| !found.is_empty())
    });
    browser.execute(UI_TIMER, vec![]).expect("timer installed");
    // The first view's requests (newest hits, histogram, facets over all
    // time), asked by Enter on `*`, 10 times; then the terms.
    let first_view = ["*"; 10];
    let terms = [
        "error",
        "session",
        "block",
        "terminating",
        "failed",
        "connection",
        "kernel",
        "info",
        "user",
        "received",
        "password",
        "invalid",
        "root",
        "closed",
        "request",
        "packet",
        "exception",
        "served",
        "delete",
        "interrupt",
    ];
    let mut first_view_times = Vec::new();
    let mut times = Vec::new();
    for (index, term) in first_view.into_iter().chain(terms).enumerate() {
        let query = find("#query");
        browser.clear(&query).expect("clear");
        browser.send_keys(&query, &format!("{term}{ENTER}")).expect("type");
        let mut took = None;
        wait_until(&format!("the results of `{term}`"), Duration::from_secs(120), || {
            took = browser
                .execute(
                    "const b = window.__bench; return b.t1 === null ? null : b.t1 - b.t0;",
                    vec![],
                )
                .ok()
                .and_then(|v| v.as_f64());
            took.is_some()
        });
        let total = browser
            .execute("return document.getElementById('result-count').dataset.total;", vec![])
            .ok()
            .and_then(|v| v.as_str().and_then(|t| t.parse::<u64>().ok()))
            .unwrap_or(0);
        let ms = took.unwrap_or(f64::NAN);
        println!("  {term}: {total} lines, {ms:.1} ms");
        if index < first_view.len() {
            first_view_times.push(ms);
        } else {
            times.push(ms);
        }
    }
    first_view_times.sort_by(f64::total_cmp);
    println!(
        "ui-search ({lines} lines, first view: `*` over all time, Enter to #result-count drawn, 10 times): p50 {:.1} ms, max {:.1} ms",
        (first_view_times[4] + first_view_times[5]) / 2.0,
        first_view_times[9]
    );
    times.sort_by(f64::total_cmp);
    println!(
        "ui-search ({lines} lines, 20 term queries, Enter to #result-count drawn): p50 {:.1} ms, max {:.1} ms",
        (times[9] + times[10]) / 2.0,
        times[19]
    );
    drop(browser);
    let _ = aggregator.kill();
    let _ = aggregator.wait();
    if !kept {
        let _ = fs::remove_dir_all(&dir);
    }
}
