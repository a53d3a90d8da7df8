//! sepnet: the inference engine for SEP-Nets (binary "pattern" convolutions and int8 weights),
//! built for the browser via WebAssembly and for the command line.
//!
//! The crate is layered one way; each layer uses only those before it:
//! [`error`], [`tensor`], [`clock`] → [`kernels`], [`preprocess`] → [`format`](mod@format) (parse and
//! validate a `.sepnet` file into a [`format::Graph`]) → [`graph`] (the executor) → [`bundle`]
//! (golden checks) → this module's [`Model`] API → `wasm` (thin JS bindings, wasm32 only) and
//! the `sepnet` CLI (feature `cli`).
//!
//! ```no_run
//! # fn main() -> sepnet::Result<()> {
//! let bytes = std::fs::read("model.sepnet")?;
//! let model = sepnet::Model::from_bytes(&bytes)?;
//! let [c, h, w] = model.input_shape();
//! let input = sepnet::Tensor::zeros(vec![1, c, h, w])?;
//! let out = model.run(&input)?;
//! println!("{:?}", sepnet::top_k(out.logits.data(), 5));
//! # Ok(())
//! # }
//! ```

pub mod bundle;
pub mod clock;
pub mod error;
pub mod format;
pub mod graph;
pub mod kernels;
pub mod preprocess;
pub mod tensor;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

use serde::Serialize;

pub use bundle::{BundleReport, TensorCheck};
pub use clock::Clock;
pub use error::{Error, Result};
pub use format::{Accuracy, Graph, Provenance};
pub use graph::{Kernels, LayerTiming};
pub use preprocess::{PixelLayout, Preprocess};
pub use tensor::Tensor;

/// A loaded, validated model. Running it can only fail on a wrong-shaped input.
#[derive(Debug, Clone)]
pub struct Model {
    graph: Graph,
    plan: graph::Plan,
    clock: Clock,
}

/// Result of [`Model::run`].
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Graph output, `[N, K]`.
    pub logits: Tensor,
    /// Per-node wall time, in execution order.
    pub timings: Vec<LayerTiming>,
    pub total_ms: f64,
}

/// One entry of a top-k answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub probability: f32,
}

/// Result of [`Model::classify_rgba`] / [`Model::classify_rgb`].
#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    /// Most probable classes first.
    pub top: Vec<Prediction>,
    pub timings: Vec<LayerTiming>,
    /// Network time (excludes preprocessing).
    pub total_ms: f64,
    pub preprocess_ms: f64,
}

/// Input description for [`ModelInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// One row of the per-layer table.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub name: String,
    pub op: &'static str,
    /// Output shape of one image, `[C, H, W]` or `[K]`.
    pub shape: Vec<usize>,
    pub params: u64,
    /// Stored bytes of the layer's tensors (weights, scales, bias).
    pub bytes: u64,
    pub macs: u64,
    /// `f32`, `int8` or `pattern` for conv2d/linear; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
}

/// Everything a UI or the CLI shows about a model. Serialises with snake_case keys.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub model: String,
    pub variant: String,
    pub dataset: String,
    pub trained: bool,
    pub accuracy: Option<Accuracy>,
    pub binarization: Option<String>,
    pub exporter: Option<String>,
    pub created: Option<String>,
    /// Logical weights + biases (a pattern weight counts as one).
    pub params: u64,
    pub file_bytes: u64,
    /// Stored bytes of all referenced tensors.
    pub weight_bytes: u64,
    /// Multiply-accumulates for one image.
    pub macs: u64,
    pub labels: Vec<String>,
    pub input: InputInfo,
    pub preprocess: Preprocess,
    pub layers: Vec<LayerInfo>,
}

