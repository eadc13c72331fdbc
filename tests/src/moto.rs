//! moto's S3 server (`moto[server]` from PyPI), started on a loopback port:
//! a real S3 API (SigV4 requests, multipart uploads, listings) for the
//! archive's tests, which read what was written with boto3, the AWS SDK
//! for Python that moto depends on.

use crate::{Process, free_port, http, wait_until};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A running moto S3 server and its endpoint (`http://127.0.0.1:<port>`).
#[derive(Debug)]
pub struct S3 {
    /// The endpoint to give an S3 client.
    pub url: String,
    _process: Process,
}

/// Starts moto's server, its output in `dir/moto.log`; waits until it answers.
pub fn start(dir: &Path) -> S3 {
    let port = free_port();
    let mut command = Command::new("python3");
    command.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()]);
    let process = Process::spawn("moto", &mut command, &dir.join("moto.log"));
    let url = format!("http://127.0.0.1:{port}");
    wait_until("moto's S3 server to answer", Duration::from_secs(60), || {
        http().get(format!("{url}/")).call().is_ok()
    });
    S3 { url, _process: process }
}

impl S3 {
    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let response = http()
            .put(format!("{}/{bucket}", self.url))
            .send_empty()
            .expect("moto answers");
        assert_eq!(response.status(), 200, "creating the bucket {bucket}");
    }

    /// The keys in `bucket` that start with `prefix`, listed by boto3 (the
    /// AWS SDK moto comes with).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listed = self.boto3(
            "pages = s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3])\n\
             for page in pages:\n    for item in page.get('Contents', []):\n        print(item['Key'])",
            &[bucket, prefix],
        );
        assert!(
            listed.status.success(),
            "listing {bucket}: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The object at `key` in `bucket`, if there is one, read by boto3.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let read = self.boto3(
            "try:\n    body = s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read()\n\
             except s3.exceptions.NoSuchKey:\n    sys.exit(3)\nsys.stdout.buffer.write(body)",
            &[bucket, key],
        );
        match read.status.code() {
            Some(0) => Some(read.stdout),
            Some(3) => None,
            _ => panic!("reading {bucket}/{key}: {}", String::from_utf8_lossy(&read.stderr)),
        }
    }

    /// Runs `script` with `s3`, a boto3 client of this server, and `args`
    /// as `sys.argv[2..]`.
    fn boto3(&self, script: &str, args: &[&str]) -> std::process::Output {
        let program = format!(
            "import sys, boto3\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n{script}\n"
        );
        Command::new("python3")
            .arg("-c")
            .arg(program)
            .arg(&self.url)
            .args(args)
            .output()
            .expect("python3 runs")
    }
}
