/**
 * Tiny DOM builder. Building nodes (never innerHTML) keeps file names and
 * server messages from being interpreted as markup.
 */

/**
 * Creates an element.
 * @param {string} tag
 * @param {Record<string, any>} [props] `class`, `dataset`, `text`, `on*` listeners,
 *   boolean/`hidden` properties, anything else becomes an attribute
 * @param {Array<Node|string|null|false>|Node|string} [children]
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

let idCounter = 0;

/** Unique ids for aria-controls / aria-activedescendant / label[for] pairs. */
export function uniqueId(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/**
 * replaceChildren that skips null/false, so optional parts can be written
 * inline as `condition && el(...)`.
 * @param {Element} node
 * @param {...(Node|string|null|false|undefined)} children
 */
export function setChildren(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false && c !== 0));
}
