// The search page's saved searches: save the current search (for oneself or
// shared), list one's own and the shared ones, open, remove, and turn one
// into an alert rule: its rules-file entry, editable, put in force by an
// admin (POST /api/v1/alerts/rules) or copied into the rules file.

import { getJSON, send, currentSession, ApiError } from './api.js';
import { el, byId, clear, show } from './dom.js';
import { stateToSearch } from './query.js';

const ui = {
  menu: byId('saved'),
  form: byId('save-form'),
  name: byId('save-name'),
  shared: byId('save-shared'),
  error: byId('save-error'),
  list: byId('saved-list'),
  ruleForm: byId('rule-form'),
  ruleSearch: byId('rule-search'),
  ruleKind: byId('rule-kind'),
  ruleEntry: byId('rule-entry'),
  ruleCreate: byId('rule-create'),
  ruleStatus: byId('rule-status'),
};

// The kinds a search can become: a table (a pipe) only log_stats.
const LINE_KINDS = ['log_match', 'error_rate'];

/** `getState()` answers the page's state (q, range, host, source, level) to save. */
export function initSaved(getState) {
  ui.menu.addEventListener('toggle', () => {
    if (ui.menu.open) refresh();
  });
  ui.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const state = getState();
    try {
      await send('POST', '/api/v1/searches', {
        name: ui.name.value,
        q: state.q,
        range: state.range,
        host: state.host,
        source: state.source,
        level: state.level,
        shared: ui.shared.checked,
      });
      ui.name.value = '';
      setError('');
      await refresh();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : `Not saved: ${err.message}`);
    }
  });
  ui.ruleKind.addEventListener('change', () => loadRule(ui.ruleForm.dataset.id, ui.ruleKind.value));
  byId('rule-cancel').addEventListener('click', () => show(ui.ruleForm, false));
  ui.ruleForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    ui.ruleCreate.disabled = true;
    try {
      const rule = await send('POST', '/api/v1/alerts/rules', { entry: ui.ruleEntry.value });
      setRuleStatus(`Rule “${rule.name}” is in force.`, false);
      ui.ruleStatus.append(' ', el('a', { text: 'See it on the alerts page', attrs: { href: '/alerts' } }));
    } catch (err) {
      setRuleStatus(err.message, true);
    } finally {
      ui.ruleCreate.disabled = false;
    }
  });
}

function setRuleStatus(message, failed) {
  ui.ruleStatus.textContent = message;
  ui.ruleStatus.className = failed ? 'form-error' : 'muted';
}

function setError(message) {
  ui.error.textContent = message;
  show(ui.error, Boolean(message));
}

async function refresh() {
  const [answer, session] = await Promise.all([getJSON('/api/v1/searches').catch((err) => err), currentSession()]);
  if (answer instanceof Error) {
    setError(answer.message);
    return;
  }
  const me = session?.user ?? '';
  const admin = session?.role === 'admin';
  clear(ui.list);
  for (const search of answer.searches) {
    const mine = search.owner === me;
    const remove = (mine || (admin && search.shared)) && el('button', {
      class: 'link-button',
      text: 'remove',
      attrs: { type: 'button', title: `Remove “${search.name}”` },
      on: {
        click: async () => {
          try {
            await send('DELETE', `/api/v1/searches/${search.id}`);
            await refresh();
          } catch (err) {
            setError(err.message);
          }
        },
      },
    });
    const rule = el('button', {
      class: 'link-button saved-as-rule',
      text: 'as alert rule',
      attrs: { type: 'button', title: 'Make an alert rule of this search' },
      on: { click: () => showRule(search) },
    });
    const who = search.shared ? `shared${mine ? '' : ` by ${search.owner || 'an API token'}`}` : 'mine';
    ui.list.append(el('li', { dataset: { id: String(search.id) } },
      el('a', { class: 'saved-open', text: search.name, attrs: { href: `/search${stateToSearch({ ...search, start: null, end: null })}` } }),
      ' ', el('span', { class: 'muted', text: `(${who})` }), ' ', rule, ' ', remove || ''));
  }
  if (answer.searches.length === 0) ui.list.append(el('li', { class: 'muted', text: 'No saved searches yet.' }));
}

async function showRule(search) {
  ui.ruleForm.dataset.id = String(search.id);
  ui.ruleSearch.textContent = search.name;
  setRuleStatus('', false);
  const [kind, session] = await Promise.all([loadRule(search.id, ''), currentSession()]);
  if (!kind) return;
  // Only an admin may put a rule in force; others copy the entry.
  show(ui.ruleCreate, session?.role === 'admin');
  const kinds = LINE_KINDS.includes(kind) ? LINE_KINDS : [kind];
  clear(ui.ruleKind).append(...kinds.map((k) => el('option', { text: k, attrs: { value: k } })));
  ui.ruleKind.value = kind;
  show(ui.ruleForm, true);
  ui.ruleEntry.focus();
}

/** Fills the entry of `kind` (the server's choice if empty); answers the kind. */
async function loadRule(id, kind) {
  try {
    const answer = await getJSON(`/api/v1/searches/${id}/rule`, kind ? { kind } : {});
    ui.ruleEntry.value = answer.toml;
    return answer.kind;
  } catch (err) {
    setError(err.message);
    return null;
  }
}
