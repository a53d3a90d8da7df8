// The script inside the Worker started by WorkerClassifier. It owns one Classifier and answers
// `{id, type, ...}` messages strictly in arrival order (later messages wait for earlier ones,
// so a classify sent right after a load sees the new model).

import { Classifier } from './index.js';
import { ErrorCode, SepnetError, wrapError } from './errors.js';
import { fromTransfer } from './source.js';

let classifier = null;
let queue = Promise.resolve();

function need() {
  if (!classifier) throw new SepnetError(ErrorCode.DISPOSED, 'no model is loaded in the worker');
  return classifier;
}

async function handle(msg) {
  const { id, type } = msg;
  try {
    let result;
    let transfer = [];
    switch (type) {
      case 'load': {
        const next = await Classifier.load(msg.source, {
          cache: msg.cache,
          wasmUrl: msg.wasmUrl,
          warmup: msg.warmup,
          onProgress: ({ loaded, total }) => self.postMessage({ id, type: 'progress', loaded, total }),
        });
        classifier?.dispose();
        classifier = next;
        result = next.info();
        break;
      }
      case 'classify': {
        const c = need();
        const px = await fromTransfer(msg.image, msg.maxShortSide);
        result = c.classifyPixels(px.data, px.width, px.height, { topK: msg.topK });
        break;
      }
      case 'run': {
        result = need().runTensor(msg.data, msg.shape);
        transfer = [result.buffer];
        break;
      }
      default:
        throw new SepnetError(ErrorCode.WORKER, `unknown request ${type}`);
    }
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (e) {
    const err = wrapError(e, ErrorCode.WORKER);
    self.postMessage({ id, ok: false, error: { code: err.code, message: err.message } });
  }
}

self.addEventListener('message', (event) => {
  queue = queue.then(() => handle(event.data));
});
