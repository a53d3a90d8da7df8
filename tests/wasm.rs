//! The engine compiled to wasm32 (run in Node by wasm-bindgen-test-runner):
//! `cargo test --target wasm32-unknown-unknown --test wasm`.
//!
//! Runs the golden bundles embedded below (an explicit list: a renamed or missing golden file
//! is a compile error here, not a silently skipped test), the Rust-made `tests/data` pair, and
//! the JS-facing `Engine` API.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Reflect};
use sepnet::wasm::Engine;
use sepnet::Model;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

macro_rules! pair {
    ($dir:literal, $name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/",
                $dir,
                "/",
                $name,
                ".sepnet"
            )) as &[u8],
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/",
                $dir,
                "/",
                $name,
                ".bundle.safetensors"
            )) as &[u8],
        )
    };
}

/// Golden pairs written by `python -m sepnet_train.golden` (tests/golden/).
const GOLDEN: &[(&str, &[u8], &[u8])] = &[
    pair!("golden", "tiny-b"),
    pair!("golden", "resnet20-r"),
    pair!("golden", "resnet20-b"),
    pair!("golden", "resnet20-bq"),
    pair!("golden", "sepnet_cifar-r"),
    pair!("golden", "sepnet_cifar-b"),
    pair!("golden", "sepnet_cifar-bq"),
];

/// The Rust-made pair (tests/data/, see tests/golden.rs).
const DATA: (&str, &[u8], &[u8]) = pair!("data", "tiny");

const TOLERANCE: f64 = 1e-4;

fn check(name: &str, model: &[u8], bundle: &[u8]) {
    let model = Model::from_bytes(model).unwrap_or_else(|e| panic!("{name}: {e}"));
    let report = model
        .check_bundle(bundle)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for c in &report.checks {
        assert!(
            c.rel_diff <= TOLERANCE,
            "{name}: `{}` deviates by {:.3e} relative",
            c.name,
            c.rel_diff
        );
    }
}

#[wasm_bindgen_test]
fn golden_bundles_match() {
    for (name, model, bundle) in GOLDEN {
        check(name, model, bundle);
    }
}

#[wasm_bindgen_test]
fn data_bundle_matches() {
    check(DATA.0, DATA.1, DATA.2);
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

#[wasm_bindgen_test]
fn garbage_is_an_error() {
    assert!(Engine::new(b"").is_err());
    assert!(Engine::new(b"definitely not a model").is_err());
    let mut truncated = DATA.1.to_vec();
    truncated.truncate(truncated.len() / 2);
    assert!(Engine::new(&truncated).is_err());
}

#[wasm_bindgen_test]
fn engine_api_shapes() {
    let engine = Engine::new(DATA.1).unwrap();

    let info = engine.info().unwrap();
    assert_eq!(Array::from(&get(&info, "labels")).length(), 5);
    assert!(get(&info, "params").as_f64().unwrap() > 0.0);
    assert_eq!(get(&info, "file_bytes").as_f64(), Some(DATA.1.len() as f64));
    assert_eq!(get(&get(&info, "input"), "channels").as_f64(), Some(3.0));
    let layers = Array::from(&get(&info, "layers"));
    assert_eq!(layers.length(), 16);
    assert_eq!(
        get(&layers.get(0), "op").as_string().as_deref(),
        Some("conv2d")
    );

    let input = vec![0.25f32; 2 * 3 * 9 * 11];
    let out = engine.run(&input, vec![2, 3, 9, 11]).unwrap();
    assert_eq!(Array::from(&get(&out, "logits")).length(), 10);
    let shape = Array::from(&get(&out, "shape"));
    assert_eq!(
        (shape.get(0).as_f64(), shape.get(1).as_f64()),
        (Some(2.0), Some(5.0))
    );
    let timings = Array::from(&get(&out, "timings"));
    assert_eq!(timings.length(), 16);
    let ms = get(&timings.get(0), "ms").as_f64().unwrap();
    assert!(ms.is_finite() && ms >= 0.0);
    assert!(get(&out, "total_ms").as_f64().unwrap() >= 0.0);
    assert!(engine.run(&input, vec![1, 3, 9, 11]).is_err());

    let pixels = vec![128u8; 40 * 30 * 4];
    let c = engine.classify_rgba(&pixels, 40, 30, 3).unwrap();
    let top = Array::from(&get(&c, "top"));
    assert_eq!(top.length(), 3);
    let first = top.get(0);
    assert!(get(&first, "label").as_string().is_some());
    assert!(get(&first, "probability").as_f64().unwrap() > 0.0);
    assert!(engine.classify_rgba(&pixels, 41, 30, 3).is_err());
}
