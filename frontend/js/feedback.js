/**
 * The "Is this right?" widget on a finished card. "Wrong" offers the card's
 * other guesses as one-click answers, a search over every class (and its
 * synonyms), and "Not in the list" with a comment. An answer is sent after a
 * short undo window, then confirmed; a failed send brings the question back.
 */

import { el, setChildren } from './dom.js';
import { Picker } from './picker.js';

export const FEEDBACK_DONE_TEXT = 'Thanks — feedback saved';
export const UNDO_SECONDS = 5;

/** Answers waiting out their undo window; sent at once when the page is left or cleared. */
const waiting = new Set();

/** Sends every answer still in its undo window now (page hidden, results cleared). */
export function flushFeedback() {
  for (const widget of [...waiting]) widget.sendNow();
}

const button = (text, testId, onClick, extra = '') =>
  el('button', { type: 'button', class: `button button--small ${extra}`.trim(), 'data-testid': testId, text, onClick });

export class Feedback {
  /**
   * @param {{predictionId: string,
   *          predictions: Array<{label:string, class_index:number, score:number}>,
   *          loadLabels: () => Promise<Array>,
   *          sendFeedback: (payload: object) => Promise<object>,
   *          announce: (message: string) => void,
   *          fileName: string}} options
   */
  constructor(options) {
    this.options = options;
    this.element = el('div', { class: 'feedback', 'data-testid': 'feedback' });
    this.pending = null; // {payload, description, timer} during the undo window
    this.showQuestion();
  }

  /** Replaces the widget content; each step is rendered from scratch. */
  show(...children) {
    setChildren(this.element, ...children);
  }

  /** Keeps keyboard users in place when the focused control is replaced. */
  moveFocus(target) {
    if (this.element.contains(document.activeElement) || document.activeElement === document.body) target.focus();
  }

  showQuestion(errorMessage = null) {
    const correct = button('Correct', 'feedback-correct', () =>
      this.answer({ correct: true, expected_class_index: null }, 'Correct'),
    );
    const wrong = button('Wrong', 'feedback-wrong', () => this.showWrong());
    this.show(
      el('p', { class: 'feedback__question', text: 'Is the top result right?' }),
      el('div', { class: 'feedback__row' }, [correct, wrong]),
      errorMessage &&
        el('p', { class: 'feedback__error', 'data-testid': 'feedback-error', role: 'alert', text: errorMessage }),
    );
    return { correct, wrong };
  }

  /** The card's other guesses, the class search, "Not in the list" and Cancel. */
  showWrong() {
    const others = this.options.predictions.slice(1);
    const pickLabel = (label) =>
      this.answer({ correct: false, expected_class_index: label.index }, `Wrong — it is ${label.name}`);
    const picker = new Picker({
      loadLabels: this.options.loadLabels,
      onPick: pickLabel,
      onCancel: () => this.showQuestion().wrong.focus(),
    });
    const guesses = others.map((p) =>
      button(p.label, 'feedback-guess', () => pickLabel({ index: p.class_index, name: p.label }), 'feedback__guess'),
    );
    this.show(
      others.length && el('p', { class: 'feedback__prompt', text: 'Is it one of the other guesses?' }),
      others.length && el('div', { class: 'feedback__guesses', role: 'group', 'aria-label': 'Other guesses' }, guesses),
      picker.element,
      el('div', { class: 'feedback__row' }, [
        button('Not in the list', 'feedback-none', () => this.showComment()),
        button('Cancel', 'feedback-cancel', () => this.showQuestion().wrong.focus(), 'button--quiet'),
      ]),
    );
    (guesses[0] || picker).focus();
  }

  /** "Not in the list": correct=false without a class, and what it really is in the user's words. */
  showComment() {
    const id = `comment-${this.options.predictionId}`;
    const comment = el('textarea', {
      id,
      class: 'input feedback__comment',
      rows: '2',
      maxlength: '2000',
      'data-testid': 'feedback-comment',
      placeholder: 'e.g. a person walking two dogs',
    });
    const send = () =>
      this.answer(
        { correct: false, expected_class_index: null, comment: comment.value.trim() || null },
        'Wrong — not in the list',
      );
    this.show(
      el('label', { for: id, class: 'picker__label', text: 'What is in the photo? (optional)' }),
      comment,
      el('div', { class: 'feedback__row' }, [
        button('Send', 'feedback-send', send, 'button--primary'),
        button('Back', 'feedback-back', () => this.showWrong(), 'button--quiet'),
      ]),
    );
    comment.focus();
  }

  /** Holds the answer for UNDO_SECONDS with an Undo button, then sends it. */
  answer(choice, description) {
    const payload = { prediction_id: this.options.predictionId, comment: null, ...choice };
    const timer = setTimeout(() => this.sendNow(), UNDO_SECONDS * 1000);
    this.pending = { payload, description, timer };
    waiting.add(this);
    const undo = button('Undo', 'feedback-undo', () => this.undo());
    this.show(
      el('p', { class: 'feedback__sending', 'data-testid': 'feedback-pending' }, [
        `${description}. Saving in ${UNDO_SECONDS} s… `,
      ]),
      el('div', { class: 'feedback__row' }, undo),
    );
    this.moveFocus(undo);
  }

  undo() {
    clearTimeout(this.pending.timer);
    waiting.delete(this);
    this.pending = null;
    this.showQuestion().correct.focus();
    this.options.announce(`${this.options.fileName}: feedback withdrawn`);
  }

  /**
   * Sends the held answer; on failure the question comes back with the
   * server's message so the user can simply answer again.
   */
  async sendNow() {
    if (!this.pending) return;
    const { payload, description, timer } = this.pending;
    clearTimeout(timer);
    waiting.delete(this);
    this.pending = null;
    this.show(el('p', { class: 'feedback__sending', text: 'Saving feedback…' }));
    const { fileName, announce } = this.options;
    try {
      await this.options.sendFeedback(payload);
    } catch (error) {
      this.moveFocus(this.showQuestion(error.message).correct);
      announce(`${fileName}: feedback not saved — ${error.message}`);
      return;
    }
    const done = el('p', { class: 'feedback__done', 'data-testid': 'feedback-done', tabindex: '-1', text: FEEDBACK_DONE_TEXT });
    this.show(done, el('p', { class: 'feedback__detail', text: `${description}.` }));
    this.moveFocus(done);
    announce(`${fileName}: ${FEEDBACK_DONE_TEXT}`);
  }
}
