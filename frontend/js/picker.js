/**
 * Searchable label picker (ARIA combobox + listbox) used to name the right
 * class after "Wrong". Focus stays in the text input; arrow keys move the
 * active option via aria-activedescendant, Enter picks, Escape cancels.
 */

import { el, uniqueId } from './dom.js';

/** Rendering all 1000 options on every keystroke is wasteful; typing narrows the list. */
const MAX_OPTIONS = 60;

/**
 * Ranks a label for a query: lower is better, -1 means no match.
 * Prefix matches beat word-start matches beat substring matches, so typing
 * "cat" lists "cat…" names before "tabby cat" and "polecat".
 * @param {{index:number, wnid:string, name:string}} label
 * @param {string} query lower-case, trimmed
 */
function rank(label, query) {
  if (!query) return 0;
  const name = label.name.toLowerCase();
  if (name === query) return 0;
  if (name.startsWith(query)) return 1;
  if (name.includes(` ${query}`) || name.includes(`,${query}`) || name.includes(`-${query}`)) return 2;
  if (name.includes(query)) return 3;
  if (label.wnid === query || String(label.index) === query) return 4;
  return -1;
}

/**
 * Filters and orders labels for a query.
 * @param {Array<{index:number, wnid:string, name:string}>} labels
 * @param {string} rawQuery
 * @returns {{matches: Array, total: number}}
 */
export function filterLabels(labels, rawQuery) {
  const query = rawQuery.trim().toLowerCase();
  const scored = [];
  for (const label of labels) {
    const score = rank(label, query);
    if (score >= 0) scored.push({ label, score });
  }
  scored.sort((a, b) => a.score - b.score || a.label.name.localeCompare(b.label.name));
  return { matches: scored.slice(0, MAX_OPTIONS).map((s) => s.label), total: scored.length };
}

/** ImageNet has a few duplicate names ("crane", "maillot"); they need the wnid to be told apart. */
function duplicateNames(labels) {
  const seen = new Map();
  for (const label of labels) seen.set(label.name, (seen.get(label.name) || 0) + 1);
  return new Set([...seen].filter(([, count]) => count > 1).map(([name]) => name));
}

/**
 * Creates a picker.
 * @param {{loadLabels: () => Promise<Array>, onPick: (label: object) => void, onCancel: () => void}} options
 * @returns {{element: HTMLElement, focus: () => void}}
 */
export function createPicker({ loadLabels, onPick, onCancel }) {
  const inputId = uniqueId('picker-input');
  const listId = uniqueId('picker-list');
  const statusId = uniqueId('picker-status');

  const input = el('input', {
    type: 'text',
    id: inputId,
    class: 'input picker__input',
    role: 'combobox',
    'aria-autocomplete': 'list',
    'aria-expanded': 'true',
    'aria-controls': listId,
    'aria-describedby': statusId,
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'Search classes…',
    'data-testid': 'picker-input',
  });
  const list = el('ul', { id: listId, class: 'picker__list', role: 'listbox', 'aria-label': 'Classes' });
  const status = el('p', { id: statusId, class: 'picker__status', 'aria-live': 'polite', text: 'Loading classes…' });
  const cancel = el('button', { type: 'button', class: 'button button--quiet', text: 'Cancel', onClick: onCancel });

  const element = el('div', { class: 'picker' }, [
    el('label', { for: inputId, class: 'picker__label', text: 'What is it really?' }),
    input,
    status,
    list,
    el('div', { class: 'picker__actions' }, cancel),
  ]);

  let labels = [];
  let duplicates = new Set();
  let options = []; // currently rendered {label, node}
  let active = -1;

  function setActive(index) {
    options[active]?.node.setAttribute('aria-selected', 'false');
    active = index;
    const current = options[active];
    if (current) {
      current.node.setAttribute('aria-selected', 'true');
      input.setAttribute('aria-activedescendant', current.node.id);
      current.node.scrollIntoView({ block: 'nearest' });
    } else {
      input.removeAttribute('aria-activedescendant');
    }
  }

  function optionNode(label, i) {
    const node = el(
      'li',
      {
        id: `${listId}-opt-${i}`,
        class: 'picker__option',
        role: 'option',
        'aria-selected': 'false',
        'data-testid': 'picker-option',
        dataset: { classIndex: label.index },
        title: `${label.name} (class ${label.index}${label.wnid ? `, ${label.wnid}` : ''})`,
      },
      [label.name, duplicates.has(label.name) && el('span', { class: 'picker__wnid', text: ` (${label.wnid})` })],
    );
    // mousedown, not click: keeps focus in the input so the combobox stays coherent.
    node.addEventListener('mousedown', (event) => {
      event.preventDefault();
      onPick(label);
    });
    node.addEventListener('mousemove', () => {
      if (active !== i) setActive(i);
    });
    return node;
  }

  function render() {
    const { matches, total } = filterLabels(labels, input.value);
    options = matches.map((label, i) => ({ label, node: optionNode(label, i) }));
    list.replaceChildren(...options.map((o) => o.node));
    active = -1;
    setActive(options.length ? 0 : -1);
    if (!total) status.textContent = 'No matching class.';
    else if (total > matches.length) status.textContent = `Showing ${matches.length} of ${total} — type to narrow down.`;
    else status.textContent = `${total} matching ${total === 1 ? 'class' : 'classes'}.`;
  }

  input.addEventListener('input', render);
  input.addEventListener('keydown', (event) => {
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        if (options.length) setActive((active + 1) % options.length);
        break;
      case 'ArrowUp':
        event.preventDefault();
        if (options.length) setActive((active - 1 + options.length) % options.length);
        break;
      case 'Home':
      case 'End':
        if (!event.ctrlKey || !options.length) break; // plain Home/End move the text caret
        event.preventDefault();
        setActive(event.key === 'Home' ? 0 : options.length - 1);
        break;
      case 'Enter':
        event.preventDefault();
        if (options[active]) onPick(options[active].label);
        break;
      default:
    }
  });

  // On the wrapper, not the input, so Escape also works while the input is disabled.
  element.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    event.stopPropagation();
    onCancel();
  });

  function load() {
    input.disabled = true;
    status.textContent = 'Loading classes…';
    loadLabels().then(
      (loaded) => {
        labels = loaded;
        duplicates = duplicateNames(labels);
        input.disabled = false;
        render();
        input.focus();
      },
      (error) => {
        status.replaceChildren(
          `${error.message} `,
          el('button', { type: 'button', class: 'button button--quiet', text: 'Try again', onClick: load }),
        );
      },
    );
  }
  load();

  return { element, focus: () => input.focus() };
}
