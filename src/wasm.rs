//! JavaScript bindings (wasm32 only): a thin [`Engine`] wrapper around [`Model`].
//!
//! No model logic lives here; it only converts arguments and results. Results are plain JS
//! objects with snake_case keys (serialised with `serde_wasm_bindgen`'s JSON-compatible
//! serializer, so maps become objects and numbers stay numbers); errors become `JsError`s with
//! the engine's one-line message.

use serde::Serialize;
use wasm_bindgen::prelude::*;

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

    /// `{model, variant, dataset, trained, accuracy, params, file_bytes, weight_bytes, macs,
    /// labels, input: {name, channels, height, width}, preprocess, layers: [{name, op, shape,
    /// params, bytes, macs, encoding?}], ...}`
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.model.info())
    }

    /// Runs `data` (row-major, of `shape = [N, C, H, W]`); returns
    /// `{logits: number[] (N·K), shape: [N, K], timings: [{layer, op, ms}], total_ms}`.
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
    /// `{top: [{index, label, probability}], timings: [{layer, op, ms}], total_ms, preprocess_ms}`.
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
}
