/**
 * Thin fetch wrappers for the /api/v1 endpoints.
 *
 * Every failure — HTTP error envelope, nginx error page, network failure,
 * timeout — is normalised into an {@link ApiError}, so the UI only ever deals
 * with one shape and can always show `error.message` to the user.
 */

const API_BASE = '/api/v1';
const KEY_STORAGE = 'imageClassifier.apiKey';

/** Statuses where sending the same request again later can succeed. */
const RETRYABLE_STATUSES = new Set([0, 429, 502, 503, 504]);

/** Upper bound on how often one request re-prompts for a key (a wrong key re-prompts). */
const MAX_KEY_ATTEMPTS = 3;

const DEFAULT_TIMEOUT_MS = 30_000;
/** Predictions may queue behind a batch; stay above nginx's proxy timeout so its 504 wins. */
const PREDICT_TIMEOUT_MS = 120_000;

/** Fallback messages for responses that carry no JSON error envelope. */
const STATUS_MESSAGES = {
  401: 'An API key is required.',
  404: 'The API was not found at this address.',
  413: 'The file is too large for the server.',
  429: 'Too many requests. Please wait a moment and try again.',
  502: 'The service is not reachable right now. Please try again in a moment.',
  503: 'The service is busy or starting up. Please try again in a moment.',
  504: 'The service took too long to answer. Please try again.',
};

/** A normalised API failure; `status` is 0 when no HTTP response arrived. */
export class ApiError extends Error {
  /**
   * @param {{status:number, code:string, message:string, details?:object,
   *          requestId?:string|null, retryAfter?:number|null}} init
   */
  constructor({ status, code, message, details = {}, requestId = null, retryAfter = null }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** True when the same request may succeed if sent again (rate limit, overload, gateway). */
  get retryable() {
    return RETRYABLE_STATUSES.has(this.status);
  }
}

/** @type {null | ((error: ApiError) => Promise<string>)} */
let unauthorizedHandler = null;
/** @type {null | Promise<string>} shared so parallel 401s produce a single prompt */
let pendingKeyPrompt = null;

/**
 * Registers the UI callback that asks the user for an API key. It receives
 * the 401 error and resolves with the key, or rejects if the user gives up.
 * @param {(error: ApiError) => Promise<string>} handler
 */
export function setUnauthorizedHandler(handler) {
  unauthorizedHandler = handler;
}

/** @returns {string} the API key kept for this tab, or '' */
export function getApiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return ''; // storage can be disabled; the key then lives only in memory below
  }
}

let memoryKey = '';

/** Stores the key in sessionStorage (per tab, gone when the tab closes). */
export function setApiKey(key) {
  memoryKey = key;
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* fall back to memoryKey */
  }
}

function currentKey() {
  return getApiKey() || memoryKey;
}

/**
 * Parses Retry-After (delay in seconds, or an HTTP date) into whole seconds
 * from `now`, or null when absent or unreadable.
 * @param {string|null} value the header
 * @param {number} [now] ms since the epoch
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (!value || !value.trim()) return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.ceil(Number(value));
  const date = /[a-z]/i.test(value) ? Date.parse(value) : NaN; // an HTTP date names its day and month
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * Turns a non-2xx response into an ApiError, preferring the server's
 * envelope so the user sees exactly the server's wording.
 * @param {Response} response
 */
async function errorFromResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* nginx HTML page or empty body: fall back to status messages */
  }
  const envelope = body && typeof body === 'object' && body.error ? body.error : null;
  return new ApiError({
    status: response.status,
    code: envelope?.code || `http_${response.status}`,
    message:
      envelope?.message ||
      STATUS_MESSAGES[response.status] ||
      `The server answered with HTTP ${response.status}.`,
    details: envelope?.details || {},
    requestId: body?.request_id || response.headers.get('X-Request-ID'),
    retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
  });
}

/**
 * One HTTP round trip with timeout; network failures become ApiError(status 0).
 * @returns {Promise<Response>}
 */
async function send(path, { method = 'GET', body, headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS, keepalive = false }, key) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const allHeaders = { Accept: 'application/json', ...headers };
  if (key) allHeaders['X-API-Key'] = key;
  try {
    return await fetch(API_BASE + path, { method, body, headers: allHeaders, signal: controller.signal, keepalive });
  } catch (err) {
    const timedOut = err?.name === 'AbortError';
    throw new ApiError({
      status: 0,
      code: timedOut ? 'timeout' : 'network_error',
      message: timedOut
        ? 'The service took too long to answer. Please try again.'
        : 'The service is not reachable. Check your connection and try again.',
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks the UI for a key once, even when several requests hit 401 together.
 * @param {ApiError} error
 */
function askForKey(error) {
  if (!pendingKeyPrompt) {
    pendingKeyPrompt = unauthorizedHandler(error)
      .then((key) => {
        setApiKey(key);
        return key;
      })
      .finally(() => {
        pendingKeyPrompt = null;
      });
  }
  return pendingKeyPrompt;
}

/**
 * Sends a request, transparently handling the API-key prompt on 401 and
 * retrying with the new key. Resolves with the parsed JSON body.
 * @param {string} path
 * @param {object} [options] method, body, headers, timeoutMs
 */
export async function request(path, options = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const keyUsed = currentKey();
    const response = await send(path, options, keyUsed);
    if (response.ok) {
      return response.status === 204 ? null : response.json();
    }
    const error = await errorFromResponse(response);
    if (error.status !== 401 || !unauthorizedHandler || attempt >= MAX_KEY_ATTEMPTS) {
      throw error;
    }
    // Another request may already have obtained a fresh key while this one was in flight.
    if (currentKey() && currentKey() !== keyUsed) continue;
    try {
      await askForKey(error);
    } catch {
      throw error; // user dismissed the prompt: surface the server's 401 message
    }
  }
}

/** GET /models — the models served, the default one, and upload limits used for client-side checks. */
export function getModel() {
  return request('/models');
}

/**
 * POST /predictions with one image.
 * @param {File} file
 * @param {number} [topK]
 * @param {string} [model] a model name; the server's default when empty
 */
export function predict(file, topK, model) {
  const form = new FormData();
  form.append('image', file, file.name);
  if (topK) form.append('top_k', String(topK));
  if (model) form.append('model', model);
  return request('/predictions', { method: 'POST', body: form, timeoutMs: PREDICT_TIMEOUT_MS });
}

/**
 * POST /feedback. keepalive lets an answer sent while the page is being left still arrive.
 * @param {{prediction_id:string, correct:boolean, expected_class_index:number|null, comment:string|null}} payload
 */
export function sendFeedback(payload) {
  return request('/feedback', {
    method: 'POST',
    body: JSON.stringify(payload),
    headers: { 'Content-Type': 'application/json' },
    keepalive: true,
  });
}
