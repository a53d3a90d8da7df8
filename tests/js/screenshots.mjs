// Screenshots of the demo page for docs/screenshots/: `npm run screenshots` (after ./build.sh).
// Uses the exported models in www/models/; when none of them is a CIFAR-10 model (the sample
// images are CIFAR-10), the golden CIFAR test models are added and made the default.

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Classifier } from '../../pkg/index.js';
import { PKG, REPO, WWW, cifarSamples, makeY4m, writeModelsDir } from './lib/fixtures.mjs';
import { startServer } from './lib/server.mjs';
import { launch } from './lib/browser.mjs';

const OUT = path.join(REPO, 'docs/screenshots');
const T = 120_000;

async function infoOf(bytes) {
  const c = await Classifier.load(bytes);
  try {
    return c.info();
  } finally {
    c.dispose();
  }
}

async function modelsDir(tmp) {
  const dir = path.join(tmp, 'models');
  let real = [];
  try {
    real = JSON.parse(await fs.readFile(path.join(WWW, 'models/manifest.json'), 'utf8')).models ?? [];
  } catch {
    // no exported models yet
  }
  if (real.some((m) => m.dataset === 'cifar10')) return path.join(WWW, 'models');
  const golden = await writeModelsDir(dir, infoOf);
  for (const m of real) await fs.copyFile(path.join(WWW, 'models', m.file), path.join(dir, m.file));
  const models = [...golden, ...real.map((m) => ({ ...m, default: false }))];
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ version: 1, models }, null, 2));
  console.log(`models: golden CIFAR test models + ${real.length} from www/models`);
  return dir;
}

async function main() {
  await fs.mkdir(OUT, { recursive: true });
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sepnet-shots-'));
  const y4m = path.join(tmp, 'camera.y4m');
  await fs.writeFile(y4m, makeY4m(await cifarSamples(), { framesEach: 8 }));
  const server = await startServer({ root: WWW, mounts: { '/pkg/': PKG, '/models/': await modelsDir(tmp) } });
  const browser = await launch([
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    `--use-file-for-fake-video-capture=${y4m}`,
  ]);
  const shoot = async (name, { colorScheme = 'light', viewport = { width: 1280, height: 1000 }, act, element, fullPage = false }) => {
    const context = await browser.newContext({ viewport, colorScheme, serviceWorkers: 'block', deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(server.url);
    await page.waitForSelector('body[data-model="ready"]', { timeout: T });
    await act?.(page);
    const file = path.join(OUT, name);
    if (element) await page.locator(element).screenshot({ path: file });
    else await page.screenshot({ path: file, fullPage });
    console.log(`wrote ${path.relative(REPO, file)}`);
    await context.close();
  };
  const upload = async (page) => {
    await page.setInputFiles('input[type=file]', path.join(WWW, 'samples/cat.jpg'));
    await page.locator('[data-testid="predictions"] li').nth(4).waitFor({ timeout: T });
    // the layer chart's mean over the image's 20 runs (app.js STILL_TIMING_RUNS)
    await page.waitForFunction(() => document.getElementById('timing-note').dataset.runs === '20', null, { timeout: T });
    await page.waitForTimeout(300); // let the bar transitions finish
  };
  try {
    await shoot('upload.png', { act: upload, fullPage: true });
    await shoot('upload-dark.png', { act: upload, colorScheme: 'dark', fullPage: true });
    await shoot('mobile.png', { act: upload, viewport: { width: 390, height: 844 }, fullPage: true });
    await shoot('webcam.png', {
      act: async (page) => {
        await page.click('[data-order="slowest"]'); // show the other ordering of the layer chart
        await page.click('[data-testid="webcam-toggle"]');
        await page.waitForFunction(
          () => Number(document.querySelector('[data-testid="predictions"]').dataset.updates || 0) >= 4,
          null,
          { timeout: T },
        );
        await page.waitForTimeout(400);
      },
    });
    await shoot('model-sizes.png', { element: '.sizes-card' });
  } finally {
    await browser.close();
    await server.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

await main();
