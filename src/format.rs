//! Reader and validator for `.sepnet` files (docs/FORMAT.md, version 1).
//!
//! [`parse`] turns untrusted bytes into a [`Graph`] in which everything execution relies on has
//! been checked: metadata keys and magic, the graph's JSON structure (unknown ops and unknown
//! attributes are rejected, so exporter drift fails loudly instead of being misread), the reader
//! limits, topological order, shape inference through every node, tensor dtypes and shapes,
//! pattern padding bits, int8 ranges, and `len(labels) ==` output width. Execution of a parsed
//! graph can then only fail on a wrong-shaped user input.
//!
//! Weights are decoded once here: f32 tensors to `Vec<f32>`, int8 kept as `i8` plus the scale,
//! pattern weights kept bit-packed (the kernels read bits directly).

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::kernels::{pattern_row_bytes, Conv2dGeometry, Pool2dGeometry};
use crate::preprocess::{ChannelOrder, Preprocess, MAX_RESIZE_SIDE};

/// Reader limits (FORMAT.md section 3).
pub mod limits {
    pub const MAX_NODES: usize = 4096;
    pub const MAX_KERNEL: usize = 31;
    pub const MAX_STRIDE: usize = 16;
    /// Elements of any single value (one image).
    pub const MAX_VALUE_ELEMENTS: usize = 1 << 26;
    pub const MAX_CHANNELS: usize = 65_536;
}

/// Index of a value: `0` is the graph input, `i + 1` the output of node `i`.
pub type ValueId = usize;

/// Shape of one image's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A feature map `[C, H, W]`.
    Map { c: usize, h: usize, w: usize },
    /// A vector `[K]`.
    Vector(usize),
}

impl Shape {
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Map { c, h, w } => vec![c, h, w],
            Shape::Vector(k) => vec![k],
        }
    }

    /// Element count; cannot overflow for shapes that passed validation.
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Map { c, h, w } => c * h * w,
            Shape::Vector(k) => k,
        }
    }
}

/// Decoded weights of a conv2d or linear node, in the logical layout of FORMAT.md section 2.
#[derive(Debug, Clone)]
pub enum Weights {
    F32(Vec<f32>),
    /// `w = q · scale[o]`.
    Int8 {
        q: Vec<i8>,
        scale: Vec<f32>,
    },
    Pattern(PatternWeights),
}

impl Weights {
    /// The FORMAT.md encoding name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Weights::F32(_) => "f32",
            Weights::Int8 { .. } => "int8",
            Weights::Pattern(_) => "pattern",
        }
    }

    /// The real weight values `[O, n]`, decoded (tests, tooling, future kernels).
    pub fn to_f32(&self, out_channels: usize) -> Vec<f32> {
        match self {
            Weights::F32(w) => w.clone(),
            Weights::Int8 { q, scale } => {
                let n = (q.len() / out_channels.max(1)).max(1);
                q.iter()
                    .enumerate()
                    .map(|(i, &v)| f32::from(v) * scale.get(i / n).copied().unwrap_or(0.0))
                    .collect()
            }
            Weights::Pattern(p) => p.to_f32(),
        }
    }
}

/// Bit-packed ±1 weights with a per-filter scale (FORMAT.md section 2, `pattern`).
#[derive(Debug, Clone)]
pub struct PatternWeights {
    /// `[O, row_bytes]`, element `i` of filter `o` is bit `i % 8` of `bits[o·row_bytes + i/8]`.
    pub bits: Vec<u8>,
    pub row_bytes: usize,
    /// Weights per filter, `n = (C/g)·kh·kw`.
    pub filter_len: usize,
    pub scale: Vec<f32>,
}

impl PatternWeights {
    /// Sign of element `i` of filter `o`: `+1.0` for a set bit, `−1.0` for a clear one.
    pub fn sign(&self, o: usize, i: usize) -> f32 {
        if crate::kernels::scalar::pattern_bit(&self.bits, self.row_bytes, o, i) {
            1.0
        } else {
            -1.0
        }
    }

