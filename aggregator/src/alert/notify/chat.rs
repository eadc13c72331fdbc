//! Chat messages: `kind = "slack"` posts Slack's incoming-webhook JSON
//! (`text` and one legacy attachment, the part of the format Mattermost
//! and Rocket.Chat accept too), `kind = "teams"` a Teams workflow
//! webhook's message holding one Adaptive Card. Either reads at a glance:
//! the group's headline (`[FIRING:2] DiskFull web-1 /var`), then a line
//! per alert with what (its summary, else the rule), where (host and the
//! other labels), its value against the threshold, since when, the top
//! pattern of a log alert, and a link to its lines or its rule.
//!
//! Pure: a notification in, a JSON body out. The text of alerts (summaries,
//! labels, log templates) is someone else's: for Slack its control
//! characters `&`, `<` and `>` are escaped and markdown links and mentions
//! of everyone broken up; for Teams it goes in `TextRun`s, which are never
//! read as markdown. A bare URL in it may still be shown as a link by the
//! chat client.

use super::text::{human_duration, number, search_url, truncate};
use super::{alerts_url, clean, email::subject, rule_url};
use crate::alert::model::{Alert, AlertState, Notification, NotificationStatus};
use lookout_shared::time::rfc3339;
use serde_json::{Value, json};

/// Alerts listed in one message; the rest are counted.
const MAX_LISTED: usize = 10;
/// A summary, label value or template is cut to this many characters.
const MAX_TEXT: usize = 300;
/// Slack's attachment colours: red while firing, green once resolved.
const FIRING_COLOUR: &str = "#d63939";
const RESOLVED_COLOUR: &str = "#2f9e44";

/// What one alert's line says.
struct AlertLine {
    what: String,
    /// Host and the other labels, `web-1 · mount=/var`.
    place: String,
    /// `85.2 >= 80`, or for a resolved alert `last 72 (fires at >= 80)`.
    value: Option<String>,
    /// `2024-05-01T12:00:00Z (5m 3s)`.
    since: String,
    /// `1234 × disk <*> is full`.
    top_pattern: Option<String>,
    /// Its lines in the search page, else its rule's alerts.
    link: String,
    resolved: bool,
}

impl AlertLine {
    fn new(alert: &Alert, external_url: &str, now_ms: i64) -> AlertLine {
        let resolved = alert.state == AlertState::Resolved;
        let what = alert
            .annotations
            .get("summary")
            .map_or_else(|| alert.rule.clone(), |summary| truncate(summary, MAX_TEXT));
        let mut place: Vec<String> = alert.labels.get("host").cloned().into_iter().collect();
        place.extend(
            alert
                .labels
                .iter()
                .filter(|(name, _)| !["alertname", "host", "severity"].contains(&name.as_str()))
                .map(|(name, value)| format!("{name}={}", truncate(value, MAX_TEXT))),
        );
        let value = match (alert.value, alert.threshold, alert.op.as_deref()) {
            (Some(value), Some(threshold), Some(op)) if resolved => {
                Some(format!("last {} (fires at {op} {})", number(value), number(threshold)))
            }
            (Some(value), Some(threshold), Some(op)) => Some(format!("{} {op} {}", number(value), number(threshold))),
            (Some(value), _, _) => Some(number(value)),
            _ => None,
        };
        let ended = if resolved { alert.ends_at_ms } else { None };
        let since = format!(
            "{} ({})",
            rfc3339(alert.starts_at_ms),
            human_duration(ended.unwrap_or(now_ms) - alert.starts_at_ms)
        );
        let top_pattern = alert.top_patterns.first().map(|top| {
            let template = top.template.as_deref().unwrap_or(&top.pattern);
            format!("{} × {}", top.count, truncate(template, MAX_TEXT))
        });
        AlertLine {
            what: clean(&what, MAX_TEXT + 1),
            place: clean(&place.join(" · "), 4 * MAX_TEXT),
            value,
            since,
            top_pattern: top_pattern.map(|text| clean(&text, MAX_TEXT + 20)),
            link: search_url(external_url, alert).unwrap_or_else(|| rule_url(external_url, &alert.rule)),
            resolved,
        }
    }
}

/// The alerts listed (firing ones first, as the notification has them),
/// and how many more there are.
fn lines(notification: &Notification, now_ms: i64) -> (Vec<AlertLine>, usize) {
    let listed = notification
        .alerts
        .iter()
        .take(MAX_LISTED)
        .map(|alert| AlertLine::new(alert, &notification.external_url, now_ms))
        .collect();
    (listed, notification.alerts.len().saturating_sub(MAX_LISTED))
}

