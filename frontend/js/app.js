/**
 * Wiring: loads the model description, connects the upload sources to
 * result cards and the toolbar, and owns the few pieces of page-wide state.
 */

import { getModel, predict, sendFeedback, setUnauthorizedHandler } from './api.js';
import { createKeyPrompt } from './apikey.js';
import { ResultCard, WEAK_SCORE } from './cards.js';
import { flushFeedback } from './feedback.js';
import { formatBytes } from './format.js';
import { createModelSelector } from './models.js';
import { createQueue } from './queue.js';
import { batchAnnouncement, TOP_K } from './results.js';
import { createToolbar } from './toolbar.js';
import { initUpload, precheck } from './upload.js';

const MAX_PARALLEL_UPLOADS = 4;
const MAX_ANNOUNCEMENTS = 20;
/** A custom model with at most this many classes has them listed by name. */
const MAX_LISTED_CLASSES = 40;

const $ = (id) => document.getElementById(id);

const dom = {
  modelInfo: $('model-info'),
  scope: $('model-scope'),
  banner: $('service-banner'),
  bannerText: $('service-banner-text'),
  bannerRetry: $('service-banner-retry'),
  upload: $('upload'),
  dropzone: $('dropzone'),
  fileInput: $('file-input'),
  limits: $('dropzone-limits'),
  cards: $('cards'),
  live: $('live-region'),
};

/** Upload limits from GET /models; null until loaded (the server still enforces them). */
let limits = null;
/** @type {ResultCard[]} newest first, as shown */
let cards = [];

const runQueued = createQueue(MAX_PARALLEL_UPLOADS);

/**
 * Adds a message to the polite live region. Messages are appended (not
 * replaced) so batches finishing together are all read out.
 */
function announce(message) {
  const line = document.createElement('p');
  line.textContent = message;
  dom.live.append(line);
  while (dom.live.childElementCount > MAX_ANNOUNCEMENTS) dom.live.firstElementChild.remove();
}

/** The header's model selector; each model's labels load lazily, once ("Wrong", small custom models). */
const modelSelector = createModelSelector({ select: $('model-select') });

function showBanner(message) {
  dom.bannerText.textContent = message;
  dom.banner.hidden = false;
}

/** Says once, above the results, what the model can recognise and what "unsure" means. */
async function describeScope(model) {
  const unsure = `Answers where no guess reaches ${WEAK_SCORE * 100}% are marked as unsure.`;
  if (model.num_classes === 1000) {
    dom.scope.textContent =
      'The model recognises 1000 everyday categories (ImageNet): animals, plants, food, objects, ' +
      `vehicles and places. It has no category for people. ${unsure}`;
    return;
  }
  const names = model.num_classes <= MAX_LISTED_CLASSES ? (await modelSelector.labels(model.name)).map((l) => l.name) : [];
  const listed = names.length ? `: ${names.join(', ')}` : '';
  dom.scope.textContent = `The model recognises ${model.num_classes} categories of its own${listed}. ${unsure}`;
}

/** Fetches the model description: header text and the limits for pre-checks. */
async function loadModel() {
  dom.bannerRetry.disabled = true;
  try {
    const model = await getModel();
    limits = model.limits || null;
    dom.modelInfo.textContent = 'Names what is in your photos';
    dom.modelInfo.title = `Model: ${model.name} v${model.version} (${model.backend}). ${model.preprocessing || ''}`.trim();
    dom.modelInfo.dataset.state = 'ready';
    modelSelector.show(model);
    if (limits) {
      dom.limits.textContent = `Accepted: ${limits.accepted_label} · up to ${formatBytes(limits.max_upload_bytes)} per file`;
      const types = (limits.accepted_mime_types || []).join(',');
      if (types) dom.fileInput.accept = types;
    }
    dom.banner.hidden = true;
    await describeScope(model).catch(() => {}); // the note is a nicety; the page works without it
  } catch (error) {
    dom.modelInfo.textContent = 'Model unavailable';
    dom.modelInfo.dataset.state = 'unavailable';
    showBanner(
      error.status === 401
        ? `An API key is needed to use this service. ${error.message}`
        : `The service is not reachable right now, so images cannot be classified yet. (${error.message})`,
    );
  } finally {
    dom.bannerRetry.disabled = false;
  }
}

