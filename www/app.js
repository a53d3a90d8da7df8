// The SEP-Net demo page. All inference happens in a Web Worker (sepnet/worker), so the main
// thread only shuffles pixels and updates the DOM.

import { WorkerClassifier } from './pkg/worker.js';
import { simdSupported } from './pkg/index.js';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'style') node.style.cssText = v;
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
};

// The paper's reference points (ImageNet top-1), shown beside the models we ship.
const PAPER_ROWS = [
  { name: 'MobileNet', params: 1.3e6, bytes: 5.2e6, top1: 0.637 },
  { name: 'SqueezeNet', params: 1.2e6, bytes: 4.8e6, top1: 0.604 },
  { name: 'SEP-Net-BQ small', params: null, bytes: 1.3e6, top1: 0.635 },
];
const SAMPLES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const DATASETS = { cifar10: 'CIFAR-10', imagenet: 'ImageNet' };
const OP_COLORS = {
  conv2d: 'var(--op-conv2d)',
  linear: 'var(--op-linear)',
  relu: 'var(--op-relu)',
  add: 'var(--op-add)',
  concat: 'var(--op-concat)',
  maxpool2d: 'var(--op-pool)',
  global_avg_pool: 'var(--op-pool)',
};
const LIVE_TIMING_INTERVAL_MS = 300; // redraw the layer chart at most ~3×/s while the camera runs
// Browsers coarsen performance.now() (Chromium: 0.1 ms steps unless cross-origin isolated), and
// most layers take less than a step, so one run's chart is mostly 0.0 and 0.1 ms. The chart shows
// per-layer means instead: a still image is run this many times, the camera averages its latest
// frames. A mean of coarse readings is still an unbiased time, as long as runs vary in phase.
const STILL_TIMING_RUNS = 20;
const LIVE_TIMING_FRAMES = 30;

const state = {
  models: [],
  current: null, // manifest entry of the loaded model
  classifier: null,
  info: null,
  loadToken: 0,
  loadAbort: null,
  still: null, // {source, label}: the still image shown, re-classified when the model changes
  previewUrl: null,
  order: 'graph',
  lastTimings: null,
  timingRows: null, // Map layer → row elements, rebuilt per model
  timingRuns: [], // the runs the layer chart averages: [{timings, totalMs}]
  timingToken: 0, // bumped whenever those runs start over (new image, model or camera)
  clockStepMs: null, // the smallest step of performance.now() seen here
  updates: 0,
};
const cam = { stream: null, running: false, stamps: [], lastTimingDraw: 0 };

// Formatting ------------------------------------------------------------------------------------

const fmtBytes = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : n >= 1e4 ? `${Math.round(n / 1e3)} kB` : `${(n / 1e3).toFixed(1)} kB`;
const fmtCount = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(n);
const fmtMacs = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : `${(n / 1e6).toFixed(1)}M`);
/** The smallest nonzero step of performance.now() (read for at most 20 ms). */
function measureClockStep() {
  let step = Infinity;
  let last = performance.now();
  const end = last + 20;
  for (let seen = 0; seen < 6;) {
    const t = performance.now();
    if (t !== last) {
      step = Math.min(step, t - last);
      last = t;
      seen += 1;
    }
    if (t > end) break;
  }
  return step;
}

