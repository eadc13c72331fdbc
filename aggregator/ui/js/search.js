// The search page (/ and /search): query, time range, host / source / level
// filters with counts, a histogram to zoom with, results newest first with
// the query's words highlighted, the lines around a result, live tail, a
// table (and a chart over time) for a query with a pipe, the patterns of the
// lines (what is most frequent, new or changed), and the whole state in the
// URL so that a search can be shared.

import { getJSON, tail, initUserMenu, ApiError, url } from './api.js';
import { el, svg, byId, clear, show, showError, levelClass, localOffset, parseTime, toDatetimeLocal, fromDatetimeLocal } from './dom.js';
import { histogram, lineChart } from './chart.js';
import { initSaved } from './saved.js';
import { formatTimestamp, sparkPath } from './chart-math.js';
import {
  RANGES, markedParts, stateFromSearch, stateToSearch, timeWindow, syntaxErrorPosition,
  fieldName, fieldTerm, addTerm, hasPipe, keyTerm, bucketWidth, parseTableSort, tableSortParam,
  templateParts, changeText,
} from './query.js';

const PAGE_SIZE = 100;
const HISTOGRAM_BUCKETS = 80;
const CONTEXT_LINES = 10;
/** Rows kept on the page in live tail; older ones are dropped from the bottom. */
const MAX_LIVE_ROWS = 2000;
const FACETS = ['level', 'host', 'source'];
/** Values listed per field in the fields panel. */
const FIELD_VALUES = 5;
/** Series drawn at most in a table's chart (the rest are in the table). */
const MAX_SERIES = 8;
/** Patterns listed, and the buckets of each one's sparkline. */
const PATTERN_LIMIT = 200;
const SPARK_BUCKETS = 30;
const SPARK_SIZE = { width: 120, height: 24 };

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
  stats: byId('stats'),
  statsChart: byId('stats-chart'),
  statsHead: byId('stats-head'),
  statsRows: byId('stats-rows'),
  exportLinks: byId('export-links'),
  fieldsPanel: byId('fields-panel'),
  fieldsSample: byId('fields-sample'),
  exportCsv: byId('export-csv'),
  exportNdjson: byId('export-ndjson'),
  patterns: byId('patterns'),
  patternOrder: byId('pattern-order'),
  patternsNote: byId('patterns-note'),
  patternRows: byId('pattern-rows'),
  patternChangeHead: byId('pattern-change-head'),
};

let state = stateFromSearch(window.location.search);
/** The current search: its frozen time window, hits shown, total. */
let current = { window: null, shown: 0, total: 0 };
let inFlight = null;
let live = null; // { stream, paused, buffer: [] }
/** The table shown for a query with a pipe: the answer and a click-sort ({ column, descending } or null). */
let table = null;

// ---- rendering ----------------------------------------------------------

