// The arithmetic of the charts: scales, "nice" ticks, time ticks, value and
// time formats, SVG path strings. No DOM and no globals (the time zone is a
// parameter), so every function here can be tested on its own
// (tests/tests/browser.rs runs them in Chromium) and chart.js only draws.

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A function mapping [d0, d1] linearly onto [r0, r1] (a zero-width domain maps to r0). */
export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0;
  if (span === 0) return () => r0;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** The inverse of linearScale: range back to domain. */
export function invertScale(d0, d1, r0, r1) {
  return linearScale(r0, r1, d0, d1);
}

/** A step of 1, 2 or 5 times a power of ten giving about `count` steps over `span`. */
export function niceStep(span, count = 5) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  const factor = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
  return factor * magnitude;
}

/** Rounds away floating-point noise (0.1 + 0.2) for tick values. */
function clean(v) {
  return Number.parseFloat(v.toPrecision(12));
}

/**
 * The y domain for values in [min, max]: widened to nice steps, starting at 0
 * for non-negative data, and at least [0, 1] when everything is 0.
 * Returns { min, max, step }.
 */
export function niceDomain(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { min: 0, max: 1, step: 0.2 };
  if (min >= 0) min = 0;
  if (max <= min) max = min + 1;
  const step = niceStep(max - min, count);
  return { min: clean(Math.floor(min / step) * step), max: clean(Math.ceil(max / step) * step), step };
}

/** The multiples of `step` in [min, max]. */
export function ticks(min, max, step) {
  if (!(step > 0) || !(max >= min)) return [];
  const out = [];
  const first = Math.ceil(min / step - 1e-9);
  for (let i = first; i * step <= max + step * 1e-9; i++) out.push(clean(i * step));
  return out;
}

/** Time steps ticks may use, smallest first. */
export const TIME_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY, 365 * DAY,
];

/** The smallest time step giving at most `count` ticks over `spanMs`. */
export function timeStep(spanMs, count = 6) {
  const wanted = spanMs / Math.max(1, count);
  return TIME_STEPS.find((step) => step >= wanted) ?? TIME_STEPS[TIME_STEPS.length - 1];
}

/**
 * Tick times in [startMs, endMs], on round times of the viewer's clock:
 * `offsetMs` is the zone's offset from UTC (local time = UTC + offsetMs,
 * e.g. +3600000 for UTC+1), so hour and day ticks fall on local hours and midnights.
 * Returns { step, ticks }.
 */
export function timeTicks(startMs, endMs, count = 6, offsetMs = 0) {
  if (!(endMs > startMs)) return { step: SECOND, ticks: [] };
  const step = timeStep(endMs - startMs, count);
  const first = Math.ceil((startMs + offsetMs) / step) * step - offsetMs;
  const out = [];
  for (let t = first; t <= endMs; t += step) out.push(t);
  return { step, ticks: out };
}

const pad = (n, width = 2) => String(n).padStart(width, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The calendar fields of `ms` in the zone `offsetMs` ahead of UTC. */
export function clockParts(ms, offsetMs = 0) {
  const d = new Date(ms + offsetMs);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth(),
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    ms: d.getUTCMilliseconds(),
  };
}

/** A tick label as precise as the tick step needs: "12:30:15", "12:30", "May 4 12:00", "May 4". */
export function formatTick(ms, stepMs, offsetMs = 0) {
  const p = clockParts(ms, offsetMs);
  const hm = `${pad(p.hour)}:${pad(p.minute)}`;
  if (stepMs < MINUTE) return `${hm}:${pad(p.second)}`;
  if (stepMs < DAY) return p.hour === 0 && p.minute === 0 ? `${MONTHS[p.month]} ${p.day}` : hm;
  return `${MONTHS[p.month]} ${p.day}`;
}

