#!/usr/bin/env node
// sepnet vs onnxruntime-web, in one headless Chromium page. Serves the repository root over a
// local static server (127.0.0.1, random port), opens bench/index.html and runs bench.js's
// interleaved timing loop for each network. Prints a table, writes results.json.
//
//   node run.mjs [--models sepnet_cifar,resnet20,sepnet_small] [--runs N] [--warmup W]
//                [--pkg DIR] [--out FILE] [--seed S] [--layers K]
//
// --layers K also prints each sepnet file's K slowest layers (results.json always holds every
// layer's median).
//
// --pkg (or SEPNET_PKG) serves another build of the npm package as /pkg/, e.g. one built from
// a clean worktree of a given commit; default: the repository's pkg/ (./build.sh).
// Run it under `nice -n 5` on a machine where other work has priority (docs/BENCHMARKS.md).

import http from 'node:http';
import fs from 'node:fs/promises';
import { readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { BASE_ARGS, CHROMIUM } from '../tests/js/lib/chromium-flags.mjs';
import { fmtMs, slowestLayers } from './format.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');

// The networks: every .sepnet variant and the ONNX twin (same seed-0 weights as the R file,
// both written by prepare.sh). Defaults: 50 timed rounds at 32x32, 20 at 224x224.
const MODELS = {
  sepnet_cifar: { runs: 50, warmup: 5 },
  resnet20: { runs: 50, warmup: 5 },
  sepnet_small: { runs: 20, warmup: 3 },
};

const { values: opt } = parseArgs({
  options: {
    models: { type: 'string', default: Object.keys(MODELS).join(',') },
    runs: { type: 'string' },
    warmup: { type: 'string' },
    variants: { type: 'string', default: 'R,BQ' },
    pkg: { type: 'string', default: process.env.SEPNET_PKG || path.join(ROOT, 'pkg') },
    out: { type: 'string', default: path.join(BENCH, 'results.json') },
    seed: { type: 'string', default: '1' },
    chromium: { type: 'string', default: CHROMIUM },
    layers: { type: 'string', default: '0' },
  },
});

const PKG = path.resolve(opt.pkg);
for (const f of ['index.js', 'sepnet_wasm.js', 'sepnet_wasm_bg.wasm']) {
  if (!existsSync(path.join(PKG, f))) {
    console.error(`error: ${path.join(PKG, f)} is missing: run ./build.sh first (or pass --pkg)`);
    process.exit(1);
  }
}
if (!existsSync(path.join(BENCH, 'node_modules/onnxruntime-web/dist/ort.wasm.min.mjs'))) {
  console.error('error: onnxruntime-web is not installed: run `npm ci` in bench/');
  process.exit(1);
}

// ---------- a tiny static server: the repository root, with /pkg/ mapped to PKG ----------
const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
};

