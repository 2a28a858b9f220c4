/**
 * The "Is this right?" widget on a finished card: Correct / Wrong, the label
 * picker for Wrong, then POST /feedback and a confirmation.
 */

import { el, setChildren } from './dom.js';
import { createPicker } from './picker.js';

export const FEEDBACK_DONE_TEXT = 'Thanks — feedback saved';

/**
 * Creates the feedback widget for one prediction.
 * @param {{predictionId: string,
 *          loadLabels: () => Promise<Array>,
 *          sendFeedback: (payload: object) => Promise<object>,
 *          announce: (message: string) => void,
 *          fileName: string}} options
 * @returns {HTMLElement}
 */
export function createFeedback({ predictionId, loadLabels, sendFeedback, announce, fileName }) {
  const root = el('div', { class: 'feedback' });

  /** Replaces the widget content; each step is rendered from scratch. */
  const show = (...children) => setChildren(root, ...children);

  function showQuestion(errorMessage = null) {
    const correct = el('button', {
      type: 'button',
      class: 'button button--small',
      'data-testid': 'feedback-correct',
      text: 'Correct',
      onClick: () => submit({ correct: true, expected_class_index: null }, null),
    });
    const wrong = el('button', {
      type: 'button',
      class: 'button button--small',
      'data-testid': 'feedback-wrong',
      text: 'Wrong',
      onClick: showPicker,
    });
    show(
      el('div', { class: 'feedback__row' }, [
        el('span', { class: 'feedback__question', text: 'Is the top result right?' }),
        correct,
        wrong,
      ]),
      errorMessage && el('p', { class: 'feedback__error', 'data-testid': 'feedback-error', role: 'alert', text: errorMessage }),
    );
    return { correct, wrong };
  }

  function showPicker() {
    const picker = createPicker({
      loadLabels,
      onPick: (label) => submit({ correct: false, expected_class_index: label.index }, label),
      onCancel: () => showQuestion().wrong.focus(),
    });
    show(picker.element);
    picker.focus();
  }

  /**
   * Sends the feedback; on failure the question comes back with the server's
   * message so the user can simply try again.
   */
  async function submit(choice, label) {
    show(el('p', { class: 'feedback__sending', text: 'Saving feedback…' }));
    try {
      await sendFeedback({ prediction_id: predictionId, ...choice, comment: null });
    } catch (error) {
      const { correct } = showQuestion(error.message);
      correct.focus();
      announce(`${fileName}: feedback not saved — ${error.message}`);
      return;
    }
    const done = el('p', { class: 'feedback__done', 'data-testid': 'feedback-done', tabindex: '-1', text: FEEDBACK_DONE_TEXT });
    show(
      done,
      label && el('p', { class: 'feedback__detail', text: `Marked as: ${label.name}` }),
    );
    done.focus(); // the focused button/picker just disappeared; keep keyboard users in place
    announce(`${fileName}: ${FEEDBACK_DONE_TEXT}`);
  }

  showQuestion();
  return root;
}