    /// Real weights `scale[o] · sign`, `[O, n]`.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.scale.len() * self.filter_len);
        for (o, &s) in self.scale.iter().enumerate() {
            for i in 0..self.filter_len {
                out.push(s * self.sign(o, i));
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Conv2d {
    pub geometry: Conv2dGeometry,
    pub weight: Weights,
    pub bias: Option<Vec<f32>>,
}

#[derive(Debug, Clone)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Weights,
    pub bias: Option<Vec<f32>>,
}

/// A node's operation with its validated attributes and weights.
#[derive(Debug, Clone)]
pub enum Op {
    Conv2d(Conv2d),
    Linear(Linear),
    Add,
    Relu,
    Concat,
    MaxPool2d(Pool2dGeometry),
    GlobalAvgPool,
    Softmax,
}

impl Op {
    /// The FORMAT.md op name.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::Linear(_) => "linear",
            Op::Add => "add",
            Op::Relu => "relu",
            Op::Concat => "concat",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Softmax => "softmax",
        }
    }
}

/// One validated node.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    /// Shape of this node's output value (one image).
    pub shape: Shape,
    /// Logical weights + biases (a pattern weight counts as one parameter).
    pub params: u64,
    /// Bytes of the tensors this node references (weights, scales, bias) as stored.
    pub bytes: u64,
    /// Multiply-accumulates for one image: conv `O·H'·W'·(C/g)·kh·kw`, linear `O·I`.
    pub macs: u64,
}

/// Provenance (FORMAT.md section 5). Displayed only; read leniently (missing fields become
/// defaults) since execution never depends on it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Provenance {
    pub model: String,
    pub variant: String,
    pub dataset: String,
    pub trained: bool,
    pub binarization: Option<String>,
    pub accuracy: Option<Accuracy>,
    pub exporter: Option<String>,
    pub created: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Accuracy {
    pub split: Option<String>,
    pub n: Option<u64>,
    pub top1: Option<f64>,
    pub top5: Option<f64>,
}

/// A validated model graph with decoded weights.
///
/// Fields are private so a `Graph` can only come from [`parse`]: the executor relies on the
/// invariants validation established (ids in range, arities, shapes).
#[derive(Debug, Clone)]
pub struct Graph {
    pub(crate) input_name: String,
    pub(crate) input_shape: [usize; 3],
    pub(crate) nodes: Vec<Node>,
    pub(crate) output: ValueId,
    pub(crate) labels: Vec<String>,
    pub(crate) preprocess: Preprocess,
    pub(crate) provenance: Provenance,
    pub(crate) file_bytes: usize,
    /// For each value, the index of the last node reading it (`None`: never read), so the
    /// executor can free intermediate values early.
    pub(crate) last_use: Vec<Option<usize>>,
}

impl Graph {
    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    /// `[C, H, W]` of one image.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input_shape
    }

    /// Nodes in execution (topological) order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The value returned as logits.
    pub fn output(&self) -> ValueId {
        self.output
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// Size of the file the graph was read from.
    pub fn file_bytes(&self) -> usize {
        self.file_bytes
    }

    pub fn value_shape(&self, id: ValueId) -> Shape {
        match id.checked_sub(1).and_then(|i| self.nodes.get(i)) {
            Some(node) => node.shape,
            None => {
                let [c, h, w] = self.input_shape;
                Shape::Map { c, h, w }
            }
        }
    }

    pub fn value_name(&self, id: ValueId) -> &str {
        match id.checked_sub(1).and_then(|i| self.nodes.get(i)) {
            Some(node) => &node.name,
            None => &self.input_name,
        }
    }

    /// The value with this name (the input or a node).
    pub fn find_value(&self, name: &str) -> Option<ValueId> {
        if name == self.input_name {
            return Some(0);
        }
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .map(|i| i + 1)
    }

    /// Width `K` of the output vector.
    pub fn output_len(&self) -> usize {
        self.value_shape(self.output).numel()
    }

    /// Whether the output node is a softmax (its values are already probabilities).
    pub fn output_is_softmax(&self) -> bool {
        matches!(
            self.output.checked_sub(1).and_then(|i| self.nodes.get(i)),
            Some(Node {
                op: Op::Softmax,
                ..
            })
        )
    }
}

const KEY_FORMAT: &str = "sepnet.format";
const KEY_VERSION: &str = "sepnet.version";
const KEY_GRAPH: &str = "sepnet.graph";
const KEY_LABELS: &str = "sepnet.labels";
const KEY_PREPROCESS: &str = "sepnet.preprocess";
const KEY_PROVENANCE: &str = "sepnet.provenance";

