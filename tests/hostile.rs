//! Hostile `.sepnet` files: every corruption must give a typed `Err`, never a panic, and a
//! model that loads must run without panicking.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use safetensors::Dtype;
use sepnet::{Error, Model, Tensor};
use serde_json::json;

fn load(bytes: &[u8]) -> Result<Model, Error> {
    match catch_unwind(|| Model::from_bytes(bytes)) {
        Ok(r) => r,
        Err(_) => panic!("Model::from_bytes panicked"),
    }
}

fn load_model(m: &ModelFile) -> Result<Model, Error> {
    load(&m.to_bytes())
}

/// Asserts the file is rejected, with the error matching `pred`.
#[track_caller]
fn rejects(m: &ModelFile, pred: impl Fn(&Error) -> bool) {
    match load_model(m) {
        Ok(_) => panic!("accepted a bad file"),
        Err(e) => assert!(pred(&e), "unexpected error: {e:?}"),
    }
}

fn bad_graph(e: &Error) -> bool {
    matches!(e, Error::BadGraph { .. })
}

fn limit(e: &Error) -> bool {
    matches!(e, Error::LimitExceeded { .. })
}

#[test]
fn valid_model_loads_and_runs() {
    let m = tiny_model(7);
    let model = load_model(&m).unwrap();
    let info = model.info();
    assert_eq!(info.labels.len(), 5);
    assert_eq!(info.layers.len(), 16);
    assert_eq!(info.variant, "BQ");
    // Params: conv1 3·8·9+8, reduce 8·4+4, prb.k3 4·2·9 (no bias), prb.k1 4·2+4, recover 64+8,
    // conv2 12·2·9+12, fc 12·5+5.
    let expected = (216 + 8) + (32 + 4) + 72 + (8 + 4) + (64 + 8) + (216 + 12) + (60 + 5);
    assert_eq!(info.params, expected);
    // MACs: conv1 8·9·11·27, reduce 4·5·6·8, prb.k3 4·30·18, prb.k1 4·30·2, recover 8·30·8,
    // conv2 12·9·18, fc 60.
    let macs = 8 * 99 * 27 + 4 * 30 * 8 + 4 * 30 * 18 + 4 * 30 * 2 + 8 * 30 * 8 + 12 * 9 * 18 + 60;
    assert_eq!(info.macs, macs);
    let conv2 = info.layers.iter().find(|l| l.name == "conv2").unwrap();
    assert_eq!(conv2.shape, vec![12, 3, 3]);
    assert_eq!(conv2.encoding, Some("pattern"));
    // 12 rows of ceil(18/8) = 3 bytes, 12 f32 scales, 12 f32 biases.
    assert_eq!(conv2.bytes, 36 + 48 + 48);

    let out = model
        .run(&Tensor::zeros(vec![2, 3, 9, 11]).unwrap())
        .unwrap();
    assert_eq!(out.logits.shape(), &[2, 5]);
    assert_eq!(out.timings.len(), 16);
}

#[test]
fn wrong_inputs_are_typed_errors() {
    let model = load_model(&tiny_model(7)).unwrap();
    for shape in [
        vec![3, 9, 11],
        vec![1, 3, 9, 10],
        vec![0, 3, 9, 11],
        vec![1, 1, 3, 9, 11],
    ] {
        let t = Tensor::zeros(shape.clone()).unwrap();
        assert!(
            matches!(model.run(&t), Err(Error::ShapeMismatch { .. })),
            "{shape:?}"
        );
    }
    let ok = Tensor::zeros(vec![1, 3, 9, 11]).unwrap();
    assert!(matches!(
        model.run_capturing(&ok, &["nope"]),
        Err(Error::BadInput(_))
    ));
    assert!(Tensor::new(vec![2, 2], vec![0.0; 3]).is_err());
    assert!(Tensor::new(vec![usize::MAX, 2], vec![]).is_err());
    assert!(matches!(
        model.classify_rgba(&[0; 10], 2, 2, 3),
        Err(Error::BadImage(_))
    ));
    assert!(matches!(
        model.classify_rgba(&[], 0, 0, 3),
        Err(Error::BadImage(_))
    ));
    assert!(matches!(
        model.classify_rgb(&[0; 12], u32::MAX, u32::MAX, 3),
        Err(Error::BadImage(_))
    ));
    // NaN input runs (no panic) and top-k still answers.
    let nan = Tensor::new(vec![1, 3, 9, 11], vec![f32::NAN; 297]).unwrap();
    assert!(model.run(&nan).is_ok());
    let c = model
        .classify_rgba(&vec![200; 40 * 30 * 4], 40, 30, 10)
        .unwrap();
    assert_eq!(c.top.len(), 5);
    let total: f32 = c.top.iter().map(|p| p.probability).sum();
    assert!((total - 1.0).abs() < 1e-5);
}

