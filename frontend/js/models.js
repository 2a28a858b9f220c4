/**
 * The model selector in the header: the models of GET /models, the choice
 * remembered for this tab, and each model's labels fetched once, on first use.
 */

import { request } from './api.js';

const CHOICE_STORAGE = 'imageClassifier.model';

/** The tab's remembered choice, or '' (storage may be disabled). */
function rememberedChoice() {
  try {
    return sessionStorage.getItem(CHOICE_STORAGE) || '';
  } catch {
    return '';
  }
}

function remember(name) {
  try {
    sessionStorage.setItem(CHOICE_STORAGE, name);
  } catch {
    /* the choice then lasts until the page reloads */
  }
}

/**
 * Text of one option: name, accuracy where measured (a custom model's on its hold-out images),
 * and a note when no worker serves it.
 * @param {{name:string, measured?:{top1:number}|null, available:boolean, base?:string|null}} model
 */
export function optionText(model) {
  const what = model.base ? 'hold-out' : 'top-1';
  const accuracy = model.measured ? ` · ${(model.measured.top1 * 100).toFixed(1)} % ${what}` : '';
  const custom = model.base ? ` · custom on ${model.base.split(':')[0]}` : '';
  return `${model.name}${custom}${accuracy}${model.available ? '' : ' (unavailable)'}`;
}

/**
 * The option to select: the remembered one while it still exists, else the server's default.
 * @param {Array<{name:string}>} models
 * @param {string} remembered
 * @param {string} fallback
 */
export function chooseModel(models, remembered, fallback) {
  return models.some((m) => m.name === remembered) ? remembered : fallback;
}

/**
 * @param {{select: HTMLSelectElement, onChange?: (name: string) => void}} options
 */
export function createModelSelector({ select, onChange = () => {} }) {
  /** @type {Map<string, Promise<Array>>} */
  const labels = new Map();

  select.addEventListener('change', () => {
    remember(select.value);
    onChange(select.value);
  });

  return {
    /** Fills the selector from the body of GET /models (the page loads it once for its limits too). */
    show(body) {
      const models = body.models || [];
      select.replaceChildren(
        ...models.map((m) => {
          const option = document.createElement('option');
          option.value = m.name;
          option.textContent = optionText(m);
          option.title = m.preprocessing || '';
          return option;
        }),
      );
      select.value = chooseModel(models, rememberedChoice(), body.default);
      select.closest('label').hidden = models.length < 2; // nothing to choose from: no selector
    },

    /** The chosen model's name, or '' before the list has loaded (the server's default answers). */
    current() {
      return select.value;
    },

    /** A model's labels for the feedback picker, fetched once; a failure allows a later retry. */
    labels(name) {
      if (!labels.has(name)) {
        const loaded = request(`/models/${encodeURIComponent(name)}/labels`).then((body) => body.labels);
        loaded.catch(() => labels.delete(name));
        labels.set(name, loaded);
      }
      return labels.get(name);
    },
  };
}
