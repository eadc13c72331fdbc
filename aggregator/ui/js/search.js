// The search page (/ and /search): query, time range, host / source / level
// filters with counts, a histogram to zoom with, results newest first with
// the query's words highlighted, the lines around a result, live tail, and
// the whole state in the URL so that a search can be shared.

import { getJSON, tail, initUserMenu, ApiError } from './api.js';
import { el, byId, clear, show, showError, levelClass, localOffset, parseTime, toDatetimeLocal, fromDatetimeLocal } from './dom.js';
import { histogram } from './chart.js';
import { formatTimestamp } from './chart-math.js';
import {
  RANGES, highlightTerms, splitHighlights, stateFromSearch, stateToSearch, timeWindow, syntaxErrorPosition,
  fieldName, fieldTerm, addTerm,
} from './query.js';

const PAGE_SIZE = 100;
const HISTOGRAM_BUCKETS = 80;
const CONTEXT_LINES = 10;
/** Rows kept on the page in live tail; older ones are dropped from the bottom. */
const MAX_LIVE_ROWS = 2000;
const FACETS = ['level', 'host', 'source'];

const ui = {
  form: byId('search-form'),
  query: byId('query'),
  queryError: byId('query-error'),
  queryCaret: byId('query-caret'),
  queryErrorText: byId('query-error-text'),
  start: byId('start'),
  end: byId('end'),
  applyRange: byId('apply-range'),
  liveToggle: byId('live-toggle'),
  livePause: byId('live-pause'),
  liveStatus: byId('live-status'),
  count: byId('result-count'),
  took: byId('took'),
  histogram: byId('histogram'),
  error: byId('search-error'),
  empty: byId('empty-state'),
  results: byId('results'),
  loadMore: byId('load-more'),
  context: byId('context'),
  contextFields: byId('context-fields'),
  contextLines: byId('context-lines'),
  contextClose: byId('context-close'),
};

let state = stateFromSearch(window.location.search);
/** The current search: its frozen time window, hits shown, total, highlight terms. */
let current = { window: null, shown: 0, total: 0, terms: [] };
let inFlight = null;
let live = null; // { stream, paused, buffer: [] }

// ---- rendering ----------------------------------------------------------

function hitRow(hit, terms, isLive = false) {
  const ms = parseTime(hit.timestamp);
  const level = levelClass(hit.level);
  const message = el('span', { class: 'hit-message' });
  for (const part of splitHighlights(hit.message, terms)) {
    message.append(part.match ? el('mark', { text: part.text }) : document.createTextNode(part.text));
  }
  const sourceName = hit.source.split('/').pop() || hit.source;
  const row = el('div', {
    class: `hit level-${level}${isLive ? ' live-new' : ''}`,
    attrs: { role: 'listitem', tabindex: '0', 'aria-expanded': 'false' },
    dataset: { id: hit.id },
  },
  el('time', { class: 'hit-time num', text: Number.isFinite(ms) ? formatTimestamp(ms, localOffset(ms)) : hit.timestamp, attrs: { datetime: hit.timestamp } }),
  el('span', { class: 'hit-host', text: hit.host, attrs: { title: hit.host } }),
  el('span', { class: 'hit-source', text: sourceName, attrs: { title: hit.source } }),
  el('span', { class: `hit-level badge level-${level}`, text: hit.level || '–' }),
  message);
  row.addEventListener('click', (event) => {
    if (window.getSelection()?.toString()) return; // selecting text is not a click
    if (event.target.closest('a')) return;
    toggleContext(row, hit);
  });
  row.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') toggleContext(row, hit);
  });
  return row;
}

