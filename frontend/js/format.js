/** Number formatting shared by cards, announcements, downloads and the header. */

/**
 * Score (0–1) as a percentage with one decimal everywhere, so columns of
 * scores line up and compare; anything under 0.05 % reads "<0.1%", not "0.0%".
 * @param {number} score
 */
export function formatPercent(score) {
  const pct = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
  return pct < 0.05 ? '<0.1%' : `${pct.toFixed(1)}%`;
}

/**
 * Human-readable size in binary units, one decimal under 100. The server's
 * `human_size` (backend/src/api/classify.py) formats alike, so a size in the
 * page and one in a server message read the same.
 */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 || Number.isInteger(value) ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds with one decimal under 100 ms, whole numbers above. */
export function formatMs(ms) {
  const value = Number(ms) || 0;
  return value < 100 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}
