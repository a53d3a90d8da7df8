//! JavaScript bindings (wasm32 only): a thin [`Engine`] wrapper around [`Model`].
//!
//! No model logic lives here; it only converts arguments and results. Results are plain JS
//! objects with snake_case keys (serialised with `serde_wasm_bindgen`'s JSON-compatible
//! serializer, so maps become objects and numbers stay numbers); errors become `JsError`s with
//! the engine's one-line message.
//!
//! Besides raw bytes, it takes browser objects through `web-sys` (`ImageData`, canvases) and
//! can download a model itself with the global `fetch` ([`Engine::load`]); these only read
//! pixels or bytes out of the JS objects and hand them to the same [`Model`] calls.

use js_sys::{Reflect, Uint8Array, Uint8ClampedArray};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, ImageData, OffscreenCanvas,
    OffscreenCanvasRenderingContext2d, Response, Window, WorkerGlobalScope,
};

use crate::{LayerTiming, Model, Prediction, Tensor};

/// Routes Rust panics to `console.error` (a last resort: the engine returns errors instead).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// A loaded model.
#[wasm_bindgen]
pub struct Engine {
    model: Model,
}

#[derive(Serialize)]
struct RunResult<'a> {
    logits: &'a [f32],
    /// `[N, K]`
    shape: &'a [usize],
    timings: &'a [LayerTiming],
    total_ms: f64,
}

#[derive(Serialize)]
struct ClassifyResult<'a> {
    top: &'a [Prediction],
    timings: &'a [LayerTiming],
    total_ms: f64,
    preprocess_ms: f64,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A thrown JS value as text: `Name: message` for errors (DOMExceptions included), with the
/// `cause` appended because Node's fetch only says "fetch failed" and keeps the reason there.
fn describe(e: &JsValue) -> String {
    let Some(err) = e.dyn_ref::<js_sys::Error>() else {
        return e.as_string().unwrap_or_else(|| "a non-Error value".into());
    };
    let mut text = String::from(err.to_string());
    if let Some(cause) = err.cause().dyn_ref::<js_sys::Error>() {
        text = format!("{text} ({})", String::from(cause.to_string()));
    }
    text
}

/// `context: <the JS exception>` as a `JsError`.
fn js_exception(context: &str, e: JsValue) -> JsError {
    JsError::new(&format!("{context}: {}", describe(&e)))
}

/// A URL fit for an error message: `data:` URLs can be megabytes long.
fn short_url(url: &str) -> String {
    let mut end = url.len().min(100);
    while !url.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < url.len() { "…" } else { "" };
    format!("{}{more}", &url[..end])
}

/// The pixels of a canvas's 2d context, as `ImageData`.
///
/// `dyn_ref` is an `instanceof` test that wasm-bindgen wraps in try/catch, so a class the
/// environment lacks (`OffscreenCanvas` in Node or older browsers, any canvas in Node) is a
/// non-match, not an exception.
fn canvas_image_data(canvas: &JsValue) -> Result<ImageData, JsError> {
    const NO_2D: &str = "the canvas has no 2d context (is it already in use by WebGL/WebGPU?)";
    let checked = |w: u32, h: u32| {
        // getImageData would throw an IndexSizeError; say what is wrong instead.
        if w == 0 || h == 0 {
            return Err(JsError::new(&format!("the canvas is empty ({w}×{h})")));
        }
        Ok((f64::from(w), f64::from(h)))
    };
    let read_failed = |e| js_exception("could not read the canvas pixels", e);
    if let Some(c) = canvas.dyn_ref::<HtmlCanvasElement>() {
        let (w, h) = checked(c.width(), c.height())?;
        let ctx = c
            .get_context("2d")
            .map_err(|e| js_exception("getContext('2d') failed", e))?
            .and_then(|ctx| ctx.dyn_into::<CanvasRenderingContext2d>().ok())
            .ok_or_else(|| JsError::new(NO_2D))?;
        ctx.get_image_data(0.0, 0.0, w, h).map_err(read_failed)
    } else if let Some(c) = canvas.dyn_ref::<OffscreenCanvas>() {
        let (w, h) = checked(c.width(), c.height())?;
        let ctx = c
            .get_context("2d")
            .map_err(|e| js_exception("getContext('2d') failed", e))?
            .and_then(|ctx| ctx.dyn_into::<OffscreenCanvasRenderingContext2d>().ok())
            .ok_or_else(|| JsError::new(NO_2D))?;
        ctx.get_image_data(0.0, 0.0, w, h).map_err(read_failed)
    } else {
        Err(JsError::new(
            "classify_canvas expects an HTMLCanvasElement or an OffscreenCanvas",
        ))
    }
}

