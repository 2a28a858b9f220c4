/**
 * One result card per file: thumbnail, then pending → done | error.
 * Each state re-renders the card body from scratch so that elements of a
 * previous state (spinner, old error, Retry) can never linger. The card also
 * keeps its outcome as a plain entry for the toolbar and the downloads.
 */

import { el, setChildren } from './dom.js';
import { formatBytes, formatMs, formatPercent } from './format.js';
import { Feedback } from './feedback.js';

/** Below this top score an answer is shown as a guess, not as a result. */
export const WEAK_SCORE = 0.5;

/**
 * Builds the thumbnail. The object URL shows the local file instantly; formats
 * the browser cannot draw (TIFF, a renamed text file) fall back to a placeholder.
 * @param {File} file
 */
function thumbnail(file) {
  const url = URL.createObjectURL(file);
  const img = el('img', { class: 'card__thumb', src: url, alt: `Preview of ${file.name}`, decoding: 'async' });
  const media = el('div', { class: 'card__media' }, img);
  img.addEventListener('error', () => {
    URL.revokeObjectURL(url);
    media.replaceChildren(el('span', { class: 'card__nopreview', text: 'No preview' }));
  });
  return { media, img, url };
}

/**
 * Renders the top-k predictions as horizontal bars, best first.
 * @param {Array<{label:string, class_index:number, score:number}>} predictions sorted, best first
 */
function bars(predictions) {
  return el(
    'ol',
    { class: 'bars', 'aria-label': 'Top predictions' },
    predictions.map((p, i) => {
      const fill = el('span', { class: 'bar__fill' });
      fill.style.width = `${Math.max(0, Math.min(1, p.score)) * 100}%`; // CSSOM, allowed by the CSP
      return el(
        'li',
        { class: i === 0 ? 'bar bar--top' : 'bar', 'data-testid': 'bar', dataset: { classIndex: p.class_index, score: p.score } },
        [
          el('span', { class: 'bar__label', 'data-testid': 'bar-label', title: p.label, text: p.label }),
          el('span', { class: 'bar__score', 'data-testid': 'bar-score', text: formatPercent(p.score) }),
          el('span', { class: 'bar__track', 'aria-hidden': 'true' }, fill),
        ],
      );
    }),
  );
}

/** "15.0 ms · efficientnet_lite2 v1 · cached", with the server's timing breakdown as a tooltip. */
function latency(result) {
  const t = result.timings_ms || {};
  const parts = ['preprocess', 'queue', 'inference']
    .filter((k) => typeof t[k] === 'number')
    .map((k) => `${k} ${formatMs(t[k])}`);
  return el(
    'p',
    { class: 'card__latency', 'data-testid': 'latency', title: parts.length ? `Server time: ${parts.join(', ')}` : null },
    [
      el('span', { text: formatMs(t.total) }),
      result.model && ' · ',
      result.model && el('span', { 'data-testid': 'answered-by', text: `${result.model.name} v${result.model.version}` }),
      result.cached && ' · ',
      result.cached && el('span', { class: 'badge', text: 'cached' }),
    ],
  );
}

/** The note on a weak answer: the model is guessing, and other guesses are close. */
function weakNote() {
  return el('p', {
    class: 'card__weak',
    'data-testid': 'weak-note',
    text: `Unsure — below ${WEAK_SCORE * 100}%`,
  });
}

export class ResultCard {
  /**
   * @param {File} file
   * @param {{onRetry: (card: ResultCard) => void,
   *          loadLabels: (model: string) => Promise<Array>,
   *          sendFeedback: (payload: object) => Promise<object>,
   *          announce: (message: string) => void,
   *          onChange: (card: ResultCard) => void}} handlers
   */
  constructor(file, handlers) {
    this.file = file;
    this.handlers = handlers;
    this.entry = { file: file.name, status: 'working', model: null, predictions: [], latency_ms: null, error: null };
    this.retryTimer = null; // a retry waiting for Retry-After
    this.countdownTimer = null; // the Retry button's "Retry in N s"
    const { media, img, url } = thumbnail(file);
    this.media = media;
    this.img = img;
    this.previewUrl = url;
    this.meta = el('p', { class: 'card__meta', text: formatBytes(file.size) });
    this.body = el('div', { class: 'card__content' });
    this.element = el('article', { class: 'card', 'data-testid': 'card', 'aria-label': file.name, tabindex: '-1' }, [
      media,
      el('div', { class: 'card__body' }, [el('h3', { class: 'card__name', title: file.name, text: file.name }), this.meta, this.body]),
    ]);
  }

