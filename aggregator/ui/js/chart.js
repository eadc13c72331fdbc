// Lookout's charts: a time-series line chart and a histogram of bars, drawn
// as SVG with readable time and unit axes and a hover tooltip. The arithmetic
// (scales, ticks, formats, paths) is in chart-math.js; this module only
// creates elements. Colours and sizes come from classes in app.css; the only
// inline positioning is the tooltip's, set through CSSOM (element.style),
// which the Content-Security-Policy allows.

import { el, svg, clear, localOffset } from './dom.js';
import {
  linearScale, invertScale, valueDomain, niceDomain, ticks, timeTicks, formatTick, formatValue,
  formatTimestamp, linePath, gapThreshold, barRects, nearestIndex, dragRange,
} from './chart-math.js';

const MARGIN = { top: 10, right: 14, bottom: 22, left: 70 };
/** Series colours cycle through this many classes (.series-0 ... .series-7). */
const COLOURS = 8;

/** Redraws `container` with `render` now and whenever its width changes. */
function drawResponsive(container, render) {
  container._render = render;
  if (!container._observer && typeof ResizeObserver !== 'undefined') {
    let width = container.clientWidth;
    container._observer = new ResizeObserver(() => {
      if (container.clientWidth !== width) {
        width = container.clientWidth;
        container._render();
      }
    });
    container._observer.observe(container);
  }
  render();
}

