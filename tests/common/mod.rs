//! Shared test helpers: a deterministic PRNG, a builder that writes `.sepnet` files from
//! scratch with the safetensors crate, and a deliberately naive reference implementation of
//! every op (plus a whole-graph interpreter over the builder's JSON) that shares no code with
//! the engine. `conv_cases` holds the random convolution cases the native and wasm32 kernel
//! tests share.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use safetensors::{Dtype, View};
use serde_json::{json, Value};

pub mod conv_cases;

// ---------------------------------------------------------------------------------------------
// PRNG

/// splitmix64: tiny, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n > 0`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[-1, 1)`.
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Model file builder

/// A tensor as it will be written.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl View for &RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Weight encodings of FORMAT.md section 2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Enc {
    F32,
    Int8,
    Pattern,
}

/// An editable `.sepnet` file: metadata, graph JSON and tensors are all public so tests can
/// corrupt any part before writing.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// Every metadata key except `sepnet.graph`, which is written from `graph`.
    pub metadata: BTreeMap<String, String>,
    pub graph: Value,
    pub tensors: BTreeMap<String, RawTensor>,
}

impl ModelFile {
    /// An empty graph over an input `[C, H, W]`; `output` and labels are set by the caller.
    pub fn new(input: [usize; 3]) -> ModelFile {
        let mut metadata = BTreeMap::new();
        metadata.insert("sepnet.format".into(), "sepnet".into());
        metadata.insert("sepnet.version".into(), "1".into());
        metadata.insert("sepnet.labels".into(), "[]".into());
        metadata.insert(
            "sepnet.preprocess".into(),
            json!({"input_size": [input[1], input[2]], "channel_order": "RGB",
                   "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616],
                   "crop_ratio": 1.0, "resize": "bilinear"})
            .to_string(),
        );
        metadata.insert(
            "sepnet.provenance".into(),
            json!({"model": "tiny", "variant": "BQ", "dataset": "synthetic", "trained": false,
                   "binarization": "alpha", "accuracy": null, "exporter": "rust-tests",
                   "created": "2026-11-26T00:00:00Z"})
            .to_string(),
        );
        ModelFile {
            metadata,
            graph: json!({"input": {"name": "input", "shape": input}, "output": "", "nodes": []}),
            tensors: BTreeMap::new(),
        }
    }

    pub fn set_labels(&mut self, labels: &[&str]) {
        self.metadata.insert(
            "sepnet.labels".into(),
            serde_json::to_string(labels).unwrap(),
        );
    }

    pub fn set_output(&mut self, name: &str) {
        self.graph["output"] = json!(name);
    }

