// The npm package in Node: golden logits, classification, loading paths and typed errors.
// Needs a build (`./build.sh`), which puts the package in pkg/.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { Classifier, SepnetError, ErrorCode, simdSupported, MODEL_CACHE, VERSION } from '../../../pkg/index.js';
import { GOLDEN, PKG, readSafetensors, cifarSamples } from '../lib/fixtures.mjs';
import { startServer } from '../lib/server.mjs';

const TOL = 1e-4; // PyTorch vs engine, both f32: observed deviations are ~3e-7
const model = (name) => path.join(GOLDEN, `${name}.sepnet`);

async function expectError(promiseOrFn, code) {
  const err = await (async () => {
    try {
      await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
    } catch (e) {
      return e;
    }
    return null;
  })();
  assert.ok(err, `expected a ${code} error, nothing was thrown`);
  assert.ok(err instanceof SepnetError, `expected a SepnetError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.code, code, err.message);
  return err;
}

function softmax(row) {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

test('the package reports SIMD support and its constants', () => {
  assert.equal(simdSupported(), true);
  assert.equal(MODEL_CACHE, 'sepnet-models-v1');
  assert.equal(VERSION, '0.1.0');
});

test('package.json is publishable as specified', async () => {
  const pkg = JSON.parse(await fs.readFile(path.join(PKG, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'sepnet');
  assert.equal(pkg.version, '0.1.0');
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.license, 'MIT');
  assert.equal(pkg.sideEffects, false);
  assert.equal(pkg.exports['.'].default, './index.js');
  assert.equal(pkg.exports['./worker'].default, './worker.js');
  for (const f of pkg.files) await fs.access(path.join(PKG, f)); // every listed file exists
});

describe('golden bundles', async () => {
  const names = (await fs.readdir(GOLDEN)).filter((f) => f.endsWith('.sepnet')).map((f) => f.slice(0, -7));
  for (const name of names) {
    test(`${name}: runTensor matches PyTorch's logits`, async () => {
      const bundle = readSafetensors(await fs.readFile(path.join(GOLDEN, `${name}.bundle.safetensors`)));
      assert.equal(bundle.metadata['sepnet.bundle'], '1');
      const clf = await Classifier.load(await fs.readFile(model(name)));
      try {
        const { input, logits } = bundle.tensors;
        const out = clf.runTensor(input.data, input.shape);
        assert.ok(out instanceof Float32Array);
        assert.equal(out.length, logits.data.length);
        for (let i = 0; i < out.length; i++) {
          const want = logits.data[i];
          assert.ok(Math.abs(out[i] - want) <= TOL * (1 + Math.abs(want)), `logit ${i}: ${out[i]} vs ${want}`);
        }
        const run = clf.run(input.data, input.shape);
        assert.deepEqual(run.shape, logits.shape);
        assert.equal(run.timings.length, clf.info().layers.length);
        // Fused ReLUs are flagged, and only ReLUs are (tests/golden.rs checks their values).
        assert.ok(run.timings.some((t) => t.fused === true));
        assert.ok(run.timings.every((t) => t.fused === false || t.op === 'relu'));
        assert.equal(clf.info().labels.length, logits.shape[1]);
      } finally {
        clf.dispose();
      }
    });
  }
});