const fmtMs = (ms) => (ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`);
const fmtPct = (p) => `${(p * 100).toFixed(p >= 0.995 ? 0 : 1)}%`;
const datasetName = (d) => DATASETS[d] ?? d;
const plainName = (entry) => entry.name.replace(/\s*\(untrained\)\s*$/, '');

// Messages ---------------------------------------------------------------------------------------

function showError(message, action) {
  $('error-text').textContent = message;
  const btn = $('error-action');
  btn.hidden = !action;
  if (action) {
    btn.textContent = action.label;
    btn.onclick = () => {
      clearError();
      action.run();
    };
  }
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
}

function modelErrorMessage(entry, e) {
  const name = `“${entry.name}”`;
  switch (e.code) {
    case 'MODEL_FETCH':
      return `Could not download the model ${name}: ${e.message.replace(/^could not download [^:]+: /, '')}. ` +
        'Pick another model or try again.';
    case 'MODEL_TRUNCATED':
      return `The download of ${name} was cut short (${e.message.replace(/^.*?: /, '')}). Check the connection and try again.`;
    case 'MODEL_INVALID':
      return `The model file ${name} is corrupt or not a .sepnet model (${e.message.replace(/^not a valid \.sepnet model: /, '')}). Pick another model.`;
    case 'SIMD_UNSUPPORTED':
    case 'WASM_INIT':
      return e.message;
    default:
      return `Could not load ${name}: ${e.message}`;
  }
}

function imageErrorMessage(e, label) {
  const what = label ? `“${label}”` : 'This image';
  switch (e.code) {
    case 'IMAGE_DECODE':
      return `${what} could not be decoded as an image. Try a JPEG, PNG, WebP or GIF file.`;
    case 'UNSUPPORTED_SOURCE':
      return `${what} cannot be classified: ${e.message}.`;
    default:
      return `Classifying ${label ? what : 'the image'} failed: ${e.message}`;
  }
}

function cameraErrorMessage(e) {
  switch (e?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'Camera access was denied. Allow the camera for this site in the browser’s settings, or upload an image instead.';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. Connect one, or upload an image instead.';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'The camera could not be started; another application may be using it.';
    default:
      return `Could not start the camera: ${e?.message || e}`;
  }
}

// Download progress ------------------------------------------------------------------------------

function showProgress(entry, loaded, total) {
  $('progress').hidden = false;
  const bar = $('progress-bar');
  bar.classList.toggle('indeterminate', !total);
  bar.style.width = total ? `${Math.min(100, (100 * loaded) / total)}%` : '';
  $('progress-label').textContent = total
    ? `Downloading ${entry.name} · ${fmtBytes(loaded)} of ${fmtBytes(total)}`
    : `Downloading ${entry.name} · ${fmtBytes(loaded)}`;
}

function hideProgress() {
  $('progress').hidden = true;
}

// Models ------------------------------------------------------------------------------------------

async function fetchManifest() {
  const res = await fetch('models/manifest.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const data = await res.json();
  const models = Array.isArray(data?.models) ? data.models.filter((m) => m && typeof m.file === 'string') : [];
  if (!models.length) throw new Error('it lists no models');
  return models;
}

function fillPicker() {
  const picker = $('model-picker');
  picker.replaceChildren();
  const groups = new Map();
  for (const m of state.models) {
    const key = m.dataset ?? 'other';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(m);
  }
  for (const [dataset, models] of groups) {
    const options = models.map((m) => el('option', { value: m.file }, `${m.name} — ${fmtBytes(m.bytes || 0)}`));
    // Group by dataset only when there is more than one (the input sizes differ).
    picker.append(...(groups.size > 1 ? [el('optgroup', { label: datasetName(dataset) }, ...options)] : options));
  }
  picker.disabled = false;
}

async function selectModel(entry) {
  const token = ++state.loadToken;
  state.loadAbort?.abort();
  const abort = new AbortController();
  state.loadAbort = abort;
  $('model-picker').value = entry.file;
  document.body.dataset.model = 'loading';
  showProgress(entry, 0, entry.bytes || 0);
  let next;
  try {
    next = await WorkerClassifier.load(`models/${entry.file}`, {
      signal: abort.signal,
      warmup: 3, // the first classification is then as fast as the rest
      onProgress: ({ loaded, total }) => {
        if (token === state.loadToken) showProgress(entry, loaded, total || entry.bytes || 0);
      },
    });
  } catch (e) {
    if (token !== state.loadToken) return; // superseded by a newer choice
    hideProgress();
    showError(modelErrorMessage(entry, e), { label: 'Retry', run: () => selectModel(entry) });
    // Keep the previous model usable and show it as selected again.
    if (state.current) $('model-picker').value = state.current.file;
    document.body.dataset.model = state.classifier ? 'ready' : 'error';
    return;
  }
  if (token !== state.loadToken) {
    next.dispose();
    return;
  }
  const old = state.classifier;
  state.classifier = next;
  state.current = entry;
  state.info = next.info();
  old?.dispose();
  hideProgress();
  clearError();
  renderModel();
  renderSizes();
  resetResults();
  document.body.dataset.model = 'ready';
  if (state.still && !cam.running) classifyStill(state.still.source, state.still.label);
}

// Rendering ----------------------------------------------------------------------------------------

function renderModel() {
  const info = state.info;
  const entry = state.current;
  const badges = $('model-badges');
  badges.replaceChildren(
    el('span', { class: 'badge', title: variantTitle(info.variant) }, info.variant),
    info.trained
      ? el('span', { class: 'badge trained' }, 'trained')
      : el('span', { class: 'badge untrained', title: 'random weights: predictions are meaningless' }, 'untrained'),
  );
  const acc = info.accuracy;
  const accuracy = info.trained && acc?.top1 != null
    ? `${fmtPct(acc.top1)} top-1${acc.split ? ` (${acc.split}${acc.n ? `, n=${acc.n}` : ''})` : ''}`
    : '— (untrained)';
  const rows = [
    ['Network', plainName(entry ?? { name: info.model })],
    ['Dataset', `${datasetName(info.dataset)} · ${info.labels.length} classes`],
    ['Input', `${info.input.channels}×${info.input.height}×${info.input.width}`],
    ['Parameters', fmtCount(info.params)],
    ['File size', fmtBytes(info.bytes)],
    ['Compute', `${fmtMacs(info.macs)} MACs per image`],
    ['Accuracy', accuracy],
  ];
  $('model-facts').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('untrained-note').hidden = info.trained;

  // Where the bytes go: pattern (1 bit), int8 or f32 weights.
  const byEnc = { pattern: 0, int8: 0, f32: 0 };
  for (const l of info.layers) if (l.encoding in byEnc) byEnc[l.encoding] += l.bytes;
  const total = Object.values(byEnc).reduce((a, b) => a + b, 0) || 1;
  const present = Object.entries(byEnc).filter(([, b]) => b > 0);
  $('encodings').replaceChildren(
    el('div', { class: 'bar', title: 'stored weight bytes by encoding' },
      ...present.map(([k, b]) => el('span', { class: `enc-${k}`, style: `width:${(100 * b) / total}%` }))),
    el('div', { class: 'legend' },
      ...present.map(([k, b]) => el('span', {}, el('i', { class: `enc-${k}` }), `${k} ${fmtBytes(b)}`))),
  );
}

function variantTitle(v) {
  return {
    R: 'R: all weights real-valued (f32)',
    B: 'B: k×k filters are binary patterns (1 bit per weight + one scale per filter)',
    BQ: 'BQ: binary patterns + int8 for every other weight',
  }[v] ?? v;
}

function resetResults() {
  $('predictions').replaceChildren();
  $('pred-empty').hidden = false;
  $('pred-time').textContent = '';
  $('layer-timings').replaceChildren();
  $('op-summary').replaceChildren();
  $('timing-empty').hidden = false;
  state.timingRows = null;
  state.lastTimings = null;
  resetTimingRuns();
}

/** Starts the layer chart's average over (a new image, model or camera). */
function resetTimingRuns() {
  state.timingRuns = [];
  state.timingToken += 1;
  const note = $('timing-note');
  note.hidden = true;
  note.dataset.runs = '0';
}

/** Adds one run to the average (keeping the latest `cap`) and returns the per-layer means. */
function addTimingRun(res, cap) {
  const runs = state.timingRuns;
  runs.push({ timings: res.timings, totalMs: res.totalMs });
  while (runs.length > cap) runs.shift();
  const n = runs.length;
  const timings = res.timings.map((t, i) => ({
    ...t,
    ms: runs.reduce((sum, r) => sum + (r.timings[i]?.ms ?? 0), 0) / n,
  }));
  const totalMs = runs.reduce((sum, r) => sum + r.totalMs, 0) / n;
  return { timings, totalMs, n };
}

function renderTimingNote(n, live) {
  state.clockStepMs ??= measureClockStep();
  const step = state.clockStepMs;
  const note = $('timing-note');
  const what = live ? `the last ${n} frame${n === 1 ? '' : 's'}` : `${n} run${n === 1 ? '' : 's'} of this image`;
  note.textContent = `Mean of ${what}` +
    (Number.isFinite(step) && step >= 0.001 ? ` · this browser's clock ticks every ${Number(step.toPrecision(2))} ms` : '');
  note.dataset.runs = String(n);
  note.hidden = false;
}

