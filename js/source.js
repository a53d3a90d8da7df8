// Turning the many kinds of image sources into RGBA pixels (or into something a worker can
// receive cheaply). The engine does the exact resize + crop + normalisation of FORMAT.md, so
// here we only shrink very large sources, to keep canvas work and worker transfers small.

import { ErrorCode, SepnetError, wrapError } from './errors.js';

const has = (name) => typeof globalThis[name] !== 'undefined';
const isA = (v, name) => has(name) && v instanceof globalThis[name];

function tag(v) {
  return typeof v?.tagName === 'string' ? v.tagName.toUpperCase() : '';
}

/** `{data, width, height}` with `data.length === width * height * 4` (ImageData or look-alike). */
export function isImageDataLike(v) {
  return (
    v != null &&
    (v.data instanceof Uint8ClampedArray || v.data instanceof Uint8Array) &&
    Number.isInteger(v.width) &&
    Number.isInteger(v.height) &&
    v.width > 0 &&
    v.height > 0 &&
    v.data.length === v.width * v.height * 4
  );
}

const isBlob = (v) => isA(v, 'Blob');
const isImg = (v) => isA(v, 'HTMLImageElement') || tag(v) === 'IMG';
const isVideo = (v) => isA(v, 'HTMLVideoElement') || tag(v) === 'VIDEO';
const isDrawable = (v) =>
  isImg(v) ||
  isVideo(v) ||
  isA(v, 'HTMLCanvasElement') ||
  tag(v) === 'CANVAS' ||
  isA(v, 'ImageBitmap') ||
  isA(v, 'OffscreenCanvas') ||
  isA(v, 'VideoFrame') ||
  isA(v, 'SVGImageElement');

function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return v.constructor?.name ?? 'object';
}

function unsupported(v) {
  return new SepnetError(
    ErrorCode.UNSUPPORTED_SOURCE,
    `cannot classify a ${describe(v)}: pass ImageData, ImageBitmap, an <img>, <video> or ` +
      '<canvas> element, an OffscreenCanvas, a VideoFrame or an image Blob/File',
  );
}

/** Intrinsic pixel size of a drawable source. */
function intrinsicSize(v) {
  if (isImg(v)) return { width: v.naturalWidth, height: v.naturalHeight };
  if (isVideo(v)) return { width: v.videoWidth, height: v.videoHeight };
  if (isA(v, 'VideoFrame')) return { width: v.displayWidth, height: v.displayHeight };
  if (isA(v, 'SVGImageElement')) {
    return { width: v.width.baseVal.value, height: v.height.baseVal.value };
  }
  return { width: v.width, height: v.height };
}

/**
 * How far a large source may be shrunk before it goes to the engine: 4× the model's resize
 * target (at least 256 px), so the engine's antialiased resize still does the final step.
 */
export function defaultShortSide(info) {
  const { height, width } = info.input;
  const target = Math.round(Math.min(height, width) / (info.preprocess?.cropRatio || 1));
  return Math.max(256, 4 * target);
}

/** Size after shrinking so the shorter side is at most `maxShortSide` (never enlarges). */
export function scaledSize(width, height, maxShortSide) {
  const short = Math.min(width, height);
  if (!(maxShortSide > 0) || short <= maxShortSide) return { width, height };
  const s = maxShortSide / short;
  return {
    width: Math.max(1, Math.round(width * s)),
    height: Math.max(1, Math.round(height * s)),
  };
}

/** Waits until an element source has pixels; throws a typed error when it never will. */
async function ready(v) {
  if (isImg(v)) {
    if (!v.complete || v.naturalWidth === 0) {
      try {
        await v.decode();
      } catch (e) {
        throw new SepnetError(ErrorCode.IMAGE_DECODE, 'the <img> could not be decoded', { cause: e });
      }
    }
    if (v.naturalWidth === 0) throw new SepnetError(ErrorCode.IMAGE_DECODE, 'the <img> has no pixels');
  } else if (isVideo(v)) {
    // HAVE_CURRENT_DATA: a frame is available to draw.
    if (v.readyState < 2 || v.videoWidth === 0) {
      throw new SepnetError(ErrorCode.SOURCE_NOT_READY, 'the <video> has no frame yet (wait for "loadeddata")');
    }
  }
}

