// One host's page (/hosts/<name>): its charts over a chosen range, drawn from
// the dashboard definition (dashboards/host.json, GET /api/v1/dashboards/host):
// one chart per panel, or per label value for panels with `split_by`.
//
// Panel keys: title, metric, unit (percent | bytes | bytes_per_sec | number),
// labels (only series with these label values), split_by (a label: one chart
// per value), without_labels (drop series that have any of these labels, e.g.
// the per-CPU series of cpu.usage_percent).

import { getJSON, initUserMenu } from './api.js';
import { el, byId, clear, showError, parseTime } from './dom.js';
import { lineChart } from './chart.js';
import { formatAgo } from './chart-math.js';

const RANGES = {
  '1h': { ms: 3600000, step: '15s' },
  '6h': { ms: 6 * 3600000, step: '1m' },
  '24h': { ms: 86400000, step: '5m' },
  '7d': { ms: 7 * 86400000, step: '30m' },
};

const name = decodeURIComponent(window.location.pathname.replace(/^\/hosts\//, ''));
const charts = byId('charts');
let range = new URLSearchParams(window.location.search).get('range');
if (!(range in RANGES)) range = '1h';

/** The series of `answer` a panel shows, grouped into charts: [{ title, series }]. */
export function panelCharts(panel, answer) {
  const without = panel.without_labels ?? [];
  const kept = answer.series.filter((s) => !without.some((label) => label in (s.labels ?? {})));
  const describe = (labels, skip) => Object.entries(labels ?? {}).filter(([k]) => k !== skip).map(([k, v]) => `${k}=${v}`).join(' ');
  if (!panel.split_by) {
    return [{ title: panel.title, split: null, series: kept.map((s) => ({ label: describe(s.labels), points: s.points })) }];
  }
  const groups = new Map();
  for (const s of kept) {
    const value = (s.labels ?? {})[panel.split_by] ?? '';
    if (!groups.has(value)) groups.set(value, []);
    groups.get(value).push({ label: describe(s.labels, panel.split_by), points: s.points });
  }
  return [...groups.keys()].sort().map((value) => ({ title: `${panel.title} · ${value}`, split: value, series: groups.get(value) }));
}

async function drawPanel(panel, start, end, slot) {
  const params = { host: name, name: panel.metric, start, end, step: RANGES[range].step };
  for (const [key, value] of Object.entries(panel.labels ?? {})) params[`label.${key}`] = value;
  try {
    const answer = await getJSON('/api/v1/metrics/series', params);
    const found = panelCharts(panel, answer);
    clear(slot);
    if (found.every((c) => c.series.length === 0)) {
      slot.remove(); // the host does not report this metric
      return;
    }
    for (const chart of found) {
      const canvas = el('div', { class: 'chart-canvas' });
      slot.append(el('figure', { class: 'chart', dataset: { metric: panel.metric, split: chart.split ?? '' } },
        el('figcaption', { text: chart.title }), canvas));
      lineChart(canvas, { series: chart.series, unit: panel.unit, start, end, title: chart.title });
    }
  } catch (err) {
    clear(slot).append(el('p', { class: 'form-error', text: `${panel.title}: ${err.message}` }));
  }
}

async function load() {
  for (const button of document.querySelectorAll('#chart-ranges .range-button')) {
    button.setAttribute('aria-pressed', String(button.dataset.range === range));
  }
  const end = Date.now();
  const start = end - RANGES[range].ms;
  try {
    const [dashboard, hosts] = await Promise.all([getJSON('/api/v1/dashboards/host'), getJSON('/api/v1/hosts')]);
    const host = hosts.hosts.find((h) => h.host === name);
    const status = byId('host-status');
    if (host) {
      status.textContent = host.silent ? `silent · last seen ${formatAgo(parseTime(host.last_seen), end)}` : `last seen ${formatAgo(parseTime(host.last_seen), end)}`;
      status.className = `badge status-${host.silent ? 'silent' : 'ok'}`;
    } else {
      status.textContent = 'unknown host';
      status.className = 'badge status-silent';
    }
    clear(charts);
    const slots = dashboard.panels.map(() => charts.appendChild(el('div', { class: 'chart-slot' })));
    await Promise.all(dashboard.panels.map((panel, i) => drawPanel(panel, start, end, slots[i])));
    showError(byId('host-error'), '');
  } catch (err) {
    showError(byId('host-error'), err.message);
  }
}

byId('host-name').textContent = name;
document.title = `${name} · Hosts · Lookout`;
byId('host-logs').setAttribute('href', `/search?${new URLSearchParams({ host: name })}`);
for (const button of document.querySelectorAll('#chart-ranges .range-button')) {
  button.addEventListener('click', () => {
    range = button.dataset.range;
    const search = new URLSearchParams(window.location.search);
    search.set('range', range);
    history.replaceState(null, '', `${window.location.pathname}?${search}`);
    load();
  });
}
initUserMenu();
load();