function renderResult(res, live = false) {
  const list = $('predictions');
  while (list.children.length > res.top.length) list.lastElementChild.remove();
  while (list.children.length < res.top.length) {
    list.append(
      el('li', {},
        el('span', { class: 'label' }),
        el('span', { class: 'pct' }),
        el('div', { class: 'track' }, el('div', { class: 'fill' }))),
    );
  }
  res.top.forEach((p, i) => {
    const li = list.children[i];
    li.dataset.label = p.label;
    li.dataset.probability = p.probability.toFixed(6);
    li.querySelector('.label').textContent = p.label;
    li.querySelector('.pct').textContent = fmtPct(p.probability);
    li.querySelector('.fill').style.width = `${Math.max(0.5, p.probability * 100)}%`;
  });
  list.dataset.updates = String(++state.updates);
  $('pred-empty').hidden = true;
  $('pred-time').textContent = `${fmtMs(res.totalMs)} network · ${fmtMs(res.preprocessMs)} resize`;

  const mean = addTimingRun(res, live ? LIVE_TIMING_FRAMES : STILL_TIMING_RUNS);
  const now = performance.now();
  if (!live || now - cam.lastTimingDraw >= LIVE_TIMING_INTERVAL_MS) {
    cam.lastTimingDraw = now;
    renderTimings(mean.timings, mean.totalMs);
    renderTimingNote(mean.n, live);
  }
}

