/** Number formatting shared by cards, announcements and the header. */

/**
 * Score (0–1) as a percentage: whole numbers are easier to scan, but small
 * scores keep one decimal so they do not all collapse to "0%".
 * @param {number} score
 */
export function formatPercent(score) {
  const pct = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
  return pct >= 1 ? `${Math.round(pct)}%` : `${pct.toFixed(1)}%`;
}

/** Human-readable size, binary units (the server's limit is 10 MiB = 10485760 bytes). */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 || Number.isInteger(value) ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds with one decimal under 100 ms, whole numbers above. */
export function formatMs(ms) {
  const value = Number(ms) || 0;
  return value < 100 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}
