// Helpers shared by run.mjs (one run) and summarize.mjs (several runs).

/** Milliseconds with three significant digits or so: 123, 12.3, 1.23. */
export const fmtMs = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The `top` slowest of `layers` ([{layer, op, ms}]), with their total and each one's share. */
export function slowestLayers(layers, top) {
  const total = layers.reduce((a, l) => a + l.ms, 0);
  const rows = [...layers].sort((a, b) => b.ms - a.ms).slice(0, top)
    .map((l) => ({ ...l, share: `${((100 * l.ms) / total).toFixed(1)}%` }));
  return { total, count: layers.length, rows };
}
