// The demo page (www/) in Chromium: upload, drag-and-drop, paste, model switching, the fake
// webcam, offline reload through the service worker, and every error message.
// One browser for the whole file (the machine is small); a fresh context per test.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Classifier } from '../../../pkg/index.js';
import { PKG, WWW, cifarSamples, makeY4m, writeModelsDir } from '../lib/fixtures.mjs';
import { startServer } from '../lib/server.mjs';
import { launch } from '../lib/browser.mjs';

const T = 60_000; // generous: the CPU is shared with training jobs
let tmp;
let modelsDir;
let models;
let server;
let browser;

async function infoOf(bytes) {
  const c = await Classifier.load(bytes);
  try {
    return c.info();
  } finally {
    c.dispose();
  }
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sepnet-page-'));
  modelsDir = path.join(tmp, 'models');
  models = await writeModelsDir(modelsDir, infoOf);
  const y4m = path.join(tmp, 'camera.y4m');
  await fs.writeFile(y4m, makeY4m(await cifarSamples(), { framesEach: 4 }));
  await fs.writeFile(path.join(tmp, 'notes.txt'), 'not an image\n');
  await fs.writeFile(path.join(tmp, 'fake.png'), 'this is text in disguise\n');
  server = await startServer({ root: WWW, mounts: { '/pkg/': PKG, '/models/': modelsDir } });
  browser = await launch([
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    `--use-file-for-fake-video-capture=${y4m}`,
  ]);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** A fresh context + page; service workers blocked unless asked for (they hide routes). */
async function openPage({ sw = false, init, url = server.url } = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    serviceWorkers: sw ? 'allow' : 'block',
  });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  return { context, page, pageErrors };
}

const ready = (page) => page.waitForSelector('body[data-model="ready"]', { timeout: T });
const predictions = (page) => page.locator('[data-testid="predictions"] li');
const errorBox = (page) => page.locator('[data-testid="error"]');
const updates = (page) => page.locator('[data-testid="predictions"]').getAttribute('data-updates').then(Number);

async function waitForUpdatesAbove(page, n) {
  await page.waitForFunction(
    (min) => Number(document.querySelector('[data-testid="predictions"]').dataset.updates || 0) > min,
    n,
    { timeout: T },
  );
}

async function expectError(page, pattern) {
  await errorBox(page).waitFor({ state: 'visible', timeout: T });
  const text = await errorBox(page).innerText();
  assert.match(text, pattern);
  return text;
}

/**
 * Answers `urlPath` with `handler` from the test server while `fn` runs. Server-side rather than
 * page.route so that requests from the page's Worker and service worker are covered too.
 */
async function withOverrides(map, fn) {
  for (const [p, h] of Object.entries(map)) server.overrides.set(p, h);
  try {
    return await fn();
  } finally {
    for (const p of Object.keys(map)) server.overrides.delete(p);
  }
}