/** A full timestamp for a log line or tooltip: "2024-05-04 12:30:15.123". */
export function formatTimestamp(ms, offsetMs = 0, withMs = true) {
  const p = clockParts(ms, offsetMs);
  const base = `${p.year}-${pad(p.month + 1)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
  return withMs ? `${base}.${pad(p.ms, 3)}` : base;
}

/** A duration in its two largest units: "45s", "5m 3s", "2h 10m", "3d 4h". */
export function formatDuration(ms) {
  let rest = Math.max(0, Math.floor(ms / 1000));
  const values = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]].map(([name, size]) => {
    const n = Math.floor(rest / size);
    rest -= n * size;
    return `${n}${name}`;
  });
  const first = values.findIndex((v) => !v.startsWith('0'));
  if (first < 0) return '0s';
  const next = values[first + 1];
  return next && !next.startsWith('0') ? `${values[first]} ${next}` : values[first];
}

/** "5m ago", "just now", "in 2h" relative to `nowMs`. */
export function formatAgo(ms, nowMs) {
  const diff = nowMs - ms;
  if (Math.abs(diff) < 5 * SECOND) return 'just now';
  return diff > 0 ? `${formatDuration(diff)} ago` : `in ${formatDuration(-diff)}`;
}

/** A number with about 3 significant digits, without trailing zeros: 1.23, 12.3, 123, 1234. */
export function formatNumber(v) {
  if (!Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  if (abs >= 1000 || abs === 0) return String(Math.round(v));
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return String(Number.parseFloat(v.toFixed(digits)));
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** A value in `unit` ("percent", "bytes", "bytes_per_sec", "number"), for axes and tables. */
export function formatValue(v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  switch (unit) {
    case 'percent':
      return `${formatNumber(v)} %`;
    case 'bytes':
    case 'bytes_per_sec': {
      let i = 0;
      let x = Math.abs(v);
      while (x >= 1024 && i < BYTE_UNITS.length - 1) {
        x /= 1024;
        i++;
      }
      const text = `${formatNumber(Math.sign(v) * x)} ${BYTE_UNITS[i]}`;
      return unit === 'bytes' ? text : `${text}/s`;
    }
    default: {
      const abs = Math.abs(v);
      if (abs >= 1e9) return `${formatNumber(v / 1e9)}G`;
      if (abs >= 1e6) return `${formatNumber(v / 1e6)}M`;
      if (abs >= 1e4) return `${formatNumber(v / 1e3)}k`;
      return formatNumber(v);
    }
  }
}

/**
 * Nice y steps for byte units go by powers of 1024 times 1, 2 or 5 so the
 * labels read "512 MiB", "1 GiB"; other units use niceDomain as is.
 */
export function valueDomain(min, max, unit, count = 5) {
  if (unit === 'percent' && max <= 100 && min >= 0) {
    const top = max <= 10 ? niceDomain(0, max, count).max : 100;
    const step = niceStep(top, count);
    return { min: 0, max: top, step };
  }
  if ((unit === 'bytes' || unit === 'bytes_per_sec') && max > 0) {
    const power = 1024 ** Math.max(0, Math.floor(Math.log(max) / Math.log(1024)));
    const d = niceDomain(min / power, max / power, count);
    return { min: d.min * power, max: d.max * power, step: d.step * power };
  }
  return niceDomain(min, max, count);
}

/**
 * An SVG path through `points` ([t, v] pairs, sorted by t), starting a new
 * segment where two points are more than `maxGapMs` apart (missing data is a
 * gap, not a straight line). Coordinates are rounded to 0.1 px.
 */
export function linePath(points, x, y, maxGapMs = Infinity) {
  let d = '';
  let previous = null;
  for (const [t, v] of points) {
    if (!Number.isFinite(v)) {
      previous = null;
      continue;
    }
    const command = previous === null || t - previous > maxGapMs ? 'M' : 'L';
    d += `${command}${round1(x(t))},${round1(y(v))}`;
    previous = t;
  }
  return d;
}

function round1(v) {
  return Math.round(v * 10) / 10;
}

/** The largest gap to bridge in a series: 2.5 times its median spacing (at least `minMs`). */
export function gapThreshold(points, minMs = 0) {
  if (points.length < 3) return Infinity;
  const gaps = [];
  for (let i = 1; i < points.length; i++) gaps.push(points[i][0] - points[i - 1][0]);
  gaps.sort((a, b) => a - b);
  return Math.max(minMs, gaps[Math.floor(gaps.length / 2)] * 2.5);
}

/**
 * Histogram bars: one {x, y, width, height, start, end, count} per bucket,
 * `buckets` as {startMs, count}, each `widthMs` wide, with a 1 px gap when bars are wide enough.
 */
export function barRects(buckets, widthMs, x, y) {
  const base = y(0);
  return buckets.map((b) => {
    const left = x(b.startMs);
    const right = x(b.startMs + widthMs);
    const w = Math.max(1, right - left - (right - left > 3 ? 1 : 0));
    const top = b.count > 0 ? Math.min(y(b.count), base - 1) : base;
    return { x: round1(left), y: round1(top), width: round1(w), height: round1(base - top), start: b.startMs, end: b.startMs + widthMs, count: b.count };
  });
}

/** The index of the point whose time is nearest `t` (points sorted by time), or -1. */
export function nearestIndex(points, t) {
  let lo = 0;
  let hi = points.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(points[lo - 1][0] - t) <= Math.abs(points[lo][0] - t)) return lo - 1;
  return lo;
}

/** A time range from two pixel positions of a drag, ordered, clamped to [startMs, endMs]. */
export function dragRange(px0, px1, invert, startMs, endMs) {
  const a = Math.round(invert(Math.min(px0, px1)));
  const b = Math.round(invert(Math.max(px0, px1)));
  return { start: Math.max(startMs, a), end: Math.min(endMs, b) };
}

/**
 * A sparkline of `counts` (one per bucket) as an SVG path `width` × `height`
 * wide, a step per bucket, the largest count at the top; empty without counts.
 */
export function sparkPath(counts, width, height) {
  if (!counts || counts.length === 0) return '';
  const max = Math.max(1, ...counts);
  const step = width / counts.length;
  const y = (v) => +(height - (v / max) * height).toFixed(2);
  let path = '';
  counts.forEach((v, i) => {
    const x0 = +(i * step).toFixed(2);
    const x1 = +((i + 1) * step).toFixed(2);
    path += `${i === 0 ? 'M' : 'L'}${x0},${y(v)}L${x1},${y(v)}`;
  });
  return path;
}