async function decodeBlob(blob) {
  if (!has('createImageBitmap')) {
    throw new SepnetError(ErrorCode.UNSUPPORTED_SOURCE, 'decoding a Blob needs createImageBitmap');
  }
  try {
    return await createImageBitmap(blob);
  } catch (e) {
    const type = blob.type ? ` (${blob.type})` : '';
    throw new SepnetError(ErrorCode.IMAGE_DECODE, `the file${type} is not an image this browser can decode`, {
      cause: e,
    });
  }
}

function makeCanvas(width, height) {
  if (has('OffscreenCanvas')) return new OffscreenCanvas(width, height);
  if (has('document')) {
    const c = document.createElement('canvas');
    c.width = width;
    c.height = height;
    return c;
  }
  throw new SepnetError(ErrorCode.UNSUPPORTED_SOURCE, 'no canvas available here: pass ImageData-like pixels');
}

/** Draws `v` at `width × height` and reads the pixels back. */
function drawToPixels(v, width, height) {
  const canvas = makeCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(v, 0, 0, width, height);
  try {
    return ctx.getImageData(0, 0, width, height);
  } catch (e) {
    // Tainted canvas: a cross-origin image without CORS headers.
    throw new SepnetError(
      ErrorCode.UNSUPPORTED_SOURCE,
      'cannot read the pixels of a cross-origin image (serve it with CORS and set crossOrigin)',
      { cause: e },
    );
  }
}

/**
 * Any supported source → `{data, width, height}` RGBA pixels on this thread.
 * @param {unknown} source
 * @param {number} [maxShortSide] shrink larger sources to this shorter side first
 */
export async function toPixels(source, maxShortSide) {
  if (isImageDataLike(source)) return source;
  if (isBlob(source)) {
    const bitmap = await decodeBlob(source);
    try {
      return await toPixels(bitmap, maxShortSide);
    } finally {
      bitmap.close();
    }
  }
  if (!isDrawable(source)) throw unsupported(source);
  await ready(source);
  const { width, height } = intrinsicSize(source);
  if (!(width > 0 && height > 0)) throw new SepnetError(ErrorCode.SOURCE_NOT_READY, 'the source has no pixels');
  const size = scaledSize(width, height, maxShortSide);
  try {
    return drawToPixels(source, size.width, size.height);
  } catch (e) {
    throw wrapError(e, ErrorCode.UNSUPPORTED_SOURCE, 'drawing the source failed');
  }
}

/**
 * Any supported source → a message payload for the worker plus its transfer list. The caller's
 * objects are never detached: pixels are copied, bitmaps re-created.
 * @returns {Promise<{payload: object, transfer: Transferable[]}>}
 */
export async function toTransfer(source, maxShortSide) {
  if (isImageDataLike(source)) {
    const copy = new Uint8ClampedArray(source.data);
    return {
      payload: { kind: 'rgba', data: copy.buffer, width: source.width, height: source.height },
      transfer: [copy.buffer],
    };
  }
  // Blobs are passed by reference and decoded in the worker, off the main thread.
  if (isBlob(source)) return { payload: { kind: 'blob', blob: source }, transfer: [] };
  if (!isDrawable(source)) throw unsupported(source);
  await ready(source);
  const { width, height } = intrinsicSize(source);
  if (!(width > 0 && height > 0)) throw new SepnetError(ErrorCode.SOURCE_NOT_READY, 'the source has no pixels');
  const size = scaledSize(width, height, maxShortSide);
  if (has('createImageBitmap')) {
    try {
      const bitmap = await createImageBitmap(source, {
        resizeWidth: size.width,
        resizeHeight: size.height,
        resizeQuality: 'high',
      });
      return { payload: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
    } catch {
      // Some engines refuse some sources (e.g. SVG images): fall back to a canvas read-back.
    }
  }
  const px = drawToPixels(source, size.width, size.height);
  return {
    payload: { kind: 'rgba', data: px.data.buffer, width: px.width, height: px.height },
    transfer: [px.data.buffer],
  };
}

/** Inverse of {@link toTransfer}, run inside the worker. */
export async function fromTransfer(payload, maxShortSide) {
  switch (payload?.kind) {
    case 'rgba':
      return { data: new Uint8ClampedArray(payload.data), width: payload.width, height: payload.height };
    case 'bitmap':
      try {
        return drawToPixels(payload.bitmap, payload.bitmap.width, payload.bitmap.height);
      } finally {
        payload.bitmap.close();
      }
    case 'blob':
      return toPixels(payload.blob, maxShortSide);
    default:
      throw new SepnetError(ErrorCode.WORKER, `unknown image payload ${payload?.kind}`);
  }
}
