// The one place that talks to the aggregator's API. Pages call getJSON, send
// and tail; how requests are authenticated lives here only:
//
// - cookies of the login session (`credentials: 'same-origin'`);
// - for local use without a session, an API token from
//   localStorage['lookout.token'], sent as `Authorization: Bearer`;
// - a 401 sends the browser to /login?next=<this page>;
// - state-changing requests carry `X-CSRF-Token` from GET /api/v1/session
//   (`csrf_token`), fetched once; until that endpoint exists (404), none.
//
// Live tail uses fetch with a streaming body rather than EventSource, because
// EventSource cannot send an Authorization header.

const TOKEN_KEY = 'lookout.token';

/** An answer other than 2xx: `status` and the API's `error` text as message. */
export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

function token() {
  try {
    return window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled
  }
}

function headers(extra = {}) {
  const h = new Headers(extra);
  const bearer = token();
  if (bearer) h.set('Authorization', `Bearer ${bearer}`);
  return h;
}

/** Sends the browser to the login page, coming back here afterwards. */
export function toLogin() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/** `path` with `params` as query string; null, undefined and '' values are left out. */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function answer(response) {
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, 'Your session has ended; signing in again.');
  }
  let body = null;
  const text = await response.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const message = body && typeof body.error === 'string' ? body.error : `The server answered ${response.status}.`;
    throw new ApiError(response.status, message, body);
  }
  return body;
}

/** GET a JSON document. */
export async function getJSON(path, params = {}, { signal } = {}) {
  const response = await fetch(url(path, params), {
    credentials: 'same-origin',
    headers: headers({ Accept: 'application/json' }),
    signal,
  });
  return answer(response);
}

let session = null;

/** The login session (GET /api/v1/session), or null while there is none (404) or it fails. */
export function currentSession() {
  if (!session) {
    session = fetch('/api/v1/session', {
      credentials: 'same-origin',
      headers: headers({ Accept: 'application/json' }),
    })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
  }
  return session;
}

/** POST, PUT or DELETE with an optional JSON body; answers the JSON reply. */
export async function send(method, path, body = undefined) {
  const h = headers({ Accept: 'application/json' });
  if (body !== undefined) h.set('Content-Type', 'application/json');
  const s = await currentSession();
  if (s && typeof s.csrf_token === 'string') h.set('X-CSRF-Token', s.csrf_token);
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answer(response);
}

/**
 * Follows GET /api/v1/logs/tail (server-sent events). Calls onHit(hit) per
 * record, onLagged(n) when n commits were skipped, onStatus(text) on
 * (re)connection, onError(message) when the server refuses (a 4xx: no retry).
 * Reconnects after a dropped stream. Returns { close() }.
 */
export function tail(params, { onHit, onLagged = () => {}, onStatus = () => {}, onError = () => {} }) {
  let controller = null;
  let closed = false;
  let retryTimer = null;

  const dispatch = (block) => {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    const text = data.join('\n');
    if (event === 'lagged') onLagged(Number(text));
    else if (event === 'message') {
      try {
        onHit(JSON.parse(text));
      } catch {
        // A malformed event is skipped; the next one may be fine.
      }
    }
  };

  const connect = async () => {
    controller = new AbortController();
    try {
      const response = await fetch(url('/api/v1/logs/tail', params), {
        credentials: 'same-origin',
        headers: headers({ Accept: 'text/event-stream' }),
        signal: controller.signal,
      });
      if (!response.ok) {
        await answer(response); // throws with the server's message
      }
      onStatus('live');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      if (!closed) retry();
    } catch (err) {
      if (closed) return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
        onError(err.message);
        return;
      }
      retry();
    }
  };

  const retry = () => {
    onStatus('reconnecting');
    retryTimer = window.setTimeout(connect, 3000);
  };

  connect();
  return {
    close() {
      closed = true;
      window.clearTimeout(retryTimer);
      if (controller) controller.abort();
    },
  };
}

/**
 * Fills the top bar's user menu from the session, when there is one: the
 * user's name and a sign-out button (POST /logout with the CSRF token).
 */
export async function initUserMenu() {
  const menu = document.getElementById('user-menu');
  if (!menu) return;
  const s = await currentSession();
  const name = s && (s.user ?? s.username);
  menu.replaceChildren();
  if (typeof name !== 'string') return;
  const who = document.createElement('span');
  who.className = 'user-name';
  who.textContent = name;
  const signOut = document.createElement('button');
  signOut.type = 'button';
  signOut.id = 'sign-out';
  signOut.className = 'sign-out';
  signOut.textContent = 'Sign out';
  signOut.addEventListener('click', async () => {
    const h = headers({});
    if (typeof s.csrf_token === 'string') h.set('X-CSRF-Token', s.csrf_token);
    await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: h }).catch(() => null);
    window.location.assign('/login');
  });
  menu.append(who, signOut);
}