/// `text` with Slack's control characters escaped (so no `<!channel>` or
/// `<url|link>` comes from outside), backticks made quotes (a code span
/// would swallow the links after it), and what Mattermost and Rocket.Chat
/// read as a markdown link, an image or a mention of everyone broken up.
fn slack_escape(text: &str) -> String {
    let mut out = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
        .replace("](", "] (");
    for everyone in ["@channel", "@here", "@all", "@everyone"] {
        out = out.replace(everyone, &everyone.replacen('@', "@\u{200b}", 1));
    }
    out
}

/// Slack's incoming-webhook body for `notification`.
pub(super) fn slack(notification: &Notification, now_ms: i64) -> Value {
    let headline = subject(notification);
    let (listed, more) = lines(notification, now_ms);
    let mut text = String::new();
    for line in &listed {
        let mark = if line.resolved { "✅" } else { "🔥" };
        text.push_str(&format!("{mark} *{}*", slack_escape(&line.what)));
        if !line.place.is_empty() {
            text.push_str(&format!(" — {}", slack_escape(&line.place)));
        }
        text.push('\n');
        let mut facts = Vec::new();
        facts.extend(line.value.as_deref().map(slack_escape));
        facts.push(format!("since {}", line.since));
        facts.push(format!("<{}|open>", line.link));
        text.push_str(&format!("      {}\n", facts.join(" · ")));
        if let Some(top) = &line.top_pattern {
            text.push_str(&format!("      top pattern: `{}`\n", slack_escape(top)));
        }
    }
    if more > 0 {
        text.push_str(&format!("… and {more} more\n"));
    }
    let colour = match notification.status {
        NotificationStatus::Firing => FIRING_COLOUR,
        NotificationStatus::Resolved => RESOLVED_COLOUR,
    };
    json!({
        "text": slack_escape(&headline),
        "attachments": [{
            "color": colour,
            // Plain text in Slack's attachments: only the angle brackets of a link would act.
            "title": headline.replace(['<', '>'], ""),
            "title_link": alerts_url(&notification.external_url),
            "text": text.trim_end(),
            "mrkdwn_in": ["text"],
            "footer": "Lookout",
            "ts": now_ms / 1000,
        }],
    })
}