/// Parses and validates a `.sepnet` file.
pub fn parse(bytes: &[u8]) -> Result<Graph> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::NotSafetensors(e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::NotSafetensors(e.to_string()))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    let get = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::MissingMetadata(key.to_string()))
    };

    let magic = get(KEY_FORMAT)?;
    if magic != "sepnet" {
        return Err(Error::BadMetadata {
            key: KEY_FORMAT.into(),
            reason: format!("expected `sepnet`, found `{}`", truncate(magic)),
        });
    }
    let version = get(KEY_VERSION)?;
    if version != "1" {
        return Err(Error::UnsupportedVersion(truncate(version)));
    }
    let graph_json = parse_json(KEY_GRAPH, get(KEY_GRAPH)?)?;
    let labels_json = parse_json(KEY_LABELS, get(KEY_LABELS)?)?;
    let preprocess_json = parse_json(KEY_PREPROCESS, get(KEY_PREPROCESS)?)?;
    let provenance_json = parse_json(KEY_PROVENANCE, get(KEY_PROVENANCE)?)?;

    let labels = parse_labels(&labels_json)?;
    let provenance = parse_provenance(&provenance_json)?;
    let structure = GraphBuilder::new(&st).build(&graph_json)?;
    let k = structure.shapes[structure.output].numel();
    if labels.len() != k {
        return Err(Error::BadMetadata {
            key: KEY_LABELS.into(),
            reason: format!("{} labels for an output of width {k}", labels.len()),
        });
    }
    let preprocess = parse_preprocess(&preprocess_json, structure.input_shape)?;
    Ok(Graph {
        input_name: structure.input_name,
        input_shape: structure.input_shape,
        nodes: structure.nodes,
        output: structure.output,
        labels,
        preprocess,
        provenance,
        file_bytes: bytes.len(),
        last_use: structure.last_use,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_json(key: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::BadMetadata {
        key: key.into(),
        reason: format!("invalid JSON: {e}"),
    })
}

fn parse_labels(v: &Value) -> Result<Vec<String>> {
    let bad = |reason: &str| Error::BadMetadata {
        key: KEY_LABELS.into(),
        reason: reason.into(),
    };
    let items = v
        .as_array()
        .ok_or_else(|| bad("expected a JSON array of strings"))?;
    items
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad("every label must be a string"))
        })
        .collect()
}

fn parse_provenance(v: &Value) -> Result<Provenance> {
    let obj = v.as_object().ok_or_else(|| Error::BadMetadata {
        key: KEY_PROVENANCE.into(),
        reason: "expected a JSON object".into(),
    })?;
    let string = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let accuracy = obj
        .get("accuracy")
        .and_then(Value::as_object)
        .map(|a| Accuracy {
            split: a.get("split").and_then(Value::as_str).map(str::to_string),
            n: a.get("n").and_then(Value::as_u64),
            top1: a.get("top1").and_then(Value::as_f64),
            top5: a.get("top5").and_then(Value::as_f64),
        });
    Ok(Provenance {
        model: string("model").unwrap_or_else(|| "unknown".into()),
        variant: string("variant").unwrap_or_else(|| "unknown".into()),
        dataset: string("dataset").unwrap_or_else(|| "unknown".into()),
        trained: obj.get("trained").and_then(Value::as_bool).unwrap_or(false),
        binarization: string("binarization"),
        accuracy,
        exporter: string("exporter"),
        created: string("created"),
    })
}