/** Sends one card's file and renders whatever comes back; resolves when the card is settled. */
async function classify(card) {
  card.showPending('Waiting…');
  try {
    const result = await runQueued(() => {
      if (!cards.includes(card)) throw new Error('cleared'); // cleared while waiting: do not upload
      card.showPending('Classifying…');
      return predict(card.file, Math.min(TOP_K, limits?.max_top_k || TOP_K), modelSelector.current());
    });
    card.showResult(result);
    if (!limits) loadModel(); // the service came back after a failed start: fetch the header and limits now
  } catch (error) {
    card.showError(error);
  }
}

/**
 * Classifies cards together and announces the batch once, when all are settled.
 * @param {ResultCard[]} batch every card of the batch, for the announcement
 * @param {ResultCard[]} [toSend] those to upload (the others failed their pre-check)
 */
async function classifyBatch(batch, toSend = batch) {
  await Promise.all(toSend.map(classify));
  const live = batch.filter((card) => cards.includes(card));
  if (live.length) announce(batchAnnouncement(live.map((card) => card.entry)));
}

/** Re-renders the page parts that depend on how many results there are. */
function refresh() {
  toolbar.update();
  dom.upload.hidden = cards.length > 0; // the toolbar's "Add images" and window-wide drops take over
  dom.scope.hidden = cards.length === 0 || !dom.scope.textContent;
}

/** Creates a card per file (newest batch first), rejecting obvious mistakes locally. */
function handleFiles(files) {
  const handlers = { onRetry: (card) => classifyBatch([card]), loadLabels: modelSelector.labels, sendFeedback, announce, onChange: () => toolbar.update() };
  const batch = files.map((file) => new ResultCard(file, handlers));
  const toSend = batch.filter((card) => {
    const problem = precheck(card.file, limits);
    if (problem) card.showError(problem);
    return !problem;
  });
  cards = [...batch, ...cards];
  dom.cards.prepend(...batch.map((card) => card.element));
  refresh();
  classifyBatch(batch, toSend);
}

function retryFailed() {
  const failed = cards.filter((card) => card.entry.status === 'failed' && card.retryable);
  failed.forEach((card) => card.retry());
}

/** Removes every result from the page and from memory (previews included); answers waiting for Undo are sent. */
function clearResults() {
  flushFeedback();
  const count = cards.length;
  cards.forEach((card) => card.dispose());
  cards = [];
  dom.cards.replaceChildren();
  refresh();
  announce(`Cleared ${count} ${count === 1 ? 'result' : 'results'}.`);
  $('dropzone').focus();
}

const toolbar = createToolbar({
  toolbar: $('toolbar'),
  summary: $('summary'),
  retryFailed: $('retry-failed'),
  downloadCsv: $('download-csv'),
  downloadJson: $('download-json'),
  clear: $('clear'),
  getEntries: () => cards.map((card) => card.entry),
  countRetryable: () => cards.filter((card) => card.entry.status === 'failed' && card.retryable).length,
  onRetryFailed: retryFailed,
  onClear: clearResults,
});

function init() {
  const keyPrompt = createKeyPrompt({
    form: $('api-key-form'),
    input: $('api-key-input'),
    message: $('api-key-message'),
    cancelButton: $('api-key-cancel'),
    headerButton: $('api-key-button'),
    onKeySaved: () => {
      if (!limits) loadModel();
    },
  });
  setUnauthorizedHandler(keyPrompt.ask);
  dom.bannerRetry.addEventListener('click', loadModel);
  initUpload({
    openers: [dom.dropzone, $('add-images')],
    dropzone: dom.dropzone,
    overlay: $('drop-overlay'),
    input: dom.fileInput,
    onFiles: handleFiles,
  });
  window.addEventListener('pagehide', flushFeedback);
  loadModel();
}

init();