/** Runs a still image again, off the critical path, until the chart averages STILL_TIMING_RUNS. */
async function profileStill(clf, source) {
  const token = state.timingToken;
  const current = () => token === state.timingToken && clf === state.classifier && !cam.running;
  while (current() && state.timingRuns.length < STILL_TIMING_RUNS) {
    let res;
    try {
      res = await clf.classify(source, { topK: 1 });
    } catch {
      return; // disposed, or the image went away: the chart keeps what it has
    }
    if (!current()) return;
    const mean = addTimingRun(res, STILL_TIMING_RUNS);
    if (mean.n % 5 === 0 || mean.n === STILL_TIMING_RUNS) {
      renderTimings(mean.timings, mean.totalMs);
      renderTimingNote(mean.n, false);
    }
  }
}

function renderTimings(timings, totalMs) {
  state.lastTimings = { timings, totalMs };
  const box = $('layer-timings');
  const encoding = new Map(state.info.layers.map((l) => [l.name, l.encoding]));
  if (!state.timingRows) {
    state.timingRows = new Map();
    box.replaceChildren();
    for (const t of timings) {
      const enc = encoding.get(t.layer);
      const color = OP_COLORS[t.op] ?? 'var(--op-other)';
      const fill = el('div', { class: 'fill', style: `background:${color}` });
      const ms = el('span', { class: 'ms' });
      const row = el('div', { class: 'row', dataset: { layer: t.layer, op: t.op } },
        el('span', { class: 'name', title: t.layer }, t.layer),
        el('span', { class: 'op' }, el('i', { style: `background:${color}` }), enc ? `${t.op} · ${enc}` : t.op),
        el('div', { class: 'track' }, fill),
        ms);
      state.timingRows.set(t.layer, { row, fill, ms });
    }
  }
  const max = Math.max(...timings.map((t) => t.ms), 1e-9);
  const slowest = timings.reduce((a, b) => (b.ms > a.ms ? b : a), timings[0]);
  for (const t of timings) {
    const r = state.timingRows.get(t.layer);
    if (!r) continue;
    r.fill.style.width = `${(100 * t.ms) / max}%`;
    r.row.classList.toggle('slowest', t === slowest);
    r.row.classList.toggle('fused', !!t.fused);
    if (t.fused) {
      r.ms.textContent = 'fused';
      r.row.title = `${t.layer} (${t.op}): applied by the layer before as it wrote its output; its time is in that row`;
    } else {
      r.ms.textContent = fmtMs(t.ms);
      r.row.title = `${t.layer} (${t.op}): ${t.ms.toFixed(3)} ms`;
    }
  }
  const ordered = state.order === 'slowest' ? [...timings].sort((a, b) => b.ms - a.ms) : timings;
  box.append(...ordered.map((t) => state.timingRows.get(t.layer)?.row).filter(Boolean));
  $('timing-empty').hidden = true;

  // Time by op kind, as one stacked bar.
  const byOp = new Map();
  for (const t of timings) byOp.set(t.op, (byOp.get(t.op) ?? 0) + t.ms);
  const sum = [...byOp.values()].reduce((a, b) => a + b, 0) || 1;
  const ops = [...byOp.entries()].sort((a, b) => b[1] - a[1]);
  $('op-summary').replaceChildren(
    el('div', { class: 'stack' },
      ...ops.map(([op, ms]) => el('span', {
        title: `${op}: ${fmtMs(ms)}`,
        style: `width:${(100 * ms) / sum}%;background:${OP_COLORS[op] ?? 'var(--op-other)'}`,
      }))),
    el('div', { class: 'legend' },
      el('span', { class: 'total' }, `Total ${fmtMs(totalMs)} · ${timings.length} layers`),
      ...ops.map(([op, ms]) => el('span', {},
        el('i', { style: `background:${OP_COLORS[op] ?? 'var(--op-other)'}` }),
        `${op} ${fmtMs(ms)} (${Math.round((100 * ms) / sum)}%)`))),
  );
}

