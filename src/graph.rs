//! The executor: runs a validated [`Graph`] on a batch `[N, C, H, W]`.
//!
//! Nodes run in file order (which validation proved topological). Each node's output holds the
//! whole batch, `[N, ...value shape]`, and the kernel is called once per image. Values are
//! dropped after their last reader unless they are the output or were asked for (captured),
//! which keeps peak memory near the widest point of the network rather than its sum.
//!
//! Per-node wall time is read from the [`Clock`] passed in (see [`crate::clock`]).
//!
//! A [`Plan`] holds what the fast kernels prepare once per model (decoded, packed convolution
//! weights, and which ReLU nodes are fused into the node before them); [`Kernels::Reference`]
//! runs the scalar reference kernels one node at a time instead, which is how tests and
//! `sepnet bench --kernels` compare the two.
//!
//! A fused ReLU is applied by its producer as it writes its output (a packed convolution's
//! epilogue, or in place after any other op), and the ReLU node then takes that buffer over:
//! one pass over the activation less, and the same values bit for bit. Only where the ReLU is
//! the producer's sole reader and the producer's output is neither the graph output nor
//! captured, since nothing may see the value before the ReLU.

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::{Conv2d, Graph, Linear, Op, Shape, ValueId, Weights};
use crate::kernels::packed::PackedConv;
use crate::kernels::{pool, scalar};
use crate::tensor::Tensor;

/// Wall time of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerTiming {
    /// Node name.
    pub layer: String,
    /// FORMAT.md op name.
    pub op: &'static str,
    pub ms: f64,
    /// A ReLU the node before it applied as it wrote its output: its time is in that row.
    pub fused: bool,
}

/// Which kernels run the convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// The scalar reference kernels (`kernels::scalar`).
    Reference,
    /// Packed im2col + GEMM (`kernels::packed`), SIMD128 on wasm. Same results bit for bit.
    Fast,
}

/// Per-model state prepared for a kernel choice: one packed convolution per conv2d node.
#[derive(Debug, Clone)]
pub struct Plan {
    kernels: Kernels,
    convs: Vec<Option<PackedConv>>,
    /// Per node: its output's only reader is a ReLU node that it may apply itself.
    feeds_relu: Vec<bool>,
}

/// Most f32 values a plan decodes weights into (64 MiB); convolutions past it run on the
/// scalar kernels, which read the stored encoding directly. Real models are far below it
/// (`sepnet_large`: 1.7M); a hostile file cannot make loading allocate 32 floats per stored byte.
pub const MAX_PACKED_WEIGHTS: usize = 1 << 24;

/// Longest filter (`C/g · kh · kw`) a packed convolution takes: its im2col panel holds 8 of them.
pub const MAX_PACKED_FILTER: usize = 1 << 16;

impl Plan {
    pub fn new(graph: &Graph, kernels: Kernels) -> Result<Plan> {
        let mut budget = MAX_PACKED_WEIGHTS;
        let mut convs = Vec::new();
        if kernels == Kernels::Fast {
            for node in &graph.nodes {
                let Op::Conv2d(Conv2d {
                    geometry, weight, ..
                }) = &node.op
                else {
                    convs.push(None);
                    continue;
                };
                let size = PackedConv::packed_len(geometry)?;
                if size > budget || geometry.dims()?.filter_len > MAX_PACKED_FILTER {
                    convs.push(None);
                    continue;
                }
                budget -= size;
                convs.push(Some(match weight {
                    Weights::F32(w) => PackedConv::f32(geometry, w),
                    Weights::Int8 { q, scale } => PackedConv::int8(geometry, q, scale),
                    Weights::Pattern(p) => PackedConv::pattern(geometry, &p.bits, &p.scale),
                }?));
            }
        }
        let mut readers = vec![0usize; graph.nodes.len() + 1];
        for node in &graph.nodes {
            for &v in &node.inputs {
                readers[v] += 1;
            }
        }
        let feeds_relu = (0..graph.nodes.len())
            .map(|i| {
                let out = i + 1;
                let reader = graph.last_use[out].and_then(|j| graph.nodes.get(j));
                kernels == Kernels::Fast
                    && out != graph.output
                    && readers[out] == 1
                    && reader.is_some_and(|n| matches!(n.op, Op::Relu))
            })
            .collect();
        Ok(Plan {
            kernels,
            convs,
            feeds_relu,
        })
    }