    pub fn nodes_mut(&mut self) -> &mut Vec<Value> {
        self.graph["nodes"].as_array_mut().unwrap()
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Value {
        self.nodes_mut()
            .iter_mut()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    pub fn push(&mut self, node: Value) {
        self.nodes_mut().push(node);
    }

    pub fn add_tensor(&mut self, name: &str, dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) {
        self.tensors
            .insert(name.into(), RawTensor { dtype, shape, data });
    }

    pub fn add_f32(&mut self, name: &str, shape: Vec<usize>, values: &[f32]) {
        self.add_tensor(name, Dtype::F32, shape, f32_bytes(values));
    }

    /// Adds a conv2d node with random weights in encoding `enc` (+ scale, + optional bias).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        rng: &mut Rng,
        name: &str,
        input: &str,
        in_c: usize,
        out_c: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        groups: usize,
        enc: Enc,
        bias: bool,
    ) {
        let n = in_c / groups * kernel[0] * kernel[1];
        let logical = vec![out_c, in_c / groups, kernel[0], kernel[1]];
        let weight = self.weight(rng, name, logical, out_c, n, enc);
        let bias = self.maybe_bias(rng, name, out_c, bias);
        self.push(json!({"name": name, "op": "conv2d", "inputs": [input],
            "out_channels": out_c, "kernel": kernel, "stride": stride, "padding": padding,
            "groups": groups, "weight": weight, "bias": bias}));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn linear(
        &mut self,
        rng: &mut Rng,
        name: &str,
        input: &str,
        in_f: usize,
        out_f: usize,
        enc: Enc,
        bias: bool,
    ) {
        let weight = self.weight(rng, name, vec![out_f, in_f], out_f, in_f, enc);
        let bias = self.maybe_bias(rng, name, out_f, bias);
        self.push(json!({"name": name, "op": "linear", "inputs": [input],
            "out_features": out_f, "weight": weight, "bias": bias}));
    }

    pub fn simple(&mut self, name: &str, op: &str, inputs: &[&str]) {
        self.push(json!({"name": name, "op": op, "inputs": inputs}));
    }

    pub fn maxpool(&mut self, name: &str, input: &str, k: usize, s: usize, p: usize) {
        self.push(json!({"name": name, "op": "maxpool2d", "inputs": [input],
            "kernel": [k, k], "stride": [s, s], "padding": [p, p]}));
    }

    fn weight(
        &mut self,
        rng: &mut Rng,
        name: &str,
        logical: Vec<usize>,
        out_c: usize,
        per_filter: usize,
        enc: Enc,
    ) -> Value {
        let wname = format!("{name}.weight");
        let sname = format!("{name}.scale");
        let numel: usize = logical.iter().product();
        // Scales of about 1/sqrt(fan-in) keep activations O(1) through a deep graph.
        let fan = (per_filter as f32).sqrt();
        match enc {
            Enc::F32 => {
                let w: Vec<f32> = rng.f32s(numel).iter().map(|v| v / fan * 1.7).collect();
                self.add_f32(&wname, logical, &w);
                json!({"encoding": "f32", "tensor": wname})
            }
            Enc::Int8 => {
                let q: Vec<u8> = (0..numel)
                    .map(|_| (rng.below(255) as i32 - 127) as i8 as u8)
                    .collect();
                self.add_tensor(&wname, Dtype::I8, logical, q);
                let s: Vec<f32> = (0..out_c)
                    .map(|_| (rng.f32() + 1.5) / 127.0 / fan)
                    .collect();
                self.add_f32(&sname, vec![out_c], &s);
                json!({"encoding": "int8", "tensor": wname, "scale": sname})
            }
            Enc::Pattern => {
                let row = per_filter.div_ceil(8);
                let mut bits = vec![0u8; out_c * row];
                for o in 0..out_c {
                    for i in 0..per_filter {
                        if rng.below(2) == 1 {
                            bits[o * row + i / 8] |= 1 << (i % 8);
                        }
                    }
                }
                self.add_tensor(&wname, Dtype::U8, vec![out_c, row], bits);
                // Negative and zero scales are legal (folded batch-norm).
                let s: Vec<f32> = (0..out_c).map(|_| rng.f32() / fan).collect();
                self.add_f32(&sname, vec![out_c], &s);
                json!({"encoding": "pattern", "tensor": wname, "scale": sname})
            }
        }
    }

    fn maybe_bias(&mut self, rng: &mut Rng, name: &str, out: usize, bias: bool) -> Value {
        if !bias {
            return Value::Null;
        }
        let bname = format!("{name}.bias");
        let b = rng.f32s(out);
        self.add_f32(&bname, vec![out], &b);
        json!(bname)
    }

    /// The metadata map as written (graph included).
    pub fn full_metadata(&self) -> HashMap<String, String> {
        let mut meta: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        meta.insert("sepnet.graph".into(), self.graph.to_string());
        meta
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with(|_| {})
    }

    /// Writes the file after `edit` has changed the final metadata map.
    pub fn to_bytes_with(&self, edit: impl FnOnce(&mut HashMap<String, String>)) -> Vec<u8> {
        let mut meta = self.full_metadata();
        edit(&mut meta);
        safetensors::serialize(
            self.tensors.iter().map(|(k, v)| (k.as_str(), v)),
            Some(meta),
        )
        .expect("serialize")
    }
}

/// A small SEP-Net-shaped model exercising every op and encoding: f32 stem, max-pool, int8 1×1
/// reduction, a pattern residual block (grouped 3×3 pattern + grouped 1×1 int8, added),
/// concat, int8 recovery + skip, a strided grouped pattern conv, global average pool and an
/// int8 classifier. Input `[3, 9, 11]`, 5 classes.
pub fn tiny_model(seed: u64) -> ModelFile {
    let mut rng = Rng::new(seed);
    let mut m = ModelFile::new([3, 9, 11]);
    m.conv(
        &mut rng,
        "conv1",
        "input",
        3,
        8,
        [3, 3],
        [1, 1],
        [1, 1],
        1,
        Enc::F32,
        true,
    );
    m.simple("conv1.relu", "relu", &["conv1"]);
    m.maxpool("pool", "conv1.relu", 3, 2, 1); // [8, 5, 6]
    m.conv(
        &mut rng,
        "reduce",
        "pool",
        8,
        4,
        [1, 1],
        [1, 1],
        [0, 0],
        1,
        Enc::Int8,
        true,
    );
    m.simple("reduce.relu", "relu", &["reduce"]);
    m.conv(
        &mut rng,
        "prb.k3",
        "reduce.relu",
        4,
        4,
        [3, 3],
        [1, 1],
        [1, 1],
        2,
        Enc::Pattern,
        false,
    );
    m.conv(
        &mut rng,
        "prb.k1",
        "reduce.relu",
        4,
        4,
        [1, 1],
        [1, 1],
        [0, 0],
        2,
        Enc::Int8,
        true,
    );
    m.simple("prb.add", "add", &["prb.k3", "prb.k1"]);
    m.simple("prb.relu", "relu", &["prb.add"]);
    m.simple("cat", "concat", &["prb.relu", "reduce.relu"]); // [8, 5, 6]
    m.conv(
        &mut rng,
        "recover",
        "cat",
        8,
        8,
        [1, 1],
        [1, 1],
        [0, 0],
        1,
        Enc::Int8,
        true,
    );
    m.simple("skip", "add", &["recover", "pool"]);
    m.simple("skip.relu", "relu", &["skip"]);
    m.conv(
        &mut rng,
        "conv2",
        "skip.relu",
        8,
        12,
        [3, 3],
        [2, 2],
        [1, 1],
        4,
        Enc::Pattern,
        true,
    ); // [12, 3, 3]
    m.simple("gap", "global_avg_pool", &["conv2"]);
    m.linear(&mut rng, "fc", "gap", 12, 5, Enc::Int8, true);
    m.set_output("fc");
    m.set_labels(&["cat", "dog", "ship", "frog", "bird"]);
    m
}

// ---------------------------------------------------------------------------------------------
// Naive reference

/// The real weights of a conv/linear node, decoded straight from the builder's tensors:
/// `[O, n]` flattened.
pub fn decode_weight(m: &ModelFile, weight: &Value, out: usize, n: usize) -> Vec<f32> {
    let t = &m.tensors[weight["tensor"].as_str().unwrap()];
    let scale = || {
        let s = &m.tensors[weight["scale"].as_str().unwrap()];
        le_f32(&s.data)
    };
    match weight["encoding"].as_str().unwrap() {
        "f32" => le_f32(&t.data),
        "int8" => {
            let s = scale();
            (0..out * n)
                .map(|i| t.data[i] as i8 as f32 * s[i / n])
                .collect()
        }
        "pattern" => {
            let s = scale();
            let row = n.div_ceil(8);
            let mut w = Vec::with_capacity(out * n);
            for (o, &so) in s.iter().enumerate().take(out) {
                for i in 0..n {
                    let bit = (t.data[o * row + i / 8] >> (i % 8)) & 1;
                    w.push(if bit == 1 { so } else { -so });
                }
            }
            w
        }
        e => panic!("encoding {e}"),
    }
}

pub fn le_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Direct 7-nested-loop convolution over one `[C, H, W]` image with real weights
/// `[O, C/g, kh, kw]`.
#[allow(clippy::too_many_arguments)]
pub fn naive_conv(
    x: &[f32],
    [c, h, w]: [usize; 3],
    weight: &[f32],
    bias: Option<&[f32]>,
    out_c: usize,
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [ph, pw]: [usize; 2],
    groups: usize,
) -> (Vec<f32>, [usize; 3]) {
    let oh = (h + 2 * ph - kh) / sh + 1;
    let ow = (w + 2 * pw - kw) / sw + 1;
    let cg = c / groups;
    let og = out_c / groups;
    let mut y = vec![0.0f32; out_c * oh * ow];
    for o in 0..out_c {
        let g = o / og;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0.0f64;
                for ci in 0..cg {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * sh + ky) as isize - ph as isize;
                            let ix = (ox * sw + kx) as isize - pw as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let xv = x[((g * cg + ci) * h + iy as usize) * w + ix as usize];
                            let wv = weight[((o * cg + ci) * kh + ky) * kw + kx];
                            acc += xv as f64 * wv as f64;
                        }
                    }
                }
                y[(o * oh + oy) * ow + ox] = acc as f32 + bias.map_or(0.0, |b| b[o]);
            }
        }
    }
    (y, [out_c, oh, ow])
}

