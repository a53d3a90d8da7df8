//! Random convolution cases shared by the native property tests (`tests/kernels.rs`) and the
//! wasm32 SIMD128 ones (`tests/wasm.rs`): geometries, weights stored in each encoding beside the
//! real weights they stand for, and the bit-for-bit check the fast kernels are held to.

use sepnet::kernels::gemm::{Tile, MR, NR};
use sepnet::kernels::packed::PackedConv;
use sepnet::kernels::{pool, scalar, Conv2dGeometry, Pool2dGeometry};

use super::{Enc, Rng};

/// A random valid convolution geometry: odd channels, groups 1/2/4, strides 1-3, paddings 0-2,
/// kernels 1/3/5 (not necessarily square), small non-square inputs.
pub fn random_conv(rng: &mut Rng) -> Conv2dGeometry {
    loop {
        let groups = rng.pick(&[1, 2, 4]);
        let g = Conv2dGeometry {
            in_channels: groups * rng.pick(&[1, 2, 3, 5]),
            in_h: 1 + rng.below(9),
            in_w: 1 + rng.below(11),
            out_channels: groups * rng.pick(&[1, 3, 5]),
            kernel: [rng.pick(&[1, 3, 5]), rng.pick(&[1, 3, 5])],
            stride: [rng.pick(&[1, 2, 3]), rng.pick(&[1, 2, 3])],
            padding: [rng.pick(&[0, 1, 2]), rng.pick(&[0, 1, 2])],
            groups,
        };
        if g.dims().is_ok() {
            return g;
        }
    }
}

/// A random geometry the size of a real layer: several MR × NR tiles, ragged edges.
pub fn random_layer(rng: &mut Rng) -> Conv2dGeometry {
    loop {
        let groups = rng.pick(&[1, 4]);
        let k = rng.pick(&[1, 3, 5]);
        let g = Conv2dGeometry {
            in_channels: groups * rng.pick(&[3, 8, 13, 16]),
            in_h: 4 + rng.below(17),
            in_w: 4 + rng.below(17),
            out_channels: groups * rng.pick(&[1, 4, 5, 9, 16]),
            kernel: [k, k],
            stride: [rng.pick(&[1, 1, 2]); 2],
            padding: [rng.pick(&[0, k / 2]); 2],
            groups,
        };
        if g.dims().is_ok() {
            return g;
        }
    }
}

/// A strided layer with wide rows (stride 2 mostly, 3 sometimes): a B panel's run of 8 outputs
/// then reads 15-22 floats of one input row, as in the stem convolutions, beside row ends, rows
/// shorter than a panel and padding on either side.
pub fn random_strided_layer(rng: &mut Rng) -> Conv2dGeometry {
    loop {
        let groups = rng.pick(&[1, 4]);
        let k = rng.pick(&[1, 3, 5]);
        let s = rng.pick(&[2, 2, 3]);
        let g = Conv2dGeometry {
            in_channels: groups * rng.pick(&[1, 3, 8]),
            in_h: 3 + rng.below(10),
            in_w: 5 + rng.below(60),
            out_channels: groups * rng.pick(&[1, 4, 9]),
            kernel: [k, k],
            stride: [s, s],
            padding: [rng.pick(&[0, k / 2]); 2],
            groups,
        };
        if g.dims().is_ok() {
            return g;
        }
    }
}

/// Weights as the model file stores them.
pub enum Stored {
    F32(Vec<f32>),
    Int8 {
        q: Vec<i8>,
        scale: Vec<f32>,
    },
    /// FORMAT.md's bit order: bit `i % 8` of byte `i / 8` of each filter's row; padding bits 0.
    Pattern {
        bits: Vec<u8>,
        scale: Vec<f32>,
    },
}

/// One random convolution: input, optional bias, stored weights and the real weights
/// (`out_channels × filter_len`) they decode to, decoded here without the engine's code.
pub struct ConvCase {
    pub g: Conv2dGeometry,
    pub x: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub stored: Stored,
    pub real: Vec<f32>,
}

