import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatBytes, formatMs, formatPercent } from '../js/format.js';

test('percentages have one decimal everywhere and never read 0.0%', () => {
  assert.equal(formatPercent(0.951), '95.1%');
  assert.equal(formatPercent(1), '100.0%');
  assert.equal(formatPercent(0.001), '0.1%');
  assert.equal(formatPercent(0.0004), '<0.1%');
  assert.equal(formatPercent(0), '<0.1%');
  assert.equal(formatPercent(NaN), '<0.1%');
});

test('sizes use binary units like the server (same cases as backend/tests/test_human_size.py)', () => {
  const cases = [
    [0, '0 B'], [1023, '1023 B'], [1024, '1 KB'], [1536, '1.5 KB'], [300_000, '293 KB'],
    [10 * 2 ** 20, '10 MB'], [11_848_933, '11.3 MB'], [5 * 2 ** 30, '5 GB'],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, `${bytes}`);
});

test('milliseconds keep a decimal under 100 ms', () => {
  assert.equal(formatMs(15), '15.0 ms');
  assert.equal(formatMs(250.4), '250 ms');
});
