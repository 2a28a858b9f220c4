import assert from 'node:assert/strict';
import { test } from 'node:test';

import { precheck } from '../js/upload.js';

const LIMITS = {
  max_upload_bytes: 10 * 1024 * 1024,
  accepted_mime_types: ['image/jpeg', 'image/png'],
  accepted_label: 'JPEG, PNG',
};
const file = (size, type) => ({ size, type });

test('a file within the limits passes; without limits nothing is checked', () => {
  assert.equal(precheck(file(1000, 'image/png'), LIMITS), null);
  assert.equal(precheck(file(1e12, 'text/plain'), null), null);
});

test('too large: the server 413 sentence, with a human size', () => {
  assert.deepEqual(precheck(file(11_848_933, 'image/jpeg'), LIMITS), {
    code: 'payload_too_large',
    message: 'The file is larger than the upload limit of 10 MB.',
  });
  assert.equal(precheck(file(LIMITS.max_upload_bytes, 'image/jpeg'), LIMITS), null); // the limit itself is allowed
});

test('SVG: says it is not supported and how to convert it', () => {
  const problem = precheck(file(100, 'image/svg+xml'), LIMITS);
  assert.equal(problem.code, 'unsupported_media_type');
  assert.match(problem.message, /^SVG drawings are not supported\. Export the drawing as PNG .* Accepted: JPEG, PNG\.$/);
});

test('other types: the server 415 sentence with the detected type', () => {
  assert.equal(
    precheck(file(100, ''), LIMITS).message,
    'The file is not an image we can read (detected: unknown). Accepted: JPEG, PNG.',
  );
  assert.equal(precheck(file(100, 'application/pdf'), LIMITS).message.includes('(detected: application/pdf)'), true);
});