/// Downloads `url` with the global `fetch`, failing on an HTTP error or a truncated body.
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsError> {
    let shown = short_url(url);
    let global = js_sys::global();
    let has_fetch = Reflect::get(&global, &"fetch".into()).is_ok_and(|f| f.is_function());
    if !has_fetch {
        return Err(JsError::new(
            "this JavaScript environment has no global fetch()",
        ));
    }
    let request = match global.dyn_ref::<WorkerGlobalScope>() {
        Some(worker) => worker.fetch_with_str(url),
        // A Window, or any other global with a WHATWG fetch (Node 18+): web-sys's bindings
        // call `fetch` as a method of the object given (they are structural), so the Window
        // binding serves every global that has one.
        None => global.unchecked_ref::<Window>().fetch_with_str(url),
    };
    let response: Response = JsFuture::from(request)
        .await
        .map_err(|e| js_exception(&format!("could not download {shown}"), e))?
        .dyn_into()
        .map_err(|_| JsError::new("fetch() resolved to something other than a Response"))?;
    if !response.ok() {
        let text = response.status_text();
        let sep = if text.is_empty() { "" } else { " " };
        return Err(JsError::new(&format!(
            "could not download {shown}: HTTP {}{sep}{text}",
            response.status()
        )));
    }
    let headers = response.headers();
    let header = |name| headers.get(name).ok().flatten();
    // Under a content coding (gzip, br) Content-Length counts the encoded bytes, while the
    // body arrives decoded: only an identity body can be compared with it.
    let declared = match header("content-encoding").as_deref() {
        None | Some("identity") => {
            header("content-length").and_then(|v| v.trim().parse::<u64>().ok())
        }
        Some(_) => None,
    };
    let body = response
        .array_buffer()
        .map_err(|e| js_exception(&format!("could not read the download of {shown}"), e))?;
    let body = JsFuture::from(body)
        .await
        .map_err(|e| js_exception(&format!("the download of {shown} broke off (truncated)"), e))?;
    let bytes = Uint8Array::new(&body).to_vec();
    match declared {
        Some(total) if bytes.len() as u64 != total => Err(JsError::new(&format!(
            "truncated download of {shown}: received {} of {total} bytes (Content-Length)",
            bytes.len()
        ))),
        _ => Ok(bytes),
    }
}

#[wasm_bindgen]
impl Engine {
    /// Parses and validates a `.sepnet` file.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<Engine, JsError> {
        console_error_panic_hook::set_once();
        Model::from_bytes(bytes)
            .map(|model| Engine { model })
            .map_err(js_err)
    }

    /// Downloads (with the global `fetch`: windows, workers, Node 18+) and validates a
    /// `.sepnet` model. Rejects on a network error, an HTTP error status (named in the
    /// message), a body shorter or longer than its `Content-Length`, or an invalid model.
    /// A lean alternative to the JS layer's `Classifier.load` (no progress, no cache).
    pub async fn load(url: String) -> Result<Engine, JsError> {
        console_error_panic_hook::set_once();
        let bytes = fetch_bytes(&url).await?;
        Engine::new(&bytes)
    }

    /// `{model, variant, dataset, trained, accuracy, params, file_bytes, weight_bytes, macs,
    /// labels, input: {name, channels, height, width}, preprocess, layers: [{name, op, shape,
    /// params, bytes, macs, encoding?}], ...}`
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.model.info())
    }

    /// Runs `data` (row-major, of `shape = [N, C, H, W]`); returns
    /// `{logits: number[] (N·K), shape: [N, K], timings: [{layer, op, ms, fused}], total_ms}`.
    pub fn run(&self, data: &[f32], shape: Vec<u32>) -> Result<JsValue, JsError> {
        let shape = shape.into_iter().map(|d| d as usize).collect();
        let input = Tensor::new(shape, data.to_vec()).map_err(js_err)?;
        let out = self.model.run(&input).map_err(js_err)?;
        to_js(&RunResult {
            logits: out.logits.data(),
            shape: out.logits.shape(),
            timings: &out.timings,
            total_ms: out.total_ms,
        })
    }

    /// Classifies RGBA pixels (`width·height·4` bytes, e.g. `ImageData.data`); returns
    /// `{top: [{index, label, probability}], timings: [{layer, op, ms, fused}], total_ms, preprocess_ms}`.
    pub fn classify_rgba(
        &self,
        data: &[u8],
        width: u32,
        height: u32,
        top_k: u32,
    ) -> Result<JsValue, JsError> {
        let c = self
            .model
            .classify_rgba(data, width, height, top_k as usize)
            .map_err(js_err)?;
        to_js(&ClassifyResult {
            top: &c.top,
            timings: &c.timings,
            total_ms: c.total_ms,
            preprocess_ms: c.preprocess_ms,
        })
    }

    /// Classifies an `ImageData` (as [`Engine::classify_rgba`] on its `data`, `width`, `height`).
    pub fn classify_image_data(&self, image: &ImageData, top_k: u32) -> Result<JsValue, JsError> {
        // wasm-bindgen does not type-check imported classes at the boundary, so a wrong value
        // would make the `data` getter's glue throw through the wasm frames; check it first.
        // Anything with a Uint8ClampedArray `data` passes (ImageData, or a look-alike in Node).
        let data = Reflect::get(image, &"data".into()).unwrap_or(JsValue::UNDEFINED);
        if !data.is_instance_of::<Uint8ClampedArray>() {
            return Err(JsError::new(
                "classify_image_data expects an ImageData (a Uint8ClampedArray `data`)",
            ));
        }
        self.classify_rgba(&image.data(), image.width(), image.height(), top_k)
    }

    /// Classifies what is drawn on an `HTMLCanvasElement` or `OffscreenCanvas` (read with its
    /// 2d context's `getImageData(0, 0, width, height)`); any other value is an error.
    pub fn classify_canvas(&self, canvas: &JsValue, top_k: u32) -> Result<JsValue, JsError> {
        self.classify_image_data(&canvas_image_data(canvas)?, top_k)
    }
}