impl Model {
    /// Parses and validates a `.sepnet` file.
    /// Uses the fast kernels ([`Kernels::Fast`]); see [`Model::with_kernels`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let graph = format::parse(bytes)?;
        Ok(Model {
            plan: graph::Plan::new(&graph, Kernels::Fast)?,
            graph,
            clock: clock::now_ms,
        })
    }

    /// Switches the convolution kernels (the results are the same bit for bit; the scalar
    /// reference is slower and needs no packed copy of the weights).
    pub fn with_kernels(mut self, kernels: Kernels) -> Result<Model> {
        self.plan = graph::Plan::new(&self.graph, kernels)?;
        Ok(self)
    }

    pub fn kernels(&self) -> Kernels {
        self.plan.kernels()
    }

    /// Replaces the clock used for timings (e.g. [`clock::no_clock`] for reproducible output).
    pub fn with_clock(mut self, clock: Clock) -> Model {
        self.clock = clock;
        self
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn labels(&self) -> &[String] {
        self.graph.labels()
    }

    /// `[C, H, W]` of one input image.
    pub fn input_shape(&self) -> [usize; 3] {
        self.graph.input_shape()
    }

    pub fn info(&self) -> ModelInfo {
        let g = &self.graph;
        let p = g.provenance();
        let layers: Vec<LayerInfo> = g
            .nodes()
            .iter()
            .map(|n| LayerInfo {
                name: n.name.clone(),
                op: n.op.name(),
                shape: n.shape.dims(),
                params: n.params,
                bytes: n.bytes,
                macs: n.macs,
                encoding: match &n.op {
                    format::Op::Conv2d(c) => Some(c.weight.encoding()),
                    format::Op::Linear(l) => Some(l.weight.encoding()),
                    _ => None,
                },
            })
            .collect();
        let [channels, height, width] = g.input_shape();
        ModelInfo {
            model: p.model.clone(),
            variant: p.variant.clone(),
            dataset: p.dataset.clone(),
            trained: p.trained,
            accuracy: p.accuracy.clone(),
            binarization: p.binarization.clone(),
            exporter: p.exporter.clone(),
            created: p.created.clone(),
            params: layers.iter().map(|l| l.params).fold(0, u64::saturating_add),
            file_bytes: g.file_bytes() as u64,
            weight_bytes: layers.iter().map(|l| l.bytes).fold(0, u64::saturating_add),
            macs: layers.iter().map(|l| l.macs).fold(0, u64::saturating_add),
            labels: g.labels().to_vec(),
            input: InputInfo {
                name: g.input_name().to_string(),
                channels,
                height,
                width,
            },
            preprocess: g.preprocess().clone(),
            layers,
        }
    }

    /// Runs the network on `input` `[N, C, H, W]`; returns logits `[N, K]` and timings.
    pub fn run(&self, input: &Tensor) -> Result<RunOutput> {
        self.run_capturing(input, &[]).map(|(out, _)| out)
    }

    /// Like [`Model::run`], also returning copies of the named values `[N, ...]`.
    pub fn run_capturing(
        &self,
        input: &Tensor,
        capture: &[&str],
    ) -> Result<(RunOutput, Vec<(String, Tensor)>)> {
        let e = graph::execute(&self.graph, &self.plan, input, self.clock, capture)?;
        Ok((
            RunOutput {
                logits: e.output,
                timings: e.timings,
                total_ms: e.total_ms,
            },
            e.captured,
        ))
    }

    /// Runs a golden bundle (FORMAT.md section 6) and reports the deviations.
    pub fn check_bundle(&self, bundle: &[u8]) -> Result<BundleReport> {
        bundle::check_bundle(&self.graph, &self.plan, bundle)
    }

    /// Image → `[1, C, H, W]` input tensor (FORMAT.md section 4).
    pub fn preprocess(
        &self,
        pixels: &[u8],
        width: u32,
        height: u32,
        layout: PixelLayout,
    ) -> Result<Tensor> {
        preprocess::image_to_tensor(
            self.graph.preprocess(),
            pixels,
            width as usize,
            height as usize,
            layout,
        )
    }

    /// Classifies an RGBA image (`width·height·4` bytes, alpha ignored).
    pub fn classify_rgba(
        &self,
        pixels: &[u8],
        width: u32,
        height: u32,
        top_k: usize,
    ) -> Result<Classification> {
        self.classify(pixels, width, height, PixelLayout::Rgba, top_k)
    }

    /// Classifies an RGB image (`width·height·3` bytes).
    pub fn classify_rgb(
        &self,
        pixels: &[u8],
        width: u32,
        height: u32,
        top_k: usize,
    ) -> Result<Classification> {
        self.classify(pixels, width, height, PixelLayout::Rgb, top_k)
    }

    fn classify(
        &self,
        pixels: &[u8],
        width: u32,
        height: u32,
        layout: PixelLayout,
        k: usize,
    ) -> Result<Classification> {
        let t0 = (self.clock)();
        let input = self.preprocess(pixels, width, height, layout)?;
        let preprocess_ms = (self.clock)() - t0;
        let out = self.run(&input)?;
        let probs = self.probabilities(out.logits.data());
        let top = top_k(&probs, k)
            .into_iter()
            .map(|index| Prediction {
                index,
                label: self.labels().get(index).cloned().unwrap_or_default(),
                probability: probs.get(index).copied().unwrap_or(f32::NAN),
            })
            .collect();
        Ok(Classification {
            top,
            timings: out.timings,
            total_ms: out.total_ms,
            preprocess_ms,
        })
    }

    /// Class probabilities for one image's output row: softmax of the logits, or the values
    /// themselves when the graph already ends in a softmax.
    pub fn probabilities(&self, row: &[f32]) -> Vec<f32> {
        if self.graph.output_is_softmax() {
            row.to_vec()
        } else {
            softmax(row)
        }
    }
}

/// Numerically stable softmax of a vector.
pub fn softmax(values: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    // Lengths are equal by construction, so the kernel's check cannot fail.
    let _ = kernels::scalar::softmax(values, &mut out);
    out
}

/// Indices of the `k` largest values, largest first; ties go to the lower index and NaN ranks
/// last. `k` larger than the length returns every index.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let key = |i: usize| {
        let v = values[i];
        if v.is_nan() {
            f32::NEG_INFINITY
        } else {
            v
        }
    };
    order.sort_by(|&a, &b| {
        key(b)
            .total_cmp(&key(a))
            .then_with(|| values[a].is_nan().cmp(&values[b].is_nan()))
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order
}