  /** Sets data-state (a stable test hook), aria-busy and the entry's status together. */
  setState(state, entry = {}) {
    this.element.dataset.state = state;
    this.element.setAttribute('aria-busy', String(state === 'pending'));
    const status = { pending: 'working', done: 'done', error: 'failed' }[state];
    this.entry = { ...this.entry, model: null, predictions: [], latency_ms: null, error: null, ...entry, status };
    this.handlers.onChange?.(this);
  }

  /** @param {string} [text] "Waiting…" while queued, "Classifying…" while in flight */
  showPending(text = 'Classifying…') {
    clearTimeout(this.retryTimer);
    clearTimeout(this.countdownTimer);
    this.setState('pending');
    delete this.element.dataset.predictionId;
    setChildren(this.body, el('p', { class: 'card__status' }, [el('span', { class: 'spinner', 'aria-hidden': 'true' }), text]));
  }

  /** @param {object} result the 200 body of POST /predictions */
  showResult(result) {
    const predictions = [...(result.predictions || [])].sort((a, b) => b.score - a.score);
    const weak = !predictions.length || predictions[0].score < WEAK_SCORE;
    this.setState('done', {
      model: result.model ? `${result.model.name} v${result.model.version}` : null,
      predictions: predictions.map(({ label, class_index, score }) => ({ label, class_index, score })),
      latency_ms: result.timings_ms?.total ?? null,
    });
    this.element.dataset.predictionId = result.id;
    this.element.classList.toggle('card--weak', weak);
    const img = result.image;
    if (img) this.meta.textContent = `${img.format} · ${img.width}×${img.height} · ${formatBytes(img.bytes ?? this.file.size)}`;
    const { sendFeedback, announce } = this.handlers;
    const loadLabels = () => this.handlers.loadLabels(result.model.name); // the answering model's classes
    const feedback = new Feedback({ predictionId: result.id, predictions, loadLabels, sendFeedback, announce, fileName: this.file.name });
    setChildren(this.body, weak && weakNote(), bars(predictions), latency(result), feedback.element);
  }

  /**
   * @param {{message: string, code?: string, retryable?: boolean, retryAfter?: number|null}} error
   *   the server's envelope (as an ApiError) or a pre-check's problem
   */
  showError({ message, code = null, retryable = false, retryAfter = null }) {
    this.setState('error', { error: message });
    delete this.element.dataset.predictionId;
    this.element.classList.remove('card--weak');
    if (code === 'unsupported_media_type') this.dropPreview();
    this.retryable = retryable;
    this.retryAt = retryable && retryAfter ? Date.now() + retryAfter * 1000 : 0;
    const retry = retryable && el('button', { type: 'button', class: 'button button--small', 'data-testid': 'retry', onClick: () => this.retry() });
    setChildren(this.body, el('p', { class: 'card__error', 'data-testid': 'card-error', text: message }), retry);
    if (retry) this.countDown(retry);
  }

  /** "Retry in 7 s" (disabled) while the server's Retry-After lasts, then "Retry". */
  countDown(retry) {
    const left = Math.ceil((this.retryAt - Date.now()) / 1000);
    retry.disabled = left > 0;
    retry.textContent = left > 0 ? `Retry in ${left} s` : 'Retry';
    if (left > 0) this.countdownTimer = setTimeout(() => this.countDown(retry), 1000);
  }

  /** Sends the file again; before Retry-After has passed, as soon as it has. */
  retry() {
    if (!this.retryable || this.entry.status !== 'failed') return;
    const wait = this.retryAt - Date.now();
    clearTimeout(this.retryTimer);
    if (wait > 0) {
      this.retryTimer = setTimeout(() => this.retry(), wait);
      return;
    }
    if (this.element.contains(document.activeElement)) this.element.focus(); // the button is about to go
    this.handlers.onRetry(this);
  }

  /** The server could not read the file; a preview the browser can still draw (an SVG) would mislead. */
  dropPreview() {
    this.media.replaceChildren(el('span', { class: 'card__nopreview', text: 'No preview' }));
    this.revokePreview();
  }

  /** Frees the preview's object URL; one still loading is freed once it has (else the load fails noisily). */
  revokePreview() {
    const revoke = () => URL.revokeObjectURL(this.previewUrl);
    if (this.img.complete) revoke();
    else this.img.addEventListener('load', revoke, { once: true });
  }

  /** Frees the preview's memory when the card is cleared. */
  dispose() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.countdownTimer);
    this.retryable = false;
    this.revokePreview();
  }
}
