// The alerts page (/alerts): firing and pending alerts with a "Silence"
// action (a form prefilled with the alert's labels as matchers), the
// silences with an "Expire" action, recent state changes and the rules
// (those made in the app with a "Delete" action for admins).
// Refreshes every 30 s while no form is open.

import { getJSON, send, initUserMenu, currentSession } from './api.js';
import { el, byId, clear, show, showError, labelChips, parseTime, localOffset } from './dom.js';
import { formatAgo, formatNumber, formatTimestamp } from './chart-math.js';

const REFRESH_MS = 30000;
const ui = {
  firing: byId('alerts-firing').tBodies[0],
  firingEmpty: byId('alerts-empty'),
  silences: byId('silences').tBodies[0],
  silencesEmpty: byId('silences-empty'),
  history: byId('alert-history').tBodies[0],
  rules: byId('alert-rules').tBodies[0],
  error: byId('alerts-error'),
  summary: byId('alerts-summary'),
  dialog: byId('silence-dialog'),
  form: byId('silence-form'),
  matchers: byId('silence-matchers'),
  duration: byId('silence-duration'),
  comment: byId('silence-comment'),
  formError: byId('silence-error'),
};

function when(text, now) {
  const ms = parseTime(text);
  if (!Number.isFinite(ms)) return el('span', { text: '–' });
  return el('time', { class: 'num', text: formatAgo(ms, now), attrs: { datetime: text, title: formatTimestamp(ms, localOffset(ms), false) } });
}

function value(v) {
  return typeof v === 'number' ? formatNumber(v) : '–';
}

function alertRow(alert, now) {
  const summary = alert.annotations?.summary ?? alert.annotations?.description ?? '';
  const silenced = (alert.silencedBy ?? []).length > 0;
  const button = el('button', { class: 'silence-button', text: 'Silence', attrs: { type: 'button' }, on: { click: () => openSilenceForm(alert) } });
  return el('tr', { dataset: { fingerprint: alert.fingerprint, state: alert.state } },
    el('td', {}, el('span', { class: `badge state-${alert.state === 'firing' ? 'firing' : 'pending'}`, text: alert.state }),
      silenced ? el('span', { class: 'badge state-silenced', text: 'silenced' }) : null),
    el('td', { class: 'strong', text: alert.rule }),
    el('td', { class: 'n num', text: value(alert.value) }),
    el('td', {}, when(alert.since, now)),
    el('td', {}, labelChips(alert.labels, ['alertname'])),
    el('td', { class: 'summary', text: summary }),
    el('td', {}, button));
}

function matcherText(m) {
  const negated = m.isEqual === false;
  const op = m.isRegex ? (negated ? '!~' : '=~') : (negated ? '!=' : '=');
  return `${m.name}${op}"${m.value}"`;
}

function silenceRow(silence, now) {
  const ends = parseTime(silence.endsAt);
  return el('tr', { dataset: { id: silence.id, active: String(silence.active) } },
    el('td', {}, el('span', { class: `badge ${silence.active ? 'state-silenced' : 'state-expired'}`, text: silence.active ? 'active' : 'expired' })),
    el('td', {}, el('span', { class: 'chips' }, silence.matchers.map((m) => el('span', { class: 'chip mono', text: matcherText(m) })))),
    el('td', {}, Number.isFinite(ends) ? el('time', { class: 'num', text: formatAgo(ends, now), attrs: { datetime: silence.endsAt } }) : '–'),
    el('td', { text: silence.comment }),
    el('td', { text: silence.createdBy }),
    el('td', {}, silence.active
      ? el('button', { class: 'expire-button', text: 'Expire', attrs: { type: 'button' }, on: { click: (event) => expire(silence.id, event.currentTarget) } })
      : null));
}

