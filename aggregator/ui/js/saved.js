// The search page's saved searches: save the current search (for oneself or
// shared), list one's own and the shared ones, open, remove, and show the
// rules-file entry that alerts on one.

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
  rule: byId('saved-rule'),
};

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
      attrs: { type: 'button', title: 'The rules-file entry that alerts on this search' },
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
  try {
    const answer = await getJSON(`/api/v1/searches/${search.id}/rule`);
    ui.rule.textContent = `# Add to the rules file (rules_file), then restart the aggregator:\n${answer.toml}`;
    show(ui.rule, true);
  } catch (err) {
    setError(err.message);
  }
}