pub fn naive_linear(x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: usize) -> Vec<f32> {
    let n = x.len();
    (0..out)
        .map(|o| {
            let acc: f64 = (0..n).map(|i| weight[o * n + i] as f64 * x[i] as f64).sum();
            acc as f32 + bias.map_or(0.0, |b| b[o])
        })
        .collect()
}

pub fn naive_maxpool(
    x: &[f32],
    [c, h, w]: [usize; 3],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
) -> (Vec<f32>, [usize; 3]) {
    let oh = (h + 2 * p[0] - k[0]) / s[0] + 1;
    let ow = (w + 2 * p[1] - k[1]) / s[1] + 1;
    let mut y = vec![f32::NEG_INFINITY; c * oh * ow];
    for ci in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = (oy * s[0] + ky) as isize - p[0] as isize;
                        let ix = (ox * s[1] + kx) as isize - p[1] as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let v = x[(ci * h + iy as usize) * w + ix as usize];
                        let slot = &mut y[(ci * oh + oy) * ow + ox];
                        *slot = slot.max(v);
                    }
                }
            }
        }
    }
    (y, [c, oh, ow])
}

pub fn naive_softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| (v / s) as f32).collect()
}

fn pair(v: &Value) -> [usize; 2] {
    [
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    ]
}

