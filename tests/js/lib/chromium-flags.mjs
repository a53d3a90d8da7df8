// The system Chromium and the flags every headless run here uses (tests, screenshots, bench/).
// No imports, so packages with their own node_modules (bench/) can share it.
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const BASE_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
