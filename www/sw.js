// Service worker: makes the page work offline after one visit.
// Install pre-caches the app shell, the engine and the default model; fetches go to the network
// first (so new builds and re-exported models show up at once) and fall back to the cache.
// Bump VERSION when the shell's file list changes; activate deletes every older cache.

const VERSION = 'v1';
const PREFIX = 'sepnet-www-';
const CACHE = `${PREFIX}${VERSION}`;

const SHELL = [
  './',
  'index.html',
  'style.css',
  'app.js',
  'pkg/index.js',
  'pkg/worker.js',
  'pkg/worker-script.js',
  'pkg/source.js',
  'pkg/errors.js',
  'pkg/sepnet_wasm.js',
  'pkg/sepnet_wasm_bg.wasm',
];
const SAMPLES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'].map(
  (n) => `samples/${n}.jpg`,
);

const fresh = (url) => new Request(url, { cache: 'reload' }); // bypass the HTTP cache

/** The manifest and its default model; optional, so a missing manifest never blocks install. */
async function precacheModels(cache) {
  try {
    const res = await fetch(fresh('models/manifest.json'));
    if (!res.ok) return;
    await cache.put('models/manifest.json', res.clone());
    const { models = [] } = await res.json();
    const entry = models.find((m) => m.default) ?? models[0];
    if (entry?.file) await cache.add(fresh(`models/${entry.file}`));
  } catch {
    // offline during install, or a bad manifest: the shell still works
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL.map(fresh));
      await Promise.all([precacheModels(cache), cache.addAll(SAMPLES.map(fresh)).catch(() => {})]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n)));
      await self.clients.claim(); // control the already open page, so it works offline without a reload
    })(),
  );
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.status === 200 && response.type === 'basic') {
      // Keep a copy of everything good, so whatever was used once works offline too.
      cache.put(request, response.clone()).catch(() => {});
    }
    return response;
  } catch (err) {
    const cached =
      (await cache.match(request, { ignoreVary: true })) ??
      (request.mode === 'navigate' ? await cache.match('index.html') : undefined);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.headers.has('range')) return; // partial responses cannot be cached
  event.respondWith(networkFirst(request));
});
