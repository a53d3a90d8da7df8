//! Golden bundles: the engine must reproduce PyTorch's logits and activations.
//!
//! `golden_bundles_match` runs every pair `tests/golden/<name>.sepnet` +
//! `tests/golden/<name>.bundle.safetensors` (written by `python -m sepnet_train.golden`) and
//! requires each tensor within 1e-4 of its largest reference magnitude. With no pairs present it
//! FAILS unless `SEPNET_ALLOW_NO_GOLDEN=1`, so CI cannot pass silently without them.
//!
//! `data_bundle_matches` does the same for the Rust-made `tests/data/tiny.*` pair (reference
//! computed by the naive interpreter in `tests/common`), which the wasm test embeds.
//! Regenerate it with `SEPNET_REGEN_DATA=1 cargo test --test golden`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sepnet::Model;

const TOLERANCE: f64 = 1e-4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(model, bundle)` pairs in `dir`, sorted by name.
fn pairs(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix(".bundle.safetensors")?
                .to_string();
            let model = dir.join(format!("{name}.sepnet"));
            model.exists().then_some((model, p))
        })
        .collect();
    out.sort();
    out
}

fn check_pair(model_path: &Path, bundle_path: &Path) {
    let model = Model::from_bytes(&std::fs::read(model_path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", model_path.display()));
    let report = model
        .check_bundle(&std::fs::read(bundle_path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", bundle_path.display()));
    assert!(report.logits().is_some());
    for c in &report.checks {
        eprintln!(
            "{}: {} max|diff| {:.3e} max|ref| {:.3e} rel {:.3e}",
            bundle_path.file_name().unwrap().to_string_lossy(),
            c.name,
            c.max_abs_diff,
            c.max_abs_ref,
            c.rel_diff
        );
        assert!(
            c.rel_diff <= TOLERANCE,
            "{}: `{}` deviates by {:.3e} relative (tolerance {TOLERANCE:e})",
            bundle_path.display(),
            c.name,
            c.rel_diff
        );
    }
}

#[test]
fn golden_bundles_match() {
    let found = pairs(&root().join("tests/golden"));
    if found.is_empty() {
        let allowed = std::env::var("SEPNET_ALLOW_NO_GOLDEN").is_ok_and(|v| v == "1");
        assert!(
            allowed,
            "no golden bundles in tests/golden (run `python -m sepnet_train.golden`, or set \
             SEPNET_ALLOW_NO_GOLDEN=1 to skip)"
        );
        eprintln!("no golden bundles; skipped (SEPNET_ALLOW_NO_GOLDEN=1)");
    }
    for (model, bundle) in found {
        check_pair(&model, &bundle);
    }
}

#[test]
fn data_bundle_matches() {
    let dir = root().join("tests/data");
    let model_path = dir.join("tiny.sepnet");
    let bundle_path = dir.join("tiny.bundle.safetensors");
    if std::env::var("SEPNET_REGEN_DATA").is_ok_and(|v| v == "1") {
        let m = tiny_model(2026);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&model_path, m.to_bytes()).unwrap();
        let bundle = naive_bundle(
            &m,
            "tiny.sepnet",
            3,
            &["pool", "prb.add", "cat", "conv2", "gap"],
            7,
        );
        std::fs::write(&bundle_path, bundle).unwrap();
    }
    check_pair(&model_path, &bundle_path);
}

#[test]
fn bundle_mismatch_is_detected() {
    let m = tiny_model(3);
    let model = Model::from_bytes(&m.to_bytes()).unwrap();
    let good = naive_bundle(&m, "x", 2, &["conv2"], 1);
    assert!(model.check_bundle(&good).unwrap().passes(TOLERANCE));
    // A bundle made for a different model (other weights) must fail.
    let other = naive_bundle(&tiny_model(4), "x", 2, &["conv2"], 1);
    let report = model.check_bundle(&other).unwrap();
    assert!(!report.passes(TOLERANCE), "{report:?}");
    // A bundle that is not one.
    assert!(model.check_bundle(&m.to_bytes()).is_err());
    assert!(model.check_bundle(b"nope").is_err());
}

/// Every golden model and the ImageNet-shape page model (5×5/2 stem, max pool).
fn golden_and_page_models() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = pairs(&root().join("tests/golden"))
        .into_iter()
        .map(|(model, _)| model)
        .collect();
    files.push(root().join("www/models/sepnet_small-bq-untrained.sepnet"));
    files
}

/// Whole networks: the fast kernels (packed GEMM, separable max pool) give the reference
/// kernels' logits bit for bit, on every golden model and the ImageNet-shape page model
/// (which has the 5×5/2 stem and the max pool the CIFAR nets lack).
#[test]
fn fast_and_reference_kernels_agree() {
    use sepnet::{Kernels, Tensor};
    let files = golden_and_page_models();
    assert!(files.len() >= 8, "golden models missing: {files:?}");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let fast = Model::from_bytes(&bytes).unwrap();
        assert_eq!(fast.kernels(), Kernels::Fast);
        let reference = Model::from_bytes(&bytes)
            .unwrap()
            .with_kernels(Kernels::Reference)
            .unwrap();
        let [c, h, w] = fast.input_shape();
        let x = Rng::new(9).f32s(c * h * w);
        let input = Tensor::new(vec![1, c, h, w], x).unwrap();
        let a = fast.run(&input).unwrap().logits;
        let b = reference.run(&input).unwrap().logits;
        assert_eq!(a.data(), b.data(), "{}", path.display());
    }
}

/// ReLU fusion: on every golden model the fast kernels fuse ReLUs into the nodes before them
/// (the timings say which), and a run that captures a fused ReLU's input sees it before the
/// ReLU, exactly as the reference kernels (which never fuse) do, with the same logits.
#[test]
fn fused_relus_change_no_value_and_yield_to_captures() {
    use sepnet::graph::Plan;
    use sepnet::{Kernels, Tensor};
    let files = golden_and_page_models();
    for path in files {
        let what = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let fast = Model::from_bytes(&bytes).unwrap();
        let reference = Model::from_bytes(&bytes)
            .unwrap()
            .with_kernels(Kernels::Reference)
            .unwrap();
        let graph = fast.graph();
        let fused = Plan::new(graph, Kernels::Fast).unwrap().fused_relus();
        assert_eq!(
            Plan::new(graph, Kernels::Reference).unwrap().fused_relus(),
            0
        );
        // Every ReLU whose input has no other reader (all of them in these models).
        let relu_inputs: Vec<String> = graph
            .nodes()
            .iter()
            .filter(|n| n.op.name() == "relu")
            .map(|n| graph.value_name(n.inputs[0]).to_string())
            .collect();
        assert!(
            fused > 0 && fused == relu_inputs.len(),
            "{what}: {fused} fused"
        );

        let [c, h, w] = fast.input_shape();
        let input = Tensor::new(vec![2, c, h, w], Rng::new(5).f32s(2 * c * h * w)).unwrap();
        let plain = fast.run(&input).unwrap();
        let flagged = plain.timings.iter().filter(|t| t.fused).count();
        assert_eq!(flagged, fused, "{what}: timings flag the fused ReLUs");
        assert!(plain.timings.iter().all(|t| !t.fused || t.op == "relu"));

        let names: Vec<&str> = relu_inputs.iter().map(String::as_str).collect();
        let (a, acts_fast) = fast.run_capturing(&input, &names).unwrap();
        let (b, acts_ref) = reference.run_capturing(&input, &names).unwrap();
        assert!(
            a.timings.iter().all(|t| !t.fused),
            "{what}: captured inputs unfuse"
        );
        assert_eq!(a.logits.data(), b.logits.data(), "{what}");
        assert_eq!(a.logits.data(), plain.logits.data(), "{what}");
        let negative = acts_fast
            .iter()
            .any(|(_, t)| t.data().iter().any(|&v| v < 0.0));
        assert!(
            negative,
            "{what}: captured values are the ones before the ReLU"
        );
        for ((name, x), (_, y)) in acts_fast.iter().zip(&acts_ref) {
            assert_eq!(x.data(), y.data(), "{what}: {name}");
        }
    }
}
