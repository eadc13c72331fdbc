// Pure helpers of the search page: splitting a message into the parts the
// server marked and the rest, quick ranges, the page state <-> URL, and the
// query terms of fields and table rows. No DOM, so they can be tested on
// their own. The query language itself is the server's alone.

/** Quick ranges and their length in ms. */
export const RANGES = { '15m': 15 * 60000, '1h': 3600000, '24h': 86400000, '7d': 7 * 86400000 };
/** The range used when the URL names none. */
export const DEFAULT_RANGE = '1h';

/**
 * `text` cut into [{ text, match }] parts by the server's `marks`: the
 * [from, to) ranges, in characters, of the tokens the query found.
 */
export function markedParts(text, marks) {
  const chars = Array.from(String(text));
  const parts = [];
  let last = 0;
  for (const [from, to] of marks ?? []) {
    if (from < last || to > chars.length || from >= to) continue;
    if (from > last) parts.push({ text: chars.slice(last, from).join(''), match: false });
    parts.push({ text: chars.slice(from, to).join(''), match: true });
    last = to;
  }
  if (last < chars.length || parts.length === 0) parts.push({ text: chars.slice(last).join(''), match: false });
  return parts;
}

const KEYS = ['q', 'range', 'start', 'end', 'host', 'source', 'level', 'sort', 'view', 'order'];
/** Views of the lines besides the list (`view=`). */
export const VIEWS = ['patterns'];
/** Orderings of the patterns view (`order=`), as the patterns API takes them. */
export const PATTERN_ORDERS = ['count', 'new', 'changed'];

/** The page state in a URL query string. An absolute range (start/end in ms) wins over a quick range. */
export function stateFromSearch(search) {
  const p = new URLSearchParams(search);
  const state = {};
  for (const key of KEYS) state[key] = p.get(key) ?? '';
  const start = parseTimeParam(state.start);
  const end = parseTimeParam(state.end);
  if (Number.isFinite(start) || Number.isFinite(end)) {
    state.start = Number.isFinite(start) ? start : null;
    state.end = Number.isFinite(end) ? end : null;
    state.range = '';
  } else {
    state.start = null;
    state.end = null;
    if (!(state.range in RANGES)) state.range = DEFAULT_RANGE;
  }
  if (!VIEWS.includes(state.view)) state.view = '';
  if (!PATTERN_ORDERS.includes(state.order)) state.order = '';
  return state;
}

/** Unix ms or an RFC 3339 time, as the API takes them; NaN otherwise. */
export function parseTimeParam(text) {
  if (!text) return Number.NaN;
  if (/^-?\d+$/.test(text)) return Number(text);
  return Date.parse(text);
}

/** The URL query string of a page state (empty values left out). */
export function stateToSearch(state) {
  const p = new URLSearchParams();
  if (state.q) p.set('q', state.q);
  if (state.range) p.set('range', state.range);
  else {
    if (Number.isFinite(state.start)) p.set('start', new Date(state.start).toISOString());
    if (Number.isFinite(state.end)) p.set('end', new Date(state.end).toISOString());
  }
  for (const key of ['host', 'source', 'level', 'sort', 'view', 'order']) if (state[key]) p.set(key, state[key]);
  const text = p.toString();
  return text ? `?${text}` : '';
}

/**
 * A table's click-sort in the URL (`sort=count()` or `sort=-count()`, a
 * leading `-` for descending) as { column (name), descending }, or null.
 */
export function parseTableSort(text) {
  if (!text) return null;
  const descending = text.startsWith('-');
  return { column: descending ? text.slice(1) : text, descending };
}

/** The URL's form of a table's click-sort. */
export function tableSortParam(column, descending) {
  return `${descending ? '-' : ''}${column}`;
}

/** The [start, end) window, in ms, a state means at `nowMs`. */
export function timeWindow(state, nowMs) {
  if (state.range) return { start: nowMs - RANGES[state.range], end: nowMs };
  const end = Number.isFinite(state.end) ? state.end : nowMs;
  const start = Number.isFinite(state.start) ? state.start : end - RANGES[DEFAULT_RANGE];
  return { start, end };
}

/** The character position of a "query syntax error at position N" message, or -1. */
export function syntaxErrorPosition(message) {
  const m = /query syntax error at position (\d+)/.exec(message ?? '');
  return m ? Number(m[1]) : -1;
}

/** The names a query gives their own meaning (aggregator/src/query/mod.rs): an extracted field of one of these names is queried as fields.<name>. */
const BUILT_IN = new Set(['id', 'stream', 'offset', 'timestamp', 'host', 'source', 'level', 'message',
  'labels', 'truncated', 'fields', 'has']);

/** What the query language accepts as a field name. */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** How a query names the extracted field `name`: as itself, or `fields.<name>` where it is taken. */
export function fieldName(name) {
  const taken = BUILT_IN.has(name) || name.startsWith('labels.') || name.startsWith('fields.');
  return taken ? `fields.${name}` : name;
}

