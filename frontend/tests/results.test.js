import assert from 'node:assert/strict';
import { test } from 'node:test';

import { batchAnnouncement, countByStatus, CSV_COLUMNS, summaryText, toCsv, toJson } from '../js/results.js';

const DONE = {
  file: 'coffee.png',
  status: 'done',
  model: 'efficientnet_lite0 v1',
  predictions: [
    { label: 'espresso', class_index: 967, score: 0.951 },
    { label: 'cup', class_index: 968, score: 0.015 },
  ],
  latency_ms: 21.5,
  error: null,
};
const FAILED = {
  file: 'a "quoted", name.svg',
  status: 'failed',
  model: null,
  predictions: [],
  latency_ms: null,
  error: 'SVG drawings are not supported.\nExport it.',
};
const WORKING = { ...FAILED, file: 'x.jpg', status: 'working', error: null };

test('the summary counts each status and leaves out zeros', () => {
  assert.equal(summaryText(countByStatus([DONE, DONE, FAILED, WORKING])), '2 done · 1 failed · 1 working');
  assert.equal(summaryText(countByStatus([DONE])), '1 done');
  assert.equal(summaryText(countByStatus([])), '');
});

test('CSV has the top-5 as label_N / score_N columns, padded when fewer', () => {
  assert.deepEqual(CSV_COLUMNS, [
    'file', 'status', 'model',
    'label_1', 'label_2', 'label_3', 'label_4', 'label_5',
    'score_1', 'score_2', 'score_3', 'score_4', 'score_5',
    'latency_ms', 'error',
  ]);
  const [header, row] = toCsv([DONE]).split('\r\n');
  assert.equal(header, CSV_COLUMNS.join(','));
  assert.equal(row, 'coffee.png,done,efficientnet_lite0 v1,espresso,cup,,,,0.951,0.015,,,,21.5,');
});

test('CSV quotes commas, quotes and line breaks (RFC 4180) and ends with CRLF', () => {
  const csv = toCsv([FAILED]);
  assert.ok(csv.endsWith('\r\n'));
  assert.ok(csv.includes('"a ""quoted"", name.svg",failed,'));
  assert.ok(csv.includes('"SVG drawings are not supported.\nExport it."'));
});

test('JSON round-trips every entry', () => {
  assert.deepEqual(JSON.parse(toJson([DONE, FAILED])), [DONE, FAILED]);
});

test('one announcement per batch: the single result, or the counts', () => {
  assert.equal(batchAnnouncement([DONE]), 'coffee.png: espresso');
  assert.equal(batchAnnouncement([FAILED]), `${FAILED.file}: ${FAILED.error}`);
  assert.equal(batchAnnouncement([DONE, DONE, FAILED]), '3 images finished: 2 classified, 1 failed.');
  assert.equal(batchAnnouncement([DONE, DONE]), '2 images finished: 2 classified.');
});
