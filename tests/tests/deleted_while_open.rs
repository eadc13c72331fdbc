//! A log file deleted while its writer still holds it open (the way a careless
//! cleanup or a rotation with `rm` goes): the agent keeps reading it through
//! its open descriptor, so lines written after the deletion still arrive.

use lookout_tests::{Agent, Aggregator, count_sequence_numbers, numbered, test_dir, wait_until};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::Duration;

#[test]
fn lines_written_after_the_file_is_deleted_still_arrive() {
    let dir = test_dir("deleted_while_open");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    let mut writer = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let mut write = |from: u64, to: u64| {
        for number in from..to {
            writeln!(writer, "2026-11-22T10:00:00Z INFO kept alive {}", numbered(number)).unwrap();
        }
    };
    write(0, 100);

    let aggregator = Aggregator::start(&dir);
    let sources = format!("[[logs]]\npaths = [\"{}/*.log\"]\n", logs.display());
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);
    wait_until("the first lines", Duration::from_secs(60), || {
        aggregator.count("alive") >= 100
    });

    fs::remove_file(&path).unwrap();
    // Past the agent's next glob scan (1 s), so it has seen the path vanish
    // before the new lines come.
    std::thread::sleep(Duration::from_secs(2));
    write(100, 300);
    wait_until("lines written after the deletion", Duration::from_secs(60), || {
        aggregator.count("alive") >= 300
    });
    let seen = count_sequence_numbers(&aggregator.numbered_messages(300));
    assert!((0..300).all(|n| seen.get(&n) == Some(&1)), "each line exactly once");
    assert_eq!(agent.terminate(), Some(0));
}
