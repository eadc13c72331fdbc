//! Container runtimes' log files, written byte for byte as Docker's
//! `json-file` driver and containerd (CRI) write them, with lines cut into
//! parts and a rotation each: every line arrives once, whole, with the
//! runtime's time, its stream, and the container's id, namespace, pod and
//! container from the path.

use lookout_tests::{Agent, Aggregator, count_sequence_numbers, numbered, test_dir, wait_until};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const ID: &str = "9d3b5f1e2c4a6b8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f";
/// Docker and containerd cut a line into parts of this many bytes.
const PART: usize = 16 * 1024;

/// An hour ago, as runtimes write times (RFC 3339, nanoseconds).
fn runtime_time() -> (String, i64) {
    let then = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let then = jiff::Timestamp::from_nanosecond(then.as_nanosecond() / 1000 * 1000 + 123).unwrap();
    (
        then.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        then.as_millisecond(),
    )
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// One line as Docker's json-file driver writes it: cut into 16 KiB parts,
/// the last one ending in `\n`.
fn docker_line(stream: &str, time: &str, text: &str) -> Vec<u8> {
    let whole = format!("{text}\n");
    let mut out = Vec::new();
    let bytes = whole.as_bytes();
    for part in bytes.chunks(PART) {
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(part),
            "stream": stream,
            "time": time,
        });
        out.extend_from_slice(entry.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// One line as containerd writes it: `P` parts of 16 KiB, then the `F` part.
fn cri_line(stream: &str, time: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let parts: Vec<&[u8]> = text.as_bytes().chunks(PART).collect();
    for (i, part) in parts.iter().enumerate() {
        let tag = if i + 1 == parts.len() { "F" } else { "P" };
        out.extend_from_slice(format!("{time} {stream} {tag} ").as_bytes());
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out
}

/// A line of `bytes` bytes or more: `<tag> w0 w1 … <tag>end`.
fn long_line(tag: &str, bytes: usize) -> String {
    let mut line = tag.to_owned();
    let mut i = 0;
    while line.len() < bytes {
        line.push_str(&format!(" w{i}"));
        i += 1;
    }
    line.push_str(&format!(" {tag}end"));
    line
}

#[test]
fn docker_and_cri_lines_arrive_unwrapped_joined_and_labelled() {
    let dir = test_dir("container_logs");
    let docker_dir = dir.join(format!("var/lib/docker/containers/{ID}"));
    let pod_dir = dir.join("var/log/pods/shop_cart-7d9f_0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e/cart");
    fs::create_dir_all(&docker_dir).unwrap();
    fs::create_dir_all(&pod_dir).unwrap();
    let docker_log = docker_dir.join(format!("{ID}-json.log"));
    let cri_log = pod_dir.join("0.log");
    File::create(&docker_log).unwrap();
    File::create(&cri_log).unwrap();

    let aggregator = Aggregator::start(&dir);
    let sources = format!(
        "[[logs]]\npaths = [\"{}/var/lib/docker/containers/*/*-json.log\"]\nformat = \"docker\"\n\
         [[logs]]\npaths = [\"{}/var/log/pods/*/*/*.log\"]\nformat = \"cri\"\n\
         [shipper]\nbatch_max_wait = \"200ms\"\n",
        dir.display(),
        dir.display()
    );
    let mut agent = Agent::start(&dir, &aggregator.url, &sources);
    let (time, time_ms) = runtime_time();
    let long_docker = long_line("dockerlong", 40_000);
    let long_cri = long_line("crilong", 40_000);

    let mut number = 0u64;
    let mut write_round = |docker: &mut Vec<u8>, cri: &mut Vec<u8>, count: u64| {
        for _ in 0..count {
            let stream = if number.is_multiple_of(4) { "stderr" } else { "stdout" };
            docker.extend(docker_line(stream, &time, &format!("docker says {}", numbered(number))));
            cri.extend(cri_line(stream, &time, &format!("cri says {}", numbered(number))));
            number += 1;
        }
    };

    let (mut docker, mut cri) = (Vec::new(), Vec::new());
    write_round(&mut docker, &mut cri, 200);
    docker.extend(docker_line("stdout", &time, &long_docker));
    cri.extend(cri_line("stdout", &time, &long_cri));
    docker.extend(docker_line(
        "stdout",
        &time,
        r#"{"level":"error","msg":"payment failed","order":1234}"#,
    ));
    append(&docker_log, &docker);
    append(&cri_log, &cri);
    wait_until("the first lines to arrive", Duration::from_secs(60), || {
        aggregator.count("says") >= 400
    });

    // Rotation as the runtimes do it: the file is renamed and a new one
    // begun (Docker: `-json.log.1`; kubelet: `0.log.<time>`), right after
    // lines the agent has not read yet, a line in parts among them.
    let (mut docker, mut cri) = (Vec::new(), Vec::new());
    write_round(&mut docker, &mut cri, 100);
    docker.extend(docker_line("stdout", &time, &long_line("dockersplit", 20_000)));
    cri.extend(cri_line("stdout", &time, &long_line("crisplit", 20_000)));
    write_round(&mut docker, &mut cri, 10);
    append(&docker_log, &docker);
    append(&cri_log, &cri);
    fs::rename(&docker_log, docker_dir.join(format!("{ID}-json.log.1"))).unwrap();
    fs::rename(&cri_log, pod_dir.join("0.log.20260501-101112")).unwrap();
    let (mut docker, mut cri) = (Vec::new(), Vec::new());
    write_round(&mut docker, &mut cri, 100);
    append(&docker_log, &docker);
    append(&cri_log, &cri);

    let total = number;
    wait_until("every line to arrive", Duration::from_secs(90), || {
        aggregator.count("says") >= 2 * total
    });
    assert_eq!(agent.terminate(), Some(0));

    // Each line once.
    let seen = count_sequence_numbers(&aggregator.numbered_messages(total));
    for n in 0..total {
        assert_eq!(
            seen.get(&n),
            Some(&2),
            "line {n}: once from Docker, once from containerd"
        );
    }
    assert_eq!(aggregator.count("says"), 2 * total);

    // Lines cut into parts arrive whole, once, not truncated: the word at
    // their end finds the record their first word finds.
    for word in ["dockerlong", "crilong", "dockersplit", "crisplit"] {
        let first = aggregator.search(&[("q", word), ("limit", "5")]);
        let last = aggregator.search(&[("q", &format!("{word}end")), ("limit", "5")]);
        assert_eq!(first["total"], 1, "{word}: one record");
        assert_eq!(last["total"], 1, "{word}: its last part is in a record");
        let (first, last) = (&first["hits"][0], &last["hits"][0]);
        assert_eq!(first["id"], last["id"], "{word}: its parts are one record");
        assert_eq!(first["cut"], true, "{word}: longer than a listed message");
        assert_ne!(first["truncated"], true, "{word}");
    }

    // The runtime's time, the stream, the container from the path.
    let hit = &aggregator.search(&[("q", "docker AND says"), ("limit", "1")])["hits"][0];
    let stored: jiff::Timestamp = hit["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(stored.as_millisecond(), time_ms);
    let stderr_lines = (0..total).filter(|n| n.is_multiple_of(4)).count() as u64;
    assert_eq!(
        aggregator.count("docker AND says AND log.iostream:stderr"),
        stderr_lines
    );
    assert_eq!(aggregator.count("cri AND says AND log.iostream:stderr"), stderr_lines);
    assert_eq!(aggregator.count(&format!("says AND container.id:{ID}")), total);
    assert_eq!(
        aggregator.count("says AND k8s.namespace.name:shop AND k8s.pod.name:cart-7d9f AND k8s.container.name:cart"),
        total
    );
    // The text inside the wrapper is read like any line: a JSON app log.
    let payment = &aggregator.search(&[("q", "payment"), ("limit", "1")])["hits"][0];
    assert_eq!(payment["level"], "error");
    assert_eq!(aggregator.count("payment AND order:1234"), 1);
}
