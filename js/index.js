// sepnet: SEP-Net image classification in the browser (and Node) on a WebAssembly engine.
// This thin layer loads the wasm once, downloads and verifies models, converts image sources
// to pixels and renames the engine's snake_case results to camelCase.

import init, { Engine } from './sepnet_wasm.js';
import { ErrorCode, SepnetError, wrapError } from './errors.js';
import { defaultShortSide, isImageDataLike, toPixels } from './source.js';

export { ErrorCode, SepnetError } from './errors.js';

export const VERSION = '0.1.0';
/** Cache API name used by `load(url, {cache: true})`; bump the suffix when the format changes. */
export const MODEL_CACHE = 'sepnet-models-v1';

// The smallest module that uses a SIMD instruction: `(func (result v128) i32.const 0
// i8x16.splat)`. Validating it tells whether this engine supports wasm SIMD, which the shipped
// build requires (there is no scalar fallback build).
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, //       type: () -> v128
  0x03, 0x02, 0x01, 0x00, //                         one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b, // body: i32.const 0; i8x16.splat
]);

/** Whether this JavaScript engine can run the (SIMD-only) sepnet wasm. */
export function simdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

const isNode =
  typeof process === 'object' && typeof process.versions?.node === 'string' && typeof window === 'undefined';

/** In Node, a file: URL or a plain path to read with fs (fetch cannot read files); else null. */
function localFile(src) {
  if (!isNode) return null;
  if (src instanceof URL) return src.protocol === 'file:' ? src : null;
  if (typeof src !== 'string') return null;
  if (src.startsWith('file:')) return new URL(src);
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(src) ? null : src;
}

async function readLocalFile(path) {
  // A computed specifier keeps bundlers from trying to package `fs` for browsers.
  const specifier = 'node:fs/promises';
  const fs = await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);
  const buf = await fs.readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

let wasmReady = null;

/**
 * Loads and instantiates the engine once per realm. `wasm` overrides where the `.wasm` comes
 * from (a URL or path, its bytes, a `Response` or a compiled `WebAssembly.Module`), for
 * bundlers and CDNs that move files around. Later calls reuse the first instance.
 */
export function initWasm(wasm) {
  wasmReady ??= (async () => {
    if (typeof WebAssembly !== 'object') {
      throw new SepnetError(ErrorCode.WASM_INIT, 'this environment has no WebAssembly');
    }
    if (!simdSupported()) {
      throw new SepnetError(
        ErrorCode.SIMD_UNSUPPORTED,
        'this browser lacks WebAssembly SIMD, which sepnet needs ' +
          '(Chrome/Edge 91+, Firefox 89+, Safari 16.4+, Node 18+)',
      );
    }
    let src = wasm ?? new URL('./sepnet_wasm_bg.wasm', import.meta.url);
    const local = localFile(src);
    if (local) src = await readLocalFile(local);
    await init({ module_or_path: src });
  })().catch((e) => {
    wasmReady = null; // let a later call retry (e.g. after a network error)
    throw wrapError(e, ErrorCode.WASM_INIT, 'loading the WebAssembly engine failed');
  });
  return wasmReady;
}

function report(onProgress, loaded, total) {
  if (typeof onProgress !== 'function') return;
  try {
    onProgress({ loaded, total });
  } catch {
    // A throwing progress callback must not break the download.
  }
}

function concat(chunks, length) {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Reads a Response body, reporting progress and catching truncated downloads. */
async function readBody(res, what, onProgress) {
  const encoding = res.headers.get('Content-Encoding');
  const declared = Number(res.headers.get('Content-Length'));
  // Under a content coding (gzip, br) Content-Length counts encoded bytes: not comparable.
  const total = (!encoding || encoding === 'identity') && declared > 0 ? declared : 0;
  report(onProgress, 0, total);
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    report(onProgress, bytes.byteLength, total);
    return { bytes, total };
  }
  const reader = res.body.getReader();
  const chunks = [];
  let loaded = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      report(onProgress, loaded, total);
    }
  } catch (e) {
    if (e?.name === 'AbortError') throw wrapError(e, ErrorCode.ABORTED);
    // The headers came, the body did not finish: a truncated download, whatever was received.
    const of = total ? ` of ${total}` : '';
    throw new SepnetError(
      ErrorCode.MODEL_TRUNCATED,
      `the download of ${what} broke off after ${loaded}${of} bytes`,
      { cause: e },
    );
  }
  if (total && loaded !== total) {
    throw new SepnetError(
      ErrorCode.MODEL_TRUNCATED,
      `truncated download of ${what}: received ${loaded} of ${total} bytes`,
    );
  }
  return { bytes: concat(chunks, loaded), total };
}

