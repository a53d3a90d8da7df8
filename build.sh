#!/usr/bin/env bash
# sepnet build entry point.
#   ./build.sh            build the wasm package into pkg/ and the page's copy in www/pkg/
#   ./build.sh serve      build, then serve www/ on http://localhost:${PORT:-8080}
#   ./build.sh test       install whatever is missing, then run every test suite
#   ./build.sh setup      only install what is missing (toolchain target, CLIs, packages, browser)
#   ./build.sh bench      build, then time sepnet against onnxruntime-web in headless Chromium
#                         (docs/BENCHMARKS.md; extra arguments go to bench/run.mjs)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate version pinned in Cargo.toml
BINARYEN_VERSION=132.0.0       # wasm-opt, from the npm registry
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

setup_rust() {
  if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! command -v wasm-bindgen >/dev/null || [[ "$(wasm-bindgen --version)" != *"$WASM_BINDGEN_VERSION"* ]]; then
    log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

setup_python() {
  # Reinstall when sepnet_train is missing or is another checkout's editable install.
  if ! python3 - "$ROOT/train" 2>/dev/null <<'PY'
import pathlib, sys
import torch, torchvision, safetensors, onnxruntime, onnx, onnxscript, pytest, scipy, tqdm, matplotlib, sepnet_train
here = pathlib.Path(sys.argv[1]).resolve()
sys.exit(0 if here in pathlib.Path(sepnet_train.__file__).resolve().parents else 1)
PY
  then
    log "installing the Python pipeline (train/) and its test dependencies"
    python3 -m pip install --quiet -e "train[test]"
  fi
}

setup_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Debian's chromium and chromium-driver"
    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null
  fi
  if [[ -f tests/js/package.json ]] && [[ ! -d tests/js/node_modules ]]; then
    log "installing the browser/package test dependencies (npm ci)"
    (cd tests/js && npm ci --no-audit --no-fund)
  fi
}

build_wasm() {
  setup_rust
  log "building the engine for wasm32 (+simd128)"
  cargo build --release --target wasm32-unknown-unknown --lib
  rm -rf pkg
  mkdir -p pkg
  wasm-bindgen --target web --out-dir pkg --out-name sepnet_wasm \
    target/wasm32-unknown-unknown/release/sepnet.wasm
  # binaryen's optimizer (from npm: Debian's binaryen 108 miscompiles wasm-bindgen's externref
  # table): about 12% smaller gzipped. The enabled features are the ones rustc emits.
  log "optimizing with wasm-opt (binaryen $BINARYEN_VERSION)"
  npx --yes -p "binaryen@$BINARYEN_VERSION" wasm-opt -O3 --enable-simd --enable-bulk-memory \
    --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
    --enable-multivalue --enable-reference-types pkg/sepnet_wasm_bg.wasm -o pkg/sepnet_wasm_bg.wasm
  if [[ -d js ]]; then cp -r js/. pkg/; fi   # the hand-written thin JS layer, package.json, README
  rm -rf www/pkg
  cp -r pkg www/pkg
  local raw gz
  raw=$(stat -c %s pkg/sepnet_wasm_bg.wasm)
  gz=$(cat pkg/sepnet_wasm_bg.wasm pkg/sepnet_wasm.js | gzip -9 | wc -c)
  all=$(cat pkg/sepnet_wasm_bg.wasm pkg/*.js | gzip -9 | wc -c)
  log "pkg/ ready: wasm ${raw} bytes; gzipped: wasm + wasm-bindgen glue ${gz} bytes, with the whole JS layer ${all} bytes"
  PKG_GZIP_BYTES=$gz
}

run_tests() {
  setup_rust
  setup_python
  setup_browser
  log "pytest (train/)"
  (cd train && python3 -m pytest -q)
  log "cargo test (native engine + CLI)"
  cargo test --features cli
  log "engine vs PyTorch accuracy on 1,000 validation images (every trained CIFAR-10 model)"
  cargo build --release --features cli
  (cd train && python3 -m sepnet_train.check_engine --sepnet-bin "$ROOT/target/release/sepnet" --per-class 100)
  log "wasm tests (wasm-bindgen-test in Node)"
  cargo test --target wasm32-unknown-unknown --test wasm
  log "wasm tests (wasm-bindgen-test in headless Chromium)"
  CHROMEDRIVER=$(command -v chromedriver) cargo test --target wasm32-unknown-unknown --test wasm_browser
  build_wasm
  log "size budget (issue 4): the wasm engine plus its wasm-bindgen JS glue, gzipped, under 150 kB"
  if (( PKG_GZIP_BYTES > 150000 )); then
    echo "wasm + glue is ${PKG_GZIP_BYTES} bytes gzipped: over the 150,000-byte budget" >&2; exit 1
  fi
  if [[ -f tests/js/package.json ]]; then
    log "package and browser tests (Node, Vite, Chromium)"
    (cd tests/js && npm test)
  fi
  log "all test suites passed"
}

bench() {
  setup_python
  setup_browser
  build_wasm
  [[ -d bench/node_modules ]] || (cd bench && npm ci --no-audit --no-fund)
  bench/prepare.sh
  (cd bench && node run.mjs "$@")
}

serve() {
  build_wasm
  local port=${PORT:-8080}
  log "serving www/ on http://localhost:${port}"
  exec python3 -m http.server "$port" --bind 127.0.0.1 --directory www
}

case "${1:-build}" in
  build) build_wasm ;;
  serve) serve ;;
  test) run_tests ;;
  setup) setup_rust; setup_python; setup_browser ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: $0 [build|serve|test|setup|bench]" >&2; exit 2 ;;
esac
