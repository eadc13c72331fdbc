//! Clients that connect and never finish cannot hold the aggregator: half a
//! header is cut off after `http.header_timeout`, a body announced and never
//! sent gets a 408 after `http.request_timeout`, and connections beyond
//! `http.max_connections` are closed at once; the server keeps serving.

mod common;

use common::{Server, config};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: &str = "[http]\nmax_connections = 20\nheader_timeout = \"1s\"\nrequest_timeout = \"2s\"\n";

/// Reads until the server closes the connection (or 15 s pass); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_surplus_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), LIMITS)).await;
    let address = server.base.trim_start_matches("http://").to_owned();

    // 30 connections that send half a request head and stop.
    let mut slow = Vec::new();
    for _ in 0..30 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // A write to a connection the server already closed may fail: that is the point.
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
        slow.push(stream);
    }
    for (i, stream) in slow.iter_mut().enumerate() {
        let answer = read_until_closed(stream).await;
        assert!(answer.is_some(), "connection {i} was still open after 15 s");
    }

    // A login that announces a megabyte and sends nothing.
    let mut stalled = TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000000\r\n\r\nusername=a",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stalled).await.expect("an answer within 15 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "a JSON error body: {answer}");

    // The server still serves.
    let health = server.get_with("/healthz", None).await;
    assert_eq!(health.status, 200);
    server.stop().await;
}
