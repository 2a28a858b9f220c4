/**
 * Wiring: loads the model list, connects the upload sources to
 * result cards, and owns the few pieces of page-wide state.
 */

import { getModel, predict, sendFeedback, setUnauthorizedHandler } from './api.js';
import { createKeyPrompt } from './apikey.js';
import { ResultCard } from './cards.js';
import { formatBytes } from './format.js';
import { createModelSelector } from './models.js';
import { createQueue } from './queue.js';
import { initUpload, precheck } from './upload.js';

const TOP_K = 5;
const MAX_PARALLEL_UPLOADS = 4;
const MAX_ANNOUNCEMENTS = 20;

const $ = (id) => document.getElementById(id);

const dom = {
  modelInfo: $('model-info'),
  banner: $('service-banner'),
  bannerText: $('service-banner-text'),
  bannerRetry: $('service-banner-retry'),
  dropzone: $('dropzone'),
  fileInput: $('file-input'),
  limits: $('dropzone-limits'),
  cards: $('cards'),
  live: $('live-region'),
};

/** Upload limits from GET /models; null until loaded (the server still enforces them). */
let limits = null;
/** The models of GET /models by name, for the header text. */
let modelsByName = new Map();

const runQueued = createQueue(MAX_PARALLEL_UPLOADS);

/**
 * Adds a message to the polite live region. Messages are appended (not
 * replaced) so results finishing together are all read out.
 */
function announce(message) {
  const line = document.createElement('p');
  line.textContent = message;
  dom.live.append(line);
  while (dom.live.childElementCount > MAX_ANNOUNCEMENTS) dom.live.firstElementChild.remove();
}

/** Header text for the chosen model: name, version, input size. */
function describeModel(name) {
  const model = modelsByName.get(name);
  dom.modelInfo.textContent = model
    ? `Model: ${model.name} v${model.latest} (${model.input_size}×${model.input_size})`
    : 'Model: unavailable';
  dom.modelInfo.title = model?.preprocessing || '';
}

const modelSelector = createModelSelector({ select: $('model-select'), onChange: describeModel });

function showBanner(message) {
  dom.bannerText.textContent = message;
  dom.banner.hidden = false;
}

/** Fetches the model description: header text and the limits for pre-checks. */
async function loadModel() {
  dom.bannerRetry.disabled = true;
  try {
    const model = await getModel();
    limits = model.limits || null;
    modelsByName = new Map((model.models || []).map((m) => [m.name, m]));
    modelSelector.show(model);
    describeModel(modelSelector.current());
    if (limits) {
      dom.limits.textContent = `Accepted: ${limits.accepted_label} · up to ${formatBytes(limits.max_upload_bytes)} per file`;
      const types = (limits.accepted_mime_types || []).join(',');
      if (types) dom.fileInput.accept = types;
    }
    dom.banner.hidden = true;
  } catch (error) {
    dom.modelInfo.textContent = 'Model: unavailable';
    showBanner(
      error.status === 401
        ? `An API key is needed to use this service. ${error.message}`
        : `The service is not reachable right now, so images cannot be classified yet. (${error.message})`,
    );
  } finally {
    dom.bannerRetry.disabled = false;
  }
}

/** Sends one card's file and renders whatever comes back. */
async function classify(card) {
  card.showPending('Waiting…');
  try {
    const result = await runQueued(() => {
      card.showPending('Classifying…');
      return predict(card.file, Math.min(TOP_K, limits?.max_top_k || TOP_K), modelSelector.current());
    });
    card.showResult(result);
    announce(`${card.file.name}: ${ResultCard.summary(result)}${result.cached ? ' (cached)' : ''}`);
  } catch (error) {
    card.showError(error.message, { retryable: Boolean(error.retryable), retryAfter: error.retryAfter });
    announce(`${card.file.name}: ${error.message}`);
  }
}

/** Creates a card per file (newest batch first), rejecting obvious mistakes locally. */
function handleFiles(files) {
  const batch = document.createDocumentFragment();
  const toSend = [];
  for (const file of files) {
    const card = new ResultCard(file, { onRetry: classify, loadLabels: modelSelector.labels, sendFeedback, announce });
    batch.append(card.element);
    const problem = precheck(file, limits);
    if (problem) {
      card.showError(problem);
      announce(`${file.name}: ${problem}`);
    } else {
      toSend.push(card);
    }
  }
  dom.cards.prepend(batch);
  toSend.forEach(classify);
}

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
  initUpload({ dropzone: dom.dropzone, input: dom.fileInput, onFiles: handleFiles });
  loadModel();
}

init();
