// A Vite 7 app that depends on `sepnet` by name: `vite build` must succeed with default settings
// and the built page must classify in Chromium (main thread, Worker, Cache API).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'vite';

import { PKG, GOLDEN, TESTS_JS } from '../lib/fixtures.mjs';
import { startServer } from '../lib/server.mjs';
import { launch } from '../lib/browser.mjs';

const APP = path.join(TESTS_JS, 'vite-app');
let outDir;
let server;
let browser;

before(async () => {
  // Link the freshly built package as the app's dependency (what a `file:` dependency does;
  // linked here because pkg/ only exists after ./build.sh, after `npm ci`).
  const link = path.join(APP, 'node_modules', 'sepnet');
  await fs.mkdir(path.dirname(link), { recursive: true });
  await fs.rm(link, { recursive: true, force: true });
  await fs.symlink(path.relative(path.dirname(link), PKG), link, 'dir');
  outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sepnet-vite-'));
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (outDir) await fs.rm(outDir, { recursive: true, force: true });
});

test('vite build bundles the package, its worker and its wasm', async () => {
  await build({ root: APP, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const assets = await fs.readdir(path.join(outDir, 'assets'));
  assert.equal(assets.filter((f) => f.endsWith('.wasm')).length, 1, `one wasm asset: ${assets}`);
  assert.ok(assets.some((f) => f.startsWith('worker-script')), `a worker chunk: ${assets}`);
});

test('the built app classifies in Chromium', async () => {
  server = await startServer({ root: outDir, mounts: {} });
  const model = await fs.readFile(path.join(GOLDEN, 'sepnet_cifar-bq.sepnet'));
  server.overrides.set('/model.sepnet', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': model.length }).end(model);
  });
  browser = await launch();
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  await page.waitForSelector('#result[data-done]', { timeout: 120_000 });
  const r = JSON.parse(await page.textContent('#result'));
  assert.equal(r.ok, true, r.error);
  assert.deepEqual(errors, []);
  assert.deepEqual(r.progress, { loaded: model.length, total: model.length });
  assert.equal(r.cached, true, 'cache: true stored the model in the Cache API');
  for (const top of [r.onMain, r.fromImageData, r.inWorker, r.fromBitmap]) {
    assert.equal(top.length, 3);
    assert.ok(top.every((p) => typeof p.label === 'string' && p.probability > 0 && p.probability < 1));
  }
  // The same pixels give the same answer on the main thread and in the worker.
  assert.deepEqual(r.inWorker.map((p) => p.index), r.onMain.map((p) => p.index));
  assert.ok(Math.abs(r.inWorker[0].probability - r.onMain[0].probability) < 1e-6);
  assert.deepEqual(r.fromImageData.map((p) => p.index), r.onMain.map((p) => p.index));
  assert.ok(r.workerTimings > 10);
  assert.equal(r.logits.length, 10);
  assert.deepEqual(r.invalid, { name: 'SepnetError', code: 'MODEL_INVALID', typed: true });
});