async function fetchModel(url, { onProgress, signal }) {
  let res;
  try {
    res = await fetch(url, { signal });
  } catch (e) {
    throw wrapError(e, ErrorCode.MODEL_FETCH, `could not download ${url}`);
  }
  if (!res.ok) {
    throw new SepnetError(
      ErrorCode.MODEL_FETCH,
      `could not download ${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
    );
  }
  return (await readBody(res, url, onProgress)).bytes;
}

function createEngine(bytes) {
  try {
    return new Engine(bytes);
  } catch (e) {
    throw wrapError(e, ErrorCode.MODEL_INVALID, 'not a valid .sepnet model');
  }
}

async function openCache(option) {
  if (!option || typeof caches === 'undefined') return null;
  try {
    return await caches.open(typeof option === 'string' ? option : MODEL_CACHE);
  } catch {
    return null; // e.g. an opaque origin or a private window: simply do not cache
  }
}

function absoluteUrl(url) {
  const base = typeof location === 'object' ? location.href : undefined;
  try {
    return new URL(url, base).href;
  } catch {
    return String(url);
  }
}

/** Model source → validated engine, downloading (and caching) when given a URL. */
async function engineFrom(source, { onProgress, cache, signal }) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    const bytes = source instanceof ArrayBuffer
      ? new Uint8Array(source)
      : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    report(onProgress, bytes.byteLength, bytes.byteLength);
    return createEngine(bytes);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const bytes = new Uint8Array(await source.arrayBuffer());
    report(onProgress, bytes.byteLength, bytes.byteLength);
    return createEngine(bytes);
  }
  if (typeof Response !== 'undefined' && source instanceof Response) {
    return createEngine((await readBody(source, 'the model', onProgress)).bytes);
  }
  if (typeof source !== 'string' && !(source instanceof URL)) {
    throw new SepnetError(
      ErrorCode.MODEL_FETCH,
      'a model source must be a URL, a path (Node), an ArrayBuffer, a Uint8Array, a Blob or a Response',
    );
  }
  const local = localFile(source);
  if (local) {
    let bytes;
    try {
      bytes = await readLocalFile(local);
    } catch (e) {
      throw wrapError(e, ErrorCode.MODEL_FETCH, `could not read ${source}`);
    }
    report(onProgress, bytes.byteLength, bytes.byteLength);
    return createEngine(bytes);
  }

  const url = absoluteUrl(source);
  const store = await openCache(cache);
  if (store) {
    const hit = await store.match(url).catch(() => undefined);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      try {
        const engine = createEngine(bytes);
        report(onProgress, bytes.byteLength, bytes.byteLength);
        return engine;
      } catch {
        await store.delete(url).catch(() => {}); // a bad entry: drop it and download again
      }
    }
  }
  const bytes = await fetchModel(url, { onProgress, signal });
  const engine = createEngine(bytes); // cache only what validated
  if (store) {
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.byteLength) };
    await store.put(url, new Response(bytes, { headers })).catch(() => {}); // quota: not fatal
  }
  return engine;
}

function toInfo(raw) {
  const p = raw.preprocess ?? {};
  return {
    model: raw.model,
    variant: raw.variant,
    dataset: raw.dataset,
    trained: raw.trained,
    accuracy: raw.accuracy ?? null,
    binarization: raw.binarization ?? null,
    exporter: raw.exporter ?? null,
    created: raw.created ?? null,
    params: raw.params,
    bytes: raw.file_bytes,
    weightBytes: raw.weight_bytes,
    macs: raw.macs,
    labels: raw.labels,
    input: { name: raw.input.name, channels: raw.input.channels, height: raw.input.height, width: raw.input.width },
    preprocess: {
      inputSize: p.input_size,
      channelOrder: p.channel_order,
      mean: p.mean,
      std: p.std,
      cropRatio: p.crop_ratio,
      resize: p.resize,
    },
    layers: raw.layers.map((l) => ({
      name: l.name,
      op: l.op,
      shape: l.shape,
      params: l.params,
      bytes: l.bytes,
      macs: l.macs,
      encoding: l.encoding ?? null,
    })),
  };
}

function toClassification(raw) {
  return { top: raw.top, timings: raw.timings, totalMs: raw.total_ms, preprocessMs: raw.preprocess_ms };
}

function checkTopK(topK, classes) {
  const k = Math.floor(Number(topK));
  if (!(k >= 1)) throw new SepnetError(ErrorCode.INVALID_INPUT, `topK must be a positive integer, got ${topK}`);
  return Math.min(k, classes);
}

/** A loaded model on the calling thread. For UIs prefer `WorkerClassifier` from `sepnet/worker`. */
export class Classifier {
  #engine;
  #info;

  /** @private use {@link Classifier.load} */
  constructor(engine) {
    if (!(engine instanceof Engine)) throw new TypeError('use Classifier.load()');
    this.#engine = engine;
    this.#info = toInfo(engine.info());
  }

  /**
   * Initialises the engine (once), gets the model and validates it.
   * @param {string|URL|ArrayBuffer|ArrayBufferView|Blob|Response} source
   * @param {{onProgress?: (p: {loaded: number, total: number}) => void, cache?: boolean|string,
   *   wasmUrl?: unknown, signal?: AbortSignal, warmup?: number}} [options]
   */
  static async load(source, options = {}) {
    const warmup = options.warmup ?? 0;
    if (!Number.isInteger(warmup) || warmup < 0 || warmup > 10) {
      throw new SepnetError(ErrorCode.INVALID_INPUT, `warmup must be an integer from 0 to 10, got ${warmup}`);
    }
    await initWasm(options.wasmUrl);
    const classifier = new Classifier(await engineFrom(source, options));
    // Browsers compile wasm with a quick baseline compiler first and optimize hot code later:
    // a few runs on a blank image make the first real classification as fast as the rest.
    const { channels, height, width } = classifier.#info.input;
    const blank = new Float32Array(channels * height * width);
    for (let i = 0; i < warmup; i++) classifier.run(blank, [1, channels, height, width]);
    return classifier;
  }

  /** Deletes the model cache used by `load(url, {cache: true})`. */
  static async clearCache(name = MODEL_CACHE) {
    return typeof caches === 'undefined' ? false : caches.delete(name);
  }

  #live() {
    if (!this.#engine) throw new SepnetError(ErrorCode.DISPOSED, 'this classifier was disposed');
    return this.#engine;
  }

  /** Model description: variant, params, bytes, labels, input size, layers, ... */
  info() {
    this.#live();
    return this.#info;
  }

  get labels() {
    return this.#info.labels;
  }

  /**
   * Classifies an image source; the engine resizes and center-crops it as the model requires.
   * @param {unknown} source ImageData, ImageBitmap, an img/video/canvas element, OffscreenCanvas,
   *   VideoFrame, an image Blob/File, or `{data, width, height}` RGBA pixels.
   * @param {{topK?: number, maxShortSide?: number}} [options]
   */
  async classify(source, options = {}) {
    this.#live();
    const px = isImageDataLike(source)
      ? source
      : await toPixels(source, options.maxShortSide ?? defaultShortSide(this.#info));
    return this.classifyPixels(px.data, px.width, px.height, options);
  }

  /** Synchronous classification of RGBA pixels (`width * height * 4` bytes). */
  classifyPixels(data, width, height, { topK = 5 } = {}) {
    const engine = this.#live();
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
      throw new SepnetError(ErrorCode.INVALID_INPUT, 'pixels must be a Uint8Array or Uint8ClampedArray');
    }
    const k = checkTopK(topK, this.#info.labels.length);
    try {
      return toClassification(engine.classify_rgba(data, width, height, k));
    } catch (e) {
      throw wrapError(e, ErrorCode.INVALID_INPUT);
    }
  }

  /**
   * Runs the network on a preprocessed tensor.
   * @param {Float32Array} data row-major `[N, C, H, W]`
   * @param {number[]} shape `[N, C, H, W]`
   * @returns {Float32Array} logits `[N, K]`, row-major
   */
  runTensor(data, shape) {
    return this.run(data, shape).logits;
  }

  /** Like {@link Classifier#runTensor}, also returning the output shape and timings. */
  run(data, shape) {
    const engine = this.#live();
    const input = data instanceof Float32Array ? data : Float32Array.from(data ?? []);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new SepnetError(ErrorCode.INVALID_INPUT, `shape must be positive integers [N, C, H, W], got ${JSON.stringify(shape)}`);
    }
    let raw;
    try {
      raw = engine.run(input, Uint32Array.from(shape));
    } catch (e) {
      throw wrapError(e, ErrorCode.INVALID_INPUT);
    }
    return { logits: Float32Array.from(raw.logits), shape: raw.shape, timings: raw.timings, totalMs: raw.total_ms };
  }

  /** Frees the wasm memory held by the model. Further calls throw `DISPOSED`. */
  dispose() {
    this.#engine?.free();
    this.#engine = null;
  }
}

// `using c = await Classifier.load(...)` where explicit resource management exists.
if (typeof Symbol.dispose === 'symbol') {
  Classifier.prototype[Symbol.dispose] = function dispose() {
    this.dispose();
  };
}