/// Interprets the builder's graph JSON on ONE image with the naive ops. Returns every value
/// by name, with its shape (`[C, H, W]` or `[K]`).
pub fn naive_run(m: &ModelFile, image: &[f32]) -> HashMap<String, (Vec<f32>, Vec<usize>)> {
    let mut vals: HashMap<String, (Vec<f32>, Vec<usize>)> = HashMap::new();
    let inp = &m.graph["input"];
    let shape: Vec<usize> = inp["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    vals.insert(
        inp["name"].as_str().unwrap().into(),
        (image.to_vec(), shape),
    );
    for node in m.graph["nodes"].as_array().unwrap() {
        let ins: Vec<(Vec<f32>, Vec<usize>)> = node["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| vals[n.as_str().unwrap()].clone())
            .collect();
        let bias = node
            .get("bias")
            .and_then(Value::as_str)
            .map(|b| le_f32(&m.tensors[b].data));
        let out = match node["op"].as_str().unwrap() {
            "conv2d" => {
                let (x, s) = &ins[0];
                let out_c = node["out_channels"].as_u64().unwrap() as usize;
                let k = pair(&node["kernel"]);
                let g = node["groups"].as_u64().unwrap() as usize;
                let n = s[0] / g * k[0] * k[1];
                let w = decode_weight(m, &node["weight"], out_c, n);
                let (y, ys) = naive_conv(
                    x,
                    [s[0], s[1], s[2]],
                    &w,
                    bias.as_deref(),
                    out_c,
                    k,
                    pair(&node["stride"]),
                    pair(&node["padding"]),
                    g,
                );
                (y, ys.to_vec())
            }
            "linear" => {
                let (x, _) = &ins[0];
                let out = node["out_features"].as_u64().unwrap() as usize;
                let w = decode_weight(m, &node["weight"], out, x.len());
                (naive_linear(x, &w, bias.as_deref(), out), vec![out])
            }
            "add" => (
                ins[0].0.iter().zip(&ins[1].0).map(|(a, b)| a + b).collect(),
                ins[0].1.clone(),
            ),
            "relu" => (
                ins[0].0.iter().map(|v| v.max(0.0)).collect(),
                ins[0].1.clone(),
            ),
            "concat" => {
                let mut s = ins[0].1.clone();
                s[0] = ins.iter().map(|i| i.1[0]).sum();
                (ins.iter().flat_map(|i| i.0.clone()).collect(), s)
            }
            "maxpool2d" => {
                let s = &ins[0].1;
                let (y, ys) = naive_maxpool(
                    &ins[0].0,
                    [s[0], s[1], s[2]],
                    pair(&node["kernel"]),
                    pair(&node["stride"]),
                    pair(&node["padding"]),
                );
                (y, ys.to_vec())
            }
            "global_avg_pool" => {
                let s = &ins[0].1;
                let hw = s[1] * s[2];
                let y = (0..s[0])
                    .map(|c| {
                        (ins[0].0[c * hw..(c + 1) * hw]
                            .iter()
                            .map(|&v| v as f64)
                            .sum::<f64>()
                            / hw as f64) as f32
                    })
                    .collect();
                (y, vec![s[0]])
            }
            "softmax" => (naive_softmax(&ins[0].0), ins[0].1.clone()),
            op => panic!("naive_run: op {op}"),
        };
        vals.insert(node["name"].as_str().unwrap().into(), out);
    }
    vals
}

/// Max |a − b| / max(max |b|, tiny).
pub fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length");
    let max_ref = b
        .iter()
        .map(|v| v.abs() as f64)
        .fold(0.0, f64::max)
        .max(1e-30);
    let max_diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max);
    max_diff / max_ref
}