    /// How many convolutions run on the packed kernels (the rest, if any, on the scalar ones).
    pub fn packed_convs(&self) -> usize {
        self.convs.iter().flatten().count()
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    fn conv(&self, index: usize) -> Option<&PackedConv> {
        self.convs.get(index).and_then(Option::as_ref)
    }

    /// How many ReLU nodes run fused into the node before them (none on the reference kernels,
    /// and fewer in a run that captures a fused ReLU's input).
    pub fn fused_relus(&self) -> usize {
        self.feeds_relu.iter().filter(|&&f| f).count()
    }
}

/// What one execution produced.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The graph output, `[N, K]`.
    pub output: Tensor,
    /// One entry per node, in execution order.
    pub timings: Vec<LayerTiming>,
    /// Wall time of the whole run.
    pub total_ms: f64,
    /// The requested values, `[N, ...value shape]`, in the order asked for.
    pub captured: Vec<(String, Tensor)>,
}

/// Runs `graph` on `input` (`[N, C, H, W]` matching the graph input, `N ≥ 1`) with the kernels
/// `plan` was made for (`Plan::new(graph, ..)`), timing nodes with `clock` and keeping copies
/// of the values named in `capture` (node or input names).
pub fn execute(
    graph: &Graph,
    plan: &Plan,
    input: &Tensor,
    clock: Clock,
    capture: &[&str],
) -> Result<Execution> {
    let [c, h, w] = graph.input_shape;
    let batch = match input.shape() {
        [n, ic, ih, iw] if [*ic, *ih, *iw] == [c, h, w] && *n >= 1 => *n,
        other => {
            return Err(Error::shape(
                "model input",
                format!("[N, {c}, {h}, {w}] with N >= 1"),
                other,
            ))
        }
    };
    let capture_ids = capture
        .iter()
        .map(|name| {
            graph
                .find_value(name)
                .ok_or_else(|| Error::BadInput(format!("no value named `{name}` to capture")))
        })
        .collect::<Result<Vec<ValueId>>>()?;
    let keep = |id: ValueId| id == graph.output || capture_ids.contains(&id);
    // Node `i` applies the ReLU that reads its output (value `i + 1`).
    let applies_relu = |i: usize| plan.feeds_relu.get(i) == Some(&true) && !keep(i + 1);

    let start = clock();
    let mut values: Vec<Option<Vec<f32>>> = vec![None; graph.nodes.len() + 1];
    values[0] = Some(input.data().to_vec());
    let mut timings = Vec::with_capacity(graph.nodes.len());

    for (index, node) in graph.nodes.iter().enumerate() {
        let t0 = clock();
        if let (Op::Relu, &[src]) = (&node.op, node.inputs.as_slice()) {
            if src >= 1 && applies_relu(src - 1) {
                // Its producer already applied it; this node's output is that buffer.
                let mut data = values[src].take().ok_or_else(|| {
                    Error::graph(&node.name, "input value was freed (executor bug)")
                })?;
                if applies_relu(index) {
                    scalar::relu_in_place(&mut data); // a ReLU of a ReLU: a no-op, kept exact
                }
                values[index + 1] = Some(data);
                timings.push(LayerTiming {
                    layer: node.name.clone(),
                    op: node.op.name(),
                    ms: clock() - t0,
                    fused: true,
                });
                continue;
            }
        }
        let relu = applies_relu(index);
        let ins = node
            .inputs
            .iter()
            .map(|&id| {
                let data = values[id].as_deref().ok_or_else(|| {
                    Error::graph(&node.name, "input value was freed (executor bug)")
                })?;
                Ok((data, graph.value_shape(id)))
            })
            .collect::<Result<Vec<_>>>()?;
        let out_numel = node.shape.numel();
        let mut out = vec![0.0f32; batch * out_numel];
        for n in 0..batch {
            let image = |k: usize| -> &[f32] {
                let (data, shape) = ins[k];
                let len = shape.numel();
                &data[n * len..(n + 1) * len]
            };
            let dst = &mut out[n * out_numel..(n + 1) * out_numel];
            match (plan.conv(index), &node.op) {
                (Some(packed), Op::Conv2d(conv)) => {
                    packed.run(image(0), conv.bias.as_deref(), relu, dst)?
                }
                _ => {
                    run_node(&node.op, plan.kernels, &ins, image, dst)?;
                    if relu {
                        scalar::relu_in_place(dst);
                    }
                }
            }
        }
        timings.push(LayerTiming {
            layer: node.name.clone(),
            op: node.op.name(),
            ms: clock() - t0,
            fused: false,
        });
        values[index + 1] = Some(out);
        for &id in &node.inputs {
            if graph.last_use[id] == Some(index) && !keep(id) {
                values[id] = None;
            }
        }
    }

    let as_tensor = |id: ValueId, values: &[Option<Vec<f32>>]| -> Result<Tensor> {
        let mut shape = vec![batch];
        shape.extend(graph.value_shape(id).dims());
        let data = values[id]
            .clone()
            .ok_or_else(|| Error::graph(graph.value_name(id), "value was freed (executor bug)"))?;
        Tensor::new(shape, data)
    };
    let captured = capture
        .iter()
        .zip(&capture_ids)
        .map(|(name, &id)| Ok((name.to_string(), as_tensor(id, &values)?)))
        .collect::<Result<Vec<_>>>()?;
    let output = as_tensor(graph.output, &values)?;
    Ok(Execution {
        output,
        timings,
        total_ms: clock() - start,
        captured,
    })
}

