// Types of the `sepnet` package (the main-thread API). `sepnet/worker` is typed in worker.d.ts.

/** Codes carried by every {@link SepnetError}. */
export type ErrorCodeName =
  | 'WASM_INIT'
  | 'SIMD_UNSUPPORTED'
  | 'MODEL_FETCH'
  | 'MODEL_TRUNCATED'
  | 'MODEL_INVALID'
  | 'UNSUPPORTED_SOURCE'
  | 'IMAGE_DECODE'
  | 'SOURCE_NOT_READY'
  | 'INVALID_INPUT'
  | 'ABORTED'
  | 'DISPOSED'
  | 'WORKER';

export declare const ErrorCode: Readonly<{ [K in ErrorCodeName]: K }>;

export declare class SepnetError extends Error {
  constructor(code: ErrorCodeName, message: string, options?: { cause?: unknown });
  readonly name: 'SepnetError';
  readonly code: ErrorCodeName;
  toJSON(): { name: 'SepnetError'; code: ErrorCodeName; message: string };
  static fromJSON(obj: { code?: ErrorCodeName; message?: string }): SepnetError;
}

export declare const VERSION: string;
/** Cache API name used by `load(url, { cache: true })`. */
export declare const MODEL_CACHE: 'sepnet-models-v1';

/** Where the engine's `.wasm` comes from: a URL (or a file path in Node), its bytes, a Response or a compiled module. */
export type WasmSource = string | URL | ArrayBuffer | ArrayBufferView | Response | WebAssembly.Module;

/** A model: URL (a file path or `file:` URL in Node), raw bytes, a Blob/File or a Response. */
export type ModelSource = string | URL | ArrayBuffer | ArrayBufferView | Blob | Response;

export interface Progress {
  /** Bytes received so far. */
  loaded: number;
  /** Expected bytes (Content-Length), or 0 when unknown (e.g. a compressed response). */
  total: number;
}

export interface LoadOptions {
  onProgress?: (progress: Progress) => void;
  /** Keep downloaded models in the Cache API: `true` uses {@link MODEL_CACHE}, a string names the cache. Default false. */
  cache?: boolean | string;
  /** Override the location of `sepnet_wasm_bg.wasm` (bundlers, CDNs). Only the first initialisation uses it. */
  wasmUrl?: WasmSource;
  signal?: AbortSignal;
  /**
   * Runs on a blank image after loading (0–10, default 0), so the browser has optimized the
   * engine's code before the first real classification (the first runs are several times
   * slower otherwise).
   */
  warmup?: number;
}

/** RGBA pixels with `data.length === width * height * 4`; `ImageData` qualifies. */
export interface PixelsLike {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export type ImageSource =
  | PixelsLike
  | ImageData
  | ImageBitmap
  | HTMLImageElement
  | HTMLVideoElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | VideoFrame
  | SVGImageElement
  | Blob;

export interface ClassifyOptions {
  /** How many classes to return, most probable first. Default 5. */
  topK?: number;
  /** Larger sources are first shrunk (aspect kept) to this shorter side. Default max(256, 4 × the model's resize side). */
  maxShortSide?: number;
}

export interface Prediction {
  index: number;
  label: string;
  probability: number;
}

export interface LayerTiming {
  /** Node name in the model graph. */
  layer: string;
  /** `conv2d`, `linear`, `add`, `relu`, `concat`, `maxpool2d`, `global_avg_pool`, `softmax`. */
  op: string;
  ms: number;
  /** A ReLU the layer before it applied as it wrote its output; its time is in that layer's row. */
  fused: boolean;
}

export interface Classification {
  top: Prediction[];
  timings: LayerTiming[];
  /** Network time in ms (excludes preprocessing). */
  totalMs: number;
  preprocessMs: number;
}

export interface RunResult {
  /** Row-major `[N, K]`. */
  logits: Float32Array;
  shape: number[];
  timings: LayerTiming[];
  totalMs: number;
}

export interface Accuracy {
  split: string;
  n: number;
  top1: number;
  top5?: number;
  [key: string]: unknown;
}

export interface LayerInfo {
  name: string;
  op: string;
  /** Output shape of one image: `[C, H, W]` or `[K]`. */
  shape: number[];
  params: number;
  /** Stored bytes of the layer's tensors. */
  bytes: number;
  macs: number;
  /** `f32`, `int8` or `pattern` for conv2d/linear, else null. */
  encoding: 'f32' | 'int8' | 'pattern' | null;
}

export interface ModelInfo {
  model: string;
  /** `R` (real), `B` (binary patterns) or `BQ` (patterns + int8). */
  variant: string;
  dataset: string;
  trained: boolean;
  accuracy: Accuracy | null;
  binarization: string | null;
  exporter: string | null;
  created: string | null;
  params: number;
  /** Size of the `.sepnet` file. */
  bytes: number;
  weightBytes: number;
  /** Multiply-accumulates per image. */
  macs: number;
  labels: string[];
  input: { name: string; channels: number; height: number; width: number };
  preprocess: {
    inputSize: [number, number];
    channelOrder: 'RGB' | 'BGR';
    mean: number[];
    std: number[];
    cropRatio: number;
    resize: string;
  };
  layers: LayerInfo[];
}

/** Whether this JavaScript engine supports WebAssembly SIMD (required). */
export declare function simdSupported(): boolean;

/** Instantiates the engine once; `Classifier.load` calls it for you. */
export declare function initWasm(wasm?: WasmSource): Promise<void>;

/** A loaded model running on the calling thread. */
export declare class Classifier {
  private constructor();
  static load(source: ModelSource, options?: LoadOptions): Promise<Classifier>;
  /** Deletes the Cache API store used by `cache: true`. */
  static clearCache(name?: string): Promise<boolean>;
  info(): ModelInfo;
  readonly labels: string[];
  classify(source: ImageSource, options?: ClassifyOptions): Promise<Classification>;
  classifyPixels(
    data: Uint8Array | Uint8ClampedArray,
    width: number,
    height: number,
    options?: { topK?: number },
  ): Classification;
  /** Runs a preprocessed `[N, C, H, W]` tensor; returns logits `[N, K]`. */
  runTensor(data: Float32Array | ArrayLike<number>, shape: number[]): Float32Array;
  run(data: Float32Array | ArrayLike<number>, shape: number[]): RunResult;
  dispose(): void;
}