/// A Teams workflow webhook's body for `notification`: one Adaptive Card.
pub(super) fn teams(notification: &Notification, now_ms: i64) -> Value {
    let headline = subject(notification);
    let (listed, more) = lines(notification, now_ms);
    let colour = match notification.status {
        NotificationStatus::Firing => "Attention",
        NotificationStatus::Resolved => "Good",
    };
    // Text of alerts in TextRuns, which Teams never reads as markdown: a
    // `[x](url)` in a log line stays text.
    let mut body = vec![json!({
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": headline, "weight": "Bolder", "size": "Medium", "color": colour}],
    })];
    for line in &listed {
        let mut facts = vec![("", line.what.as_str())];
        if !line.place.is_empty() {
            facts.push(("Where: ", &line.place));
        }
        if let Some(value) = &line.value {
            facts.push(("Value: ", value));
        }
        facts.push(("Since: ", &line.since));
        if let Some(top) = &line.top_pattern {
            facts.push(("Top pattern: ", top));
        }
        let items: Vec<Value> = facts
            .into_iter()
            .map(|(title, text)| {
                let mut inlines = Vec::new();
                if title.is_empty() {
                    inlines.push(json!({"type": "TextRun", "text": text, "weight": "Bolder"}));
                } else {
                    inlines.push(json!({"type": "TextRun", "text": title, "isSubtle": true}));
                    inlines.push(json!({"type": "TextRun", "text": text}));
                }
                json!({"type": "RichTextBlock", "inlines": inlines})
            })
            .collect();
        body.push(json!({
            "type": "Container",
            "separator": true,
            "selectAction": {"type": "Action.OpenUrl", "url": line.link},
            "items": items,
        }));
    }
    if more > 0 {
        body.push(json!({"type": "TextBlock", "text": format!("… and {more} more"), "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{
                    "type": "Action.OpenUrl",
                    "title": "Open in Lookout",
                    "url": alerts_url(&notification.external_url),
                }],
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{disk_alert, log_alert, notification};
    use super::*;

    const NOW: i64 = 1_714_565_103_000;

    #[test]
    fn slack_says_what_where_value_since_and_links_with_the_log_text_escaped() {
        let body = slack(
            &notification(vec![disk_alert("web-1", AlertState::Firing), log_alert()]),
            NOW,
        );
        assert_eq!(body["text"], "[FIRING:2] DiskFull web-1");
        let attachment = &body["attachments"][0];
        assert_eq!(attachment["color"], FIRING_COLOUR);
        assert_eq!(attachment["title_link"], "http://lookout.example:7070/alerts");
        let text = attachment["text"].as_str().unwrap();
        assert!(
            text.contains("🔥 *web-1 /var is 85.2% full* — web-1 · mount=/var"),
            "{text}"
        );
        assert!(
            text.contains("85.2 &gt;= 80 · since 2024-05-01T12:00:00Z (5m 3s)"),
            "{text}"
        );
        assert!(
            text.contains("<http://lookout.example:7070/alerts?rule=DiskFull|open>"),
            "{text}"
        );
        // A log alert: its lines' search, its top pattern, every `<` of the log escaped.
        assert!(text.contains("|open>"), "{text}");
        assert!(
            text.contains("top pattern: `1234 × ERROR &lt;*&gt; in &lt;b&gt;handler&lt;/b&gt;`"),
            "{text}"
        );
        assert!(!text.contains("<b>"), "{text}");
        assert!(text.contains("/search?q=level%3Aerror"), "{text}");
    }

    #[test]
    fn a_resolved_group_is_green_and_says_the_last_value() {
        let body = slack(&notification(vec![disk_alert("web-1", AlertState::Resolved)]), NOW);
        assert_eq!(body["attachments"][0]["color"], RESOLVED_COLOUR);
        let text = body["attachments"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("✅"), "{text}");
        assert!(text.contains("last 85.2 (fires at &gt;= 80)"), "{text}");
    }

    #[test]
    fn a_long_group_lists_ten_and_counts_the_rest() {
        let many: Vec<Alert> = (0..13)
            .map(|i| disk_alert(&format!("web-{i}"), AlertState::Firing))
            .collect();
        let body = slack(&notification(many.clone()), NOW);
        let text = body["attachments"][0]["text"].as_str().unwrap();
        assert_eq!(text.matches("🔥").count(), 10);
        assert!(text.ends_with("… and 3 more"), "{text}");
        let card = teams(&notification(many), NOW);
        let blocks = card["attachments"][0]["content"]["body"].as_array().unwrap();
        assert_eq!(blocks.len(), 1 + 10 + 1);
    }

    #[test]
    fn teams_gets_one_adaptive_card_with_facts_and_links() {
        let mut log = log_alert();
        log.annotations
            .insert("summary".into(), "[reset your password](http://evil.example)".into());
        let card = teams(&notification(vec![disk_alert("web-1", AlertState::Firing), log]), NOW);
        assert_eq!(card["type"], "message");
        let attachment = &card["attachments"][0];
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        let content = &attachment["content"];
        assert_eq!(
            (&content["type"], &content["version"]),
            (&json!("AdaptiveCard"), &json!("1.4"))
        );
        assert_eq!(content["body"][0]["inlines"][0]["text"], "[FIRING:2] DiskFull web-1");
        assert_eq!(content["body"][0]["inlines"][0]["color"], "Attention");
        let text_of = |container: &Value| -> Vec<String> {
            container["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|block| {
                    assert_eq!(block["type"], "RichTextBlock", "never a markdown TextBlock");
                    block["inlines"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|run| {
                            assert_eq!(run["type"], "TextRun");
                            run["text"].as_str().unwrap()
                        })
                        .collect::<String>()
                })
                .collect()
        };
        let disk = &content["body"][1];
        assert_eq!(
            text_of(disk),
            [
                "web-1 /var is 85.2% full",
                "Where: web-1 · mount=/var",
                "Value: 85.2 >= 80",
                "Since: 2024-05-01T12:00:00Z (5m 3s)"
            ]
        );
        assert_eq!(
            disk["selectAction"]["url"],
            "http://lookout.example:7070/alerts?rule=DiskFull"
        );
        let log = text_of(&content["body"][2]);
        assert_eq!(
            log[0], "[reset your password](http://evil.example)",
            "as text, in a TextRun"
        );
        assert_eq!(log[4], "Top pattern: 1234 × ERROR <*> in <b>handler</b>");
        assert_eq!(content["actions"][0]["url"], "http://lookout.example:7070/alerts");
    }

    #[test]
    fn slack_breaks_up_links_and_mentions_from_outside() {
        let mut log = log_alert();
        log.annotations
            .insert("summary".into(), "@channel [x](http://evil) <!here> `code`".into());
        let body = slack(&notification(vec![log]), NOW);
        let text = body["attachments"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("@\u{200b}channel [x] (http://evil) &lt;!here&gt; 'code'"),
            "{text}"
        );
        assert_eq!(body["attachments"][0]["mrkdwn_in"], json!(["text"]));
    }
}