function renderSizes() {
  const box = $('model-sizes');
  const max = Math.max(...state.models.map((m) => m.bytes || 0), ...PAPER_ROWS.map((r) => r.bytes));
  const bar = (bytes) => el('div', { class: 'track' }, el('div', { class: 'fill', style: `width:${(100 * bytes) / max}%` }));
  const head = el('div', { class: 'row head' },
    el('span', {}, 'Model'), el('span', {}, ''), el('span', { class: 'num' }, 'Size'),
    el('span', { class: 'num params' }, 'Params'), el('span', { class: 'acc' }, 'Top-1'));
  const rows = state.models.map((m) => {
    const trained = m.trained && m.accuracy?.top1 != null;
    const row = el('div', {
      class: `row model${state.current?.file === m.file ? ' current' : ''}`,
      dataset: { file: m.file, variant: m.variant, trained: String(!!m.trained) },
      title: `Load ${m.name}`,
      role: 'button',
      tabIndex: 0,
    },
    el('span', { class: 'name' },
      el('span', {}, plainName(m)),
      el('span', { class: 'ds' }, datasetName(m.dataset)),
      el('span', { class: 'badge', title: variantTitle(m.variant) }, m.variant),
      m.trained ? null : el('span', { class: 'badge untrained' }, 'untrained')),
    bar(m.bytes || 0),
    el('span', { class: 'num' }, fmtBytes(m.bytes || 0)),
    el('span', { class: 'num params' }, m.params ? fmtCount(m.params) : '—'),
    el('span', { class: `acc${trained ? '' : ' none'}` },
      trained ? `${fmtPct(m.accuracy.top1)} ${datasetName(m.dataset)}` : 'untrained'));
    const pick = () => {
      if (state.current?.file !== m.file) selectModel(m);
    };
    row.addEventListener('click', pick);
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        pick();
      }
    });
    return row;
  });
  const refs = PAPER_ROWS.map((r) => el('div', { class: 'row reference', dataset: { reference: r.name } },
    el('span', { class: 'name' }, el('span', {}, r.name), el('span', { class: 'badge paper' }, 'paper')),
    bar(r.bytes),
    el('span', { class: 'num' }, fmtBytes(r.bytes)),
    el('span', { class: 'num params' }, r.params ? fmtCount(r.params) : '—'),
    el('span', { class: 'acc' }, `${fmtPct(r.top1)} ImageNet`)));
  box.replaceChildren(head, ...rows, rows.length ? el('div', { class: 'row separator' }) : null, ...refs);
}