/// Writes a golden bundle (FORMAT.md section 6) for `m`: `batch` random images, logits and the
/// named activations computed with the naive reference.
pub fn naive_bundle(
    m: &ModelFile,
    model_file: &str,
    batch: usize,
    acts: &[&str],
    seed: u64,
) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let shape: Vec<usize> = m.graph["input"]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let per: usize = shape.iter().product();
    let input = rng.f32s(batch * per);
    let output = m.graph["output"].as_str().unwrap().to_string();
    let mut logits = Vec::new();
    let mut act_data: BTreeMap<String, (Vec<f32>, Vec<usize>)> = BTreeMap::new();
    for n in 0..batch {
        let vals = naive_run(m, &input[n * per..(n + 1) * per]);
        logits.extend_from_slice(&vals[&output].0);
        for a in acts {
            let (v, s) = &vals[*a];
            let e = act_data
                .entry(format!("act/{a}"))
                .or_insert((Vec::new(), s.clone()));
            e.0.extend_from_slice(v);
        }
    }
    let k = logits.len() / batch;
    let mut tensors: BTreeMap<String, RawTensor> = BTreeMap::new();
    let mut put = |name: String, shape: Vec<usize>, data: &[f32]| {
        tensors.insert(
            name,
            RawTensor {
                dtype: Dtype::F32,
                shape,
                data: f32_bytes(data),
            },
        );
    };
    let mut ishape = vec![batch];
    ishape.extend(&shape);
    put("input".into(), ishape, &input);
    put("logits".into(), vec![batch, k], &logits);
    for (name, (data, s)) in &act_data {
        let mut full = vec![batch];
        full.extend(s);
        put(name.clone(), full, data);
    }
    let mut meta = HashMap::new();
    meta.insert("sepnet.bundle".to_string(), "1".to_string());
    meta.insert("model".to_string(), model_file.to_string());
    safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(meta)).unwrap()
}
