#!/usr/bin/env bash
# Runs Lookout's whole test suite on this machine: installs the real components
# the tests start (logrotate, prometheus-node-exporter, aiosmtpd, and openssl,
# which makes the TLS test's certificates, Chromium with its WebDriver for
# the browser tests, systemd's journald for the journal tests, rsyslog for the
# receivers', Alertmanager for its notifier's, Prometheus for the metrics
# export's and, from PyPI, the OpenTelemetry SDK for OTLP's), builds both binaries
# (the end-to-end tests run them as separate processes), then runs every test
# of the workspace, after the formatting and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || packages+=(logrotate)
[ -x /usr/bin/prometheus-node-exporter ] || packages+=(prometheus-node-exporter)
# The notifier tests' SMTP server (tests/smtp_sink.py runs it with Debian's python3).
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || packages+=(python3-aiosmtpd)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# The browser tests (tests/tests/browser.rs) drive headless Chromium through chromedriver.
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
# The journal tests (tests/tests/journald.rs) start their own systemd-journald.
[ -x /lib/systemd/systemd-journald ] || packages+=(systemd)
# The Alertmanager notifier's test pushes to Debian's prometheus-alertmanager;
# Debian's prometheus scrapes the metrics endpoint and, with
# victoria-metrics, receives Lookout's remote write.
[ -x /usr/bin/prometheus-alertmanager ] || packages+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus ] || packages+=(prometheus)
[ -x /usr/bin/victoria-metrics ] || packages+=(victoria-metrics)
# The receivers' tests relay through Debian's rsyslogd (TLS by its gnutls driver,
# bulk requests by omelasticsearch).
for package in rsyslog rsyslog-gnutls rsyslog-elasticsearch; do
  dpkg -s "$package" >/dev/null 2>&1 || packages+=("$package")
done
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: please install: ${packages[*]} (or run as root)" >&2
    exit 1
  fi
  echo "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
# The OTLP receiver's test exports with the OpenTelemetry Python SDK (PyPI).
python3 -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1 ||
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
# The archive's test writes to moto's S3 server (PyPI; Debian has no S3
# server that runs without a cluster).
python3 -c 'import moto.server, flask' >/dev/null 2>&1 ||
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'moto[server]'

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