function manifestWith(entries) {
  const body = JSON.stringify({ version: 1, models: entries });
  return (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
}

describe('classifying', () => {
  test('upload → top-5 predictions, per-layer timings, model facts and the size chart', async () => {
    const { context, page, pageErrors } = await openPage();
    try {
      await ready(page);
      await page.setInputFiles('input[type=file]', path.join(WWW, 'samples/cat.jpg'));
      await predictions(page).nth(4).waitFor({ timeout: T });
      assert.equal(await predictions(page).count(), 5);
      const labels = await predictions(page).evaluateAll((lis) => lis.map((li) => li.dataset.label));
      const info = await infoOf(await fs.readFile(path.join(modelsDir, models[0].file)));
      assert.ok(labels.every((l) => info.labels.includes(l)), labels.join());
      const probs = await predictions(page).evaluateAll((lis) => lis.map((li) => Number(li.dataset.probability)));
      assert.deepEqual([...probs].sort((a, b) => b - a), probs, 'most likely first');

      const rows = page.locator('[data-testid="layer-timings"] [data-layer]');
      assert.equal(await rows.count(), info.layers.length);
      assert.equal(await page.locator('[data-testid="layer-timings"] .slowest').count(), 1);
      assert.match(await page.locator('#op-summary').innerText(), /Total [\d.]+ ms · \d+ layers/);

      // The chart averages 20 runs of the image (app.js STILL_TIMING_RUNS): the browser clock's
      // 0.1 ms steps would otherwise show most layers as 0.0 or 0.1 ms.
      const note = page.locator('#timing-note');
      await page.waitForFunction(() => document.getElementById('timing-note').dataset.runs === '20', null, { timeout: T });
      assert.match(await note.innerText(), /^Mean of 20 runs of this image/);
      // ReLUs fused into the layer before them say so instead of showing a time of their own.
      const fused = page.locator('[data-testid="layer-timings"] .row.fused');
      assert.ok((await fused.count()) > 0, 'the engine fuses ReLUs and the chart marks them');
      assert.deepEqual([...new Set(await fused.evaluateAll((rs) => rs.map((r) => r.dataset.op)))], ['relu']);
      assert.deepEqual([...new Set(await fused.locator('.ms').allInnerTexts())], ['fused']);
      const timed = page.locator('[data-testid="layer-timings"] .row:not(.fused)');
      const layerMs = await timed.evaluateAll((rs) => rs.map((r) => Number(r.title.match(/: ([\d.]+) ms$/)[1])));
      assert.equal(layerMs.length + (await fused.count()), info.layers.length);
      assert.ok(layerMs.every((ms) => Number.isFinite(ms) && ms >= 0), layerMs.join());
      const step = (await note.innerText()).match(/ticks every ([\d.]+) ms/);
      if (step && Number(step[1]) >= 0.1) {
        // One run's times are whole clock steps; a mean of 20 is (almost surely) not, for some layer.
        const offStep = layerMs.filter((ms) => Math.abs(ms / Number(step[1]) - Math.round(ms / Number(step[1]))) > 0.01);
        assert.ok(offStep.length > 0, `layer times look like a single run: ${layerMs.join()}`);
      }

      // Size chart: every manifest model plus the paper's three reference rows; untrained marked.
      const sizes = page.locator('[data-testid="model-sizes"]');
      assert.equal(await sizes.locator('[data-file]').count(), models.length);
      assert.equal(await sizes.locator('[data-reference]').count(), 3);
      assert.match(await sizes.innerText(), /MobileNet[\s\S]*5\.20 MB[\s\S]*63\.7% ImageNet/);
      assert.match(await sizes.innerText(), /SqueezeNet[\s\S]*4\.80 MB[\s\S]*60\.4% ImageNet/);
      assert.match(await sizes.innerText(), /SEP-Net-BQ small[\s\S]*1\.30 MB[\s\S]*63\.5% ImageNet/);
      assert.equal(await sizes.locator('[data-trained="false"] .untrained').count(), models.length);
      assert.ok(await page.locator('#untrained-note').isVisible(), 'untrained models are labelled as such');

      const picker = page.locator('[data-testid="model-picker"]');
      assert.equal(await picker.evaluate((s) => s.tagName), 'SELECT');
      assert.equal(await picker.locator('option').count(), models.length);
      assert.ok(await errorBox(page).isHidden());
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });

  test('drag-and-drop, paste, samples and switching models re-classify', async () => {
    const { context, page, pageErrors } = await openPage();
    try {
      await ready(page);
      const jpeg = (await fs.readFile(path.join(WWW, 'samples/ship.jpg'))).toString('base64');
      const fire = (type) =>
        page.evaluate(
          async ([b64, kind]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'ship.jpg', { type: 'image/jpeg' }));
            if (kind === 'drop') {
              document.getElementById('stage').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
            } else {
              document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
            }
          },
          [jpeg, type],
        );
      await fire('drop');
      await waitForUpdatesAbove(page, 0);
      await fire('paste');
      await waitForUpdatesAbove(page, 1);
      await page.click('[data-sample="frog"]');
      await waitForUpdatesAbove(page, 2);
      assert.ok(await page.locator('#preview').isVisible());

      // Another model: the page reloads the worker and re-classifies the shown image.
      const before = await updates(page);
      const other = models.find((m) => m.model === 'resnet20');
      await page.selectOption('[data-testid="model-picker"]', other.file);
      await waitForUpdatesAbove(page, before);
      const info = await infoOf(await fs.readFile(path.join(modelsDir, other.file)));
      assert.equal(await page.locator('[data-testid="layer-timings"] [data-layer]').count(), info.layers.length);
      assert.equal(await page.locator('[data-testid="model-sizes"] .current').getAttribute('data-file'), other.file);
      assert.ok(await errorBox(page).isHidden());
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });

  test('webcam: continuous classification of the fake camera with FPS and live timings', async () => {
    const { context, page, pageErrors } = await openPage();
    try {
      await context.grantPermissions(['camera'], { origin: server.url });
      await ready(page);
      const toggle = page.locator('[data-testid="webcam-toggle"]');
      await toggle.click();
      await predictions(page).nth(4).waitFor({ timeout: T });
      assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
      assert.ok(await page.locator('#video').isVisible());

      // Several frames: predictions and timings change as the video cycles through images.
      const seen = new Set();
      const totals = new Set();
      const start = await updates(page);
      for (let i = 1; i <= 6; i++) {
        await waitForUpdatesAbove(page, start + i);
        seen.add(await predictions(page).evaluateAll((lis) => lis.map((li) => li.dataset.probability).join()));
        totals.add(await page.locator('#op-summary .total').innerText());
        await page.waitForTimeout(150);
      }
      assert.ok(seen.size >= 2, `predictions should change between frames, saw ${seen.size} distinct`);
      assert.ok(totals.size >= 2, 'the timing chart updates while the camera runs');
      assert.ok((await page.locator('[data-testid="layer-timings"] [data-layer]').count()) > 10);
      assert.match(await page.locator('#fps').innerText(), /^\d+(\.\d)? fps$/);
      const live = await page.locator('#timing-note').evaluate((n) => ({ runs: Number(n.dataset.runs), text: n.textContent }));
      assert.ok(live.runs >= 2 && live.runs <= 30, `the live chart averages the last ≤ 30 frames, saw ${live.runs}`);
      assert.match(live.text, new RegExp(`^Mean of the last ${live.runs} frames`));

      await toggle.click();
      assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
      assert.ok(await page.locator('#video').isHidden());
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });
});

describe('error messages (the page stays usable after each)', () => {
  async function stillWorks(page) {
    const n = await updates(page).catch(() => 0);
    await page.setInputFiles('input[type=file]', path.join(WWW, 'samples/horse.jpg'));
    await waitForUpdatesAbove(page, n || 0);
    assert.ok(await errorBox(page).isHidden(), 'a successful action clears the message');
  }

  test('camera permission denied', async () => {
    const { context, page } = await openPage({
      init: () => {
        navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
      },
    });
    try {
      await ready(page);
      await page.click('[data-testid="webcam-toggle"]');
      await expectError(page, /Camera access was denied/);
      assert.equal(await page.getAttribute('[data-testid="webcam-toggle"]', 'aria-pressed'), 'false');
      await stillWorks(page);
    } finally {
      await context.close();
    }
  });

  test('no camera present', async () => {
    const { context, page } = await openPage({
      init: () => {
        navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
      },
    });
    try {
      await ready(page);
      await page.click('[data-testid="webcam-toggle"]');
      await expectError(page, /No camera was found/);
      await stillWorks(page);
    } finally {
      await context.close();
    }
  });

  test('model missing (404), then another model loads', async () => {
    const manifest = manifestWith([
      { ...models[0], file: 'missing.sepnet', name: 'Ghost model', default: true },
      { ...models[1], default: false },
    ]);
    await withOverrides({ '/models/manifest.json': manifest }, async () => {
      const { context, page } = await openPage();
      try {
        await expectError(page, /Could not download the model “Ghost model”.*404/);
        assert.equal(await page.getAttribute('body', 'data-model'), 'error');
        await page.selectOption('[data-testid="model-picker"]', models[1].file);
        await ready(page);
        await stillWorks(page);
      } finally {
        await context.close();
      }
    });
  });

  test('corrupt model, and a download cut short', async () => {
    const good = await fs.readFile(path.join(modelsDir, models[0].file));
    const overrides = {
      '/models/manifest.json': manifestWith([
        { ...models[0], default: true },
        { ...models[1], file: 'corrupt.sepnet', name: 'Corrupt model', default: false },
        { ...models[2], file: 'cut.sepnet', name: 'Cut model', default: false },
      ]),
      '/models/corrupt.sepnet': (req, res) =>
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(Buffer.alloc(50_000, 0xab)),
      // Promises the whole file, sends half, hangs up a moment later.
      '/models/cut.sepnet': (req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': good.length });
        res.write(good.subarray(0, good.length >> 1), () => setTimeout(() => res.destroy(), 200));
      },
    };
    await withOverrides(overrides, async () => {
      const { context, page } = await openPage();
      try {
        await ready(page);
        await page.selectOption('[data-testid="model-picker"]', 'corrupt.sepnet');
        await expectError(page, /The model file “Corrupt model” is corrupt or not a \.sepnet model/);
        // The previous model stays loaded and selected.
        assert.equal(await page.inputValue('[data-testid="model-picker"]'), models[0].file);
        await stillWorks(page);

        await page.selectOption('[data-testid="model-picker"]', 'cut.sepnet');
        await expectError(page, /The download of “Cut model” was cut short/);
        await stillWorks(page);
      } finally {
        await context.close();
      }
    });
  });

  test('the model list itself is missing', async () => {
    await withOverrides({ '/models/manifest.json': (req, res) => res.writeHead(404).end() }, async () => {
      const { context, page } = await openPage();
      try {
        await expectError(page, /Could not load the list of models \(models\/manifest\.json: HTTP 404\)/);
        assert.ok(await page.locator('[data-testid="model-sizes"] [data-reference]').first().isVisible());
      } finally {
        await context.close();
      }
    });
  });

  test('unsupported files: a .txt, and text disguised as a .png', async () => {
    const { context, page } = await openPage();
    try {
      await ready(page);
      await page.setInputFiles('input[type=file]', path.join(tmp, 'notes.txt'));
      await expectError(page, /“notes\.txt” is not an image \(text\/plain\)/);
      await stillWorks(page);
      await page.setInputFiles('input[type=file]', path.join(tmp, 'fake.png'));
      await expectError(page, /“fake\.png” could not be decoded as an image/);
      await page.click('#error-dismiss');
      assert.ok(await errorBox(page).isHidden());
      await stillWorks(page);
    } finally {
      await context.close();
    }
  });
});

test('offline: once the service worker is active, a reload without any network classifies', async () => {
  // Its own server, so it can be shut down: nothing can reach the network afterwards.
  const own = await startServer({ root: WWW, mounts: { '/pkg/': PKG, '/models/': modelsDir } });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'allow' });
  try {
    const page = await context.newPage();
    // A stale cache from an "older version" that activation must delete (and one it must keep).
    await page.goto(`${own.url}samples/cat.jpg`);
    await page.evaluate(async () => {
      await (await caches.open('sepnet-www-v0')).put('/stale', new Response('old'));
      await (await caches.open('sepnet-models-v1')).put('/kept', new Response('library cache'));
    });
    await page.goto(own.url);
    await ready(page);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: T });
    await page.waitForSelector('body[data-sw="ready"]', { timeout: T });
    const names = await page.evaluate(() => caches.keys());
    assert.ok(names.includes('sepnet-www-v1'), names.join());
    assert.ok(!names.includes('sepnet-www-v0'), 'old caches are deleted on activate');
    assert.ok(names.includes('sepnet-models-v1'), 'other caches are left alone');
    const cached = await page.evaluate(async () =>
      (await (await caches.open('sepnet-www-v1')).keys()).map((r) => new URL(r.url).pathname));
    for (const p of ['/', '/index.html', '/app.js', '/pkg/sepnet_wasm_bg.wasm', '/models/manifest.json', `/models/${models[0].file}`]) {
      assert.ok(cached.includes(p), `${p} is pre-cached`);
    }

    await own.close();
    await context.setOffline(true);
    await page.reload();
    await ready(page);
    await page.setInputFiles('input[type=file]', path.join(WWW, 'samples/deer.jpg'));
    await predictions(page).nth(4).waitFor({ timeout: T });
    await page.click('[data-sample="truck"]');
    await waitForUpdatesAbove(page, 1);
    assert.ok(await errorBox(page).isHidden());
  } finally {
    await context.close();
    await own.close();
  }
});