fn parse_preprocess(v: &Value, input_shape: [usize; 3]) -> Result<Preprocess> {
    let bad = |reason: String| Error::BadMetadata {
        key: KEY_PREPROCESS.into(),
        reason,
    };
    let obj = v
        .as_object()
        .ok_or_else(|| bad("expected a JSON object".into()))?;
    const KNOWN: &[&str] = &[
        "input_size",
        "channel_order",
        "mean",
        "std",
        "crop_ratio",
        "resize",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(format!("unknown key `{}`", truncate(k))));
    }
    let field = |k: &str| obj.get(k).ok_or_else(|| bad(format!("missing `{k}`")));
    let floats = |k: &str| -> Result<Vec<f64>> {
        field(k)?
            .as_array()
            .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad(format!("`{k}` must be an array of numbers")))
    };

    let size = floats("input_size")?;
    let [c, h, w] = input_shape;
    if size != [h as f64, w as f64] {
        return Err(bad(format!(
            "input_size {size:?} differs from the graph input [{h}, {w}]"
        )));
    }
    let channel_order = match field("channel_order")?.as_str() {
        Some("RGB") => ChannelOrder::Rgb,
        Some("BGR") => ChannelOrder::Bgr,
        _ => return Err(bad("channel_order must be \"RGB\" or \"BGR\"".into())),
    };
    if c != 3 {
        return Err(bad(format!(
            "image preprocessing needs 3 input channels, the graph has {c}"
        )));
    }
    let mean = floats("mean")?;
    let std = floats("std")?;
    if mean.len() != 3 || std.len() != 3 {
        return Err(bad("mean and std must have 3 entries".into()));
    }
    if mean.iter().any(|m| !m.is_finite()) || std.iter().any(|s| !s.is_finite() || *s == 0.0) {
        return Err(bad("mean must be finite and std finite and nonzero".into()));
    }
    let crop_ratio = field("crop_ratio")?
        .as_f64()
        .ok_or_else(|| bad("crop_ratio must be a number".into()))?;
    if !(crop_ratio.is_finite() && crop_ratio > 0.0) {
        return Err(bad(format!("crop_ratio {crop_ratio} must be > 0")));
    }
    let resize = field("resize")?.as_str().unwrap_or_default();
    if resize != "bilinear" {
        return Err(bad(format!(
            "resize `{}` is not supported (only bilinear)",
            truncate(resize)
        )));
    }
    let spec = Preprocess {
        input_size: [h, w],
        channel_order,
        mean: [mean[0] as f32, mean[1] as f32, mean[2] as f32],
        std: [std[0] as f32, std[1] as f32, std[2] as f32],
        crop_ratio: crop_ratio as f32,
        resize: resize.to_string(),
    };
    let side = spec.resize_short_side();
    if side == 0 || side > MAX_RESIZE_SIDE {
        return Err(Error::limit(
            "preprocess resize side",
            side as u64,
            MAX_RESIZE_SIDE as u64,
        ));
    }
    Ok(spec)
}

/// The graph JSON resolved against the tensors: everything but labels and preprocessing.
struct Structure {
    input_name: String,
    input_shape: [usize; 3],
    nodes: Vec<Node>,
    output: ValueId,
    /// Shape of every value (input first).
    shapes: Vec<Shape>,
    last_use: Vec<Option<usize>>,
}

/// Builds the node list, resolving names and inferring shapes in file order.
struct GraphBuilder<'a> {
    tensors: &'a SafeTensors<'a>,
    names: HashMap<String, ValueId>,
    shapes: Vec<Shape>,
}

/// Attribute access on one node's JSON object, with errors naming the node.
struct Attrs<'a> {
    node: &'a str,
    obj: &'a Map<String, Value>,
}

impl<'a> Attrs<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::graph(truncate(self.node), reason)
    }

    fn get(&self, key: &str) -> Result<&'a Value> {
        self.obj
            .get(key)
            .ok_or_else(|| self.err(format!("missing attribute `{key}`")))
    }

    fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.err(format!("unknown attribute `{}`", truncate(k)))),
            None => Ok(()),
        }
    }

    fn usize_of(&self, key: &str, v: &Value) -> Result<usize> {
        v.as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| self.err(format!("`{key}` must be a non-negative integer")))
    }

    fn count(&self, key: &str) -> Result<usize> {
        self.usize_of(key, self.get(key)?)
    }

    fn pair(&self, key: &str) -> Result<[usize; 2]> {
        match self.get(key)?.as_array().map(Vec::as_slice) {
            Some([a, b]) => Ok([self.usize_of(key, a)?, self.usize_of(key, b)?]),
            _ => Err(self.err(format!("`{key}` must be a pair of integers"))),
        }
    }

    /// An optional attribute (FORMAT.md gives its default); present but malformed is an error.
    fn pair_or(&self, key: &str, default: [usize; 2]) -> Result<[usize; 2]> {
        match self.obj.get(key) {
            None => Ok(default),
            Some(_) => self.pair(key),
        }
    }

    fn count_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.obj.get(key) {
            None => Ok(default),
            Some(v) => self.usize_of(key, v),
        }
    }

    fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str> {
        match self.obj.get(key) {
            None => Ok(default),
            Some(_) => self.str(key),
        }
    }

    fn str(&self, key: &str) -> Result<&'a str> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.err(format!("`{key}` must be a string")))
    }
}

