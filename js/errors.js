// Typed errors shared by the main-thread API, the worker client and the worker script.

/** Every error the package throws on purpose carries one of these codes. */
export const ErrorCode = Object.freeze({
  WASM_INIT: 'WASM_INIT',
  SIMD_UNSUPPORTED: 'SIMD_UNSUPPORTED',
  MODEL_FETCH: 'MODEL_FETCH',
  MODEL_TRUNCATED: 'MODEL_TRUNCATED',
  MODEL_INVALID: 'MODEL_INVALID',
  UNSUPPORTED_SOURCE: 'UNSUPPORTED_SOURCE',
  IMAGE_DECODE: 'IMAGE_DECODE',
  SOURCE_NOT_READY: 'SOURCE_NOT_READY',
  INVALID_INPUT: 'INVALID_INPUT',
  ABORTED: 'ABORTED',
  DISPOSED: 'DISPOSED',
  WORKER: 'WORKER',
});

export class SepnetError extends Error {
  /**
   * @param {string} code one of {@link ErrorCode}
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, options) {
    super(message, options);
    this.name = 'SepnetError';
    this.code = code;
  }

  /** Plain object that survives postMessage (Error subclasses lose their class there). */
  toJSON() {
    return { name: this.name, code: this.code, message: this.message };
  }

  /** Inverse of {@link SepnetError#toJSON}. */
  static fromJSON(obj) {
    return new SepnetError(obj?.code ?? ErrorCode.WORKER, obj?.message ?? 'unknown worker error');
  }
}

/** Wraps anything thrown by lower layers into a SepnetError, keeping ours as they are. */
export function wrapError(err, code, prefix) {
  if (err instanceof SepnetError) return err;
  if (err?.name === 'AbortError') {
    return new SepnetError(ErrorCode.ABORTED, 'the operation was aborted', { cause: err });
  }
  const detail = err?.message ?? String(err);
  return new SepnetError(code, prefix ? `${prefix}: ${detail}` : detail, { cause: err });
}
