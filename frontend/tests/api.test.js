import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseRetryAfter } from '../js/api.js';

const NOW = Date.parse('Fri, 27 Nov 2026 08:00:00 GMT');

test('Retry-After in seconds', () => {
  assert.equal(parseRetryAfter('7', NOW), 7);
  assert.equal(parseRetryAfter(' 0 ', NOW), 0);
  assert.equal(parseRetryAfter('1.2', NOW), 2);
});

test('Retry-After as an HTTP date counts from now, never below zero', () => {
  assert.equal(parseRetryAfter('Fri, 27 Nov 2026 08:00:30 GMT', NOW), 30);
  assert.equal(parseRetryAfter('Fri, 27 Nov 2026 07:59:00 GMT', NOW), 0);
});

test('absent or unreadable Retry-After gives null', () => {
  for (const value of [null, '', '  ', 'soon', '-5']) assert.equal(parseRetryAfter(value, NOW), null, String(value));
});
