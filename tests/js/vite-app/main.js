// A consumer app, built by Vite: imports the package by name (`sepnet`, `sepnet/worker`) and
// exercises both entry points. The test reads the JSON written into #result.
import { Classifier, SepnetError, MODEL_CACHE } from 'sepnet';
import { WorkerClassifier } from 'sepnet/worker';

function testImage() {
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 48;
  const ctx = canvas.getContext('2d');
  const g = ctx.createLinearGradient(0, 0, 64, 48);
  g.addColorStop(0, '#2a6'); // a deterministic, non-uniform picture
  g.addColorStop(1, '#c33');
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, 64, 48);
  return canvas;
}

async function main() {
  const modelUrl = './model.sepnet';
  const progress = [];
  const canvas = testImage();
  const pixels = canvas.getContext('2d').getImageData(0, 0, 64, 48);

  const local = await Classifier.load(modelUrl, { cache: true, onProgress: (p) => progress.push(p) });
  const onMain = await local.classify(canvas, { topK: 3 });
  const fromImageData = await local.classify(pixels, { topK: 3 });
  const store = await caches.open(MODEL_CACHE);
  const cached = (await store.match(new URL(modelUrl, location.href).href)) !== undefined;

  const worker = await WorkerClassifier.load(modelUrl);
  const inWorker = await worker.classify(canvas, { topK: 3 });
  const bitmap = await createImageBitmap(canvas);
  const fromBitmap = await worker.classify(bitmap, { topK: 3 });
  const logits = await worker.runTensor(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);

  let invalid = null;
  try {
    await WorkerClassifier.load(new Uint8Array(64));
  } catch (e) {
    invalid = { name: e.name, code: e.code, typed: e instanceof SepnetError };
  }
  worker.dispose();
  local.dispose();
  return {
    ok: true,
    progress: progress.at(-1),
    cached,
    onMain: onMain.top,
    fromImageData: fromImageData.top,
    inWorker: inWorker.top,
    fromBitmap: fromBitmap.top,
    workerTimings: inWorker.timings.length,
    logits: Array.from(logits),
    invalid,
  };
}

const out = document.getElementById('result');
main()
  .then((r) => (out.textContent = JSON.stringify(r)))
  .catch((e) => (out.textContent = JSON.stringify({ ok: false, code: e?.code, error: String(e?.stack ?? e) })))
  .finally(() => (out.dataset.done = '1'));
