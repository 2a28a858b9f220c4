/**
 * Getting files into the page: drop anywhere on the window, the file picker
 * (drop zone and the toolbar's "Add images") and clipboard paste, plus the
 * client-side pre-checks that mirror the server's own limits.
 */

import { formatBytes } from './format.js';

/**
 * Checks a file against the limits from GET /models before uploading, so the
 * obvious mistakes fail instantly. The messages repeat the server's word for
 * word (backend/src/api/classify.py `read_upload`, the contract's
 * `imgclf_contract.preprocess.unsupported`); e2e/test_ui_messages.py compares them.
 * Content sniffing is left to the server (a renamed text file passes here).
 * @param {{size:number, type:string}} file
 * @param {object|null} limits `limits` from GET /models; null skips the checks
 * @returns {{code:string, message:string}|null} the problem as the server's error would state it
 */
export function precheck(file, limits) {
  if (!limits) return null;
  if (limits.max_upload_bytes && file.size > limits.max_upload_bytes) {
    return {
      code: 'payload_too_large',
      message: `The file is larger than the upload limit of ${formatBytes(limits.max_upload_bytes)}.`,
    };
  }
  const accepted = limits.accepted_mime_types || [];
  if (accepted.length && !accepted.includes(file.type)) {
    const label = limits.accepted_label || (limits.accepted_formats || []).join(', ');
    const message =
      file.type === 'image/svg+xml'
        ? 'SVG drawings are not supported. Export the drawing as PNG (most drawing programs can, or take ' +
          `a screenshot of it) and upload that. Accepted: ${label}.`
        : `The file is not an image we can read (detected: ${file.type || 'unknown'}). Accepted: ${label}.`;
    return { code: 'unsupported_media_type', message };
  }
  return null;
}

let pasteCounter = 0;

/**
 * Clipboard images all arrive named "image.png"; give each a distinct name
 * so cards and announcements can be told apart.
 * @param {File} file
 */
function renamePasted(file) {
  pasteCounter += 1;
  const ext = (file.type.split('/')[1] || 'bin').replace('jpeg', 'jpg');
  return new File([file], `pasted-image-${pasteCounter}.${ext}`, { type: file.type, lastModified: Date.now() });
}

/** Collects File objects from a DataTransfer (drop or paste). */
function filesFrom(dataTransfer) {
  if (!dataTransfer) return [];
  if (dataTransfer.files && dataTransfer.files.length) return Array.from(dataTransfer.files);
  return Array.from(dataTransfer.items || [])
    .filter((item) => item.kind === 'file')
    .map((item) => item.getAsFile())
    .filter(Boolean);
}

/** True when the drag carries files (not text or a link being dragged). */
function draggingFiles(event) {
  return Array.from(event.dataTransfer?.types || []).includes('Files');
}

/**
 * Accepts files dropped anywhere on the window, showing the overlay while
 * they are dragged over it. A depth counter avoids flicker: dragenter and
 * dragleave fire for every element crossed.
 */
function acceptDropsOnWindow(overlay, onFiles) {
  let depth = 0;
  const setActive = (active) => {
    overlay.hidden = !active;
  };
  window.addEventListener('dragenter', (event) => {
    if (!draggingFiles(event)) return;
    event.preventDefault();
    depth += 1;
    setActive(true);
  });
  window.addEventListener('dragover', (event) => {
    if (!draggingFiles(event)) return;
    event.preventDefault(); // also keeps the browser from opening the file and losing the results
    event.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) setActive(false);
  });
  window.addEventListener('drop', (event) => {
    if (!draggingFiles(event)) return;
    event.preventDefault();
    depth = 0;
    setActive(false);
    const files = filesFrom(event.dataTransfer);
    if (files.length) onFiles(files);
  });
}

/**
 * Wires the pickers (drop zone, buttons), the hidden file input, window-wide
 * drops and document-wide paste.
 * @param {{openers: HTMLElement[], dropzone: HTMLElement, overlay: HTMLElement,
 *          input: HTMLInputElement, onFiles: (files: File[]) => void}} options
 */
export function initUpload({ openers, dropzone, overlay, input, onFiles }) {
  const openPicker = () => input.click();
  for (const opener of openers) opener.addEventListener('click', openPicker);
  dropzone.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault(); // Space would otherwise scroll the page
      openPicker();
    }
  });
  input.addEventListener('change', () => {
    const files = Array.from(input.files || []);
    input.value = ''; // so choosing the same file again still fires "change"
    if (files.length) onFiles(files);
  });
  acceptDropsOnWindow(overlay, onFiles);
  document.addEventListener('paste', (event) => {
    const files = filesFrom(event.clipboardData);
    // Only files are handled; pasting text (e.g. into the picker) keeps its default behaviour.
    if (!files.length) return;
    event.preventDefault();
    onFiles(files.map(renamePasted));
  });
}