function renderFacet(field, answer) {
  const list = byId(`filter-${field}`);
  clear(list);
  const selected = state[field];
  const values = answer ? answer.values : [];
  if (selected && !values.some((v) => v.value === selected)) values.unshift({ value: selected, count: 0 });
  for (const { value, count } of values) {
    const button = el('button', {
      class: `facet${field === 'level' ? ` level-${levelClass(value)}` : ''}`,
      // Lines without a level are counted but cannot be a filter: an empty
      // filter value means "any".
      attrs: { type: 'button', 'aria-pressed': String(value !== '' && value === selected), title: value || '(no level)', disabled: value === '' },
      dataset: { value },
      on: { click: () => setFilter(field, value === selected ? '' : value) },
    },
    el('span', { class: 'facet-value', text: value || '(none)' }),
    el('span', { class: 'facet-count num', text: count.toLocaleString() }));
    list.append(el('li', {}, button));
  }
  if (answer && answer.other > 0) list.append(el('li', { class: 'muted facet-other', text: `${answer.other.toLocaleString()} more in other values` }));
  if (values.length === 0) list.append(el('li', { class: 'muted', text: 'none' }));
}

function renderHistogram(buckets, span) {
  const parsed = buckets.map((b) => ({ startMs: parseTime(b.start), count: b.count }));
  const widthMs = parsed.length > 1 ? parsed[1].startMs - parsed[0].startMs : span.end - span.start;
  histogram(ui.histogram, {
    buckets: parsed,
    widthMs,
    start: span.start,
    end: span.end,
    onSelect: ({ start, end }) => {
      state = { ...state, range: '', start, end };
      run({ push: true });
    },
  });
}

function setCount(total) {
  ui.count.textContent = `${total.toLocaleString('en-US')} ${total === 1 ? 'line' : 'lines'}`;
  ui.count.dataset.total = String(total);
}

function showQueryError(message) {
  const position = syntaxErrorPosition(message);
  show(ui.queryError, Boolean(message));
  ui.queryErrorText.textContent = message ?? '';
  ui.queryCaret.textContent = position >= 0 ? `${ui.query.value}\n${' '.repeat(position)}^` : '';
  show(ui.queryCaret, position >= 0);
  ui.query.setAttribute('aria-invalid', String(Boolean(message)));
}

function syncControls() {
  ui.query.value = state.q;
  for (const button of document.querySelectorAll('#quick-ranges .range-button')) {
    button.setAttribute('aria-pressed', String(button.dataset.range === state.range));
  }
  const span = timeWindow(state, Date.now());
  ui.start.value = toDatetimeLocal(span.start);
  ui.end.value = toDatetimeLocal(span.end);
  document.title = state.q ? `${state.q} · Search · Lookout` : 'Search · Lookout';
}

// ---- searching ----------------------------------------------------------

function filterParams(span, except = null) {
  const params = { q: state.q, start: span.start, end: span.end };
  for (const field of FACETS) if (field !== except) params[field] = state[field];
  return params;
}

/** Runs the search of `state`; push: add a browser history entry. */
async function run({ push = false } = {}) {
  const search = stateToSearch(state);
  if (search !== window.location.search) {
    (push ? history.pushState : history.replaceState).call(history, null, '', `${window.location.pathname}${search}`);
  }
  syncControls();
  hideContext();
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  const span = timeWindow(state, Date.now());
  const terms = highlightTerms(state.q);
  const signal = controller.signal;
  ui.results.setAttribute('aria-busy', 'true');
  try {
    const [result, hist, ...facets] = await Promise.all([
      getJSON('/api/v1/logs/search', { ...filterParams(span), limit: PAGE_SIZE }, { signal }),
      getJSON('/api/v1/logs/histogram', { ...filterParams(span), buckets: HISTOGRAM_BUCKETS }, { signal }),
      ...FACETS.map((field) => getJSON('/api/v1/logs/facets', { ...filterParams(span, field), field }, { signal })
        .catch((err) => (err instanceof ApiError && err.status === 404 ? null : Promise.reject(err)))),
    ]);
    if (controller !== inFlight) return;
    current = { window: span, shown: result.hits.length, total: result.total, terms };
    showQueryError('');
    showError(ui.error, '');
    setCount(result.total);
    ui.took.textContent = `in ${result.took_ms} ms`;
    clear(ui.results).append(...result.hits.map((hit) => hitRow(hit, terms)));
    show(ui.empty, result.total === 0);
    show(ui.loadMore, current.shown < result.total);
    renderHistogram(hist.buckets, span);
    FACETS.forEach((field, i) => renderFacet(field, facets[i]));
  } catch (err) {
    if (err.name === 'AbortError' || controller !== inFlight) return;
    failed(err);
  } finally {
    if (controller === inFlight) {
      ui.results.removeAttribute('aria-busy');
      inFlight = null;
    }
  }
  if (live) restartLive();
}

