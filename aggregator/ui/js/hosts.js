// The hosts page (/hosts): every host with its status (ok, silent, alerting),
// headline metrics and when it was last heard from. Refreshes every 30 s.

import { getJSON, initUserMenu } from './api.js';
import { el, byId, clear, show, showError, parseTime } from './dom.js';
import { formatValue, formatAgo } from './chart-math.js';

const REFRESH_MS = 30000;
const table = byId('hosts-table');
const body = table.tBodies[0];

/** Hosts named by the `host` label of a firing alert. */
export function alertingHosts(alerts) {
  const hosts = new Set();
  for (const alert of alerts) {
    if (alert.state === 'firing' && alert.labels && typeof alert.labels.host === 'string') hosts.add(alert.labels.host);
  }
  return hosts;
}

/** 'alerting', 'silent' or 'ok'. */
export function hostStatus(host, alerting) {
  if (alerting.has(host.host)) return 'alerting';
  if (host.silent) return 'silent';
  return 'ok';
}

function row(host, status, now) {
  const link = el('a', { text: host.host, attrs: { href: `/hosts/${encodeURIComponent(host.host)}` } });
  const fs = host.fullest_filesystem;
  const iface = host.busiest_interface;
  const seen = parseTime(host.last_seen);
  return el('tr', { dataset: { host: host.host, status } },
    el('td', { class: 'host-name' }, link),
    el('td', {}, el('span', { class: `badge status-${status}`, text: status })),
    el('td', { class: 'n num', text: formatValue(host.cpu_usage_percent, 'percent') }),
    el('td', { class: 'n num', text: formatValue(host.memory_used_percent, 'percent') }),
    el('td', { class: 'num' }, fs ? [el('span', { class: 'mono', text: fs.mount }), ' ', formatValue(fs.used_percent, 'percent')] : '–'),
    el('td', { class: 'num' }, iface
      ? [el('span', { class: 'mono', text: iface.interface }), ` ↓ ${formatValue(iface.rx_bytes_per_sec, 'bytes_per_sec')} ↑ ${formatValue(iface.tx_bytes_per_sec, 'bytes_per_sec')}`]
      : '–'),
    el('td', { class: 'num', text: Number.isFinite(seen) ? formatAgo(seen, now) : '–', attrs: { title: host.last_seen } }));
}

async function load() {
  try {
    const [hosts, alerts] = await Promise.all([
      getJSON('/api/v1/hosts'),
      getJSON('/api/v1/alerts', { state: 'firing' }),
    ]);
    const alerting = alertingHosts(alerts.alerts);
    const now = Date.now();
    const counts = { ok: 0, silent: 0, alerting: 0 };
    clear(body);
    for (const host of hosts.hosts) {
      const status = hostStatus(host, alerting);
      counts[status] += 1;
      body.append(row(host, status, now));
    }
    show(byId('hosts-empty'), hosts.hosts.length === 0);
    byId('hosts-summary').textContent = `${hosts.hosts.length} host${hosts.hosts.length === 1 ? '' : 's'} · ${counts.alerting} alerting · ${counts.silent} silent`;
    showError(byId('hosts-error'), '');
  } catch (err) {
    showError(byId('hosts-error'), err.message);
  }
}

initUserMenu();
load();
window.setInterval(load, REFRESH_MS);
