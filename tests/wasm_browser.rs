//! The same wasm tests as `tests/wasm.rs`, run in headless Chromium instead of Node:
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown --test wasm_browser`
//! (`webdriver.json` at the crate root passes Chromium's headless/sandbox flags).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "wasm.rs"]
mod suite;
