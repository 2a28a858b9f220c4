/**
 * The results as data: the toolbar's summary line and the CSV / JSON
 * downloads. Pure functions over plain entries, unit-tested in frontend/tests.
 *
 * An entry: {file, status: 'done'|'failed'|'working', model: string|null,
 *            predictions: [{label, class_index, score}], latency_ms: number|null,
 *            error: string|null}
 */

export const TOP_K = 5;

export const CSV_COLUMNS = [
  'file',
  'status',
  'model',
  ...Array.from({ length: TOP_K }, (_, i) => `label_${i + 1}`),
  ...Array.from({ length: TOP_K }, (_, i) => `score_${i + 1}`),
  'latency_ms',
  'error',
];

/** Counts entries per status. */
export function countByStatus(entries) {
  const counts = { done: 0, failed: 0, working: 0 };
  for (const entry of entries) counts[entry.status] += 1;
  return counts;
}

/** "38 done · 1 failed · 1 working"; parts that are zero are left out. */
export function summaryText(counts) {
  return ['done', 'failed', 'working']
    .filter((status) => counts[status] > 0)
    .map((status) => `${counts[status]} ${status}`)
    .join(' · ');
}

/** One announcement for a finished batch of uploads. */
export function batchAnnouncement(entries) {
  if (entries.length === 1) {
    const [entry] = entries;
    const best = entry.predictions[0];
    if (entry.status === 'failed') return `${entry.file}: ${entry.error}`;
    return `${entry.file}: ${best ? best.label : 'no prediction'}`;
  }
  const counts = countByStatus(entries);
  const failed = counts.failed ? `, ${counts.failed} failed` : '';
  return `${entries.length} images finished: ${counts.done} classified${failed}.`;
}

/** RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled. */
function csvField(value) {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The entry's fields in CSV_COLUMNS order. */
function csvRow(entry) {
  const top = entry.predictions.slice(0, TOP_K);
  const pad = (values) => [...values, ...Array(TOP_K - values.length).fill('')];
  return [
    entry.file,
    entry.status,
    entry.model,
    ...pad(top.map((p) => p.label)),
    ...pad(top.map((p) => p.score)),
    entry.latency_ms,
    entry.error,
  ];
}

/** All entries as CSV text (header row first, CRLF line ends as RFC 4180 asks). */
export function toCsv(entries) {
  return [CSV_COLUMNS, ...entries.map(csvRow)].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** All entries as pretty-printed JSON. */
export function toJson(entries) {
  return `${JSON.stringify(entries, null, 2)}\n`;
}
