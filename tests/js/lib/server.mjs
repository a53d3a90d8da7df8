// A tiny static file server for the browser tests: serves a root folder plus mounted folders,
// with correct MIME types (application/wasm matters for streaming compilation) and per-test
// overrides (a 404, garbage bytes, a truncated body) that work for every requester, including
// the page's Web Worker and service worker.

import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.sepnet': 'application/octet-stream',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * @param {{root: string, mounts?: Record<string, string>}} options mounts: URL prefix → folder
 * @returns {Promise<{url: string, overrides: Map<string, Function>, close: () => Promise<void>}>}
 */
export async function startServer({ root, mounts = {} }) {
  const overrides = new Map(); // URL path → (req, res) => void
  const prefixes = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);

  function resolve(urlPath) {
    for (const [prefix, dir] of prefixes) {
      if (urlPath.startsWith(prefix)) return [dir, urlPath.slice(prefix.length)];
    }
    return [root, urlPath.slice(1)];
  }

  const server = http.createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const override = overrides.get(urlPath);
    if (override) return override(req, res);
    const [base, rel] = resolve(urlPath);
    let file = path.resolve(base, rel);
    if (!file.startsWith(path.resolve(base))) {
      res.writeHead(403).end();
      return;
    }
    try {
      if ((await fs.stat(file)).isDirectory()) file = path.join(file, 'index.html');
      const body = await fs.readFile(file);
      res.writeHead(200, {
        'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
        'Content-Length': body.length,
        'Cache-Control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${urlPath}`);
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    overrides,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}