async function load() {
  const now = Date.now();
  try {
    const [alerts, silences, history, rules, session] = await Promise.all([
      getJSON('/api/v1/alerts'),
      getJSON('/api/v1/silences'),
      getJSON('/api/v1/alerts/history', { limit: 50 }),
      getJSON('/api/v1/alerts/rules'),
      currentSession(),
    ]);
    const admin = session?.role === 'admin';
    const active = alerts.alerts.filter((a) => a.state === 'firing' || a.state === 'pending');
    active.sort((a, b) => (a.state === b.state ? a.rule.localeCompare(b.rule) : a.state === 'firing' ? -1 : 1));
    clear(ui.firing).append(...active.map((a) => alertRow(a, now)));
    show(ui.firingEmpty, active.length === 0);
    const firing = active.filter((a) => a.state === 'firing').length;
    ui.summary.textContent = `${firing} firing · ${active.length - firing} pending`;

    const list = [...silences.silences].sort((a, b) => Number(b.active) - Number(a.active));
    clear(ui.silences).append(...list.map((s) => silenceRow(s, now)));
    show(ui.silencesEmpty, list.length === 0);

    clear(ui.history).append(...history.history.map((h) => el('tr', { dataset: { fingerprint: h.fingerprint } },
      el('td', {}, when(h.at, now)),
      el('td', { text: h.rule }),
      el('td', {}, el('span', { class: `badge state-${['firing', 'pending', 'resolved'].includes(h.state) ? h.state : 'expired'}`, text: h.state })),
      el('td', { class: 'n num', text: value(h.value) }),
      el('td', {}, labelChips(h.labels, ['alertname'])))));

    clear(ui.rules).append(...rules.rules.map((r) => el('tr', { dataset: { rule: r.name, state: r.state } },
      el('td', { class: 'strong', text: r.name }),
      el('td', {}, el('span', { class: `badge state-${['firing', 'pending'].includes(r.state) ? r.state : 'inactive'}`, text: r.state })),
      el('td', {}, r.kind, r.origin === 'app' ? el('div', { class: 'muted rule-origin', text: `made in the app by ${r.createdBy}` }) : ''),
      el('td', { class: 'mono', text: r.condition }),
      el('td', {}, r.lastError ? el('span', { class: 'form-error', text: r.lastError }) : when(r.lastEvaluation, now),
        admin && r.origin === 'app' ? deleteRuleButton(r.name) : ''))),
    ...(rules.skipped ?? []).map((r) => el('tr', { dataset: { rule: r.name, state: 'skipped' } },
      el('td', { class: 'strong', text: r.name }),
      el('td', {}, el('span', { class: 'badge state-expired', text: 'skipped' })),
      el('td', { text: 'made in the app' }),
      el('td', { class: 'form-error', text: r.reason }),
      el('td', {}, admin ? deleteRuleButton(r.name) : ''))));
    showError(ui.error, '');
  } catch (err) {
    showError(ui.error, err.message);
  }
}

// ---- silences -----------------------------------------------------------

function matcherRow(name = '', val = '') {
  const remove = el('button', { class: 'link-button', text: 'Remove', attrs: { type: 'button' } });
  const row = el('div', { class: 'matcher' },
    el('input', { class: 'matcher-name mono', attrs: { 'aria-label': 'Label', placeholder: 'label', value: name, required: true } }),
    el('span', { text: '=' }),
    el('input', { class: 'matcher-value mono', attrs: { 'aria-label': 'Value', placeholder: 'value', value: val, required: true } }),
    remove);
  remove.addEventListener('click', () => row.remove());
  return row;
}

function openSilenceForm(alert) {
  clear(ui.matchers);
  const labels = alert?.labels ?? {};
  const names = Object.keys(labels).sort((a, b) => (a === 'alertname' ? -1 : b === 'alertname' ? 1 : a.localeCompare(b)));
  for (const name of names) ui.matchers.append(matcherRow(name, labels[name]));
  if (names.length === 0) ui.matchers.append(matcherRow());
  ui.comment.value = '';
  showError(ui.formError, '');
  ui.form.dataset.fingerprint = alert?.fingerprint ?? '';
  if (typeof ui.dialog.showModal === 'function') ui.dialog.showModal();
  else ui.dialog.setAttribute('open', '');
  ui.comment.focus();
}

function closeSilenceForm() {
  if (typeof ui.dialog.close === 'function') ui.dialog.close();
  else ui.dialog.removeAttribute('open');
}

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const matchers = [...ui.matchers.querySelectorAll('.matcher')].map((row) => ({
    name: row.querySelector('.matcher-name').value.trim(),
    value: row.querySelector('.matcher-value').value,
    isRegex: false,
    isEqual: true,
  })).filter((m) => m.name);
  const submit = byId('silence-submit');
  submit.disabled = true;
  try {
    await send('POST', '/api/v1/silences', { matchers, comment: ui.comment.value.trim(), duration: ui.duration.value });
    closeSilenceForm();
    await load();
  } catch (err) {
    showError(ui.formError, err.message);
  } finally {
    submit.disabled = false;
  }
});

byId('add-matcher').addEventListener('click', () => ui.matchers.append(matcherRow()));
byId('silence-cancel').addEventListener('click', closeSilenceForm);

async function expire(id, button) {
  button.disabled = true;
  try {
    await send('DELETE', `/api/v1/silences/${encodeURIComponent(id)}`);
    await load();
  } catch (err) {
    showError(ui.error, err.message);
    button.disabled = false;
  }
}

function deleteRuleButton(name) {
  const button = el('button', { class: 'link-button rule-delete', text: 'Delete', attrs: { type: 'button', title: `Delete the rule “${name}”` } });
  button.addEventListener('click', async () => {
    if (!window.confirm(`Delete the rule “${name}”? Its alerts resolve.`)) return;
    button.disabled = true;
    try {
      await send('DELETE', `/api/v1/alerts/rules/${encodeURIComponent(name)}`);
      await load();
    } catch (err) {
      showError(ui.error, err.message);
      button.disabled = false;
    }
  });
  return button;
}

initUserMenu();
load();
window.setInterval(() => {
  if (!ui.dialog.open) load();
}, REFRESH_MS);