function frame(container, height, label) {
  const width = Math.max(240, container.clientWidth || 640);
  const root = svg('svg', {
    attrs: { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
  });
  return { width, height, root };
}

function timeAxis(root, start, end, x, width, height) {
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const offset = localOffset(start);
  const { step, ticks: times } = timeTicks(start, end, Math.max(2, Math.floor(plotWidth / 90)), offset);
  const g = svg('g', { class: 'axis axis-x' });
  for (const t of times) {
    const px = x(t);
    g.append(
      svg('line', { class: 'tick', attrs: { x1: px, x2: px, y1: height - MARGIN.bottom, y2: height - MARGIN.bottom + 4 } }),
      svg('text', { class: 'axis-label', text: formatTick(t, step, offset), attrs: { x: px, y: height - 6, 'text-anchor': 'middle' } }),
    );
  }
  g.append(svg('line', { class: 'baseline', attrs: { x1: MARGIN.left, x2: width - MARGIN.right, y1: height - MARGIN.bottom, y2: height - MARGIN.bottom } }));
  root.append(g);
}

function valueAxis(root, domain, y, width, unit) {
  const g = svg('g', { class: 'axis axis-y' });
  for (const v of ticks(domain.min, domain.max, domain.step)) {
    const py = y(v);
    g.append(
      svg('line', { class: 'grid', attrs: { x1: MARGIN.left, x2: width - MARGIN.right, y1: py, y2: py } }),
      svg('text', { class: 'axis-label', text: formatValue(v, unit), attrs: { x: MARGIN.left - 6, y: py + 4, 'text-anchor': 'end' } }),
    );
  }
  root.append(g);
}

function tooltip(container) {
  let tip = container.querySelector(':scope > .chart-tooltip');
  if (!tip) {
    tip = el('div', { class: 'chart-tooltip', attrs: { role: 'status' } });
    tip.hidden = true;
    container.append(tip);
  }
  return tip;
}

function placeTooltip(container, tip, px, py) {
  tip.hidden = false;
  const width = container.clientWidth || 640;
  const left = px + 12 + tip.offsetWidth > width ? px - 12 - tip.offsetWidth : px + 12;
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${Math.max(0, py - 10)}px`;
}

/**
 * Draws a line chart into `container`.
 * options: { series: [{ label, points: [[ms, value], ...] }], unit, start, end, title, height }.
 */
export function lineChart(container, options) {
  drawResponsive(container, () => renderLines(container, options));
}

function renderLines(container, { series, unit, start, end, title = '', height = 180 }) {
  clear(container);
  const { width, root } = frame(container, height, title);
  let min = Infinity;
  let max = -Infinity;
  for (const s of series) {
    for (const [, v] of s.points) {
      if (Number.isFinite(v)) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
  }
  const empty = min === Infinity;
  const domain = empty ? valueDomain(0, unit === 'percent' ? 100 : 1, unit) : valueDomain(min, max, unit);
  const x = linearScale(start, end, MARGIN.left, width - MARGIN.right);
  const y = linearScale(domain.min, domain.max, height - MARGIN.bottom, MARGIN.top);
  valueAxis(root, domain, y, width, unit);
  timeAxis(root, start, end, x, width, height);
  series.forEach((s, i) => {
    root.append(svg('path', {
      class: `series series-${i % COLOURS}`,
      attrs: { d: linePath(s.points, x, y, gapThreshold(s.points)) },
      dataset: { label: s.label },
    }));
  });
  if (empty) {
    root.append(svg('text', { class: 'chart-empty', text: 'No data in this range', attrs: { x: width / 2, y: height / 2, 'text-anchor': 'middle' } }));
  }
  const cursor = svg('line', { class: 'cursor', attrs: { y1: MARGIN.top, y2: height - MARGIN.bottom, x1: 0, x2: 0, visibility: 'hidden' } });
  const area = svg('rect', {
    class: 'hover-area',
    attrs: { x: MARGIN.left, y: MARGIN.top, width: width - MARGIN.left - MARGIN.right, height: height - MARGIN.top - MARGIN.bottom },
  });
  root.append(cursor, area);
  container.append(root);
  const tip = tooltip(container);
  const toTime = invertScale(start, end, MARGIN.left, width - MARGIN.right);
  area.addEventListener('pointermove', (event) => {
    const px = event.offsetX;
    const t = toTime(px);
    let nearest = null;
    const rows = [];
    series.forEach((s, i) => {
      const index = nearestIndex(s.points, t);
      if (index < 0) return;
      const [pt, pv] = s.points[index];
      if (nearest === null || Math.abs(pt - t) < Math.abs(nearest - t)) nearest = pt;
      rows.push(el('div', { class: 'tip-row' },
        el('span', { class: `swatch series-${i % COLOURS}` }),
        el('span', { class: 'tip-label', text: s.label }),
        el('span', { class: 'tip-value num', text: formatValue(pv, unit) })));
    });
    if (nearest === null) return;
    cursor.setAttribute('x1', x(nearest));
    cursor.setAttribute('x2', x(nearest));
    cursor.setAttribute('visibility', 'visible');
    tip.replaceChildren(el('div', { class: 'tip-time num', text: formatTimestamp(nearest, localOffset(nearest), false) }), ...rows);
    placeTooltip(container, tip, px, event.offsetY);
  });
  area.addEventListener('pointerleave', () => {
    tip.hidden = true;
    cursor.setAttribute('visibility', 'hidden');
  });
  if (series.length > 1 || (series.length === 1 && series[0].label)) {
    container.append(el('ul', { class: 'legend' }, series.map((s, i) =>
      el('li', { class: 'legend-item' }, el('span', { class: `swatch series-${i % COLOURS}` }), el('span', { text: s.label })))));
  }
}

/**
 * Draws a histogram into `container`. Dragging across it selects a time
 * range: onSelect({ start, end }) in ms.
 * options: { buckets: [{ startMs, count }], widthMs, start, end, onSelect, height }.
 */
export function histogram(container, options) {
  drawResponsive(container, () => renderBars(container, options));
}

function renderBars(container, { buckets, widthMs, start, end, onSelect, height = 96 }) {
  clear(container);
  const { width, root } = frame(container, height, 'Matching lines over time');
  const max = buckets.reduce((m, b) => Math.max(m, b.count), 0);
  const domain = niceDomain(0, Math.max(1, max), 2);
  const x = linearScale(start, end, MARGIN.left, width - MARGIN.right);
  const y = linearScale(0, domain.max, height - MARGIN.bottom, MARGIN.top);
  valueAxis(root, domain, y, width, 'number');
  timeAxis(root, start, end, x, width, height);
  const bars = barRects(buckets, widthMs, x, y);
  const g = svg('g', { class: 'bars' });
  for (const bar of bars) {
    if (bar.count > 0) g.append(svg('rect', { class: 'bar', attrs: { x: bar.x, y: bar.y, width: bar.width, height: bar.height } }));
  }
  root.append(g);
  const selection = svg('rect', { class: 'selection', attrs: { x: 0, y: MARGIN.top, width: 0, height: height - MARGIN.top - MARGIN.bottom } });
  selection.setAttribute('visibility', 'hidden');
  const area = svg('rect', {
    class: 'hover-area drag-area',
    attrs: { x: MARGIN.left, y: MARGIN.top, width: width - MARGIN.left - MARGIN.right, height: height - MARGIN.top - MARGIN.bottom },
  });
  root.append(selection, area);
  container.append(root);
  const tip = tooltip(container);
  const toTime = invertScale(start, end, MARGIN.left, width - MARGIN.right);
  const clamp = (px) => Math.min(width - MARGIN.right, Math.max(MARGIN.left, px));
  let dragFrom = null;
  area.addEventListener('pointerdown', (event) => {
    dragFrom = clamp(event.offsetX);
    area.setPointerCapture(event.pointerId);
    selection.setAttribute('x', dragFrom);
    selection.setAttribute('width', 0);
    selection.setAttribute('visibility', 'visible');
  });
  area.addEventListener('pointermove', (event) => {
    const px = clamp(event.offsetX);
    if (dragFrom !== null) {
      selection.setAttribute('x', Math.min(dragFrom, px));
      selection.setAttribute('width', Math.abs(px - dragFrom));
      const range = dragRange(dragFrom, px, toTime, start, end);
      tip.replaceChildren(el('div', { class: 'tip-time num', text: `${formatTimestamp(range.start, localOffset(range.start), false)} → ${formatTimestamp(range.end, localOffset(range.end), false)}` }));
      placeTooltip(container, tip, px, event.offsetY);
      return;
    }
    const t = toTime(px);
    const bar = bars.find((b) => t >= b.start && t < b.end);
    if (!bar) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(
      el('div', { class: 'tip-time num', text: formatTimestamp(bar.start, localOffset(bar.start), false) }),
      el('div', { class: 'tip-row num', text: `${bar.count.toLocaleString()} lines` }));
    placeTooltip(container, tip, px, event.offsetY);
  });
  const finish = (event) => {
    if (dragFrom === null) return;
    const px = clamp(event.offsetX);
    const from = dragFrom;
    dragFrom = null;
    selection.setAttribute('visibility', 'hidden');
    tip.hidden = true;
    if (Math.abs(px - from) >= 4 && onSelect) {
      const range = dragRange(from, px, toTime, start, end);
      if (range.end > range.start) onSelect(range);
    }
  };
  area.addEventListener('pointerup', finish);
  area.addEventListener('pointercancel', () => {
    dragFrom = null;
    selection.setAttribute('visibility', 'hidden');
  });
  area.addEventListener('pointerleave', () => {
    if (dragFrom === null) tip.hidden = true;
  });
}
