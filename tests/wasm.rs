//! The engine compiled to wasm32 (run in Node by wasm-bindgen-test-runner):
//! `cargo test --target wasm32-unknown-unknown --test wasm`.
//!
//! Runs the golden bundles embedded below (an explicit list: a renamed or missing golden file
//! is a compile error here, not a silently skipped test), the Rust-made `tests/data` pair, and
//! the JS-facing `Engine` API, including its web-sys inputs (`ImageData` and canvases where
//! the environment has them: not in Node) and `Engine.load` (fetch).
#![cfg(target_arch = "wasm32")]

mod common;

use common::conv_cases::*;
use common::{Enc, Rng};

use js_sys::{Array, Reflect, Uint8Array};
use sepnet::wasm::Engine;
use sepnet::Model;
use wasm_bindgen::{Clamped, JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, ImageData, OffscreenCanvas,
    OffscreenCanvasRenderingContext2d,
};

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

/// Whether the global object has `name` (Node has no `ImageData` or canvases).
fn has_global(name: &str) -> bool {
    Reflect::has(&js_sys::global(), &name.into()).unwrap()
}

/// `(index, probability)` of a classification's `top` list: what must agree between inputs
/// (timings never do).
fn top_of(result: &JsValue) -> Vec<(f64, f64)> {
    Array::from(&get(result, "top"))
        .iter()
        .map(|p| {
            let n = |k| get(&p, k).as_f64().unwrap();
            (n("index"), n("probability"))
        })
        .collect()
}

/// An opaque (alpha 255, so canvases store it unpremultiplied and exactly) pixel pattern.
fn pattern(width: u32, height: u32) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                (x * 37 + y * 11) as u8,
                ((x * 5) ^ (y * 29)) as u8,
                (x * y * 3 + 64) as u8,
                255,
            ]
        })
        .collect()
}

#[wasm_bindgen_test]
fn classify_image_data_and_canvas_match_rgba() {
    let engine = Engine::new(DATA.1).unwrap();
    let (w, h) = (23, 17);
    let pixels = pattern(w, h);
    let expected = top_of(&engine.classify_rgba(&pixels, w, h, 5).unwrap());
    assert_eq!(expected.len(), 5);

    // Wrong arguments are errors in every environment (the instanceof checks never throw).
    for wrong in [
        JsValue::from(5),
        JsValue::NULL,
        js_sys::Object::new().into(),
    ] {
        assert!(engine.classify_canvas(&wrong, 5).is_err());
        assert!(engine
            .classify_image_data(wrong.unchecked_ref::<ImageData>(), 5)
            .is_err());
    }

    if !has_global("ImageData") {
        return; // Node: no ImageData, so no canvases either
    }
    let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&pixels), w, h).unwrap();
    assert_eq!(
        top_of(&engine.classify_image_data(&image, 5).unwrap()),
        expected
    );

    if has_global("OffscreenCanvas") {
        let canvas = OffscreenCanvas::new(w, h).unwrap();
        let ctx: OffscreenCanvasRenderingContext2d =
            canvas.get_context("2d").unwrap().unwrap().unchecked_into();
        ctx.put_image_data(&image, 0.0, 0.0).unwrap();
        assert_eq!(
            top_of(&engine.classify_canvas(&canvas, 5).unwrap()),
            expected
        );
        let empty = OffscreenCanvas::new(0, 0).unwrap();
        assert!(engine.classify_canvas(&empty, 5).is_err());
    }
    if has_global("document") {
        let document = web_sys::window().unwrap().document().unwrap();
        let canvas: HtmlCanvasElement = document.create_element("canvas").unwrap().unchecked_into();
        canvas.set_width(w);
        canvas.set_height(h);
        let ctx: CanvasRenderingContext2d =
            canvas.get_context("2d").unwrap().unwrap().unchecked_into();
        ctx.put_image_data(&image, 0.0, 0.0).unwrap();
        assert_eq!(
            top_of(&engine.classify_canvas(&canvas, 5).unwrap()),
            expected
        );
        // A DOM element that is not a canvas: an error too.
        let div = document.create_element("div").unwrap();
        assert!(engine.classify_canvas(&div, 5).is_err());
    }
}

/// Standard padded base64, for `data:` URLs.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

async fn load_err(url: &str) -> String {
    match Engine::load(url.to_owned()).await {
        Ok(_) => panic!("Engine.load({url}) succeeded"),
        Err(e) => JsValue::from(e)
            .unchecked_into::<js_sys::Error>()
            .message()
            .into(),
    }
}

