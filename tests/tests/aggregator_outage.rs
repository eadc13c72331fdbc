//! The aggregator is down for 60 seconds while lines keep coming: the agent
//! spools them on disk and delivers every one, once, after it returns; the
//! host metrics measured during the outage arrive too.

use lookout_tests::{Agent, Aggregator, count_sequence_numbers, numbered, test_dir, wait_until};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::{Duration, Instant};

const OUTAGE: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn spooled_batches(dir: &std::path::Path) -> usize {
    fs::read_dir(dir.join("agent-state/spool"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "batch"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn lines_written_during_an_outage_all_arrive_after_it() {
    let dir = test_dir("aggregator_outage");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let mut aggregator = Aggregator::start(&dir);
    let sources = format!(
        "[metrics]\ninterval = \"2s\"\n[[logs]]\npaths = [\"{}/*.log\"]\n",
        logs.display()
    );
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);

    let mut number = 0u64;
    let write_for = |duration: Duration, number: &mut u64| {
        let started = Instant::now();
        while started.elapsed() < duration {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join("app.log"))
                .unwrap();
            for _ in 0..20 {
                writeln!(file, "2026-11-22T10:00:00Z WARN queue depth high {}", numbered(*number)).unwrap();
                *number += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    write_for(Duration::from_secs(5), &mut number);
    let before_outage = number;
    wait_until("lines before the outage to arrive", Duration::from_secs(60), || {
        aggregator.count("queue") >= before_outage
    });

    assert_eq!(aggregator.terminate(), Some(0));
    let down_from = now_ms();
    write_for(OUTAGE, &mut number);
    let down_until = now_ms();
    assert!(
        spooled_batches(&dir) > 0,
        "during the outage the agent spools batches on disk"
    );
    aggregator.restart();
    write_for(Duration::from_secs(5), &mut number);

    wait_until(
        "every line to arrive after the outage",
        Duration::from_secs(120),
        || aggregator.count("queue") >= number,
    );
    wait_until("the spool to drain", Duration::from_secs(60), || {
        spooled_batches(&dir) == 0
    });
    let seen = count_sequence_numbers(&aggregator.numbered_messages(number));
    let missing = (0..number).filter(|n| !seen.contains_key(n)).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    println!(
        "outage: {number} lines written ({} during 60 s down), {missing} missing, {duplicated} duplicated",
        number - before_outage
    );
    assert_eq!((missing, duplicated), (0, 0));

    let (from, until) = (down_from.to_string(), down_until.to_string());
    let memory = aggregator.get_json(
        "/api/v1/metrics/series",
        &[
            ("host", "e2e-host"),
            ("name", "memory.used_percent"),
            ("start", &from),
            ("end", &until),
        ],
    );
    let points = memory["series"][0]["points"].as_array().map_or(0, Vec::len);
    println!("outage: {points} memory samples measured while the aggregator was down arrived");
    // One every 2 s over 60 s; a few may fall at the edges.
    assert!(points >= 25, "only {points} samples from the outage arrived");
    assert_eq!(agent.terminate(), Some(0));
}
