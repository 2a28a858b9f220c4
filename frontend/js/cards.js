/**
 * One result card per file: thumbnail, then pending → done | error.
 * Each state re-renders the card body from scratch so that elements of a
 * previous state (spinner, old error, Retry) can never linger.
 */

import { el, setChildren } from './dom.js';
import { formatBytes, formatMs, formatPercent } from './format.js';
import { createFeedback } from './feedback.js';

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
  return { media, url };
}

/**
 * Renders the top-k predictions as horizontal bars, best first.
 * @param {Array<{label:string, class_index:number, score:number}>} predictions
 */
function bars(predictions) {
  const sorted = [...predictions].sort((a, b) => b.score - a.score);
  return el(
    'ol',
    { class: 'bars', 'aria-label': 'Top predictions' },
    sorted.map((p, i) => {
      const fill = el('span', { class: 'bar__fill' });
      fill.style.width = `${Math.max(0, Math.min(1, p.score)) * 100}%`; // CSSOM, allowed by the CSP
      return el(
        'li',
        {
          class: i === 0 ? 'bar bar--top' : 'bar',
          'data-testid': 'bar',
          dataset: { classIndex: p.class_index, score: p.score },
        },
        [
          el('span', { class: 'bar__label', 'data-testid': 'bar-label', title: p.label, text: p.label }),
          el('span', { class: 'bar__score', 'data-testid': 'bar-score', text: formatPercent(p.score) }),
          el('span', { class: 'bar__track', 'aria-hidden': 'true' }, fill),
        ],
      );
    }),
  );
}

/** "15.0 ms · cached", with the server's timing breakdown as a tooltip. */
function latency(result) {
  const t = result.timings_ms || {};
  const parts = ['preprocess', 'queue', 'inference']
    .filter((k) => typeof t[k] === 'number')
    .map((k) => `${k} ${formatMs(t[k])}`);
  return el(
    'p',
    { class: 'card__latency', 'data-testid': 'latency', title: parts.length ? `Server time: ${parts.join(', ')}` : null },
    [
      el('span', { text: `${formatMs(t.total)}` }),
      result.model && el('span', { 'data-testid': 'answered-by', text: `${result.model.name} v${result.model.version}` }),
      result.cached && el('span', { class: 'badge', text: 'cached' }),
    ].filter(Boolean).flatMap((node, i) => (i ? [' · ', node] : [node])),
  );
}

export class ResultCard {
  /**
   * @param {File} file
   * @param {{onRetry: (card: ResultCard) => void,
   *          loadLabels: (model: string) => Promise<Array>,
   *          sendFeedback: (payload: object) => Promise<object>,
   *          announce: (message: string) => void}} handlers
   */
  constructor(file, handlers) {
    this.file = file;
    this.handlers = handlers;
    const { media } = thumbnail(file);
    this.meta = el('p', { class: 'card__meta', text: formatBytes(file.size) });
    this.body = el('div', { class: 'card__content' });
    this.element = el('article', { class: 'card', 'data-testid': 'card', 'aria-label': file.name, tabindex: '-1' }, [
      media,
      el('div', { class: 'card__body' }, [
        el('h3', { class: 'card__name', title: file.name, text: file.name }),
        this.meta,
        this.body,
      ]),
    ]);
  }

  /** Sets data-state (a stable test hook) and aria-busy together. */
  setState(state) {
    this.element.dataset.state = state;
    this.element.setAttribute('aria-busy', String(state === 'pending'));
  }

  /** @param {string} [text] "Waiting…" while queued, "Classifying…" while in flight */
  showPending(text = 'Classifying…') {
    this.setState('pending');
    delete this.element.dataset.predictionId;
    setChildren(
      this.body,
      el('p', { class: 'card__status' }, [el('span', { class: 'spinner', 'aria-hidden': 'true' }), text]),
    );
  }

  /** @param {object} result the 200 body of POST /predictions */
  showResult(result) {
    this.setState('done');
    this.element.dataset.predictionId = result.id;
    const img = result.image;
    if (img) {
      this.meta.textContent = `${img.format} · ${img.width}×${img.height} · ${formatBytes(img.bytes ?? this.file.size)}`;
    }
    setChildren(
      this.body,
      bars(result.predictions || []),
      latency(result),
      createFeedback({
        predictionId: result.id,
        loadLabels: () => this.handlers.loadLabels(result.model.name), // the answering model's classes
        sendFeedback: this.handlers.sendFeedback,
        announce: this.handlers.announce,
        fileName: this.file.name,
      }),
    );
  }

  /**
   * @param {string} message shown verbatim (server's error.message or the pre-check text)
   * @param {{retryable?: boolean, retryAfter?: number|null}} [options]
   */
  showError(message, { retryable = false, retryAfter = null } = {}) {
    this.setState('error');
    delete this.element.dataset.predictionId;
    const retry =
      retryable &&
      el('button', {
        type: 'button',
        class: 'button button--small',
        'data-testid': 'retry',
        text: 'Retry',
        onClick: () => {
          this.element.focus(); // the button is about to disappear; keep focus on this card
          this.handlers.onRetry(this);
        },
      });
    setChildren(
      this.body,
      el('p', { class: 'card__error', 'data-testid': 'card-error', text: message }),
      retryable &&
        retryAfter &&
        el('p', { class: 'card__hint', text: `The server asks to wait ${retryAfter} s before retrying.` }),
      retry,
    );
  }

  /** Best prediction, for announcements. */
  static summary(result) {
    const best = [...(result.predictions || [])].sort((a, b) => b.score - a.score)[0];
    return best ? `${best.label} ${formatPercent(best.score)}` : 'no prediction';
  }
}
