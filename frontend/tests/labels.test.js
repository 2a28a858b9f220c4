import assert from 'node:assert/strict';
import { test } from 'node:test';

import { duplicateNames, filterLabels, MAX_OPTIONS, rankLabel } from '../js/labels.js';

const LABELS = [
  { index: 0, wnid: 'n00000001', name: 'measuring cup', synonyms: ['measuring cup'] },
  { index: 1, wnid: 'n00000002', name: 'cup', synonyms: ['cup'] },
  { index: 2, wnid: 'n00000003', name: 'porcupine', synonyms: ['porcupine', 'hedgehog'] },
  { index: 3, wnid: 'n04367480', name: 'swab', synonyms: ['swab', 'swob', 'mop'] },
  { index: 4, wnid: 'n03785016', name: 'moped', synonyms: ['moped'] },
  { index: 5, wnid: 'n00000006', name: 'crane (bird)', synonyms: ['crane'] },
  { index: 6, wnid: 'n00000007', name: 'crane (machine)', synonyms: ['crane'] },
  { index: 7, wnid: 'n00000008', name: 'cupboard', synonyms: ['cupboard'] },
];

const names = (query) => filterLabels(LABELS, query).matches.map((m) => m.label.name);

test('an exact name beats a prefix, which beats a word start, which beats a substring', () => {
  assert.deepEqual(names('cup'), ['cup', 'cupboard', 'measuring cup', 'porcupine']);
});

test('a synonym finds a class whose name does not match ("mop" finds "swab")', () => {
  const { matches } = filterLabels(LABELS, 'mop');
  assert.deepEqual(
    matches.map((m) => [m.label.name, m.synonym]),
    [
      ['swab', 'mop'], // exact synonym ranks above the name prefix of "moped"
      ['moped', null],
    ],
  );
});

test('the same kind of match on the own name beats one on a synonym', () => {
  assert.ok(rankLabel(LABELS[4], 'mop').score > rankLabel(LABELS[3], 'mop').score);
  assert.ok(rankLabel(LABELS[1], 'cup').score < rankLabel(LABELS[3], 'swob').score);
});

test('queries are trimmed and case-insensitive; wnid and index match too', () => {
  assert.deepEqual(names('  SWAB '), ['swab']);
  assert.deepEqual(names('n04367480'), ['swab']);
  assert.deepEqual(names('4'), ['moped']);
});

test('no match gives an empty list and a total of zero', () => {
  assert.deepEqual(filterLabels(LABELS, 'person'), { matches: [], total: 0 });
});

test('an empty query lists everything alphabetically, at most MAX_OPTIONS', () => {
  const many = Array.from({ length: 100 }, (_, i) => ({ index: i, wnid: `n${i}`, name: `class ${String(i).padStart(3, '0')}` }));
  const { matches, total } = filterLabels(many, '');
  assert.equal(total, 100);
  assert.equal(matches.length, MAX_OPTIONS);
  assert.equal(matches[0].label.name, 'class 000');
});

test('names shared by several classes are reported, others not', () => {
  const shared = [...LABELS, { index: 8, wnid: 'n9', name: 'cup', synonyms: [] }];
  assert.deepEqual([...duplicateNames(shared)], ['cup']);
  assert.equal(duplicateNames(LABELS).size, 0);
});