describe('a loaded CIFAR model', () => {
  let clf;
  let fileBytes;
  before(async () => {
    fileBytes = await fs.readFile(model('sepnet_cifar-bq'));
    clf = await Classifier.load(new Uint8Array(fileBytes));
  });
  after(() => clf.dispose());

  test('info() describes it', () => {
    const info = clf.info();
    assert.equal(info.model, 'sepnet_cifar');
    assert.equal(info.variant, 'BQ');
    assert.equal(info.bytes, fileBytes.length);
    assert.deepEqual(info.input, { name: info.input.name, channels: 3, height: 32, width: 32 });
    assert.equal(info.labels.length, 10);
    assert.equal(info.trained, false);
    assert.ok(info.params > 500_000 && info.macs > 10_000_000);
    assert.ok(info.layers.some((l) => l.encoding === 'pattern'), 'BQ has pattern layers');
    assert.deepEqual(info.preprocess.inputSize, [32, 32]);
  });

  test('classify() of RGBA pixels agrees with runTensor() of the same image', async () => {
    const info = clf.info();
    const { mean, std } = info.preprocess;
    for (const { rgb } of (await cifarSamples()).slice(0, 3)) {
      const rgba = new Uint8ClampedArray(32 * 32 * 4);
      const tensor = new Float32Array(3 * 32 * 32);
      for (let p = 0; p < 32 * 32; p++) {
        for (let c = 0; c < 3; c++) {
          rgba[p * 4 + c] = rgb[p * 3 + c];
          tensor[c * 1024 + p] = (rgb[p * 3 + c] / 255 - mean[c]) / std[c];
        }
        rgba[p * 4 + 3] = 255;
      }
      const res = await clf.classify({ data: rgba, width: 32, height: 32 }, { topK: 10 });
      assert.equal(res.top.length, 10);
      assert.ok(res.totalMs >= 0 && res.timings.length === info.layers.length);
      for (let i = 1; i < res.top.length; i++) assert.ok(res.top[i - 1].probability >= res.top[i].probability);
      const probs = softmax([...clf.runTensor(tensor, [1, 3, 32, 32])]);
      for (const p of res.top) {
        assert.equal(p.label, info.labels[p.index]);
        assert.ok(Math.abs(p.probability - probs[p.index]) < 1e-5, `${p.label}: ${p.probability} vs ${probs[p.index]}`);
      }
    }
  });

  test('classify() resizes and crops any RGBA size; topK defaults to 5', async () => {
    const w = 97;
    const h = 61;
    const data = new Uint8Array(w * h * 4).map((_, i) => (i * 37) % 256);
    const res = clf.classifyPixels(data, w, h);
    assert.equal(res.top.length, 5);
    assert.ok(res.top.every((p) => p.probability > 0 && p.probability < 1));
    assert.equal(clf.classifyPixels(data, w, h, { topK: 50 }).top.length, 10, 'topK is capped at the class count');
  });

  test('bad inputs are typed errors', async () => {
    await expectError(() => clf.runTensor(new Float32Array(10), [1, 3, 32, 32]), ErrorCode.INVALID_INPUT);
    await expectError(() => clf.runTensor(new Float32Array(3 * 32 * 32), [1, 3, 'x', 32]), ErrorCode.INVALID_INPUT);
    await expectError(() => clf.classifyPixels(new Uint8Array(5), 2, 2), ErrorCode.INVALID_INPUT);
    await expectError(() => clf.classifyPixels(new Uint8Array(16), 2, 2, { topK: 0 }), ErrorCode.INVALID_INPUT);
    await expectError(clf.classify('not an image'), ErrorCode.UNSUPPORTED_SOURCE);
    await expectError(clf.classify({ data: new Uint8Array(3), width: 1, height: 1 }), ErrorCode.UNSUPPORTED_SOURCE);
  });
});