/// A node's op with its output shape and costs, before it gets a name and inputs.
struct Inferred {
    op: Op,
    shape: Shape,
    params: u64,
    bytes: u64,
    macs: u64,
}

impl Inferred {
    /// An op without weights: no parameters, bytes or multiply-accumulates.
    fn free(op: Op, shape: Shape) -> Inferred {
        Inferred {
            op,
            shape,
            params: 0,
            bytes: 0,
            macs: 0,
        }
    }
}

/// A decoded tensor plus the bytes it occupies in the file.
struct Loaded<T> {
    values: Vec<T>,
    bytes: u64,
}

impl<'a> GraphBuilder<'a> {
    fn new(tensors: &'a SafeTensors<'a>) -> Self {
        GraphBuilder {
            tensors,
            names: HashMap::new(),
            shapes: Vec::new(),
        }
    }

    fn build(mut self, v: &Value) -> Result<Structure> {
        let root = v
            .as_object()
            .ok_or_else(|| Error::graph("graph", "expected a JSON object"))?;
        let top = Attrs {
            node: "graph",
            obj: root,
        };
        top.only(&["input", "output", "nodes"])?;

        // Input.
        let input = top
            .get("input")?
            .as_object()
            .ok_or_else(|| Error::graph("input", "expected an object"))?;
        let input_attrs = Attrs {
            node: "input",
            obj: input,
        };
        input_attrs.only(&["name", "shape"])?;
        let input_name = input_attrs.str("name")?.to_string();
        let dims = input_attrs
            .get("shape")?
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| Error::graph("input", "`shape` must be [C, H, W]"))?;
        let mut input_shape = [0usize; 3];
        for (slot, d) in input_shape.iter_mut().zip(dims) {
            *slot = input_attrs.usize_of("shape", d)?;
        }
        let [c, h, w] = input_shape;
        let shape = Shape::Map { c, h, w };
        check_value("input", shape)?;
        self.names.insert(input_name.clone(), 0);
        self.shapes.push(shape);

        // Nodes, in topological order.
        let nodes_json = top
            .get("nodes")?
            .as_array()
            .ok_or_else(|| Error::graph("graph", "`nodes` must be an array"))?;
        if nodes_json.len() > limits::MAX_NODES {
            return Err(Error::limit(
                "node count",
                nodes_json.len() as u64,
                limits::MAX_NODES as u64,
            ));
        }
        let mut nodes = Vec::with_capacity(nodes_json.len());
        for (index, nv) in nodes_json.iter().enumerate() {
            let node = self.node(index, nv)?;
            self.names.insert(node.name.clone(), index + 1);
            self.shapes.push(node.shape);
            nodes.push(node);
        }

        // Output.
        let output_name = top.str("output")?;
        let output = *self.names.get(output_name).ok_or_else(|| {
            Error::graph(
                "output",
                format!("unknown value `{}`", truncate(output_name)),
            )
        })?;
        if !matches!(self.shapes[output], Shape::Vector(_)) {
            return Err(Error::graph(
                "output",
                format!("`{output_name}` is not a vector [K]"),
            ));
        }

