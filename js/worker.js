// WorkerClassifier: the Classifier API, run in a dedicated module Worker so inference never
// blocks the page. Sources are turned into transferable pixels/bitmaps here (DOM elements
// cannot cross threads) and the worker (worker-script.js) does the rest.

import { ErrorCode, SepnetError, wrapError } from './errors.js';
import { defaultShortSide, toTransfer } from './source.js';

export { ErrorCode, SepnetError } from './errors.js';

function absolute(url) {
  return new URL(url, typeof location === 'object' ? location.href : undefined).href;
}

/** Model source → something postMessage can carry (URLs resolved against the page, not the worker). */
async function modelPayload(source) {
  if (typeof source === 'string' || source instanceof URL) return { source: absolute(source), transfer: [] };
  if (source instanceof ArrayBuffer) {
    const copy = source.slice(0);
    return { source: copy, transfer: [copy] };
  }
  if (ArrayBuffer.isView(source)) {
    const copy = new Uint8Array(source.buffer, source.byteOffset, source.byteLength).slice();
    return { source: copy, transfer: [copy.buffer] };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { source, transfer: [] };
  if (typeof Response !== 'undefined' && source instanceof Response) {
    const buf = await source.arrayBuffer();
    return { source: buf, transfer: [buf] };
  }
  throw new SepnetError(ErrorCode.MODEL_FETCH, 'a model source must be a URL, an ArrayBuffer, a Uint8Array, a Blob or a Response');
}

function wasmPayload(wasm) {
  if (wasm == null) return undefined;
  if (typeof wasm === 'string' || wasm instanceof URL) return absolute(wasm);
  return wasm; // bytes or a WebAssembly.Module: both structured-cloneable
}

export class WorkerClassifier {
  #worker;
  #pending = new Map();
  #nextId = 1;
  #tail = Promise.resolve();
  #info = null;
  #dead = null; // the SepnetError every call gets once the worker is gone

  /** @private use {@link WorkerClassifier.load} */
  constructor(worker) {
    this.#worker = worker;
    worker.addEventListener('message', (e) => this.#onMessage(e.data));
    worker.addEventListener('error', (e) => {
      e.preventDefault?.();
      this.#kill(new SepnetError(ErrorCode.WORKER, `the sepnet worker failed: ${e.message || 'its script could not be loaded'}`));
    });
    worker.addEventListener('messageerror', () => {
      this.#kill(new SepnetError(ErrorCode.WORKER, 'a message from the sepnet worker could not be read'));
    });
  }

  /**
   * Starts the worker, initialises the engine there and loads the model once.
   * @param {string|URL|ArrayBuffer|ArrayBufferView|Blob|Response} source
   * @param {{onProgress?: (p: {loaded: number, total: number}) => void, cache?: boolean|string,
   *   wasmUrl?: unknown, workerUrl?: string|URL, signal?: AbortSignal}} [options]
   */
  static async load(source, options = {}) {
    const { onProgress, cache = false, wasmUrl, workerUrl, signal, warmup } = options;
    if (signal?.aborted) throw new SepnetError(ErrorCode.ABORTED, 'the operation was aborted');
    let worker;
    try {
      // Written literally so bundlers (Vite, webpack 5, Parcel) find and emit the worker script.
      worker = workerUrl
        ? new Worker(workerUrl, { type: 'module', name: 'sepnet' })
        : new Worker(new URL('./worker-script.js', import.meta.url), { type: 'module', name: 'sepnet' });
    } catch (e) {
      throw wrapError(e, ErrorCode.WORKER, 'could not start the sepnet worker');
    }
    const c = new WorkerClassifier(worker);
    const onAbort = () => c.#kill(new SepnetError(ErrorCode.ABORTED, 'the operation was aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const { source: model, transfer } = await modelPayload(source);
      c.#info = await c.#call('load', { source: model, cache, wasmUrl: wasmPayload(wasmUrl), warmup }, transfer, onProgress);
      return c;
    } catch (e) {
      c.dispose();
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #onMessage(msg) {
    const p = this.#pending.get(msg?.id);
    if (!p) return;
    if (msg.type === 'progress') {
      try {
        p.onProgress?.({ loaded: msg.loaded, total: msg.total });
      } catch {
        // ignore errors of the caller's progress callback
      }
      return;
    }
    this.#pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(SepnetError.fromJSON(msg.error));
  }

  #kill(err) {
    if (this.#dead) return;
    this.#dead = err;
    this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #call(type, payload, transfer = [], onProgress) {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      try {
        this.#worker.postMessage({ id, type, ...payload }, transfer);
      } catch (e) {
        this.#pending.delete(id);
        reject(wrapError(e, ErrorCode.WORKER, 'could not send to the sepnet worker'));
      }
    });
  }

  /** Runs `task` after every earlier call, so conversions and replies keep call order. */
  #enqueue(task) {
    const run = () => (this.#dead ? Promise.reject(this.#dead) : task());
    const p = this.#tail.then(run, run);
    this.#tail = p.catch(() => {});
    return p;
  }

  /** Model description (same shape as `Classifier#info`). */
  info() {
    if (this.#dead) throw this.#dead;
    return this.#info;
  }

  get labels() {
    return this.#info?.labels ?? [];
  }

  /**
   * Classifies an image source in the worker.
   * @param {unknown} source see `Classifier#classify`
   * @param {{topK?: number, maxShortSide?: number}} [options]
   */
  classify(source, options = {}) {
    const { topK = 5, maxShortSide } = options;
    return this.#enqueue(async () => {
      const side = maxShortSide ?? defaultShortSide(this.#info);
      const { payload, transfer } = await toTransfer(source, side);
      return this.#call('classify', { image: payload, topK, maxShortSide: side }, transfer);
    });
  }

  /**
   * Runs a preprocessed `[N, C, H, W]` tensor; resolves to the logits `[N, K]`.
   * @param {Float32Array} data
   * @param {number[]} shape
   * @returns {Promise<Float32Array>}
   */
  runTensor(data, shape) {
    return this.#enqueue(() => {
      const copy = Float32Array.from(data ?? []);
      return this.#call('run', { data: copy, shape: Array.from(shape ?? []) }, [copy.buffer]);
    });
  }

  /** Stops the worker and frees everything; pending and later calls reject with `DISPOSED`. */
  dispose() {
    this.#kill(new SepnetError(ErrorCode.DISPOSED, 'this classifier was disposed'));
  }
}

if (typeof Symbol.dispose === 'symbol') {
  WorkerClassifier.prototype[Symbol.dispose] = function dispose() {
    this.dispose();
  };
}