/**
 * The query term that selects lines whose extracted field `name` has `value`:
 * `status:500`, `user.name:"ann lee"`, `fields.host:web-2` where the name is a
 * built-in one. Text values are quoted when they hold anything but letters,
 * digits and `._/-`, with `"` and `\` escaped. Null for a name the query
 * language cannot write (`@timestamp`, `t.$date`).
 */
export function fieldTerm(name, value) {
  if (!FIELD_NAME.test(name)) return null;
  const field = fieldName(name);
  return `${field}:${termValue(value)}`;
}

/**
 * A value as a query writes it: numbers and plain words bare; anything
 * else quoted, with `"` and `\` escaped (a value starting with `/` too,
 * which would read as a /pattern/).
 */
function termValue(value) {
  const text = String(value);
  const bare = typeof value === 'number' || /^[A-Za-z0-9_.-][A-Za-z0-9_./-]*$/.test(text);
  return bare ? text : `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `q` narrowed by `term` (AND); the term alone when `q` is empty. */
export function addTerm(q, term) {
  const current = String(q ?? '').trim();
  if (!current) return term;
  return hasTopLevelOr(current) ? `(${current}) ${term}` : `${current} ${term}`;
}

/** Whether `q` has an OR outside parentheses and quotes (AND binds tighter, so a term added after it needs a group). */
function hasTopLevelOr(q) {
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < q.length; i += 1) {
    const c = q[i];
    if (quoted) {
      if (c === '\\') i += 1;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (depth === 0 && q.startsWith('OR', i) && /\s/.test(q[i - 1] ?? ' ') && /\s/.test(q[i + 2] ?? ' ')) return true;
  }
  return false;
}

/**
 * Whether `q` asks for a table: a `|` outside quoted phrases, followed by
 * stats, top, sort or limit. It only picks the endpoint; the server parses
 * the query and says what is wrong with it.
 */
export function hasPipe(q) {
  const text = String(q ?? '');
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i += 1;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '/' && text[i - 1] === ':') {
      // A `field:/pattern/`: to its closing slash (`\/` is a slash).
      for (i += 1; i < text.length && text[i] !== '/'; i += 1) if (text[i] === '\\') i += 1;
    } else if (c === '|' && /^\s*(stats|top|sort|limit)\b/.test(text.slice(i + 1))) return true;
  }
  return false;
}

const KEYWORDS = new Set(['host', 'source', 'level', 'stream']);
const UNITS = { s: 1000, sec: 1000, m: 60000, min: 60000, h: 3600000, hr: 3600000, d: 86400000, day: 86400000 };

/** The width in ms of a time-bucket column (`_time(5m)`, `_time(1h30m)`), or NaN. */
export function bucketWidth(column) {
  const m = /^_time\((.+)\)$/.exec(String(column));
  if (!m) return Number.NaN;
  let ms = 0;
  let rest = m[1].replace(/\s+/g, '');
  while (rest) {
    const part = /^(\d+)(sec|min|hr|day|s|m|h|d)/.exec(rest);
    if (!part) return Number.NaN;
    ms += Number(part[1]) * UNITS[part[2]];
    rest = rest.slice(part[0].length);
  }
  return ms > 0 ? ms : Number.NaN;
}

/**
 * The query term that selects the lines of a stats row's key: `host:web-1`,
 * `status:500`, `path:"/a b"`; for a missing value (null) the lines without
 * it: `NOT level:*`, `NOT has:user`. Null for a time bucket (a time range
 * instead) or a name the query language cannot write.
 */
export function keyTerm(column, value) {
  const name = String(column);
  if (name.startsWith('_time(')) return null;
  if (KEYWORDS.has(name)) return value === null ? `NOT ${name}:*` : `${name}:${termValue(value)}`;
  const field = name.startsWith('fields.') ? name.slice('fields.'.length) : name;
  if (!FIELD_NAME.test(field)) return null;
  if (value === null) return `NOT has:${field}`;
  return fieldTerm(field, value);
}

/**
 * A pattern's template cut into [{ text, variable }] parts: `<*>` is a
 * variable place, the rest the words every line of it has.
 */
export function templateParts(template) {
  const parts = [];
  const pieces = String(template).split('<*>');
  pieces.forEach((text, i) => {
    if (i > 0) parts.push({ text: '<*>', variable: true });
    if (text) parts.push({ text, variable: false });
  });
  return parts;
}

/** How a pattern's count moved against the range before: "+12", "−4", "=". */
export function changeText(count, previous) {
  if (previous === null || previous === undefined) return '';
  const diff = count - previous;
  if (diff === 0) return '=';
  return `${diff > 0 ? '+' : '−'}${Math.abs(diff).toLocaleString('en-US')}`;
}