impl ConvCase {
    pub fn new(rng: &mut Rng, enc: Enc, g: Conv2dGeometry) -> ConvCase {
        let n = g.dims().unwrap().filter_len;
        let x = rng.f32s(g.in_channels * g.in_h * g.in_w);
        let bias = (rng.below(2) == 1).then(|| rng.f32s(g.out_channels));
        let (stored, real) = match enc {
            Enc::F32 => {
                let w = rng.f32s(g.out_channels * n);
                (Stored::F32(w.clone()), w)
            }
            Enc::Int8 => {
                let q: Vec<i8> = (0..g.out_channels * n)
                    .map(|_| (rng.below(255) as i32 - 127) as i8)
                    .collect();
                let scale = rng.f32s(g.out_channels);
                let real = q
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v as f32 * scale[i / n])
                    .collect();
                (Stored::Int8 { q, scale }, real)
            }
            Enc::Pattern => {
                let row = n.div_ceil(8);
                let mut bits = vec![0u8; g.out_channels * row];
                let mut real = Vec::with_capacity(g.out_channels * n);
                let scale = rng.f32s(g.out_channels);
                for o in 0..g.out_channels {
                    for i in 0..n {
                        let plus = rng.below(2) == 1;
                        if plus {
                            bits[o * row + i / 8] |= 1 << (i % 8);
                        }
                        real.push(if plus { scale[o] } else { -scale[o] });
                    }
                }
                (Stored::Pattern { bits, scale }, real)
            }
        };
        ConvCase {
            g,
            x,
            bias,
            stored,
            real,
        }
    }

    /// The portable scalar reference kernel's output.
    pub fn run_scalar(&self) -> Vec<f32> {
        let d = self.g.dims().unwrap();
        let mut out = vec![f32::NAN; self.g.out_channels * d.out_h * d.out_w];
        let (g, x, b) = (&self.g, &self.x, self.bias.as_deref());
        match &self.stored {
            Stored::F32(w) => scalar::conv2d_f32(g, x, w, b, &mut out),
            Stored::Int8 { q, scale } => scalar::conv2d_int8(g, x, q, scale, b, &mut out),
            Stored::Pattern { bits, scale } => {
                scalar::conv2d_pattern(g, x, bits, scale, b, &mut out)
            }
        }
        .unwrap();
        out
    }

    /// [`ConvCase::run_scalar`] followed by the scalar ReLU node: what a fused ReLU must equal.
    pub fn run_scalar_relu(&self) -> Vec<f32> {
        let conv = self.run_scalar();
        let mut out = vec![f32::NAN; conv.len()];
        scalar::relu(&conv, &mut out).unwrap();
        out
    }

    /// The fast kernel (packed im2col + GEMM with the target's micro-kernel), run, with the
    /// ReLU fused into its epilogue where `relu`.
    pub fn run_packed(&self, relu: bool) -> Vec<f32> {
        let g = &self.g;
        let packed = match &self.stored {
            Stored::F32(w) => PackedConv::f32(g, w),
            Stored::Int8 { q, scale } => PackedConv::int8(g, q, scale),
            Stored::Pattern { bits, scale } => PackedConv::pattern(g, bits, scale),
        }
        .unwrap();
        let d = g.dims().unwrap();
        let mut out = vec![f32::NAN; g.out_channels * d.out_h * d.out_w];
        packed
            .run(&self.x, self.bias.as_deref(), relu, &mut out)
            .unwrap();
        out
    }
}

/// The fast kernels must equal the scalar reference bit for bit (both accumulate every filter
/// tap in the same order with separate multiplies and adds); zeros may differ in sign.
pub fn assert_same_bits(fast: &[f32], reference: &[f32], what: &dyn std::fmt::Display) {
    assert_eq!(fast.len(), reference.len(), "{what}");
    for (i, (a, b)) in fast.iter().zip(reference).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (*a == 0.0 && *b == 0.0),
            "{what}: fast[{i}] = {a} but scalar = {b}"
        );
    }
}

/// A GEMM micro-kernel is exactly an in-order dot product per output (no reassociation, no
/// fused multiply-add), for depths around its unroll.
pub fn assert_micro_kernel_is_in_order_dot(
    kernel: fn(usize, &[f32], &[f32]) -> Tile,
    rng: &mut Rng,
    depths: &[usize],
) {
    for &k in depths {
        let (a, b) = (rng.f32s(MR * k), rng.f32s(NR * k));
        let tile = kernel(k, &a, &b);
        for r in 0..MR {
            for j in 0..NR {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc += a[p * MR + r] * b[p * NR + j];
                }
                assert_eq!(tile[r][j].to_bits(), acc.to_bits(), "k {k} ({r}, {j})");
            }
        }
    }
}

/// The fast max pool against the scalar reference, bit for bit, on random geometries (kernels
/// 1-5, strides 1-3, padding, rows wide enough for the SIMD body and its tail) and inputs
/// seeded with the values the comparison rule `v > best` decides: NaN (never taken: windows
/// start at −∞), ties of −0 and +0 (the first seen stays) and ±∞.
pub fn assert_maxpool_matches_scalar(rng: &mut Rng, cases: usize) {
    let specials = [f32::NAN, 0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1.0];
    for _ in 0..cases {
        let (g, oh, ow) = random_pool(rng, [4, 12, 40]);
        let mut x = rng.f32s(g.channels * g.in_h * g.in_w);
        for v in x.iter_mut() {
            if rng.below(6) == 0 {
                *v = rng.pick(&specials);
            }
        }
        let mut reference = vec![0.0; g.channels * oh * ow];
        scalar::maxpool2d(&g, &x, &mut reference).unwrap();
        let mut fast = vec![f32::NAN; reference.len()];
        pool::maxpool2d(&g, &x, &mut fast).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&reference), "max pool {g:?}");
    }
}

/// A random valid max-pool geometry of at most `max` `[channels, height, width]` (kernels
/// 1/2/3/5, strides 1-3, padding below the kernel), with its output `(height, width)`.
pub fn random_pool(rng: &mut Rng, max: [usize; 3]) -> (Pool2dGeometry, usize, usize) {
    loop {
        let k = [rng.pick(&[1, 2, 3, 5]), rng.pick(&[1, 2, 3, 5])];
        let g = Pool2dGeometry {
            channels: 1 + rng.below(max[0]),
            in_h: 1 + rng.below(max[1]),
            in_w: 1 + rng.below(max[2]),
            kernel: k,
            stride: [rng.pick(&[1, 2, 3]), rng.pick(&[1, 2, 3])],
            padding: [rng.below(k[0].min(3)), rng.below(k[1].min(3))],
        };
        if let Ok((oh, ow)) = g.output_hw() {
            return (g, oh, ow);
        }
    }
}
