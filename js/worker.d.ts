// Types of `sepnet/worker`: the Classifier API, run in a dedicated Worker.
import type {
  Classification,
  ClassifyOptions,
  ImageSource,
  LoadOptions,
  ModelInfo,
  ModelSource,
} from './index.js';

export { ErrorCode, SepnetError } from './index.js';
export type * from './index.js';

export interface WorkerLoadOptions extends LoadOptions {
  /** Where the worker script is, when a bundler or CDN moved `worker-script.js`. */
  workerUrl?: string | URL;
}

/** Same methods as `Classifier`, but asynchronous and off the main thread. */
export declare class WorkerClassifier {
  private constructor();
  static load(source: ModelSource, options?: WorkerLoadOptions): Promise<WorkerClassifier>;
  info(): ModelInfo;
  readonly labels: string[];
  classify(source: ImageSource, options?: ClassifyOptions): Promise<Classification>;
  runTensor(data: Float32Array | ArrayLike<number>, shape: number[]): Promise<Float32Array>;
  /** Terminates the worker; pending calls reject with code `DISPOSED`. */
  dispose(): void;
}
