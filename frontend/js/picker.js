/**
 * Searchable label picker (ARIA combobox + listbox) used to name the right
 * class after "Wrong". Focus stays in the text input; arrow keys move the
 * active option via aria-activedescendant, Enter picks, Escape cancels.
 * Matching itself lives in labels.js.
 */

import { el, uniqueId } from './dom.js';
import { duplicateNames, filterLabels } from './labels.js';

/** Keys that move the active option: key → (active index, option count) → new index. */
const MOVES = {
  ArrowDown: (active, count) => (active + 1) % count,
  ArrowUp: (active, count) => (active - 1 + count) % count,
};

/** The status line under the input for a result of filterLabels. */
function statusText(shown, total) {
  if (!total) return 'No matching class. If it is not in the list, choose "Not in the list" below.';
  if (total > shown) return `Showing ${shown} of ${total} — type to narrow down.`;
  return `${total} matching ${total === 1 ? 'class' : 'classes'}.`;
}

export class Picker {
  /**
   * @param {{loadLabels: () => Promise<Array>, onPick: (label: object) => void, onCancel: () => void}} options
   */
  constructor({ loadLabels, onPick, onCancel }) {
    this.loadLabels = loadLabels;
    this.onPick = onPick;
    this.onCancel = onCancel;
    this.labels = [];
    this.duplicates = new Set();
    this.options = []; // currently rendered {label, node}
    this.active = -1;
    this.listId = uniqueId('picker-list');
    this.element = this.build();
    this.load();
  }

  /** The label, input, status line and list; listeners attached. */
  build() {
    const inputId = uniqueId('picker-input');
    const statusId = uniqueId('picker-status');
    this.input = el('input', {
      type: 'text',
      id: inputId,
      class: 'input picker__input',
      role: 'combobox',
      'aria-autocomplete': 'list',
      'aria-expanded': 'true',
      'aria-controls': this.listId,
      'aria-describedby': statusId,
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: 'Search classes and synonyms…',
      'data-testid': 'picker-input',
      onInput: () => this.render(),
      onKeydown: (event) => this.onKey(event),
    });
    this.list = el('ul', { id: this.listId, class: 'picker__list', role: 'listbox', 'aria-label': 'Classes' });
    this.status = el('p', { id: statusId, class: 'picker__status', 'aria-live': 'polite', 'data-testid': 'picker-status' });
    const element = el('div', { class: 'picker' }, [
      el('label', { for: inputId, class: 'picker__label', text: 'Or search all classes' }),
      this.input,
      this.status,
      this.list,
    ]);
    // On the wrapper, not the input, so Escape also works while the input is disabled.
    element.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      event.preventDefault();
      event.stopPropagation();
      this.onCancel();
    });
    return element;
  }

  focus() {
    this.input.focus();
  }

  /** Fetches the labels (once per page, cached by the caller); a failure offers "Try again". */
  load() {
    this.input.disabled = true;
    this.status.textContent = 'Loading classes…';
    this.loadLabels().then(
      (labels) => {
        this.labels = labels;
        this.duplicates = duplicateNames(labels);
        this.input.disabled = false;
        this.render();
      },
      (error) => {
        this.status.replaceChildren(
          `${error.message} `,
          el('button', { type: 'button', class: 'button button--quiet', text: 'Try again', onClick: () => this.load() }),
        );
      },
    );
  }

  /** Re-renders the options for the current query; the best match becomes active. */
  render() {
    const { matches, total } = filterLabels(this.labels, this.input.value);
    this.options = matches.map((match, i) => ({ label: match.label, node: this.optionNode(match, i) }));
    this.list.replaceChildren(...this.options.map((o) => o.node));
    this.active = -1;
    this.setActive(this.options.length ? 0 : -1);
    this.status.textContent = statusText(matches.length, total);
  }

  /** One option: the class name, plus the synonym that matched or the wnid of a duplicate name. */
  optionNode({ label, synonym }, i) {
    const extra = synonym ? ` (also: ${synonym})` : this.duplicates.has(label.name) ? ` (${label.wnid})` : '';
    const node = el(
      'li',
      {
        id: `${this.listId}-opt-${i}`,
        class: 'picker__option',
        role: 'option',
        'aria-selected': 'false',
        'data-testid': 'picker-option',
        dataset: { classIndex: label.index },
        title: `${label.name} (class ${label.index}${label.wnid ? `, ${label.wnid}` : ''})`,
      },
      [label.name, extra && el('span', { class: 'picker__extra', text: extra })],
    );
    // mousedown, not click: keeps focus in the input so the combobox stays coherent.
    node.addEventListener('mousedown', (event) => {
      event.preventDefault();
      this.onPick(label);
    });
    node.addEventListener('mousemove', () => {
      if (this.active !== i) this.setActive(i);
    });
    return node;
  }

  setActive(index) {
    this.options[this.active]?.node.setAttribute('aria-selected', 'false');
    this.active = index;
    const current = this.options[index];
    if (!current) {
      this.input.removeAttribute('aria-activedescendant');
      return;
    }
    current.node.setAttribute('aria-selected', 'true');
    this.input.setAttribute('aria-activedescendant', current.node.id);
    current.node.scrollIntoView({ block: 'nearest' });
  }

  /** Arrow keys move, Ctrl+Home/End jump, Enter picks; plain Home/End move the text caret. */
  onKey(event) {
    const count = this.options.length;
    if (event.key in MOVES) {
      event.preventDefault();
      if (count) this.setActive(MOVES[event.key](this.active, count));
    } else if ((event.key === 'Home' || event.key === 'End') && event.ctrlKey && count) {
      event.preventDefault();
      this.setActive(event.key === 'Home' ? 0 : count - 1);
    } else if (event.key === 'Enter') {
      event.preventDefault();
      if (this.options[this.active]) this.onPick(this.options[this.active].label);
    }
  }
}