function hitRow(hit, isLive = false) {
  const ms = parseTime(hit.timestamp);
  const level = levelClass(hit.level);
  const message = el('span', { class: 'hit-message' });
  for (const part of markedParts(hit.message, hit.marks)) {
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

/**
 * The fields of the lines shown, each with its most frequent values among
 * them (as Kibana's field list samples the documents it shows); a value
 * adds its filter to the query.
 */
function renderFields(hits) {
  const byName = new Map();
  for (const hit of hits) {
    for (const [name, value] of Object.entries(hit.fields ?? {})) {
      if (!byName.has(name)) byName.set(name, { lines: 0, values: new Map() });
      const field = byName.get(name);
      field.lines += 1;
      const key = JSON.stringify(value);
      field.values.set(key, (field.values.get(key) ?? 0) + 1);
    }
  }
  clear(ui.fieldsPanel);
  const shown = hits.length.toLocaleString('en-US');
  ui.fieldsSample.textContent = hits.length ? `In the ${shown} ${hits.length === 1 ? 'line' : 'lines'} shown:` : '';
  const names = [...byName.keys()].sort((a, b) => byName.get(b).lines - byName.get(a).lines || (a < b ? -1 : 1));
  for (const name of names) {
    const field = byName.get(name);
    const top = [...field.values.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, FIELD_VALUES);
    const list = el('ul', {}, ...top.map(([key, count]) => {
      const value = JSON.parse(key);
      const term = fieldTerm(name, value);
      return el('li', {}, el('button', {
        class: 'link-button field-value-filter',
        attrs: { type: 'button', title: term ? `Add ${term} to the query` : 'This name cannot be written in a query', disabled: !term },
        dataset: { term: term ?? '' },
        on: { click: () => { state = { ...state, q: addTerm(state.q, term) }; run({ push: true }); } },
      }, el('span', { class: 'field-value', text: String(value) }), el('span', { class: 'num muted', text: count.toLocaleString('en-US') })));
    }));
    ui.fieldsPanel.append(el('details', { dataset: { field: name } },
      el('summary', { text: `${fieldName(name)} (${field.lines.toLocaleString('en-US')})` }), list));
  }
  if (names.length === 0) ui.fieldsPanel.append(el('p', { class: 'muted', text: 'none' }));
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
  for (const button of document.querySelectorAll('#views button')) {
    button.setAttribute('aria-pressed', String(button.dataset.view === state.view));
  }
  ui.patternOrder.value = state.order || 'count';
  document.title = state.q ? `${state.q} · Search · Lookout` : 'Search · Lookout';
}

// ---- searching ----------------------------------------------------------

function filterParams(span, except = null) {
  const params = { q: state.q, start: span.start, end: span.end };
  for (const field of FACETS) if (field !== except) params[field] = state[field];
  return params;
}

/** Points the export links at what the page shows: the lines (or the table) of this window. */
function setExportLinks(span) {
  ui.exportCsv.href = url('/api/v1/logs/export', { ...filterParams(span), format: 'csv' });
  ui.exportNdjson.href = url('/api/v1/logs/export', { ...filterParams(span), format: 'ndjson' });
  show(ui.exportLinks, true);
}

/** The server's words for a query sent to the other endpoint (aggregator/src/http/logs.rs, query/mod.rs). */
const PIPE_REFUSED = 'the query has a pipe';
const NO_PIPE = 'the query has no pipe';

/** Whether `err` is the server saying the query belongs to the other endpoint. */
function misrouted(err, words) {
  return err instanceof ApiError && err.status === 400 && err.message.startsWith(words);
}

/**
 * Runs the search of `state`; push: add a browser history entry. A query
 * with a pipe asks for a table; `hasPipe` only guesses, and the server's
 * answer corrects a wrong guess once (`as`: 'table' or 'lines').
 */
async function run({ push = false, as = null } = {}) {
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
  const signal = controller.signal;
  ui.results.setAttribute('aria-busy', 'true');
  if (as === 'table' || (as === null && hasPipe(state.q))) {
    if (live) stopLive();
    show(ui.patterns, false);
    await runStats(controller, span, as === null);
    return;
  }
  table = null;
  show(ui.stats, false);
  show(ui.histogram, true);
  if (state.view === 'patterns') {
    if (live) stopLive();
    await runPatterns(controller, span);
    return;
  }
  show(ui.patterns, false);
  try {
    const [result, hist, ...facets] = await Promise.all([
      getJSON('/api/v1/logs/search', { ...filterParams(span), limit: PAGE_SIZE }, { signal }),
      getJSON('/api/v1/logs/histogram', { ...filterParams(span), buckets: HISTOGRAM_BUCKETS }, { signal }),
      ...FACETS.map((field) => getJSON('/api/v1/logs/facets', { ...filterParams(span, field), field }, { signal })
        .catch((err) => (err instanceof ApiError && err.status === 404 ? null : Promise.reject(err)))),
    ]);
    if (controller !== inFlight) return;
    current = { window: span, shown: result.hits.length, total: result.total };
    showQueryError('');
    showError(ui.error, '');
    setCount(result.total);
    ui.took.textContent = `in ${result.took_ms} ms`;
    setExportLinks(span);
    clear(ui.results).append(...result.hits.map((hit) => hitRow(hit)));
    renderFields(result.hits);
    show(ui.empty, result.total === 0);
    show(ui.loadMore, current.shown < result.total);
    renderHistogram(hist.buckets, span);
    FACETS.forEach((field, i) => renderFacet(field, facets[i]));
  } catch (err) {
    if (err.name === 'AbortError' || controller !== inFlight) return;
    if (rerouted(err, as === null, PIPE_REFUSED, 'table')) return;
  } finally {
    settle(controller);
  }
  if (live) restartLive();
}

/**
 * After a failed run: asks the other endpoint once when the server says the
 * query belongs there (answers true), else shows the error.
 */
function rerouted(err, guessed, words, as) {
  if (guessed && misrouted(err, words)) {
    inFlight = null;
    run({ as });
    return true;
  }
  failed(err);
  return false;
}

/** Ends the run of `controller`, if it is still the current one. */
function settle(controller) {
  if (controller === inFlight) {
    ui.results.removeAttribute('aria-busy');
    inFlight = null;
  }
}

/** A query with a pipe: its table, and the facets and histogram of the lines behind it. */
async function runStats(controller, span, guessed) {
  const signal = controller.signal;
  try {
    const answer = await getJSON('/api/v1/logs/stats', filterParams(span), { signal });
    const [hist, ...facets] = await Promise.all([
      getJSON('/api/v1/logs/histogram', { ...filterParams(span), q: answer.filter, buckets: HISTOGRAM_BUCKETS }, { signal }),
      ...FACETS.map((field) => getJSON('/api/v1/logs/facets', { ...filterParams(span, field), q: answer.filter, field }, { signal })),
    ]);
    if (controller !== inFlight) return;
    current = { window: span, shown: 0, total: 0 };
    // A click-sort in the URL applies while its column is in the table.
    const wanted = parseTableSort(state.sort);
    const column = wanted ? answer.columns.indexOf(wanted.column) : -1;
    table = { answer, sort: column >= 0 ? { column, descending: wanted.descending } : null, span };
    showQueryError('');
    showError(ui.error, '');
    const { groups } = answer;
    ui.count.textContent = `${groups.toLocaleString('en-US')} ${groups === 1 ? 'row' : 'rows'}${answer.rows.length < groups ? ` (${answer.rows.length.toLocaleString('en-US')} shown)` : ''}`;
    ui.count.dataset.total = String(groups);
    ui.took.textContent = `in ${answer.took_ms} ms`;
    setExportLinks(span);
    clear(ui.results);
    renderFields([]);
    show(ui.loadMore, false);
    show(ui.empty, answer.rows.length === 0);
    renderHistogram(hist.buckets, span);
    FACETS.forEach((field, i) => renderFacet(field, facets[i]));
    renderTable();
  } catch (err) {
    if (err.name === 'AbortError' || controller !== inFlight) return;
    table = null;
    show(ui.stats, false);
    rerouted(err, guessed, NO_PIPE, 'lines');
  } finally {
    settle(controller);
  }
}

/** The patterns of the lines: their table, and the histogram and facets of the lines. */
async function runPatterns(controller, span) {
  const signal = controller.signal;
  const order = state.order || 'count';
  try {
    const [answer, hist, ...facets] = await Promise.all([
      getJSON('/api/v1/logs/patterns', { ...filterParams(span), order, limit: PATTERN_LIMIT, buckets: SPARK_BUCKETS }, { signal }),
      getJSON('/api/v1/logs/histogram', { ...filterParams(span), buckets: HISTOGRAM_BUCKETS }, { signal }),
      ...FACETS.map((field) => getJSON('/api/v1/logs/facets', { ...filterParams(span, field), field }, { signal })
        .catch((err) => (err instanceof ApiError && err.status === 404 ? null : Promise.reject(err)))),
    ]);
    if (controller !== inFlight) return;
    current = { window: span, shown: 0, total: 0 };
    showQueryError('');
    showError(ui.error, '');
    const { total } = answer;
    ui.count.textContent = `${total.toLocaleString('en-US')} ${total === 1 ? 'pattern' : 'patterns'}${answer.patterns.length < total ? ` (${answer.patterns.length.toLocaleString('en-US')} shown)` : ''}`;
    ui.count.dataset.total = String(total);
    ui.took.textContent = `in ${answer.took_ms} ms`;
    setExportLinks(span);
    clear(ui.results);
    renderFields([]);
    show(ui.loadMore, false);
    show(ui.empty, answer.patterns.length === 0 && answer.unpatterned === 0);
    renderHistogram(hist.buckets, span);
    FACETS.forEach((field, i) => renderFacet(field, facets[i]));
    renderPatterns(answer, order);
  } catch (err) {
    if (err.name === 'AbortError' || controller !== inFlight) return;
    show(ui.patterns, false);
    failed(err);
  } finally {
    settle(controller);
  }
}

/** The patterns table: template (variable places marked), lines, change, sparkline, first seen. */
function renderPatterns(answer, order) {
  const changed = order === 'changed';
  show(ui.patternChangeHead, changed);
  const notes = [];
  if (answer.unpatterned > 0) notes.push(`${answer.unpatterned.toLocaleString('en-US')} lines have no pattern (stored before mining, or with it off).`);
  if (answer.cut) notes.push('Only the most frequent patterns were counted.');
  ui.patternsNote.textContent = notes.join(' ');
  clear(ui.patternRows).append(...answer.patterns.map((row) => {
    const template = el('span', { class: 'pattern-template' }, ...templateParts(row.template ?? '(an earlier pattern)').map((part) => (part.variable
      ? el('span', { class: 'pattern-var', text: part.text, attrs: { title: 'varies from line to line' } })
      : document.createTextNode(part.text))));
    const first = row.firstEver ? parseTime(row.firstEver) : Number.NaN;
    const spark = svg('svg', {
      class: 'sparkline',
      attrs: { width: SPARK_SIZE.width, height: SPARK_SIZE.height, viewBox: `0 0 ${SPARK_SIZE.width} ${SPARK_SIZE.height}`, role: 'img', 'aria-label': `lines per bucket: ${row.series.join(', ')}` },
    }, svg('path', { attrs: { d: sparkPath(row.series, SPARK_SIZE.width, SPARK_SIZE.height) } }));
    const open = () => {
      state = { ...state, q: addTerm(state.q, `pattern:${row.pattern}`), view: '', order: '' };
      run({ push: true });
    };
    return el('tr', {
      attrs: { tabindex: '0', title: 'Show the lines of this pattern' },
      dataset: { pattern: row.pattern },
      on: { click: open, keydown: (event) => { if (event.key === 'Enter') open(); } },
    },
    el('td', {}, template),
    el('td', { class: 'n num', text: row.count.toLocaleString('en-US') }),
    changed ? el('td', { class: 'n num pattern-change', text: changeText(row.count, row.previous), attrs: { title: `${(row.previous ?? 0).toLocaleString('en-US')} in the range before` } }) : null,
    el('td', {}, spark),
    el('td', { class: 'num' },
      Number.isFinite(first) ? formatTimestamp(first, localOffset(first), false) : '–',
      row.new ? el('span', { class: 'badge pattern-new', text: 'new' }) : null));
  }));
  show(ui.patterns, true);
}

/** A table cell's text: times in local time, numbers with separators, a missing value as a dash. */
function cellText(value, column) {
  if (value === null) return '–';
  if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toLocaleString('en-US', { maximumFractionDigits: 3 });
  const ms = column.startsWith('_time(') || /^(min|max)\((_time|timestamp)\)$/.test(column) ? parseTime(value) : Number.NaN;
  return Number.isFinite(ms) ? formatTimestamp(ms, localOffset(ms), false) : String(value);
}

/** Orders two cells as the server does: numbers, then text, a missing value last. */
function compareCells(a, b) {
  if (a === null || b === null) return (a === null) - (b === null);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function renderTable() {
  const { answer, sort } = table;
  const { columns, keys } = answer;
  let rows = answer.rows;
  if (sort) {
    rows = [...rows].sort((x, y) => {
      const a = x[sort.column];
      const b = y[sort.column];
      if (a === null || b === null) return compareCells(a, b);
      return sort.descending ? compareCells(b, a) : compareCells(a, b);
    });
  }
  const numeric = columns.map((_, i) => i >= keys || rows.some((row) => typeof row[i] === 'number'));
  clear(ui.statsHead).append(...columns.map((name, i) => {
    const sorted = sort && sort.column === i;
    return el('th', {
      class: numeric[i] ? 'n' : '',
      attrs: { scope: 'col', 'aria-sort': sorted ? (sort.descending ? 'descending' : 'ascending') : 'none' },
    }, el('button', {
      text: name,
      attrs: { type: 'button', title: `Sort by ${name}` },
      on: {
        click: () => {
          // First click: largest first for numbers, A to Z for text; then flip.
          const descending = sorted ? !sort.descending : numeric[i];
          table.sort = { column: i, descending };
          state = { ...state, sort: tableSortParam(name, descending) };
          history.replaceState(null, '', `${window.location.pathname}${stateToSearch(state)}`);
          renderTable();
        },
      },
    }));
  }));
  clear(ui.statsRows).append(...rows.map((row) => el('tr', {
    attrs: { tabindex: '0', title: 'Show these lines' },
    on: {
      click: () => openRow(row),
      keydown: (event) => { if (event.key === 'Enter') openRow(row); },
    },
  }, ...row.map((value, i) => el('td', { class: numeric[i] ? 'n num' : '', text: cellText(value, columns[i]) })))));
  show(ui.stats, true);
  renderStatsChart(answer);
}

/** A line per value of the second key (or one line) over the first key's time buckets, of the first computed column. */
function renderStatsChart(answer) {
  const { columns, keys, rows } = answer;
  const width = bucketWidth(columns[0]);
  const chartable = keys >= 1 && Number.isFinite(width) && columns.length > keys && rows.length > 0;
  show(ui.statsChart, chartable);
  show(ui.histogram, !chartable);
  if (!chartable) return;
  const byLabel = new Map();
  for (const row of rows) {
    const label = keys > 1 ? row.slice(1, keys).map((v) => (v === null ? '–' : String(v))).join(' · ') : columns[keys];
    if (!byLabel.has(label)) byLabel.set(label, []);
    byLabel.get(label).push([parseTime(row[0]), typeof row[keys] === 'number' ? row[keys] : Number.NaN]);
  }
  const total = (points) => points.reduce((sum, [, v]) => sum + (Number.isFinite(v) ? v : 0), 0);
  const series = [...byLabel.entries()]
    .map(([label, points]) => ({ label, points: points.sort((a, b) => a[0] - b[0]) }))
    .sort((a, b) => total(b.points) - total(a.points))
    .slice(0, MAX_SERIES);
  const times = rows.map((row) => parseTime(row[0])).filter(Number.isFinite);
  lineChart(ui.statsChart, {
    series,
    unit: 'number',
    start: Math.min(table.span.start, ...times),
    end: Math.max(table.span.end, ...times.map((t) => t + width)),
    title: columns[keys],
  });
}

/** The lines behind a table row: the query before the pipe narrowed by the row's keys. */
function openRow(row) {
  const { answer } = table;
  let q = answer.filter;
  let next = { ...state };
  for (let i = 0; i < answer.keys; i += 1) {
    const column = answer.columns[i];
    const width = bucketWidth(column);
    if (Number.isFinite(width)) {
      // The bucket within the table's window: a bucket may start before it.
      const start = parseTime(row[i]);
      if (Number.isFinite(start)) {
        next = { ...next, range: '', start: Math.max(start, table.span.start), end: Math.min(start + width, table.span.end) };
      }
      continue;
    }
    const term = keyTerm(column, row[i]);
    if (term) q = addTerm(q, term);
  }
  state = { ...next, q, sort: '' };
  run({ push: true });
}

function failed(err) {
  const message = err instanceof ApiError ? err.message : `The search failed: ${err.message}`;
  clear(ui.results);
  show(ui.exportLinks, false);
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
    ui.results.append(...result.hits.map((hit) => hitRow(hit)));
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
  if (hit.pattern) {
    // Every line of the same template, in this range.
    const samePattern = `/search${stateToSearch({ ...state, q: `pattern:${hit.pattern}` })}`;
    ui.contextFields.append(el('dt', { text: 'pattern' }), el('dd', {},
      el('span', { class: 'mono', text: hit.pattern }), ' ',
      el('a', { class: 'pattern-lines', text: 'lines of this pattern', attrs: { href: samePattern } })));
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
  ui.results.prepend(hitRow(hit, true));
  current.total += 1;
  current.shown += 1;
  setCount(current.total);
  while (ui.results.childElementCount > MAX_LIVE_ROWS) ui.results.lastElementChild.remove();
}

function startLive() {
  if (hasPipe(state.q)) {
    showError(ui.error, 'Live tail shows lines: take the pipe (| …) off the query first.');
    return;
  }
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
  state = { ...state, q: ui.query.value.trim(), sort: '' };
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

ui.liveToggle.addEventListener('click', () => {
  if (live) {
    stopLive();
  } else if (state.view) {
    // A live tail shows lines: the list first, then the tail on it.
    state = { ...state, view: '', order: '' };
    run({ push: true }).then(startLive);
  } else {
    startLive();
  }
});

for (const button of document.querySelectorAll('#views button')) {
  button.addEventListener('click', () => {
    if (button.dataset.view === state.view) return;
    const view = button.dataset.view;
    state = { ...state, q: ui.query.value.trim(), view, order: view ? state.order : '', sort: '' };
    run({ push: true });
  });
}

ui.patternOrder.addEventListener('change', () => {
  const order = ui.patternOrder.value;
  state = { ...state, order: order === 'count' ? '' : order };
  run({ push: true });
});
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
initSaved(() => state);
run();