function failed(err) {
  const message = err instanceof ApiError ? err.message : `The search failed: ${err.message}`;
  clear(ui.results);
  show(ui.empty, false);
  show(ui.loadMore, false);
  ui.count.textContent = '';
  ui.took.textContent = '';
  if (syntaxErrorPosition(message) >= 0 || /query/i.test(message)) {
    showQueryError(message);
    showError(ui.error, '');
  } else {
    showQueryError('');
    showError(ui.error, message);
  }
}

async function loadMore() {
  if (!current.window) return;
  ui.loadMore.disabled = true;
  try {
    const result = await getJSON('/api/v1/logs/search', { ...filterParams(current.window), limit: PAGE_SIZE, offset: current.shown });
    ui.results.append(...result.hits.map((hit) => hitRow(hit, current.terms)));
    current.shown += result.hits.length;
    show(ui.loadMore, result.hits.length > 0 && current.shown < result.total);
  } catch (err) {
    showError(ui.error, err.message);
  } finally {
    ui.loadMore.disabled = false;
  }
}

function setFilter(field, value) {
  state = { ...state, [field]: value };
  run({ push: true });
}

// ---- the lines around a hit ---------------------------------------------

function hideContext() {
  show(ui.context, false);
  for (const row of ui.results.querySelectorAll('.hit.expanded')) {
    row.classList.remove('expanded');
    row.setAttribute('aria-expanded', 'false');
  }
}

async function toggleContext(row, hit) {
  const open = row.classList.contains('expanded');
  hideContext();
  if (open) return;
  row.classList.add('expanded');
  row.setAttribute('aria-expanded', 'true');
  row.after(ui.context);
  show(ui.context, true);
  clear(ui.contextFields);
  const fields = [['time', hit.timestamp], ['host', hit.host], ['source', hit.source], ['level', hit.level || '(none)'], ['id', hit.id]];
  for (const [name, value] of Object.entries(hit.labels ?? {})) fields.push([`labels.${name}`, value]);
  if (hit.truncated) fields.push(['truncated', 'yes: the agent cut this record short']);
  for (const [name, value] of fields) ui.contextFields.append(el('dt', { text: name }), el('dd', { text: value }));
  // Fields extracted from the line, each offered as a filter where the
  // query language can name it.
  for (const [name, value] of Object.entries(hit.fields ?? {})) {
    const term = fieldTerm(name, value);
    const filter = term && el('button', {
      class: 'link-button field-filter',
      text: 'filter',
      attrs: { type: 'button', title: `Add ${term} to the query` },
      dataset: { term },
      on: {
        click: (event) => {
          event.stopPropagation();
          state = { ...state, q: addTerm(state.q, term) };
          run({ push: true });
        },
      },
    });
    ui.contextFields.append(el('dt', { class: 'field-name', text: fieldName(name) }), el('dd', {}, el('span', { class: 'field-value', text: String(value) }), ' ', filter));
  }
  const sameFile = `/search${stateToSearch({ ...state, q: '', host: hit.host, source: hit.source, level: '' })}`;
  ui.contextFields.append(el('dt', { text: 'more' }), el('dd', {}, el('a', { text: 'All lines of this file in this range', attrs: { href: sameFile } })));
  clear(ui.contextLines).append(el('li', { class: 'muted', text: 'Loading…' }));
  try {
    const context = await getJSON('/api/v1/logs/context', { id: hit.id, before: CONTEXT_LINES, after: CONTEXT_LINES });
    if (!row.classList.contains('expanded')) return;
    const line = (h, isCurrent) => {
      const ms = parseTime(h.timestamp);
      const item = el('li', { class: `context-line level-${levelClass(h.level)}${isCurrent ? ' context-current' : ''}`, dataset: { id: h.id } },
        el('time', { class: 'num', text: Number.isFinite(ms) ? formatTimestamp(ms, localOffset(ms)) : h.timestamp }),
        el('span', { class: 'context-message', text: h.message }));
      if (isCurrent) item.setAttribute('aria-current', 'true');
      return item;
    };
    clear(ui.contextLines).append(
      ...context.before.map((h) => line(h, false)),
      line(context.hit, true),
      ...context.after.map((h) => line(h, false)));
  } catch (err) {
    clear(ui.contextLines).append(el('li', { class: 'form-error', text: err.message }));
  }
}

