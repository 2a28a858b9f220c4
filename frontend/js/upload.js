/**
 * Getting files into the page: drop zone, file picker and clipboard paste,
 * plus the client-side pre-checks that mirror the server's own limits.
 */

/**
 * Checks a file against the limits from GET /models before uploading, so the
 * obvious mistakes fail instantly. A refused type reads exactly as the server's
 * 415 message; a refused size names the file's exact size, which the server
 * (reading no further than the limit) cannot, so that sentence differs.
 * Content sniffing is left to the server (a renamed text file passes here).
 * @param {File} file
 * @param {object|null} limits `limits` from GET /models; null skips the checks
 * @returns {string|null} the error message, or null when the file may be sent
 */
export function precheck(file, limits) {
  if (!limits) return null;
  if (limits.max_upload_bytes && file.size > limits.max_upload_bytes) {
    return `The file is ${file.size} bytes; the limit is ${limits.max_upload_bytes} bytes.`;
  }
  const accepted = limits.accepted_mime_types || [];
  if (accepted.length && !accepted.includes(file.type)) {
    const label = limits.accepted_label || (limits.accepted_formats || []).join(', ');
    return `The file is not an image we can read (detected: ${file.type || 'unknown'}). Accepted: ${label}.`;
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
  return new File([file], `pasted-image-${pasteCounter}.${ext}`, {
    type: file.type,
    lastModified: Date.now(),
  });
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
 * Wires the drop zone, the hidden file input and document-wide paste.
 * @param {{dropzone: HTMLElement, input: HTMLInputElement, onFiles: (files: File[]) => void}} options
 */
export function initUpload({ dropzone, input, onFiles }) {
  const openPicker = () => input.click();

  dropzone.addEventListener('click', openPicker);
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

  // A depth counter avoids flicker: dragenter/dragleave fire for every child element.
  let dragDepth = 0;
  const setActive = (active) => dropzone.classList.toggle('dropzone--active', active);

  dropzone.addEventListener('dragenter', (event) => {
    if (!draggingFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    setActive(true);
  });
  dropzone.addEventListener('dragover', (event) => {
    if (!draggingFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  dropzone.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) setActive(false);
  });
  dropzone.addEventListener('drop', (event) => {
    event.preventDefault();
    dragDepth = 0;
    setActive(false);
    const files = filesFrom(event.dataTransfer);
    if (files.length) onFiles(files);
  });

  // A file dropped just outside the zone must not navigate away and lose all results.
  window.addEventListener('dragover', (event) => {
    if (draggingFiles(event)) event.preventDefault();
  });
  window.addEventListener('drop', (event) => {
    if (draggingFiles(event)) event.preventDefault();
  });

  document.addEventListener('paste', (event) => {
    const files = filesFrom(event.clipboardData);
    // Only files are handled; pasting text (e.g. into the picker) keeps its default behaviour.
    if (!files.length) return;
    event.preventDefault();
    onFiles(files.map(renamePasted));
  });
}
