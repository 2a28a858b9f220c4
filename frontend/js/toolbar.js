/**
 * The results toolbar (sticky above the cards): "Add images", the summary
 * line, Retry failed, the downloads and Clear.
 */

import { countByStatus, summaryText, toCsv, toJson } from './results.js';

/** "classifications-2026-11-27-0812.csv": sortable and unique enough per minute. */
function fileName(extension) {
  const stamp = new Date().toISOString().slice(0, 16).replace('T', '-').replace(':', '');
  return `classifications-${stamp}.${extension}`;
}

/** Saves text as a file through a temporary object URL (no server round trip). */
function download(text, type, extension) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName(extension);
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/**
 * @param {{toolbar: HTMLElement, summary: HTMLElement, retryFailed: HTMLButtonElement,
 *          downloadCsv: HTMLButtonElement, downloadJson: HTMLButtonElement, clear: HTMLButtonElement,
 *          getEntries: () => Array<object>, countRetryable: () => number,
 *          onRetryFailed: () => void, onClear: () => void}} options
 * @returns {{update: () => void}} call after any card changes state
 */
export function createToolbar(options) {
  const { toolbar, summary, retryFailed, downloadCsv, downloadJson, clear, getEntries } = options;
  downloadCsv.addEventListener('click', () => download(toCsv(getEntries()), 'text/csv;charset=utf-8', 'csv'));
  downloadJson.addEventListener('click', () => download(toJson(getEntries()), 'application/json', 'json'));
  retryFailed.addEventListener('click', options.onRetryFailed);
  clear.addEventListener('click', options.onClear);

  function update() {
    const entries = getEntries();
    const counts = countByStatus(entries);
    toolbar.hidden = entries.length === 0;
    summary.textContent = summaryText(counts);
    retryFailed.hidden = options.countRetryable() === 0;
    const finished = counts.done + counts.failed;
    downloadCsv.disabled = downloadJson.disabled = finished === 0;
  }

  update();
  return { update };
}