// ---- live tail ----------------------------------------------------------

function setLiveStatus(text) {
  ui.liveStatus.textContent = text;
  show(ui.liveStatus, Boolean(text));
}

function addLiveHit(hit) {
  if (!live) return;
  if (live.paused) {
    live.buffer.push(hit);
    setLiveStatus(`Paused · ${live.buffer.length.toLocaleString()} new`);
    return;
  }
  show(ui.empty, false);
  ui.results.prepend(hitRow(hit, current.terms, true));
  current.total += 1;
  current.shown += 1;
  setCount(current.total);
  while (ui.results.childElementCount > MAX_LIVE_ROWS) ui.results.lastElementChild.remove();
}

function startLive() {
  const params = { q: state.q, host: state.host, source: state.source, level: state.level };
  live = { paused: false, buffer: [], stream: null };
  live.stream = tail(params, {
    onHit: addLiveHit,
    onLagged: (n) => setLiveStatus(`Live · skipped ${n} batches (too many lines to show)`),
    onStatus: (s) => setLiveStatus(s === 'live' ? 'Live' : 'Live · reconnecting…'),
    onError: (message) => {
      stopLive();
      showError(ui.error, `Live tail: ${message}`);
    },
  });
  ui.liveToggle.setAttribute('aria-pressed', 'true');
  ui.livePause.setAttribute('aria-pressed', 'false');
  ui.livePause.textContent = 'Pause';
  show(ui.livePause, true);
  setLiveStatus('Live · connecting…');
}

function stopLive() {
  if (live) live.stream.close();
  live = null;
  ui.liveToggle.setAttribute('aria-pressed', 'false');
  show(ui.livePause, false);
  setLiveStatus('');
}

function restartLive() {
  stopLive();
  startLive();
}

function togglePause() {
  if (!live) return;
  live.paused = !live.paused;
  ui.livePause.setAttribute('aria-pressed', String(live.paused));
  ui.livePause.textContent = live.paused ? 'Resume' : 'Pause';
  if (!live.paused) {
    const buffered = live.buffer;
    live.buffer = [];
    buffered.forEach(addLiveHit);
    setLiveStatus('Live');
  } else {
    setLiveStatus('Paused');
  }
}

// ---- wiring -------------------------------------------------------------

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  state = { ...state, q: ui.query.value.trim() };
  run({ push: true });
});

for (const button of document.querySelectorAll('#quick-ranges .range-button')) {
  button.addEventListener('click', () => {
    if (!(button.dataset.range in RANGES)) return;
    state = { ...state, q: ui.query.value.trim(), range: button.dataset.range, start: null, end: null };
    run({ push: true });
  });
}

ui.applyRange.addEventListener('click', () => {
  const start = fromDatetimeLocal(ui.start.value);
  const end = fromDatetimeLocal(ui.end.value);
  if (!Number.isFinite(start) || !Number.isFinite(end) || start >= end) {
    showError(ui.error, 'Give a start time before the end time.');
    return;
  }
  state = { ...state, q: ui.query.value.trim(), range: '', start, end };
  run({ push: true });
});

ui.liveToggle.addEventListener('click', () => (live ? stopLive() : startLive()));
ui.livePause.addEventListener('click', togglePause);
ui.loadMore.addEventListener('click', loadMore);
ui.contextClose.addEventListener('click', hideContext);

document.addEventListener('keydown', (event) => {
  const target = event.target;
  const typing = target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
  if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    event.preventDefault();
    ui.query.focus();
    ui.query.select();
  } else if (event.key === 'Escape' && !ui.context.hidden) {
    hideContext();
  }
});

window.addEventListener('popstate', () => {
  state = stateFromSearch(window.location.search);
  run();
});

initUserMenu();
run();