/// Runs one node on one image with the reference kernels (the separable max pool for
/// [`Kernels::Fast`]). `image(k)` is this image's slice of input `k`.
fn run_node<'a>(
    op: &Op,
    kernels: Kernels,
    ins: &[(&'a [f32], Shape)],
    image: impl Fn(usize) -> &'a [f32],
    dst: &mut [f32],
) -> Result<()> {
    match op {
        Op::Conv2d(Conv2d {
            geometry,
            weight,
            bias,
        }) => {
            let bias = bias.as_deref();
            match weight {
                Weights::F32(wt) => scalar::conv2d_f32(geometry, image(0), wt, bias, dst),
                Weights::Int8 { q, scale } => {
                    scalar::conv2d_int8(geometry, image(0), q, scale, bias, dst)
                }
                Weights::Pattern(p) => {
                    scalar::conv2d_pattern(geometry, image(0), &p.bits, &p.scale, bias, dst)
                }
            }
        }
        Op::Linear(Linear { weight, bias, .. }) => {
            let bias = bias.as_deref();
            match weight {
                Weights::F32(wt) => scalar::linear_f32(image(0), wt, bias, dst),
                Weights::Int8 { q, scale } => scalar::linear_int8(image(0), q, scale, bias, dst),
                // Rejected at load time; kept total so no input can reach a panic.
                Weights::Pattern(_) => Err(Error::graph("linear", "pattern weights")),
            }
        }
        Op::Add => scalar::add(image(0), image(1), dst),
        Op::Relu => scalar::relu(image(0), dst),
        Op::Concat => {
            let parts: Vec<&[f32]> = (0..ins.len()).map(&image).collect();
            scalar::concat(&parts, dst)
        }
        Op::MaxPool2d(g) => match kernels {
            Kernels::Fast => pool::maxpool2d(g, image(0), dst),
            Kernels::Reference => scalar::maxpool2d(g, image(0), dst),
        },
        Op::GlobalAvgPool => {
            let plane = match ins[0].1 {
                Shape::Map { h, w, .. } => h * w,
                Shape::Vector(_) => 1,
            };
            scalar::global_avg_pool(image(0), plane, dst)
        }
        Op::Softmax => scalar::softmax(image(0), dst),
    }
}
