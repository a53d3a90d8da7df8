#!/usr/bin/env node
// Combines several run.mjs results files into one JSON array and prints the BENCHMARKS.md
// tables: per network and engine, the median over the runs of each run's median time and of
// its ort/sepnet ratios, with their range; then, with --layers K, each sepnet file's K slowest
// layers (median over the runs of each run's per-layer median).
//
//   node summarize.mjs [--out combined.json] [--layers K] run1.json run2.json ...

import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fmtMs as f, slowestLayers } from './format.mjs';

const { values: opt, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, layers: { type: 'string', default: '0' } },
});
if (!files.length) {
  console.error('usage: node summarize.mjs [--out combined.json] [--layers K] run1.json ...');
  process.exit(1);
}
const runs = [];
for (const f of files) runs.push(JSON.parse(await fs.readFile(f, 'utf8')));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const cell = (xs, fmt) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;

const commits = new Set(runs.map((r) => r.sepnetPackage?.engineCommit ?? r.sepnetPackage?.commit));
const cpus = new Set(runs.map((r) => r.cpu?.model ?? String(r.cpu)));
console.log(`${runs.length} runs; engine ${[...commits].join(', ')}; CPU ${[...cpus].join(', ')}`);
console.log(`dates ${runs.map((r) => r.date).sort()[0]} … ${runs.map((r) => r.date).sort().at(-1)}\n`);

console.log(`| network | input | engine | median ms: median of ${runs.length} runs (range) | ort/sepnet of medians: median (range) | ort/sepnet per round: median (range) |`);
console.log('|---|---|---|---|---|---|');
const names = runs[0].models.map((m) => m.name);
for (const name of names) {
  const ms = runs.map((r) => r.models.find((m) => m.name === name));
  if (ms.some((m) => !m)) throw new Error(`${name} is missing from some runs`);
  const input = `${ms[0].input[2]}×${ms[0].input[3]}`;
  for (const id of ms[0].engines) {
    const times = ms.map((m) => m.stats[id].median);
    const ratio = ms.map((m) => m.ratios[`ort / ${id}`]).filter(Boolean);
    const label = id === 'ort' ? 'ort (R)' : id;
    const r1 = ratio.length ? cell(ratio.map((r) => r.ofMedians), (x) => x.toFixed(2)) : '';
    const r2 = ratio.length ? cell(ratio.map((r) => r.medianOfRounds), (x) => x.toFixed(2)) : '';
    console.log(`| ${name} | ${input} | ${label} | ${cell(times, f)} | ${r1} | ${r2} |`);
  }
}

const top = Number(opt.layers);
if (top > 0) {
  for (const name of names) {
    const ms = runs.map((r) => r.models.find((m) => m.name === name));
    for (const id of Object.keys(ms[0].layers ?? {})) {
      const per = new Map();
      for (const m of ms) {
        for (const l of m.layers?.[id] ?? []) {
          if (!per.has(l.layer)) per.set(l.layer, { op: l.op, ms: [] });
          per.get(l.layer).ms.push(l.medianMs);
        }
      }
      const rows = [...per].map(([layer, { op, ms: xs }]) => ({ layer, op, ms: median(xs) }));
      const { total, count, rows: slow } = slowestLayers(rows, top);
      console.log(`\n${name} ${id}: the ${top} slowest of ${count} layers (sum of medians ${f(total)} ms)\n`);
      console.log('| layer | op | median ms | share |');
      console.log('|---|---|---|---|');
      for (const r of slow) console.log(`| ${r.layer} | ${r.op} | ${f(r.ms)} | ${r.share} |`);
    }
  }
}

if (opt.out) {
  await fs.writeFile(opt.out, `${JSON.stringify(runs)}\n`);
  console.log(`\nwrote ${opt.out}`);
}
