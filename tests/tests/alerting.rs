//! Alerting end to end: both binaries as processes, a real tmpfs filled past
//! 80 %, a real SMTP server (`python3-aiosmtpd`), a webhook receiver, and
//! real logs (loghub's Apache sample and a synthetic nginx access log).

use lookout_tests::smtp::{Mail, SmtpSink};
use lookout_tests::tmpfs::Tmpfs;
use lookout_tests::webhook::{WebhookReceiver, validate_alertmanager_v4};
use lookout_tests::{Agent, Aggregator, loghub_dir, test_dir, wait_until};
use serde_json::Value;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn fast_alerting() -> &'static str {
    "[alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
     external_url = \"http://lookout.example:7070\"\n"
}

fn subjects(mails: &[Mail]) -> Vec<&str> {
    mails.iter().map(|m| m.subject.as_str()).collect()
}

fn outbox(aggregator: &Aggregator) -> Vec<Value> {
    aggregator.get_json("/api/v1/alerts/outbox", &[])["outbox"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_full_filesystem_emails_firing_once_then_resolved_even_through_an_smtp_outage() {
    let dir = test_dir("alerting_disk_full");
    let disk = Tmpfs::mount(&dir.join("mnt"), 16);
    let mount = disk.path.display().to_string();
    let mut smtp = SmtpSink::start(&dir);
    let rules = dir.join("rules.toml");
    fs::write(
        &rules,
        "default_rules = false\n[[rules]]\nname = \"DiskFull\"\nkind = \"threshold\"\nmetric = \"fs.used_percent\"\n\
         op = \">=\"\nthreshold = 80.0\nclear_threshold = 75.0\nlabels = { severity = \"critical\" }\n\
         annotations = { summary = \"{{ host }} {{ mount }} is {{ value }}% full\" }\n",
    )
    .unwrap();
    let aggregator = Aggregator::start_with(
        &dir,
        &format!("rules_file = {:?}", rules.display().to_string()),
        &format!(
            "{}[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"lookout@example.com\"\n\
             [[notifiers]]\nname = \"oncall-email\"\nkind = \"email\"\nto = [\"oncall@example.com\"]\n",
            fast_alerting(),
            smtp.port()
        ),
    );
    let _agent = Agent::start(
        &dir,
        &aggregator.url,
        &format!("[metrics]\ninterval = \"1s\"\nmounts_include = [{mount:?}]\nfs_types_exclude = []\n"),
    );

    disk.fill("ballast", 14);
    let mails = smtp.wait_for_messages(1, LIMIT);
    assert_eq!(subjects(&mails), [format!("[FIRING:1] DiskFull e2e-host {mount}")]);
    let firing = &mails[0];
    assert_eq!(firing.rcpt_to, ["oncall@example.com"]);
    let text = firing.text.as_deref().expect("a plain-text part");
    assert!(text.contains(&format!("e2e-host {mount} is 8")), "{text}");
    assert!(text.contains("threshold 80"), "{text}");
    // minijinja escapes `/` as `&#x2f;`, which a mail client decodes.
    let html = firing.html.as_deref().expect("an HTML part").replace("&#x2f;", "/");
    assert!(html.contains("href=\"http://lookout.example:7070/alerts"), "{html}");

    disk.remove("ballast");
    let mails = smtp.wait_for_messages(2, LIMIT);
    assert_eq!(subjects(&mails)[1], format!("[RESOLVED] DiskFull e2e-host {mount}"));

    // The mail server goes away; the disk fills again. The notification
    // waits in the outbox with the error, and goes out once it is back.
    smtp.stop();
    disk.fill("ballast", 14);
    wait_until("the outbox to show the SMTP error", LIMIT, || {
        outbox(&aggregator)
            .iter()
            .any(|row| row["delivered"] == false && row["lastError"].is_string())
    });
    let waiting = outbox(&aggregator);
    let error = waiting[0]["lastError"].as_str().unwrap_or_default().to_string();
    assert!(!error.is_empty(), "{waiting:?}");
    smtp.restart();
    let mails = smtp.wait_for_messages(3, LIMIT);
    assert_eq!(subjects(&mails)[2], format!("[FIRING:1] DiskFull e2e-host {mount}"));
    wait_until("the outbox to mark it delivered", LIMIT, || {
        outbox(&aggregator).iter().all(|row| row["delivered"] == true)
    });
    assert_eq!(
        smtp.messages().len(),
        3,
        "each notification arrived once: {:?}",
        subjects(&smtp.messages())
    );
    let alerts = aggregator.get_json("/api/v1/alerts", &[("state", "firing")]);
    assert_eq!(alerts["alerts"][0]["labels"]["mount"], mount.as_str());
}

/// An nginx access log line with `status`, stamped now.
fn access_line(i: usize, status: u16) -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    format!(
        "192.0.2.{} - - [{}] \"GET /shop/item/{i} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0\"\n",
        i % 250,
        now.strftime("%d/%b/%Y:%H:%M:%S %z"),
        200 + i % 5000
    )
}

fn append(path: &Path, text: &str) {
    let mut file = fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn sources_in(payload: &Value) -> Vec<String> {
    payload["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| a["status"] == "firing")
                .filter_map(|a| a["labels"]["source"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_error_rate_rule_fires_for_a_5xx_burst_and_not_for_calm_traffic() {
    let dir = test_dir("alerting_error_rate");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let hook = WebhookReceiver::start();
    let rules = dir.join("rules.toml");
    fs::write(
        &rules,
        "default_rules = false\n[[rules]]\nname = \"ServerErrors\"\nkind = \"error_rate\"\nquery = \"level:error\"\n\
         window = \"10m\"\nratio = 0.05\nmin_lines = 100\ngroup_by = [\"host\", \"source\"]\n\
         annotations = { summary = \"{{ source }} on {{ host }}: {{ value }}% errors\" }\n",
    )
    .unwrap();
    let aggregator = Aggregator::start_with(
        &dir,
        &format!("rules_file = {:?}", rules.display().to_string()),
        &format!(
            "{}[[notifiers]]\nname = \"ops-webhook\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"s3cret\"\n",
            fast_alerting(),
            hook.url("/hook")
        ),
    );
    let apache = logs.join("apache-error.log");
    let nginx = logs.join("nginx-access.log");
    fs::copy(loghub_dir().join("Apache_2k.log"), &apache).unwrap();
    // Calm traffic: 1000 requests, 1 % 404s and three 500s (0.3 %).
    let calm: String = (0..1000)
        .map(|i| {
            let status = match i {
                _ if i % 100 == 7 => 404,
                100 | 500 | 900 => 500,
                _ => 200,
            };
            access_line(i, status)
        })
        .collect();
    append(&nginx, &calm);
    let _agent = Agent::start(
        &dir,
        &aggregator.url,
        &format!(
            "[[logs]]\npaths = [{:?}]\n[metrics]\nenabled = false\n",
            logs.join("*.log").display().to_string()
        ),
    );
    let nginx_source = nginx.display().to_string();
    let count = |source: &Path| {
        aggregator.search(&[("source", &source.display().to_string()), ("limit", "1")])["total"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_until("all calm lines to be searchable", LIMIT, || {
        count(&apache) == 2000 && count(&nginx) == 1000
    });
    // Apache's error log is 30 % `[error]` lines (595 of 2000): that group fires.
    wait_until("the Apache group to fire", LIMIT, || {
        hook.requests()
            .iter()
            .any(|r| sources_in(&r.json()).contains(&apache.display().to_string()))
    });
    // Two evaluations after every calm line was searchable: nginx stays quiet.
    let evaluated = || {
        let rules = aggregator.get_json("/api/v1/alerts/rules", &[]);
        rules["rules"][0]["lastEvaluation"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for _ in 0..2 {
        let before = evaluated();
        wait_until("the rule to be evaluated again", LIMIT, || evaluated() != before);
    }
    let alerts = aggregator.get_json("/api/v1/alerts", &[]);
    assert!(
        !alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["source"] == nginx_source.as_str()),
        "calm nginx traffic (0.3 % 5xx) must not alert: {alerts}"
    );
    assert!(
        !hook
            .requests()
            .iter()
            .any(|r| sources_in(&r.json()).contains(&nginx_source))
    );

    // The burst: 200 requests, half of them 502/503.
    let burst: String = (1000..1200)
        .map(|i| {
            let status = match (i % 2, i % 3) {
                (0, _) => 502,
                (_, 0) => 503,
                _ => 200,
            };
            access_line(i, status)
        })
        .collect();
    append(&nginx, &burst);
    wait_until("the nginx group to fire", LIMIT, || {
        hook.requests()
            .iter()
            .any(|r| sources_in(&r.json()).contains(&nginx_source))
    });
    let request = hook
        .requests()
        .into_iter()
        .find(|r| sources_in(&r.json()).contains(&nginx_source))
        .unwrap();
    let payload = request.json();
    validate_alertmanager_v4(&payload).unwrap();
    assert_eq!(payload["receiver"], "ops-webhook");
    assert_eq!(payload["groupLabels"]["alertname"], "ServerErrors");
    assert!(
        request
            .header("X-Lookout-Signature")
            .is_some_and(|s| s.starts_with("sha256="))
    );
    let alert = payload["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["source"] == nginx_source.as_str())
        .unwrap();
    assert_eq!(alert["labels"]["host"], "e2e-host");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("{nginx_source} on e2e-host: ")),
        "{summary}"
    );
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://lookout.example:7070/")
    );
}
