// Small DOM helpers shared by the pages. Everything that comes from data is
// set as text (textContent, text nodes); nothing here parses HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Creates an element. `props`: class (string), text, dataset (object), attrs
 * (object of attribute strings; never `style` or `on*`), on (object of event
 * listeners). `children`: nodes or strings (strings become text nodes).
 */
export function el(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** Like el, for SVG elements. */
export function svg(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill(node, props, children) {
  if (props.class) node.setAttribute('class', props.class);
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  for (const [key, value] of Object.entries(props.dataset ?? {})) node.dataset[key] = String(value);
  for (const [key, value] of Object.entries(props.attrs ?? {})) {
    if (key === 'style' || key.startsWith('on')) throw new Error(`el: attribute ${key} is not allowed`);
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const [event, listener] of Object.entries(props.on ?? {})) node.addEventListener(event, listener);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** Removes every child of `node`. */
export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Shows or hides `node` (the `hidden` attribute). */
export function show(node, visible) {
  node.hidden = !visible;
}

/** Shorthand for document.getElementById that fails loudly when the page lacks the element. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

/** The local zone's offset from UTC at `ms`, in ms (UTC+1 is +3600000). */
export function localOffset(ms = Date.now()) {
  return -new Date(ms).getTimezoneOffset() * 60000;
}

/** Parses an RFC 3339 time into Unix ms (NaN when it is not one). */
export function parseTime(text) {
  return text ? Date.parse(text) : Number.NaN;
}

/** The value for a datetime-local input (local time, seconds) of `ms`. */
export function toDatetimeLocal(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

/** Unix ms of a datetime-local input's value (local time), or NaN. */
export function fromDatetimeLocal(value) {
  return value ? new Date(value).getTime() : Number.NaN;
}

/** One of the known levels, or 'none': safe to use in a class name. */
export function levelClass(level) {
  return ['error', 'warn', 'info', 'debug', 'trace'].includes(level) ? level : 'none';
}

/** Shows `message` in the error banner `node` (hidden when message is empty). */
export function showError(node, message) {
  node.textContent = message ?? '';
  node.hidden = !message;
}

/** A list of `name=value` chips for a label object. */
export function labelChips(labels, skip = []) {
  const names = Object.keys(labels ?? {}).filter((name) => !skip.includes(name)).sort();
  return el('span', { class: 'chips' }, names.map((name) => el('span', { class: 'chip', text: `${name}=${labels[name]}` })));
}
