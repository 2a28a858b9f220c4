import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chooseModel, optionText } from '../js/models.js';

const MODELS = [{ name: 'efficientnet_lite0' }, { name: 'efficientnet_lite2' }];

test('the tab keeps its choice while the model still exists', () => {
  assert.equal(chooseModel(MODELS, 'efficientnet_lite2', 'efficientnet_lite0'), 'efficientnet_lite2');
});

test("a choice the service no longer has falls back to the server's default", () => {
  assert.equal(chooseModel(MODELS, 'efficientnet_lite1', 'efficientnet_lite0'), 'efficientnet_lite0');
  assert.equal(chooseModel(MODELS, '', 'efficientnet_lite0'), 'efficientnet_lite0');
});

test('an option shows the measured top-1 and says when no worker serves it', () => {
  assert.equal(optionText({ name: 'efficientnet_lite2', measured: { top1: 0.898 }, available: true }), 'efficientnet_lite2 · 89.8 % top-1');
  assert.equal(optionText({ name: 'efficientnet_lite1', measured: null, available: false }), 'efficientnet_lite1 (unavailable)');
});