#[test]
fn not_safetensors() {
    for bytes in [&b""[..], b"\x00", b"garbage garbage garbage", &[0xFF; 16]] {
        assert!(
            matches!(load(bytes), Err(Error::NotSafetensors(_))),
            "{bytes:?}"
        );
    }
    // Valid safetensors files without metadata.
    assert!(matches!(
        load(b"\x02\x00\x00\x00\x00\x00\x00\x00{}"),
        Err(Error::MissingMetadata(_))
    ));
    let plain = safetensors::serialize(Vec::<(&str, &RawTensor)>::new(), None).unwrap();
    assert!(matches!(load(&plain), Err(Error::MissingMetadata(_))));
}

#[test]
fn truncated_at_every_offset() {
    let bytes = tiny_model(7).to_bytes();
    for cut in 0..bytes.len() {
        assert!(load(&bytes[..cut]).is_err(), "accepted a file cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(load(&longer).is_err());
}

#[test]
fn metadata_errors() {
    let m = tiny_model(7);
    for key in [
        "sepnet.format",
        "sepnet.version",
        "sepnet.graph",
        "sepnet.labels",
        "sepnet.preprocess",
        "sepnet.provenance",
    ] {
        let bytes = m.to_bytes_with(|meta| {
            meta.remove(key);
        });
        assert!(
            matches!(load(&bytes), Err(Error::MissingMetadata(ref k)) if k == key),
            "missing {key}"
        );
        if key != "sepnet.format" && key != "sepnet.version" {
            for bad in ["{", "", "[1,", "\"unterminated", "nul\u{0}"] {
                let bytes = m.to_bytes_with(|meta| {
                    meta.insert(key.into(), bad.into());
                });
                assert!(load(&bytes).is_err(), "bad JSON {bad:?} in {key}");
            }
        }
    }
    for v in ["2", "0", "1.0", " 1", ""] {
        let bytes = m.to_bytes_with(|meta| {
            meta.insert("sepnet.version".into(), v.into());
        });
        assert!(
            matches!(load(&bytes), Err(Error::UnsupportedVersion(_))),
            "version {v:?}"
        );
    }
    let bytes = m.to_bytes_with(|meta| {
        meta.insert("sepnet.format".into(), "onnx".into());
    });
    assert!(matches!(load(&bytes), Err(Error::BadMetadata { .. })));
    // Unknown metadata keys are allowed.
    let bytes = m.to_bytes_with(|meta| {
        meta.insert("sepnet.future".into(), "anything".into());
    });
    assert!(load(&bytes).is_ok());
    // Wrong JSON types.
    for (key, value) in [
        ("sepnet.labels", json!({"a": 1})),
        ("sepnet.labels", json!([1, 2, 3, 4, 5])),
        ("sepnet.graph", json!([])),
        ("sepnet.preprocess", json!(3)),
        ("sepnet.provenance", json!("x")),
    ] {
        let bytes = m.to_bytes_with(|meta| {
            meta.insert(key.into(), value.to_string());
        });
        assert!(load(&bytes).is_err(), "{key} = {value}");
    }
    // Deeply nested JSON must not overflow the stack.
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let bytes = m.to_bytes_with(|meta| {
        meta.insert("sepnet.graph".into(), deep);
    });
    assert!(load(&bytes).is_err());
}

#[test]
fn labels_must_match_output_width() {
    let mut m = tiny_model(7);
    m.set_labels(&["a", "b", "c", "d"]);
    rejects(&m, |e| matches!(e, Error::BadMetadata { .. }));
    m.set_labels(&["a", "b", "c", "d", "e", "f"]);
    rejects(&m, |e| matches!(e, Error::BadMetadata { .. }));
}

#[test]
fn preprocess_errors() {
    let good = tiny_model(7);
    for (key, value) in [
        ("input_size", json!([32, 32])),
        ("channel_order", json!("YUV")),
        ("mean", json!([0.5, 0.5])),
        ("std", json!([0.5, 0.0, 0.5])),
        ("crop_ratio", json!(0.0)),
        ("crop_ratio", json!(-1.0)),
        ("crop_ratio", json!(1e-30)),
        ("resize", json!("lanczos")),
        ("extra", json!(1)),
    ] {
        let mut m = good.clone();
        let mut p: serde_json::Value =
            serde_json::from_str(&m.metadata["sepnet.preprocess"]).unwrap();
        p[key] = value.clone();
        m.metadata.insert("sepnet.preprocess".into(), p.to_string());
        assert!(load_model(&m).is_err(), "{key} = {value}");
    }
}

#[test]
fn graph_structure_errors() {
    let good = tiny_model(7);
    let edit = |f: &dyn Fn(&mut ModelFile)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    // Unknown op; unknown attribute; missing required attribute (`stride` may be omitted).
    rejects(
        &edit(&|m| m.node_mut("conv1.relu")["op"] = json!("gelu")),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["dilation"] = json!([2, 2])),
        bad_graph,
    );
    rejects(
        &edit(&|m| {
            m.node_mut("conv1")
                .as_object_mut()
                .unwrap()
                .remove("kernel");
        }),
        bad_graph,
    );
    // Forward reference, unknown reference, self reference, duplicate name.
    rejects(
        &edit(&|m| m.node_mut("conv1")["inputs"] = json!(["pool"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["inputs"] = json!(["nowhere"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1.relu")["inputs"] = json!(["conv1.relu"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("pool")["name"] = json!("conv1")),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("pool")["name"] = json!("input")),
        bad_graph,
    );
    // Arity.
    rejects(
        &edit(&|m| m.node_mut("prb.add")["inputs"] = json!(["prb.k3"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1.relu")["inputs"] = json!(["conv1", "conv1"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("cat")["inputs"] = json!([])),
        bad_graph,
    );
    // Shape mismatches between ops.
    rejects(
        &edit(&|m| m.node_mut("skip")["inputs"] = json!(["recover", "conv1"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("cat")["inputs"] = json!(["prb.relu", "conv1"])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("gap")["inputs"] = json!(["fc"])),
        bad_graph,
    );
    rejects(&edit(&|m| m.simple("sm", "softmax", &["conv2"])), bad_graph);
    // Output: unknown, or not a vector.
    rejects(&edit(&|m| m.set_output("missing")), bad_graph);
    rejects(&edit(&|m| m.set_output("conv2")), bad_graph);
    // Wrong JSON types for attributes.
    rejects(
        &edit(&|m| m.node_mut("conv1")["kernel"] = json!([3])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["kernel"] = json!([3, -3])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["kernel"] = json!([3.5, 3])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["stride"] = json!("1")),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["inputs"] = json!("input")),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["bias"] = json!(3)),
        bad_graph,
    );
    rejects(&edit(&|m| m.graph["nodes"] = json!({})), bad_graph);
    rejects(
        &edit(&|m| m.graph["input"]["shape"] = json!([3, 9])),
        bad_graph,
    );
    rejects(&edit(&|m| m.graph["extra"] = json!(1)), bad_graph);
    // Group mismatch: 8 input channels, 3 groups.
    let mut m = good.clone();
    m.node_mut("reduce")["groups"] = json!(3);
    rejects(&m, bad_graph);
    // Pattern encoding on a linear layer.
    let mut m = good.clone();
    m.node_mut("fc")["weight"]["encoding"] = json!("pattern");
    rejects(&m, bad_graph);
    // Unknown encoding; f32 with a scale; int8 without one.
    rejects(
        &edit(&|m| m.node_mut("fc")["weight"]["encoding"] = json!("int4")),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["weight"]["scale"] = json!("fc.scale")),
        bad_graph,
    );
    rejects(
        &edit(&|m| {
            m.node_mut("fc")["weight"]
                .as_object_mut()
                .unwrap()
                .remove("scale");
        }),
        bad_graph,
    );
    // Kernel larger than the padded input; maxpool padding ≥ kernel.
    // (input H = 9, padding 1: 11 rows for a 13-row kernel.)
    rejects(
        &edit(&|m| m.node_mut("conv1")["kernel"] = json!([13, 3])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("pool")["padding"] = json!([3, 3])),
        bad_graph,
    );
}

#[test]
fn zero_size_dimensions() {
    let good = tiny_model(7);
    let edit = |f: &dyn Fn(&mut ModelFile)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    rejects(
        &edit(&|m| m.graph["input"]["shape"] = json!([3, 0, 11])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.graph["input"]["shape"] = json!([0, 9, 11])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["out_channels"] = json!(0)),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["kernel"] = json!([0, 3])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["stride"] = json!([1, 0])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["groups"] = json!(0)),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("pool")["stride"] = json!([0, 1])),
        bad_graph,
    );
    rejects(
        &edit(&|m| m.node_mut("fc")["out_features"] = json!(0)),
        bad_graph,
    );
}

#[test]
fn limits_are_enforced() {
    let good = tiny_model(7);
    let edit = |f: &dyn Fn(&mut ModelFile)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    rejects(
        &edit(&|m| m.graph["input"]["shape"] = json!([3, 100_000, 100_000])),
        limit,
    );
    rejects(
        &edit(&|m| m.graph["input"]["shape"] = json!([3, u64::MAX, u64::MAX])),
        |e| limit(e) || bad_graph(e),
    );
    rejects(
        &edit(&|m| m.graph["input"]["shape"] = json!([70_000, 1, 1])),
        limit,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["kernel"] = json!([33, 3])),
        limit,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["stride"] = json!([17, 1])),
        limit,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["out_channels"] = json!(70_000)),
        limit,
    );
    rejects(
        &edit(&|m| m.node_mut("fc")["out_features"] = json!(1u64 << 40)),
        limit,
    );
    // A huge padding grows the output past 2^26 elements.
    rejects(
        &edit(&|m| m.node_mut("conv1")["padding"] = json!([5000, 5000])),
        limit,
    );
    rejects(
        &edit(&|m| m.node_mut("conv1")["padding"] = json!([u64::MAX, 1])),
        |e| limit(e) || bad_graph(e),
    );
    // Too many nodes.
    let mut m = good.clone();
    for i in 0..4100 {
        m.simple(&format!("r{i}"), "relu", &["input"]);
    }
    rejects(&m, limit);
}

#[test]
fn tensor_errors() {
    let good = tiny_model(7);
    let mismatch = |e: &Error| matches!(e, Error::TensorMismatch { .. });
    // Missing tensor.
    let mut m = good.clone();
    m.tensors.remove("conv1.weight");
    rejects(&m, |e| matches!(e, Error::MissingTensor(_)));
    let mut m = good.clone();
    m.tensors.remove("fc.scale");
    rejects(&m, |e| matches!(e, Error::MissingTensor(_)));
    // Wrong dtype (same byte size, so only the dtype check can catch it).
    let mut m = good.clone();
    let t = m.tensors.get_mut("conv1.weight").unwrap();
    t.dtype = Dtype::I32;
    rejects(&m, mismatch);
    let mut m = good.clone();
    m.tensors.get_mut("fc.weight").unwrap().dtype = Dtype::U8;
    rejects(&m, mismatch);
    let mut m = good.clone();
    m.tensors.get_mut("conv2.weight").unwrap().dtype = Dtype::I8;
    rejects(&m, mismatch);
    // Wrong shape with the right element count.
    let mut m = good.clone();
    m.tensors.get_mut("conv1.weight").unwrap().shape = vec![8, 27];
    rejects(&m, mismatch);
    let mut m = good.clone();
    m.tensors.get_mut("conv1.bias").unwrap().shape = vec![1, 8];
    rejects(&m, mismatch);
    // Pattern tensor with one byte too many per row.
    let mut m = good.clone();
    m.add_tensor("conv2.weight", Dtype::U8, vec![12, 4], vec![0; 48]);
    rejects(&m, mismatch);
    // int8 value −128 is outside the symmetric range.
    let mut m = good.clone();
    m.tensors.get_mut("fc.weight").unwrap().data[3] = 0x80;
    rejects(&m, mismatch);
    // Unreferenced tensors are fine.
    let mut m = good.clone();
    m.add_f32("unused", vec![2], &[1.0, 2.0]);
    assert!(load_model(&m).is_ok());
}

#[test]
fn nonzero_pad_bits_are_rejected() {
    // conv2: n = 2·3·3 = 18 weights → 3 bytes per row, the top 6 bits of byte 2 are padding.
    for (row, bit) in [(0, 2), (5, 7), (11, 4)] {
        let mut m = tiny_model(7);
        m.tensors.get_mut("conv2.weight").unwrap().data[row * 3 + 2] |= 1 << bit;
        rejects(
            &m,
            |e| matches!(e, Error::BadPadding { row: r, .. } if *r == row),
        );
    }
    // The two used bits of the last byte may be set.
    let mut m = tiny_model(7);
    m.tensors.get_mut("conv2.weight").unwrap().data[2] |= 0b11;
    assert!(load_model(&m).is_ok());
}

#[test]
fn byte_flip_fuzz_never_panics() {
    let base = tiny_model(11).to_bytes();
    let header_end = 8 + u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
    let mut rng = Rng::new(0xF022);
    let zeros = Tensor::zeros(vec![1, 3, 9, 11]).unwrap();
    let mut loaded = 0;
    for _ in 0..3000 {
        let mut bytes = base.clone();
        for _ in 0..1 + rng.below(4) {
            // Bias flips toward the header, where the structure lives.
            let pos = if rng.below(4) == 0 {
                rng.below(bytes.len())
            } else {
                rng.below(header_end)
            };
            bytes[pos] = match rng.below(3) {
                0 => bytes[pos] ^ (1 << rng.below(8)),
                1 => rng.pick(b"0123456789[]{}\",:-.e"),
                _ => rng.below(256) as u8,
            };
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(model) = Model::from_bytes(&bytes) {
                model.run(&zeros).map(|_| ()).unwrap_or(());
                let _ = model.classify_rgba(&[7; 13 * 5 * 4], 13, 5, 3);
                let _ = model.info();
                return true;
            }
            false
        }));
        match result {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(_) => panic!("panic on fuzzed input"),
        }
    }
    // Flips in tensor data keep the file valid, so some mutants must have run.
    assert!(loaded > 0);
}

/// A convolution whose decoded weights would be huge (here a filter of 73,728 weights, 9 KB of
/// bit patterns per filter, past `MAX_PACKED_FILTER`) is not packed: the plan leaves it to
/// the scalar kernel, which reads the bits directly, so loading stays small and the model
/// still runs, with the same result as the reference kernels.
#[test]
fn oversized_convolutions_fall_back_to_the_scalar_kernel() {
    use sepnet::graph::{Plan, MAX_PACKED_FILTER};
    use sepnet::{Kernels, Tensor};
    let mut rng = Rng::new(21);
    let mut m = ModelFile::new([3, 3, 3]);
    m.conv(
        &mut rng,
        "wide",
        "input",
        3,
        8192,
        [1, 1],
        [1, 1],
        [0, 0],
        1,
        Enc::F32,
        false,
    );
    m.conv(
        &mut rng,
        "big",
        "wide",
        8192,
        2,
        [3, 3],
        [1, 1],
        [0, 0],
        1,
        Enc::Pattern,
        true,
    );
    m.conv(
        &mut rng,
        "small",
        "big",
        2,
        4,
        [1, 1],
        [1, 1],
        [0, 0],
        1,
        Enc::Int8,
        false,
    );
    m.simple("pool", "global_avg_pool", &["small"]);
    m.set_output("pool");
    m.set_labels(&["a", "b", "c", "d"]);
    let bytes = m.to_bytes();
    const { assert!(8192 * 9 > MAX_PACKED_FILTER) };
    let fast = Model::from_bytes(&bytes).unwrap();
    let plan = Plan::new(fast.graph(), Kernels::Fast).unwrap();
    assert_eq!(
        plan.packed_convs(),
        2,
        "`wide` and `small` are packed, `big` is not"
    );
    let reference = Model::from_bytes(&bytes)
        .unwrap()
        .with_kernels(Kernels::Reference)
        .unwrap();
    let input = Tensor::new(vec![1, 3, 3, 3], rng.f32s(27)).unwrap();
    let a = fast.run(&input).unwrap().logits;
    let b = reference.run(&input).unwrap().logits;
    assert_eq!(a.data(), b.data());
}