        let mut last_use = vec![None; nodes.len() + 1];
        for (i, node) in nodes.iter().enumerate() {
            for &v in &node.inputs {
                last_use[v] = Some(i);
            }
        }
        Ok(Structure {
            input_name,
            input_shape,
            nodes,
            output,
            shapes: self.shapes,
            last_use,
        })
    }

    fn node(&self, index: usize, v: &Value) -> Result<Node> {
        let placeholder = format!("#{index}");
        let obj = v
            .as_object()
            .ok_or_else(|| Error::graph(&placeholder, "expected a JSON object"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::graph(&placeholder, "`name` must be a string"))?;
        let a = Attrs { node: name, obj };
        if self.names.contains_key(name) {
            return Err(a.err("duplicate value name"));
        }
        let op = a.str("op")?;
        let inputs_json = a
            .get("inputs")?
            .as_array()
            .ok_or_else(|| a.err("`inputs` must be an array"))?;
        let mut inputs = Vec::with_capacity(inputs_json.len());
        for iv in inputs_json {
            let iname = iv
                .as_str()
                .ok_or_else(|| a.err("input names must be strings"))?;
            let id = *self.names.get(iname).ok_or_else(|| {
                a.err(format!(
                    "input `{}` is not the graph input or an earlier node",
                    truncate(iname)
                ))
            })?;
            inputs.push(id);
        }
        let arity = |n: usize| -> Result<()> {
            if inputs.len() == n {
                Ok(())
            } else {
                Err(a.err(format!("`{op}` takes {n} input(s), got {}", inputs.len())))
            }
        };
        let in_shapes: Vec<Shape> = inputs.iter().map(|&i| self.shapes[i]).collect();
        const COMMON: [&str; 3] = ["name", "op", "inputs"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            COMMON.iter().chain(extra).copied().collect()
        };

        let Inferred {
            op,
            shape,
            params,
            bytes,
            macs,
        } = match op {
            "conv2d" => {
                a.only(&with(&[
                    "out_channels",
                    "kernel",
                    "stride",
                    "padding",
                    "groups",
                    "weight",
                    "bias",
                ]))?;
                arity(1)?;
                self.conv2d(&a, in_shapes[0])?
            }
            "linear" => {
                a.only(&with(&["out_features", "weight", "bias"]))?;
                arity(1)?;
                self.linear(&a, in_shapes[0])?
            }
            "add" => {
                a.only(&with(&[]))?;
                arity(2)?;
                if in_shapes[0] != in_shapes[1] {
                    return Err(a.err(format!(
                        "add of unequal shapes {:?} and {:?}",
                        in_shapes[0].dims(),
                        in_shapes[1].dims()
                    )));
                }
                Inferred::free(Op::Add, in_shapes[0])
            }
            "relu" => {
                a.only(&with(&[]))?;
                arity(1)?;
                Inferred::free(Op::Relu, in_shapes[0])
            }
            "concat" => {
                a.only(&with(&[]))?;
                if inputs.is_empty() {
                    return Err(a.err("concat needs at least one input"));
                }
                let mut total = 0usize;
                let mut hw = None;
                for s in &in_shapes {
                    let Shape::Map { c, h, w } = *s else {
                        return Err(a.err("concat inputs must be feature maps [C, H, W]"));
                    };
                    if *hw.get_or_insert((h, w)) != (h, w) {
                        return Err(a.err("concat inputs must have equal H and W"));
                    }
                    total = total.saturating_add(c);
                }
                let (h, w) = hw.unwrap_or((1, 1));
                Inferred::free(Op::Concat, Shape::Map { c: total, h, w })
            }
            "maxpool2d" => {
                a.only(&with(&["kernel", "stride", "padding"]))?;
                arity(1)?;
                let Shape::Map { c, h, w } = in_shapes[0] else {
                    return Err(a.err("maxpool2d input must be a feature map [C, H, W]"));
                };
                let geometry = Pool2dGeometry {
                    channels: c,
                    in_h: h,
                    in_w: w,
                    kernel: self.kernel(&a)?,
                    stride: self.stride(&a)?,
                    padding: a.pair_or("padding", [0, 0])?,
                };
                let (oh, ow) = geometry.output_hw().map_err(|e| reword(&a, e))?;
                Inferred::free(Op::MaxPool2d(geometry), Shape::Map { c, h: oh, w: ow })
            }
            "global_avg_pool" => {
                a.only(&with(&[]))?;
                arity(1)?;
                let Shape::Map { c, .. } = in_shapes[0] else {
                    return Err(a.err("global_avg_pool input must be a feature map [C, H, W]"));
                };
                Inferred::free(Op::GlobalAvgPool, Shape::Vector(c))
            }
            "softmax" => {
                a.only(&with(&[]))?;
                arity(1)?;
                if !matches!(in_shapes[0], Shape::Vector(_)) {
                    return Err(a.err("softmax input must be a vector [K]"));
                }
                Inferred::free(Op::Softmax, in_shapes[0])
            }
            other => return Err(a.err(format!("unknown op `{}`", truncate(other)))),
        };
        check_value(name, shape)?;
        Ok(Node {
            name: name.to_string(),
            op,
            inputs,
            shape,
            params,
            bytes,
            macs,
        })
    }

    fn kernel(&self, a: &Attrs) -> Result<[usize; 2]> {
        pair_within(a.pair("kernel")?, limits::MAX_KERNEL, || {
            format!("kernel side of `{}`", truncate(a.node))
        })
    }

    fn stride(&self, a: &Attrs) -> Result<[usize; 2]> {
        pair_within(a.pair_or("stride", [1, 1])?, limits::MAX_STRIDE, || {
            format!("stride of `{}`", truncate(a.node))
        })
    }

    fn conv2d(&self, a: &Attrs, input: Shape) -> Result<Inferred> {
        let Shape::Map { c, h, w } = input else {
            return Err(a.err("conv2d input must be a feature map [C, H, W]"));
        };
        let out_channels = a.count("out_channels")?;
        check_channels(a.node, out_channels)?;
        let geometry = Conv2dGeometry {
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels,
            kernel: self.kernel(a)?,
            stride: self.stride(a)?,
            padding: a.pair_or("padding", [0, 0])?,
            groups: a.count_or("groups", 1)?,
        };
        let d = geometry.dims().map_err(|e| reword(a, e))?;
        let shape = Shape::Map {
            c: out_channels,
            h: d.out_h,
            w: d.out_w,
        };
        check_value(a.node, shape)?;
        let logical = [
            out_channels,
            d.in_per_group,
            geometry.kernel[0],
            geometry.kernel[1],
        ];
        let (weight, mut bytes) = self.weights(a, &logical, d.filter_len, true)?;
        let (bias, bias_bytes) = self.bias(a, out_channels)?;
        bytes += bias_bytes;
        let weights = out_channels as u64 * d.filter_len as u64;
        let params = weights + bias.as_ref().map_or(0, |b| b.len() as u64);
        let macs = shape.numel() as u64 * d.filter_len as u64;
        let op = Op::Conv2d(Conv2d {
            geometry,
            weight,
            bias,
        });
        Ok(Inferred {
            op,
            shape,
            params,
            bytes,
            macs,
        })
    }

    fn linear(&self, a: &Attrs, input: Shape) -> Result<Inferred> {
        let in_features = input.numel();
        let out_features = a.count("out_features")?;
        check_channels(a.node, out_features)?;
        let logical = [out_features, in_features];
        let (weight, mut bytes) = self.weights(a, &logical, in_features, false)?;
        let (bias, bias_bytes) = self.bias(a, out_features)?;
        bytes += bias_bytes;
        let params =
            out_features as u64 * in_features as u64 + bias.as_ref().map_or(0, |b| b.len() as u64);
        let macs = out_features as u64 * in_features as u64;
        let op = Op::Linear(Linear {
            in_features,
            out_features,
            weight,
            bias,
        });
        Ok(Inferred {
            op,
            shape: Shape::Vector(out_features),
            params,
            bytes,
            macs,
        })
    }

    /// Resolves a weight reference `{"encoding", "tensor", "scale"?}` against the tensors.
    fn weights(
        &self,
        a: &Attrs,
        logical: &[usize],
        filter_len: usize,
        pattern_allowed: bool,
    ) -> Result<(Weights, u64)> {
        let obj = a
            .get("weight")?
            .as_object()
            .ok_or_else(|| a.err("`weight` must be an object"))?;
        let wa = Attrs { node: a.node, obj };
        wa.only(&["encoding", "tensor", "scale"])?;
        let encoding = wa.str_or("encoding", "f32")?;
        let tensor = wa.str("tensor")?;
        let scale_name = match obj.get("scale") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(a.err("`weight.scale` must be a tensor name")),
        };
        let out_channels = logical[0];
        let need_scale = || {
            scale_name.ok_or_else(|| a.err(format!("`{encoding}` weight needs a `scale` tensor")))
        };
        match encoding {
            "f32" => {
                if scale_name.is_some() {
                    return Err(a.err("an `f32` weight takes no `scale`"));
                }
                let w = self.f32_tensor(tensor, logical)?;
                Ok((Weights::F32(w.values), w.bytes))
            }
            "int8" => {
                let q = self.i8_tensor(tensor, logical)?;
                let scale = self.f32_tensor(need_scale()?, &[out_channels])?;
                Ok((
                    Weights::Int8 {
                        q: q.values,
                        scale: scale.values,
                    },
                    q.bytes + scale.bytes,
                ))
            }
            "pattern" if pattern_allowed => {
                let row_bytes = pattern_row_bytes(filter_len);
                let bits = self.raw_tensor(tensor, Dtype::U8, &[out_channels, row_bytes])?;
                let pad = (row_bytes * 8 - filter_len) as u32;
                if pad > 0 {
                    let used_mask = 0xFFu8 >> pad;
                    for (row, chunk) in bits.chunks_exact(row_bytes).enumerate() {
                        let last = chunk.last().copied().unwrap_or(0);
                        if last & !used_mask != 0 {
                            return Err(Error::BadPadding {
                                tensor: tensor.to_string(),
                                row,
                            });
                        }
                    }
                }
                let scale = self.f32_tensor(need_scale()?, &[out_channels])?;
                let bytes = bits.len() as u64 + scale.bytes;
                Ok((
                    Weights::Pattern(PatternWeights {
                        bits: bits.to_vec(),
                        row_bytes,
                        filter_len,
                        scale: scale.values,
                    }),
                    bytes,
                ))
            }
            "pattern" => Err(a.err("`pattern` encoding is allowed for conv2d only")),
            other => Err(a.err(format!("unknown weight encoding `{}`", truncate(other)))),
        }
    }

    fn bias(&self, a: &Attrs, out: usize) -> Result<(Option<Vec<f32>>, u64)> {
        match a.obj.get("bias") {
            None | Some(Value::Null) => Ok((None, 0)),
            Some(Value::String(name)) => {
                let b = self.f32_tensor(name, &[out])?;
                Ok((Some(b.values), b.bytes))
            }
            Some(_) => Err(a.err("`bias` must be a tensor name or null")),
        }
    }

    /// The raw bytes of tensor `name`, checked to have exactly `dtype` and `shape`.
    fn raw_tensor(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&'a [u8]> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| Error::MissingTensor(truncate(name)))?;
        if view.dtype() != dtype || view.shape() != shape {
            return Err(Error::TensorMismatch {
                name: truncate(name),
                expected: format!("{dtype:?} {shape:?}"),
                found: format!("{:?} {:?}", view.dtype(), view.shape()),
            });
        }
        Ok(view.data())
    }

    fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<Loaded<f32>> {
        let raw = self.raw_tensor(name, Dtype::F32, shape)?;
        let values = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Loaded {
            values,
            bytes: raw.len() as u64,
        })
    }

    fn i8_tensor(&self, name: &str, shape: &[usize]) -> Result<Loaded<i8>> {
        let raw = self.raw_tensor(name, Dtype::I8, shape)?;
        let values: Vec<i8> = raw.iter().map(|&b| b as i8).collect();
        if values.contains(&i8::MIN) {
            return Err(Error::TensorMismatch {
                name: truncate(name),
                expected: "int8 values in [-127, 127]".into(),
                found: "-128".into(),
            });
        }
        Ok(Loaded {
            values,
            bytes: raw.len() as u64,
        })
    }
}