// Still images ----------------------------------------------------------------------------------------

async function classifyStill(source, label) {
  const clf = state.classifier;
  if (!clf) {
    showError('No model is loaded yet. Pick one from the model list first.');
    return false;
  }
  try {
    const res = await clf.classify(source, { topK: 5 });
    if (clf !== state.classifier) return false; // the model changed meanwhile; it re-classifies
    resetTimingRuns();
    renderResult(res);
    profileStill(clf, source);
    return true;
  } catch (e) {
    if (e.code === 'DISPOSED' || e.code === 'ABORTED') return false;
    showError(imageErrorMessage(e, label));
    return false;
  }
}

function showStill(url) {
  const img = $('preview');
  img.onload = () => img.classList.toggle('pixelated', Math.max(img.naturalWidth, img.naturalHeight) <= 96);
  img.src = url;
  img.hidden = false;
  $('video').hidden = true;
  $('placeholder').hidden = true;
  $('stage').classList.add('has-media');
}

async function handleFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith('image/')) {
    showError(`“${file.name || 'The pasted item'}” is not an image (${file.type}). Choose a JPEG, PNG, WebP or GIF file.`);
    return;
  }
  clearError();
  stopCamera();
  if (await classifyStill(file, file.name)) {
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(file);
    state.still = { source: file, label: file.name };
    showStill(state.previewUrl);
  }
}

async function handleSample(img, name) {
  clearError();
  stopCamera();
  if (await classifyStill(img, name)) {
    state.still = { source: img, label: name };
    showStill(img.src);
  }
}

function setupInputs() {
  const input = $('file-input');
  input.addEventListener('change', () => {
    handleFile(input.files?.[0]);
    input.value = ''; // so choosing the same file again fires change
  });

  const stage = $('stage');
  let depth = 0; // dragenter/leave fire for children too
  window.addEventListener('dragenter', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    depth++;
    stage.classList.add('dragging');
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) stage.classList.remove('dragging');
  });
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => {
    e.preventDefault(); // never navigate away to the dropped file
    depth = 0;
    stage.classList.remove('dragging');
    const file = e.dataTransfer?.files?.[0];
    if (file) handleFile(file);
  });
  stage.addEventListener('click', () => {
    if (!cam.running && !state.still) input.click();
  });
  stage.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      input.click();
    }
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file');
    if (!item) return;
    e.preventDefault();
    handleFile(item.getAsFile());
  });

  const samples = $('samples');
  for (const name of SAMPLES) {
    const img = el('img', { src: `samples/${name}.jpg`, alt: name, width: 40, height: 40, decoding: 'async' });
    const btn = el('button', { type: 'button', class: 'sample', title: `Sample: ${name} (CIFAR-10)`, dataset: { sample: name } }, img);
    btn.addEventListener('click', () => handleSample(img, name));
    samples.append(btn);
  }

  $('error-dismiss').addEventListener('click', clearError);
  $('model-picker').addEventListener('change', (e) => {
    const entry = state.models.find((m) => m.file === e.target.value);
    if (entry) selectModel(entry);
  });
  for (const b of document.querySelectorAll('.seg')) {
    b.addEventListener('click', () => {
      state.order = b.dataset.order;
      for (const o of document.querySelectorAll('.seg')) o.setAttribute('aria-pressed', String(o === b));
      if (state.lastTimings) renderTimings(state.lastTimings.timings, state.lastTimings.totalMs);
    });
  }
  $('webcam-toggle').addEventListener('click', () => (cam.running || cam.stream ? stopCamera() : startCamera()));
}

// Camera ----------------------------------------------------------------------------------------------

function setCameraButton(on, busy = false) {
  const btn = $('webcam-toggle');
  btn.setAttribute('aria-pressed', String(on));
  btn.disabled = busy;
  btn.querySelector('.text').textContent = busy ? 'Starting camera…' : on ? 'Stop camera' : 'Start camera';
}

