// Launching the system Chromium through playwright-core (nothing downloads a browser).
import { chromium } from 'playwright-core';
import { BASE_ARGS, CHROMIUM } from './chromium-flags.mjs';

export { CHROMIUM };

export function launch(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...extraArgs] });
}
