//! Golden bundles (FORMAT.md section 6): reference inputs and outputs made by PyTorch, used to
//! prove the engine computes what the trained network computes.
//!
//! A bundle holds `input F32 [N, C, H, W]`, `logits F32 [N, K]` and optional
//! `act/<node> F32 [N, ...value shape]`. [`check_bundle`] runs the graph on `input`, capturing
//! every `act/*` node, and reports for each tensor the largest absolute deviation and that
//! deviation relative to the largest reference magnitude of the same tensor.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;

use crate::clock::no_clock;
use crate::error::{Error, Result};
use crate::format::Graph;
use crate::graph::{execute, Plan};
use crate::tensor::Tensor;

/// Deviation of one compared tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorCheck {
    /// `logits` or `act/<node>`.
    pub name: String,
    pub shape: Vec<usize>,
    /// `max |ours − reference|` (∞ if exactly one side is NaN).
    pub max_abs_diff: f64,
    /// `max |reference|`.
    pub max_abs_ref: f64,
    /// `max_abs_diff / max_abs_ref` (or `max_abs_diff` when the reference is all zeros).
    pub rel_diff: f64,
}

/// Result of checking one bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    /// The `model` metadata entry (the model file the bundle was made for).
    pub model_file: String,
    pub batch: usize,
    /// `logits` first, then the activations in name order.
    pub checks: Vec<TensorCheck>,
    /// Largest `max_abs_diff` over all checks.
    pub max_abs_diff: f64,
    /// Largest `rel_diff` over all checks.
    pub max_rel_diff: f64,
}

impl BundleReport {
    /// The logits check (always present).
    pub fn logits(&self) -> Option<&TensorCheck> {
        self.checks.iter().find(|c| c.name == "logits")
    }

    /// Whether every tensor is within `tolerance` relative deviation.
    pub fn passes(&self, tolerance: f64) -> bool {
        self.checks.iter().all(|c| c.rel_diff <= tolerance)
    }
}

/// Runs `graph` on the bundle's input and compares logits and every `act/<node>`.
pub fn check_bundle(graph: &Graph, plan: &Plan, bundle: &[u8]) -> Result<BundleReport> {
    let bad = |m: String| Error::BadBundle(m);
    let st = SafeTensors::deserialize(bundle).map_err(|e| bad(format!("not safetensors: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bundle).map_err(|e| bad(e.to_string()))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    match meta.get("sepnet.bundle").map(String::as_str) {
        Some("1") => {}
        Some(v) => return Err(bad(format!("unsupported sepnet.bundle version `{v}`"))),
        None => return Err(bad("missing metadata `sepnet.bundle`".into())),
    }
    let model_file = meta.get("model").cloned().unwrap_or_default();

    let read = |name: &str| -> Result<Tensor> {
        let view = st
            .tensor(name)
            .map_err(|_| bad(format!("missing tensor `{name}`")))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Tensor::new(view.shape().to_vec(), data)
    };

    let input = read("input")?;
    let logits = read("logits")?;
    let batch = input.shape().first().copied().unwrap_or(0);

    let mut act_names: Vec<String> = st
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("act/").map(str::to_string))
        .collect();
    act_names.sort();
    for name in &act_names {
        if graph.find_value(name).is_none() {
            return Err(bad(format!("`act/{name}` names no value of the model")));
        }
    }
    let capture: Vec<&str> = act_names.iter().map(String::as_str).collect();
    let run = execute(graph, plan, &input, no_clock, &capture)?;

    let mut checks = vec![compare("logits", &run.output, &logits)?];
    for (name, ours) in &run.captured {
        let key = format!("act/{name}");
        checks.push(compare(&key, ours, &read(&key)?)?);
    }
    let max_abs_diff = checks.iter().map(|c| c.max_abs_diff).fold(0.0, f64::max);
    let max_rel_diff = checks.iter().map(|c| c.rel_diff).fold(0.0, f64::max);
    Ok(BundleReport {
        model_file,
        batch,
        checks,
        max_abs_diff,
        max_rel_diff,
    })
}

fn compare(name: &str, ours: &Tensor, reference: &Tensor) -> Result<TensorCheck> {
    if ours.shape() != reference.shape() {
        return Err(Error::BadBundle(format!(
            "`{name}` has shape {:?} in the bundle but the model gives {:?}",
            reference.shape(),
            ours.shape()
        )));
    }
    let mut max_abs_diff = 0.0f64;
    let mut max_abs_ref = 0.0f64;
    for (&a, &b) in ours.data().iter().zip(reference.data()) {
        // Equal values (including equal infinities) and NaN-vs-NaN agree; any other
        // comparison that yields NaN (NaN vs number, +∞ vs −∞) is an infinite deviation.
        let diff = if a == b || (a.is_nan() && b.is_nan()) {
            0.0
        } else {
            let d = (f64::from(a) - f64::from(b)).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        };
        max_abs_diff = max_abs_diff.max(diff);
        if b.is_finite() {
            max_abs_ref = max_abs_ref.max(f64::from(b).abs());
        }
    }
    let rel_diff = if max_abs_ref > 0.0 {
        max_abs_diff / max_abs_ref
    } else {
        max_abs_diff
    };
    Ok(TensorCheck {
        name: name.to_string(),
        shape: ours.shape().to_vec(),
        max_abs_diff,
        max_abs_ref,
        rel_diff,
    })
}