async function startCamera() {
  clearError();
  if (!navigator.mediaDevices?.getUserMedia) {
    showError('This browser cannot open a camera here (it needs HTTPS or localhost). Upload an image instead.');
    return;
  }
  setCameraButton(false, true);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'environment' },
    });
  } catch (e) {
    setCameraButton(false);
    showError(cameraErrorMessage(e));
    return;
  }
  cam.stream = stream;
  const video = $('video');
  video.srcObject = stream;
  video.hidden = false;
  $('preview').hidden = true;
  $('placeholder').hidden = true;
  $('stage').classList.add('has-media');
  state.still = null;
  try {
    await video.play();
  } catch {
    // autoplay of a muted inline video is allowed; a failure here shows up as no frames
  }
  cam.running = true;
  cam.stamps = [];
  resetTimingRuns();
  $('predictions').setAttribute('aria-live', 'off'); // do not flood screen readers
  setCameraButton(true);
  cameraLoop();
}

function stopCamera() {
  if (!cam.stream && !cam.running) return;
  cam.running = false;
  for (const track of cam.stream?.getTracks() ?? []) track.stop();
  cam.stream = null;
  const video = $('video');
  video.srcObject = null;
  video.hidden = true;
  $('fps').hidden = true;
  $('predictions').setAttribute('aria-live', 'polite');
  if (!state.still) {
    $('placeholder').hidden = false;
    $('stage').classList.remove('has-media');
  }
  setCameraButton(false);
}

/** Resolves at the next decoded video frame (or after 250 ms, whichever is first). */
function nextFrame(video) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 250);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    if (typeof video.requestVideoFrameCallback === 'function') video.requestVideoFrameCallback(done);
    else requestAnimationFrame(done);
  });
}

async function cameraLoop() {
  const video = $('video');
  while (cam.running) {
    await nextFrame(video);
    const clf = state.classifier;
    if (!cam.running) break;
    if (!clf || video.readyState < 2) continue;
    try {
      const res = await clf.classify(video, { topK: 5 });
      if (!cam.running || clf !== state.classifier) continue;
      renderResult(res, true);
      updateFps();
    } catch (e) {
      if (e.code === 'DISPOSED' || e.code === 'ABORTED' || e.code === 'SOURCE_NOT_READY') continue;
      showError(`Classifying the camera stream failed: ${e.message}`);
      stopCamera();
    }
  }
}

function updateFps() {
  const now = performance.now();
  cam.stamps.push(now);
  while (cam.stamps.length > 2 && now - cam.stamps[0] > 2000) cam.stamps.shift();
  const fps = $('fps');
  fps.hidden = false;
  if (cam.stamps.length >= 2) {
    const rate = ((cam.stamps.length - 1) * 1000) / (now - cam.stamps[0]);
    fps.textContent = `${rate.toFixed(1)} fps`;
  } else {
    fps.textContent = '… fps';
  }
}

// Offline support --------------------------------------------------------------------------------------

function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || location.protocol === 'file:') return;
  navigator.serviceWorker.register('sw.js').catch(() => {
    // Not fatal: the page just will not work offline.
  });
  navigator.serviceWorker.ready.then(() => {
    const s = $('offline-status');
    s.textContent = 'Ready to work offline';
    s.classList.add('ready');
    document.body.dataset.sw = 'ready';
  });
}

// Start ------------------------------------------------------------------------------------------------

async function main() {
  setupInputs();
  renderSizes();
  registerServiceWorker();
  if (!simdSupported()) {
    showError('This browser lacks WebAssembly SIMD, which the classifier needs. Try a current Chrome, Edge, Firefox or Safari (16.4+).');
    $('model-picker').replaceChildren(el('option', {}, 'Unavailable'));
    document.body.dataset.model = 'error';
    return;
  }
  try {
    state.models = await fetchManifest();
  } catch (e) {
    showError(`Could not load the list of models (models/manifest.json: ${e.message}). Reload to try again.`, {
      label: 'Reload',
      run: () => location.reload(),
    });
    $('model-picker').replaceChildren(el('option', {}, 'No models available'));
    document.body.dataset.model = 'error';
    return;
  }
  fillPicker();
  renderSizes();
  await selectModel(state.models.find((m) => m.default) ?? state.models[0]);
}

main();
