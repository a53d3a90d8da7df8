// Shared paths and test data: golden models, a models/ folder with a manifest for the page,
// the safetensors reader for golden bundles, and a Y4M writer for Chromium's fake camera.

import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const TESTS_JS = path.resolve(here, '..');
export const REPO = path.resolve(TESTS_JS, '../..');
export const PKG = path.join(REPO, 'pkg');
export const WWW = path.join(REPO, 'www');
export const GOLDEN = path.join(REPO, 'tests/golden');
export const SAMPLES_RGB = path.join(TESTS_JS, 'fixtures/cifar-samples.rgb'); // 10 × 32×32 RGB
export const SAMPLE_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Parses a safetensors file: `{metadata, tensors: {name: {dtype, shape, data: TypedArray}}}`. */
export function readSafetensors(buf) {
  // A plain Uint8Array view: Node's Buffer#slice does not copy, Uint8Array#slice does.
  const bytes = ArrayBuffer.isView(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  const start = 8 + headerLen;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = t.data_offsets;
    // Copy so the typed array is aligned whatever the offset.
    const raw = bytes.slice(start + b, start + e);
    const Type = { F32: Float32Array, I8: Int8Array, U8: Uint8Array }[t.dtype];
    if (!Type) throw new Error(`unsupported dtype ${t.dtype}`);
    tensors[name] = { dtype: t.dtype, shape: t.shape, data: new Type(raw.buffer) };
  }
  return { metadata: header.__metadata__ ?? {}, tensors };
}

/** Golden model files (random weights, CIFAR-size) used by the tests, fastest first. */
export const GOLDEN_MODELS = ['sepnet_cifar-bq', 'sepnet_cifar-b', 'sepnet_cifar-r', 'resnet20-bq'];

/**
 * Writes `dir/<name>.sepnet` for the golden models plus a manifest.json like the exporter's.
 * `info(file)` returns the model info (from the package) for params/macs.
 */
export async function writeModelsDir(dir, infoOf) {
  await fs.mkdir(dir, { recursive: true });
  const models = [];
  for (const name of GOLDEN_MODELS) {
    const src = path.join(GOLDEN, `${name}.sepnet`);
    const bytes = await fs.readFile(src);
    await fs.writeFile(path.join(dir, `${name}.sepnet`), bytes);
    const info = await infoOf(bytes);
    const pretty = info.model === 'sepnet_cifar' ? 'SEP-Net CIFAR' : info.model.replace('resnet', 'ResNet-');
    models.push({
      file: `${name}.sepnet`,
      name: `${pretty} ${info.variant}${info.trained ? '' : ' (untrained)'}`,
      model: info.model,
      variant: info.variant,
      dataset: info.dataset,
      params: info.params,
      bytes: bytes.length,
      macs: info.macs,
      trained: info.trained,
      accuracy: info.accuracy,
      default: models.length === 0,
    });
  }
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ version: 1, models }, null, 2));
  return models;
}

/** The 10 CIFAR sample images as `{label, rgb: Uint8Array(32*32*3)}`. */
export async function cifarSamples() {
  const raw = await fs.readFile(SAMPLES_RGB);
  return SAMPLE_CLASSES.map((label, i) => ({ label, rgb: raw.subarray(i * 3072, (i + 1) * 3072) }));
}

/**
 * A YUV 4:2:0 Y4M video for `--use-file-for-fake-video-capture`: each 32×32 image upscaled
 * (nearest) to `height`×`height`, centred on a grey `width`×`height` frame, shown for
 * `framesEach` frames.
 */
export function makeY4m(images, { width = 320, height = 240, fps = 10, framesEach = 5 } = {}) {
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`);
  const frames = [header];
  const ySize = width * height;
  const cw = width / 2;
  const ch = height / 2;
  const x0 = (width - height) / 2;
  for (const { rgb } of images) {
    const Y = new Uint8Array(ySize).fill(128);
    const U = new Uint8Array(cw * ch).fill(128);
    const V = new Uint8Array(cw * ch).fill(128);
    const rgbAt = (x, y) => {
      const sx = Math.floor(((x - x0) * 32) / height);
      const sy = Math.floor((y * 32) / height);
      if (sx < 0 || sx >= 32) return [128, 128, 128];
      const i = (sy * 32 + sx) * 3;
      return [rgb[i], rgb[i + 1], rgb[i + 2]];
    };
    // Full-range BT.601 (what C420jpeg means).
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const [r, g, b] = rgbAt(x, y);
        Y[y * width + x] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      }
    }
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const [r, g, b] = rgbAt(2 * x, 2 * y);
        U[y * cw + x] = Math.max(0, Math.min(255, Math.round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)));
        V[y * cw + x] = Math.max(0, Math.min(255, Math.round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)));
      }
    }
    const frame = Buffer.concat([Buffer.from('FRAME\n'), Y, U, V]);
    for (let k = 0; k < framesEach; k++) frames.push(frame);
  }
  return Buffer.concat(frames);
}
