// The in-page half of the benchmark (run.mjs drives it). Loads the sepnet npm package from
// /pkg/ and onnxruntime-web's plain wasm backend from this folder's node_modules (nothing from a
// CDN), then, per network: one random input tensor, the same for every engine; an output
// agreement check where the weights are the same; W warm-up runs of each engine; then N timed
// rounds in which every engine runs once, in an order that rotates from round to round, so that
// noise from other processes on the machine hits every engine alike. Only the inference call on
// the prepared tensor is timed: `Classifier.run(Float32Array, shape)` for sepnet (synchronous;
// it copies the input into wasm memory, runs the graph and copies the logits out) and
// `await session.run({input: tensor})` for onnxruntime-web (asynchronous; it copies the input
// in and allocates fresh output tensors): each engine's per-call overhead is in its own time.

import { Classifier, VERSION as SEPNET_VERSION } from '/pkg/index.js';
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';

const ORT_DIST = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;

function log(msg) {
  console.log(msg);
  document.getElementById('log').textContent += `${msg}\n`;
}

// mulberry32 + Box-Muller: a reproducible N(0, 1) tensor (roughly what normalised pixels look like).
function randomNormal(n, seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    p10: quantile(s, 0.1),
    p90: quantile(s, 0.9),
    min: s[0],
    max: s[s.length - 1],
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

function argmax(xs) {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** max |a - b| / max |b| over the logits (b is the reference). */
function compare(a, b) {
  let diff = 0;
  let scale = 0;
  let finite = true;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) finite = false;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return {
    maxAbsDiff: diff,
    maxAbsLogit: scale,
    maxRelDiff: scale > 0 ? diff / scale : diff,
    finite,
    sameTop1: argmax(a) === argmax(b),
    logits: b.length,
  };
}

function setup() {
  ort.env.wasm.wasmPaths = ORT_DIST;  // ort-wasm-simd-threaded.{mjs,wasm}, served locally
  ort.env.wasm.numThreads = 1;        // single-threaded, explicitly (no cross-origin isolation here anyway)
  ort.env.wasm.proxy = false;         // run on this thread, like sepnet's Classifier
  return {
    sepnetVersion: SEPNET_VERSION,
    ortVersion: ort.env.versions?.web ?? null,
    ortCommonVersion: ort.env.versions?.common ?? null,
    ortWasm: { numThreads: ort.env.wasm.numThreads, proxy: ort.env.wasm.proxy, wasmPaths: ORT_DIST },
    crossOriginIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent,
  };
}

/**
 * @param {{name: string, sepnet: Record<string, string>, onnx?: string, warmup: number,
 *   runs: number, seed?: number, compareVariant?: string}} cfg sepnet: variant → model URL
 */
async function model(cfg) {
  const { name, warmup, runs, seed = 1 } = cfg;
  const engines = [];
  const loads = {};
  let info = null;
  for (const [variant, url] of Object.entries(cfg.sepnet)) {
    const t0 = performance.now();
    const clf = await Classifier.load(url);
    loads[`sepnet ${variant}`] = performance.now() - t0;
    const i = clf.info();
    info ??= i;
    if (i.input.height !== info.input.height || i.input.width !== info.input.width) {
      throw new Error(`${url}: input ${i.input.height}x${i.input.width}, expected ${info.input.height}x${info.input.width}`);
    }
    engines.push({ id: `sepnet ${variant}`, kind: 'sepnet', variant, clf, info: i });
  }
  const shape = [1, info.input.channels, info.input.height, info.input.width];
  const x = randomNormal(shape.reduce((a, b) => a * b, 1), seed);

  let session = null;
  if (cfg.onnx) {
    const t0 = performance.now();
    session = await ort.InferenceSession.create(cfg.onnx, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    loads.ort = performance.now() - t0;
    const [inputName] = session.inputNames;
    const [outputName] = session.outputNames;
    const tensor = new ort.Tensor('float32', x, shape); // prepared once, like sepnet's Float32Array
    engines.push({ id: 'ort', kind: 'ort', session, inputName, outputName, tensor });
  }

  // One call per engine; returns the wall time of the call alone (and sepnet's own graph time).
  const call = async (e) => {
    if (e.kind === 'sepnet') {
      const t0 = performance.now();
      const r = e.clf.run(x, shape);
      const t1 = performance.now();
      return { ms: t1 - t0, engineMs: r.totalMs, logits: r.logits, timings: r.timings };
    }
    const t0 = performance.now();
    const out = await e.session.run({ [e.inputName]: e.tensor });
    const t1 = performance.now();
    return { ms: t1 - t0, logits: out[e.outputName].data };
  };

  // Agreement: sepnet (same weights) vs onnxruntime-web on the same input.
  const first = {};
  for (const e of engines) first[e.id] = (await call(e)).logits;
  const agreement = {};
  if (session) {
    for (const e of engines) {
      if (e.kind !== 'sepnet') continue;
      const sameWeights = e.variant === 'R' && cfg.sameWeights;
      agreement[e.id] = sameWeights
        ? { checked: true, ...compare(first[e.id], first.ort) }
        : {
            checked: false,
            why: e.variant === 'R'
              ? 'the .onnx and .sepnet files were not declared to hold the same weights'
              : `${e.variant} is binarized/quantized: a different function from the float ONNX model`,
            sameTop1AsOrt: argmax(first[e.id]) === argmax(first.ort),
          };
    }
  }

  const order = (round) => engines.map((_, k) => engines[(k + round) % engines.length]);
  log(`${name}: ${warmup} warm-up runs each`);
  for (let r = 0; r < warmup; r++) for (const e of order(r)) await call(e);

  const times = Object.fromEntries(engines.map((e) => [e.id, []]));
  const engineTimes = {};
  const layerTimes = {}; // engine id → layer name → [ms per timed call] (the executor's own clock)
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) {
    for (const e of order(r)) {
      const res = await call(e);
      times[e.id].push(res.ms);
      if (res.engineMs !== undefined) (engineTimes[e.id] ??= []).push(res.engineMs);
      if (res.timings) {
        const per = (layerTimes[e.id] ??= {});
        for (const t of res.timings) (per[t.layer] ??= { op: t.op, ms: [] }).ms.push(t.ms);
      }
    }
    if ((r + 1) % 10 === 0 || r + 1 === runs) {
      log(`${name}: round ${r + 1}/${runs} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }

  const stats = {};
  for (const e of engines) {
    stats[e.id] = summary(times[e.id]);
    if (engineTimes[e.id]) stats[e.id].engineGraphMedian = summary(engineTimes[e.id]).median;
  }
  // Per-layer medians in graph order: where each sepnet file spends its time.
  const layers = {};
  for (const [id, per] of Object.entries(layerTimes)) {
    layers[id] = Object.entries(per).map(([layer, { op, ms }]) => ({ layer, op, medianMs: summary(ms).median }));
  }
  // Per-round ratios (same round, so the same machine state): their median complements the
  // ratio of medians.
  const ratios = {};
  if (session) {
    for (const e of engines) {
      if (e.kind !== 'sepnet') continue;
      const per = times.ort.map((o, i) => o / times[e.id][i]);
      ratios[`ort / ${e.id}`] = {
        ofMedians: stats.ort.median / stats[e.id].median,
        medianOfRounds: summary(per).median,
      };
    }
  }

  for (const e of engines) {
    if (e.kind === 'sepnet') e.clf.dispose();
    else await e.session.release();
  }
  return {
    name,
    input: shape,
    warmup,
    runs,
    seed,
    order: 'round r runs the engines in the listed order rotated by r',
    engines: engines.map((e) => e.id),
    model: { params: info.params, macs: info.macs, model: info.model },
    sepnetFiles: Object.fromEntries(
      engines.filter((e) => e.kind === 'sepnet').map((e) => [e.id, { bytes: e.info.bytes, variant: e.info.variant }]),
    ),
    loadMs: loads,
    agreement,
    stats,
    ratios,
    layers,
    times,
  };
}

window.bench = { setup, model };
window.benchReady = true;
log('bench page ready');