/// Rewrites a geometry error so it names the node rather than the op.
fn reword(a: &Attrs, e: Error) -> Error {
    match e {
        Error::BadGraph { reason, .. } => a.err(reason),
        other => other,
    }
}

fn check_channels(node: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::graph(node, "channel count must be >= 1"));
    }
    if n > limits::MAX_CHANNELS {
        return Err(Error::limit(
            format!("channels of `{}`", truncate(node)),
            n as u64,
            limits::MAX_CHANNELS as u64,
        ));
    }
    Ok(())
}

/// Both sides of a kernel or stride pair at most `max` (what names the offending attribute).
fn pair_within(pair: [usize; 2], max: usize, what: impl Fn() -> String) -> Result<[usize; 2]> {
    match pair.iter().find(|&&side| side > max) {
        Some(&side) => Err(Error::limit(what(), side as u64, max as u64)),
        None => Ok(pair),
    }
}

/// Every dimension ≥ 1, channels within the limit, and at most 2^26 elements.
fn check_value(node: &str, shape: Shape) -> Result<()> {
    let dims = shape.dims();
    if dims.contains(&0) {
        return Err(Error::graph(
            node,
            format!("zero-size dimension in {dims:?}"),
        ));
    }
    if let Shape::Map { c, .. } = shape {
        check_channels(node, c)?;
    }
    let numel = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    match numel {
        Some(n) if n <= limits::MAX_VALUE_ELEMENTS as u64 => Ok(()),
        n => Err(Error::limit(
            format!("elements of value `{}`", truncate(node)),
            n.unwrap_or(u64::MAX),
            limits::MAX_VALUE_ELEMENTS as u64,
        )),
    }
}