describe('loading', () => {
  test('from a path and a file: URL, with progress', async () => {
    const seen = [];
    const a = await Classifier.load(model('resnet20-bq'), { onProgress: (p) => seen.push(p) });
    const size = (await fs.stat(model('resnet20-bq'))).size;
    assert.deepEqual(seen.at(-1), { loaded: size, total: size });
    const b = await Classifier.load(pathToFileURL(model('resnet20-bq')));
    assert.equal(b.info().bytes, a.info().bytes);
    a.dispose();
    b.dispose();
  });

  test('from an ArrayBuffer and a Blob', async () => {
    const buf = await fs.readFile(model('resnet20-bq'));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const a = await Classifier.load(ab);
    const b = await Classifier.load(new Blob([buf]));
    assert.equal(a.info().variant, 'BQ');
    assert.equal(b.info().params, a.info().params);
    a.dispose();
    b.dispose();
  });

  test('warmup runs the model at load and is range-checked', async () => {
    const buf = await fs.readFile(model('resnet20-bq'));
    const warm = await Classifier.load(buf, { warmup: 2 });
    const cold = await Classifier.load(buf);
    const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i));
    assert.deepEqual(warm.runTensor(x, [1, 3, 32, 32]), cold.runTensor(x, [1, 3, 32, 32]));
    for (const bad of [-1, 11, 1.5, '2']) {
      await expectError(Classifier.load(buf, { warmup: bad }), ErrorCode.INVALID_INPUT);
    }
    warm.dispose();
    cold.dispose();
  });

  test('garbage, truncated and missing models are typed errors', async () => {
    await expectError(Classifier.load(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), ErrorCode.MODEL_INVALID);
    const good = await fs.readFile(model('resnet20-bq'));
    const err = await expectError(Classifier.load(good.subarray(0, good.length >> 1)), ErrorCode.MODEL_INVALID);
    assert.match(err.message, /not a valid \.sepnet model/);
    await expectError(Classifier.load(path.join(GOLDEN, 'no-such-model.sepnet')), ErrorCode.MODEL_FETCH);
    await expectError(Classifier.load(42), ErrorCode.MODEL_FETCH);
  });

  test('a disposed classifier refuses work', async () => {
    const c = await Classifier.load(model('resnet20-bq'));
    c.dispose();
    c.dispose(); // idempotent
    await expectError(() => c.info(), ErrorCode.DISPOSED);
    await expectError(c.classify({ data: new Uint8Array(4), width: 1, height: 1 }), ErrorCode.DISPOSED);
  });

  describe('over HTTP', () => {
    let server;
    before(async () => {
      server = await startServer({ root: GOLDEN });
      const good = await fs.readFile(model('resnet20-bq'));
      // Promises the whole file, sends half, then hangs up: a broken download.
      server.overrides.set('/cut.sepnet', (req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': good.length });
        res.write(good.subarray(0, good.length >> 1), () => res.destroy());
      });
      server.overrides.set('/garbage.sepnet', (req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(Buffer.alloc(4096, 7));
      });
    });
    after(() => server.close());

    test('streams with progress against Content-Length', async () => {
      const seen = [];
      const c = await Classifier.load(`${server.url}resnet20-bq.sepnet`, { onProgress: (p) => seen.push(p) });
      const size = (await fs.stat(model('resnet20-bq'))).size;
      assert.ok(seen.length >= 2);
      assert.deepEqual(seen[0], { loaded: 0, total: size });
      assert.deepEqual(seen.at(-1), { loaded: size, total: size });
      c.dispose();
    });

    test('HTTP errors, cut-off downloads and garbage are reported distinctly', async () => {
      const e404 = await expectError(Classifier.load(`${server.url}missing.sepnet`), ErrorCode.MODEL_FETCH);
      assert.match(e404.message, /404/);
      const cut = await expectError(Classifier.load(`${server.url}cut.sepnet`), ErrorCode.MODEL_TRUNCATED);
      assert.match(cut.message, /of \d+ bytes/);
      await expectError(Classifier.load(`${server.url}garbage.sepnet`), ErrorCode.MODEL_INVALID);
      await expectError(Classifier.load('http://127.0.0.1:9/nothing-listens-here.sepnet'), ErrorCode.MODEL_FETCH);
    });

    test('an aborted download rejects with ABORTED', async () => {
      const ac = new AbortController();
      ac.abort();
      await expectError(Classifier.load(`${server.url}resnet20-bq.sepnet`, { signal: ac.signal }), ErrorCode.ABORTED);
    });
  });

  test('a wasm that cannot be loaded is a WASM_INIT error (fresh process: init happens once)', async () => {
    const script = `
      const { Classifier } = await import(${JSON.stringify(pathToFileURL(path.join(PKG, 'index.js')).href)});
      try { await Classifier.load(new Uint8Array(8), { wasmUrl: '/no/such/sepnet.wasm' }); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code })); }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    assert.deepEqual(JSON.parse(stdout), { name: 'SepnetError', code: 'WASM_INIT' });
  });
});
