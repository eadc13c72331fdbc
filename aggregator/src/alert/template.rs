//! Annotation templates (`summary = "{{ host }} {{ mount }} is {{ value }}% full"`),
//! rendered with `minijinja` as plain text: notifiers escape as their format needs.

use minijinja::Environment;
use std::collections::BTreeMap;

/// Checks that `template` compiles.
pub fn check(template: &str) -> Result<(), String> {
    Environment::new()
        .template_from_str(template)
        .map(drop)
        .map_err(|err| err.to_string())
}

/// Renders `template` with the alert's labels and numbers as variables
/// (`host`, `mount`, ..., `value`, `threshold`, `rule`). A template that fails
/// at render time (checked ones rarely do) yields its own text plus the error,
/// so a notification is never lost to a template mistake.
pub fn render(template: &str, labels: &BTreeMap<String, String>, value: Option<f64>, threshold: Option<f64>) -> String {
    let mut context: BTreeMap<&str, minijinja::Value> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), minijinja::Value::from(v.as_str())))
        .collect();
    context.insert(
        "labels",
        minijinja::Value::from_iter(labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
    );
    if let Some(value) = value {
        context.insert("value", number(value));
    }
    if let Some(threshold) = threshold {
        context.insert("threshold", number(threshold));
    }
    let env = Environment::new();
    match env.render_str(template, context) {
        Ok(text) => text,
        Err(err) => format!("{template} (template error: {err})"),
    }
}

/// Two decimals are what a person reads in a notification (85.23 %, 0.07),
/// and a whole number reads as one (`3 attempts`, not `3.0`).
fn number(value: f64) -> minijinja::Value {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        minijinja::Value::from(rounded as i64)
    } else {
        minijinja::Value::from(rounded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_and_rounded_value() {
        let labels = BTreeMap::from([
            ("host".to_string(), "web-1".to_string()),
            ("mount".to_string(), "/var".to_string()),
        ]);
        let text = render(
            "{{ host }} {{ mount }} is {{ value }}% full",
            &labels,
            Some(85.234_9),
            Some(80.0),
        );
        assert_eq!(text, "web-1 /var is 85.23% full");
        assert!(check("{{ host ").is_err());
        assert_eq!(render("{{ nothing }}x", &labels, None, None), "x");
        assert_eq!(
            render("{{ value }} of {{ threshold }}", &labels, Some(3.0), Some(0.5)),
            "3 of 0.5"
        );
    }
}