function startServer() {
  const mounts = [['/pkg/', PKG], ['/', ROOT]];
  const server = http.createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, base] = mounts.find(([p]) => urlPath.startsWith(p));
    const file = path.resolve(base, urlPath.slice(prefix.length));
    if (file !== base && !file.startsWith(base + path.sep)) return res.writeHead(403).end();
    try {
      const body = await fs.readFile(file);
      res.writeHead(200, {
        'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
        'Content-Length': body.length,
        'Cache-Control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${urlPath}`);
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

// ---------- facts about the run ----------
function sh(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function cpuModel() {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const name = info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? null;
    const flags = info.match(/^flags\s*:\s*(.*)$/m)?.[1]?.split(' ') ?? [];
    return { model: name, logicalCores: os.cpus().length, avx2: flags.includes('avx2'), avx512f: flags.includes('avx512f') };
  } catch {
    return { model: os.cpus()[0]?.model ?? null, logicalCores: os.cpus().length };
  }
}

/** Which source the package under test was built from: the git checkout that holds PKG. */
function pkgSource() {
  const dir = path.dirname(PKG);
  const wasm = path.join(PKG, 'sepnet_wasm_bg.wasm');
  const bytes = readFileSync(wasm);
  const dirty = sh('git', ['status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock', 'js'], dir);
  // HEAD is the checkout now, not necessarily when pkg/ was built: the last commit that changed
  // the engine, and whether the wasm predates it (a stale package), say what was measured.
  const engine = sh('git', ['log', '-1', '--format=%h %cI', '--', 'src', 'Cargo.toml', 'Cargo.lock', 'js'], dir);
  const [engineCommit = null, engineCommitDate = null] = engine?.trim().split(' ') ?? [];
  const built = statSync(wasm).mtime;
  return {
    dir: PKG,
    commit: sh('git', ['rev-parse', '--short', 'HEAD'], dir),
    engineCommit,
    engineSourcesModified: dirty === null ? null : dirty.length > 0,
    builtBeforeEngineCommit: engineCommitDate ? built < new Date(engineCommitDate) : null,
    wasmBytes: bytes.length,
    wasmSha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    wasmBuilt: built.toISOString(),
  };
}

// ---------- main ----------
const server = await startServer();
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: opt.chromium, args: BASE_ARGS });
const results = { date: new Date().toISOString() };
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
    console.error(`  [page] ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) console.error(`  [http ${r.status()}] ${r.url()}`);
  });
  const fetched = new Set();
  page.on('request', (r) => fetched.add(r.url()));
  await page.goto(`${base}bench/index.html`);
  await page.waitForFunction(() => window.benchReady === true || null, null, { timeout: 60_000 }).catch((e) => {
    throw new Error(`the bench page did not start: ${errors.join('; ') || e.message}`);
  });
  const env = await page.evaluate(() => window.bench.setup());
  const ortPkg = JSON.parse(readFileSync(path.join(BENCH, 'node_modules/onnxruntime-web/package.json'), 'utf8'));
  Object.assign(results, {
    repoCommit: sh('git', ['rev-parse', '--short', 'HEAD'], ROOT),
    sepnetPackage: { version: env.sepnetVersion, ...pkgSource() },
    onnxruntimeWeb: {
      version: ortPkg.version,
      reported: env.ortVersion,
      backend: 'wasm (ort.wasm.min.mjs + ort-wasm-simd-threaded.wasm, served from bench/node_modules)',
      ...env.ortWasm,
      graphOptimizationLevel: 'all',
    },
    chromium: { version: browser.version(), executable: opt.chromium, userAgent: env.userAgent },
    crossOriginIsolated: env.crossOriginIsolated,
    cpu: cpuModel(),
    node: process.version,
    loadAverageBefore: os.loadavg(),
    niceness: os.getPriority(),
    models: [],
  });
  console.error(`sepnet ${env.sepnetVersion} (pkg ${results.sepnetPackage.commit ?? '?'}, engine ${results.sepnetPackage.engineCommit ?? '?'}${results.sepnetPackage.engineSourcesModified ? ', modified sources' : ''}${results.sepnetPackage.builtBeforeEngineCommit ? ', BUILT BEFORE THE ENGINE COMMIT: rebuild' : ''}) vs onnxruntime-web ${ortPkg.version}; ${results.chromium.version}; ${results.cpu.model}`);

  const variants = opt.variants.split(',').filter(Boolean);
  for (const name of opt.models.split(',').filter(Boolean)) {
    const defaults = MODELS[name] ?? { runs: 20, warmup: 3 };
    const sepnet = {};
    for (const v of variants) {
      const f = `${name}-${v.toLowerCase()}.sepnet`;
      if (!existsSync(path.join(BENCH, 'models', f))) {
        throw new Error(`bench/models/${f} is missing: run bench/prepare.sh`);
      }
      sepnet[v] = `${base}bench/models/${f}`;
    }
    const onnxFile = path.join(BENCH, 'models', `${name}.onnx`);
    const cfg = {
      name,
      sepnet,
      onnx: existsSync(onnxFile) ? `${base}bench/models/${name}.onnx` : null,
      // prepare.sh writes the R file and the ONNX file from the same seed: same weights.
      sameWeights: true,
      warmup: Number(opt.warmup ?? defaults.warmup),
      runs: Number(opt.runs ?? defaults.runs),
      seed: Number(opt.seed),
    };
    const r = await page.evaluate((c) => window.bench.model(c), cfg);
    results.models.push(r);
  }
  results.loadAverageAfter = os.loadavg();
  const foreign = [...fetched].filter((u) => !u.startsWith(base) && !u.startsWith('data:'));
  if (foreign.length) throw new Error(`the page fetched from outside the local server: ${foreign.join(', ')}`);
  results.ortFilesFetched = [...fetched].filter((u) => u.includes('onnxruntime-web')).map((u) => u.slice(base.length - 1));
  if (errors.length) results.pageErrors = errors;
} finally {
  await browser.close();
  server.close();
}

await fs.writeFile(opt.out, `${JSON.stringify(results, null, 2)}\n`);

// ---------- the table ----------
const f = fmtMs;
const rows = [];
for (const m of results.models) {
  for (const id of m.engines) {
    const s = m.stats[id];
    const ratio = m.ratios[`ort / ${id}`];
    const agree = m.agreement[id];
    rows.push([
      m.name,
      `${m.input[2]}x${m.input[3]}`,
      id,
      f(s.median),
      `${f(s.p10)}–${f(s.p90)}`,
      s.engineGraphMedian !== undefined ? f(s.engineGraphMedian) : '',
      ratio ? `${ratio.ofMedians.toFixed(2)}×` : '',
      ratio ? `${ratio.medianOfRounds.toFixed(2)}×` : '',
      agree ? (agree.checked ? agree.maxRelDiff.toExponential(1) : 'n/a') : '',
    ]);
  }
}
const head = ['model', 'input', 'engine', 'median ms', 'p10–p90 ms', 'sepnet graph ms', 'ort/this (medians)', 'ort/this (per round)', 'max rel diff vs ort'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log(`\nN timed rounds: ${results.models.map((m) => `${m.name} ${m.runs}`).join(', ')}; load average ${results.loadAverageBefore.map((x) => x.toFixed(2)).join(' ')} → ${results.loadAverageAfter.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`wrote ${opt.out}`);

// --layers K: each sepnet file's K slowest layers (executor's clock, median over the timed calls).
const topLayers = Number(opt.layers);
if (topLayers > 0) {
  for (const m of results.models) {
    for (const [id, layers] of Object.entries(m.layers ?? {})) {
      const { total, count, rows: slow } = slowestLayers(layers.map((l) => ({ ...l, ms: l.medianMs })), topLayers);
      console.log(`\n${m.name} ${id}: slowest ${topLayers} of ${count} layers (sum of medians ${f(total)} ms)`);
      for (const l of slow) {
        console.log(`  ${l.layer.padEnd(28)} ${l.op.padEnd(12)} ${f(l.ms).padStart(6)} ms  ${l.share.padStart(6)}`);
      }
    }
  }
}
for (const m of results.models) {
  for (const [id, a] of Object.entries(m.agreement)) {
    if (a.checked && !(a.finite && a.maxRelDiff < 1e-3)) {
      console.error(`warning: ${m.name} ${id} disagrees with onnxruntime-web: max rel diff ${a.maxRelDiff}`);
      process.exitCode = 2;
    }
  }
}