/// One test so that the temporary `fetch` stub below cannot overlap another fetch.
#[wasm_bindgen_test]
async fn engine_load() {
    let (name, model, _) = GOLDEN[0];
    let file_bytes = |e: &Engine| get(&e.info().unwrap(), "file_bytes").as_f64();

    let data_url = format!("data:application/octet-stream;base64,{}", base64(model));
    let engine = Engine::load(data_url)
        .await
        .unwrap_or_else(|_| panic!("{name} from data:"));
    assert_eq!(file_bytes(&engine), Some(model.len() as f64));

    // Blob URLs: Node 20 fetches these too.
    let parts = Array::of1(&Uint8Array::from(model));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    let blob_url = web_sys::Url::create_object_url_with_blob(&blob).unwrap();
    let engine = Engine::load(blob_url.clone())
        .await
        .unwrap_or_else(|_| panic!("{name} from blob:"));
    web_sys::Url::revoke_object_url(&blob_url).unwrap();
    assert_eq!(file_bytes(&engine), Some(model.len() as f64));

    let garbage = format!(
        "data:application/octet-stream;base64,{}",
        base64(b"not a model")
    );
    assert!(!load_err(&garbage).await.is_empty());
    // A revoked blob URL cannot be fetched.
    assert!(load_err(&blob_url).await.contains("could not download"));

    if has_global("document") {
        // The test runner's server answers 404 for a missing file.
        let msg = load_err("/definitely-not-here.sepnet").await;
        assert!(msg.contains("HTTP 404"), "{msg}");
    } else {
        // Node: no base URL, so a relative URL cannot be fetched at all.
        assert!(load_err("/definitely-not-here.sepnet")
            .await
            .contains("could not download"));
    }

    // A body shorter than its Content-Length (a stub fetch: servers cannot be scripted here).
    let global = js_sys::global();
    let real_fetch = Reflect::get(&global, &"fetch".into()).unwrap();
    let stub = js_sys::Function::new_with_args(
        "",
        "return Promise.resolve(new Response(new Uint8Array(100), \
         {headers: {'Content-Type': 'application/octet-stream', 'Content-Length': '200'}}))",
    );
    Reflect::set(&global, &"fetch".into(), &stub).unwrap();
    let truncated = load_err("https://example.invalid/m.sepnet").await;
    Reflect::set(&global, &"fetch".into(), &real_fetch).unwrap();
    assert!(
        truncated.contains("truncated") && truncated.contains("100 of 200"),
        "{truncated}"
    );
}

#[wasm_bindgen_test]
fn simd128_micro_kernel_is_an_in_order_dot_product() {
    use sepnet::kernels::gemm::{micro_kernel_name, wasm32_simd128_f32_4x8};
    assert_eq!(micro_kernel_name(), "wasm32_simd128_f32_4x8");
    let depths = [1, 2, 3, 9, 72, 576, 1153];
    assert_micro_kernel_is_in_order_dot(wasm32_simd128_f32_4x8, &mut Rng::new(7), &depths);
}

/// The SIMD128 packed convolution equals the scalar reference bit for bit on the native
/// property tests' random shapes (odd channels, groups, strides, paddings, kernels 1/3/5, ragged
/// tiles, wide strided rows), all three encodings, with and without a fused ReLU.
#[wasm_bindgen_test]
fn simd128_packed_conv_matches_scalar() {
    let mut rng = Rng::new(11);
    for case in 0..90 {
        let enc = [Enc::F32, Enc::Int8, Enc::Pattern][case % 3];
        let g = match case % 3 {
            0 => random_conv(&mut rng),
            1 => random_layer(&mut rng),
            _ => random_strided_layer(&mut rng),
        };
        let c = ConvCase::new(&mut rng, enc, g);
        assert_same_bits(
            &c.run_packed(false),
            &c.run_scalar(),
            &format!("simd128 {enc:?} {g:?}"),
        );
        assert_same_bits(
            &c.run_packed(true),
            &c.run_scalar_relu(),
            &format!("simd128 {enc:?} {g:?} with a fused ReLU"),
        );
    }
}

/// The SIMD128 max pool (`f32x4.pmax`, strided rows split into phases) equals the scalar
/// reference bit for bit, NaNs, signed zeros and infinities included.
#[wasm_bindgen_test]
fn simd128_maxpool_matches_scalar() {
    assert_maxpool_matches_scalar(&mut Rng::new(13), 300);
}

/// Whole networks: the fast kernels' logits and activations equal the reference kernels'.
#[wasm_bindgen_test]
fn fast_and_reference_kernels_agree_on_golden_models() {
    use sepnet::{Kernels, Tensor};
    for (name, bytes, _) in GOLDEN {
        let fast = Model::from_bytes(bytes).unwrap();
        let reference = Model::from_bytes(bytes)
            .unwrap()
            .with_kernels(Kernels::Reference)
            .unwrap();
        let [c, h, w] = fast.input_shape();
        let x = Rng::new(3).f32s(2 * c * h * w);
        let input = Tensor::new(vec![2, c, h, w], x).unwrap();
        let a = fast.run(&input).unwrap().logits;
        let b = reference.run(&input).unwrap().logits;
        assert_eq!(a.data(), b.data(), "{name}");
    }
}
