//! Portable scalar reference kernels, one per op.
//!
//! These define the engine's numerics and stay forever as the reference that faster kernels are
//! tested against, so they favour plain loops over cleverness. Each kernel processes one image,
//! checks every slice length against the geometry first (returning
//! [`crate::Error::ShapeMismatch`] otherwise), and after that check only
//! indexes within the lengths it verified.
//!
//! Convolutions share one loop skeleton (`conv2d_core`): for each output channel the output
//! plane is used as an accumulator, and each filter tap `(c, ky, kx)` adds `w · input` over the
//! output pixels whose input position is inside the image (the zero padding contributes
//! nothing, so it is skipped rather than materialised). The per-filter scale and the bias are
//! applied once at the end: `out = scale[o] · acc + bias[o]`.

use super::{pattern_row_bytes, Conv2dGeometry, Pool2dGeometry};
use crate::error::{Error, Result};

pub(crate) fn expect_len(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::shape(what, expected, found))
    }
}

fn expect_bias(bias: Option<&[f32]>, out_channels: usize) -> Result<()> {
    match bias {
        Some(b) => expect_len("bias", out_channels, b.len()),
        None => Ok(()),
    }
}

/// Checks the input/output slices of a convolution and returns the derived sizes.
pub(crate) fn check_conv(
    g: &Conv2dGeometry,
    input: &[f32],
    output: &[f32],
    bias: Option<&[f32]>,
) -> Result<super::Conv2dDims> {
    let d = g.dims()?;
    let in_len = g
        .in_channels
        .checked_mul(g.in_h)
        .and_then(|v| v.checked_mul(g.in_w));
    let out_len = g
        .out_channels
        .checked_mul(d.out_h)
        .and_then(|v| v.checked_mul(d.out_w));
    let (Some(in_len), Some(out_len)) = (in_len, out_len) else {
        return Err(Error::shape("conv2d", "sizes that fit usize", g));
    };
    expect_len("conv2d input", in_len, input.len())?;
    expect_len("conv2d output", out_len, output.len())?;
    expect_bias(bias, g.out_channels)?;
    Ok(d)
}

/// Output positions `o` in `0..out_len` whose input position `o·stride + k − pad` lies in
/// `0..in_len`, as a half-open range. This is how zero padding is skipped.
pub(crate) fn valid_range(
    out_len: usize,
    in_len: usize,
    stride: usize,
    pad: usize,
    k: usize,
) -> (usize, usize) {
    // o·s ≥ pad − k
    let lo = if pad > k {
        (pad - k).div_ceil(stride)
    } else {
        0
    };
    // o·s ≤ in_len − 1 + pad − k
    let hi = match (in_len - 1 + pad).checked_sub(k) {
        Some(max_os) => (max_os / stride + 1).min(out_len),
        None => 0,
    };
    (lo.min(hi), hi)
}

/// The shared convolution skeleton. `weight_at(o, i)` returns the unscaled weight of element
/// `i = (c·kh + ky)·kw + kx` of filter `o`; `scale_at(o)` the factor applied to the finished sum.
fn conv2d_core(
    g: &Conv2dGeometry,
    d: &super::Conv2dDims,
    input: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    weight_at: impl Fn(usize, usize) -> f32,
    scale_at: impl Fn(usize) -> f32,
) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let in_plane = g.in_h * g.in_w;
    let out_plane = d.out_h * d.out_w;
    for o in 0..g.out_channels {
        let group = o / d.out_per_group;
        let acc = &mut output[o * out_plane..(o + 1) * out_plane];
        acc.fill(0.0);
        for cl in 0..d.in_per_group {
            let c = group * d.in_per_group + cl;
            let plane = &input[c * in_plane..(c + 1) * in_plane];
            for ky in 0..kh {
                let (oy0, oy1) = valid_range(d.out_h, g.in_h, sh, ph, ky);
                for kx in 0..kw {
                    let w = weight_at(o, (cl * kh + ky) * kw + kx);
                    let (ox0, ox1) = valid_range(d.out_w, g.in_w, sw, pw, kx);
                    for oy in oy0..oy1 {
                        let iy = oy * sh + ky - ph;
                        let in_row = &plane[iy * g.in_w..(iy + 1) * g.in_w];
                        let acc_row = &mut acc[oy * d.out_w..(oy + 1) * d.out_w];
                        for ox in ox0..ox1 {
                            acc_row[ox] += w * in_row[ox * sw + kx - pw];
                        }
                    }
                }
            }
        }
        let s = scale_at(o);
        let b = bias.map_or(0.0, |b| b[o]);
        for v in acc.iter_mut() {
            *v = *v * s + b;
        }
    }
}

/// Convolution with real-valued weights `[O, C/g, kh, kw]`.
pub fn conv2d_f32(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<()> {
    let d = check_conv(g, input, output, bias)?;
    expect_len("conv2d weight", g.out_channels * d.filter_len, weight.len())?;
    let n = d.filter_len;
    conv2d_core(
        g,
        &d,
        input,
        bias,
        output,
        |o, i| weight[o * n + i],
        |_| 1.0,
    );
    Ok(())
}

/// Convolution with int8 weights `q [O, C/g, kh, kw]` and per-output-channel `scale [O]`:
/// `out[o] = scale[o] · Σ q·x + bias[o]` (the scale is factored out of the sum).
pub fn conv2d_int8(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[i8],
    scale: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<()> {
    let d = check_conv(g, input, output, bias)?;
    expect_len(
        "conv2d int8 weight",
        g.out_channels * d.filter_len,
        weight.len(),
    )?;
    expect_len("conv2d int8 scale", g.out_channels, scale.len())?;
    let n = d.filter_len;
    conv2d_core(
        g,
        &d,
        input,
        bias,
        output,
        |o, i| f32::from(weight[o * n + i]),
        |o| scale[o],
    );
    Ok(())
}

/// Reads element `i` of filter `o` of a bit-packed pattern: `true` means +1 (FORMAT.md
/// section 2: bit `i mod 8` of byte `i div 8` of row `o`, LSB first). Out-of-range positions
/// read as `false` (the kernels never ask for one: they check lengths first).
#[inline]
pub fn pattern_bit(bits: &[u8], row_bytes: usize, o: usize, i: usize) -> bool {
    let byte = bits.get(o * row_bytes + i / 8).copied().unwrap_or(0);
    (byte >> (i % 8)) & 1 == 1
}

/// Convolution with binary pattern weights: `bits` is `[O, ceil(n/8)]` (one bit per weight,
/// set = +1, clear = −1) and `scale [O]` the per-filter factor. Computes, per output pixel, the
/// sum of the inputs under +1 bits minus the sum under −1 bits, then multiplies by the scale.
/// (The skeleton multiplies by exactly ±1.0, which is the same add/subtract in f32.)
pub fn conv2d_pattern(
    g: &Conv2dGeometry,
    input: &[f32],
    bits: &[u8],
    scale: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<()> {
    let d = check_conv(g, input, output, bias)?;
    let row_bytes = pattern_row_bytes(d.filter_len);
    expect_len(
        "conv2d pattern bits",
        g.out_channels * row_bytes,
        bits.len(),
    )?;
    expect_len("conv2d pattern scale", g.out_channels, scale.len())?;
    conv2d_core(
        g,
        &d,
        input,
        bias,
        output,
        |o, i| {
            if pattern_bit(bits, row_bytes, o, i) {
                1.0
            } else {
                -1.0
            }
        },
        |o| scale[o],
    );
    Ok(())
}

fn check_linear(
    input: &[f32],
    weight_len: usize,
    bias: Option<&[f32]>,
    output: &[f32],
) -> Result<()> {
    let expected = input.len().checked_mul(output.len()).ok_or_else(|| {
        Error::shape(
            "linear",
            "sizes that fit usize",
            (input.len(), output.len()),
        )
    })?;
    expect_len("linear weight", expected, weight_len)?;
    expect_bias(bias, output.len())
}

/// Fully connected layer: `out[o] = Σ_i weight[o, i] · x[i] + bias[o]`, with
/// `I = input.len()`, `O = output.len()`, weight `[O, I]`.
pub fn linear_f32(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<()> {
    check_linear(input, weight.len(), bias, output)?;
    let i_len = input.len();
    for (o, out) in output.iter_mut().enumerate() {
        let row = &weight[o * i_len..(o + 1) * i_len];
        let mut acc = 0.0f32;
        for (w, x) in row.iter().zip(input) {
            acc += w * x;
        }
        *out = acc + bias.map_or(0.0, |b| b[o]);
    }
    Ok(())
}

/// Fully connected layer with int8 weights: `out[o] = scale[o] · Σ_i q[o, i] · x[i] + bias[o]`.
pub fn linear_int8(
    input: &[f32],
    weight: &[i8],
    scale: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<()> {
    check_linear(input, weight.len(), bias, output)?;
    expect_len("linear int8 scale", output.len(), scale.len())?;
    let i_len = input.len();
    for (o, out) in output.iter_mut().enumerate() {
        let row = &weight[o * i_len..(o + 1) * i_len];
        let mut acc = 0.0f32;
        for (&q, x) in row.iter().zip(input) {
            acc += f32::from(q) * x;
        }
        *out = acc * scale[o] + bias.map_or(0.0, |b| b[o]);
    }
    Ok(())
}

/// Elementwise `out = a + b`.
pub fn add(a: &[f32], b: &[f32], output: &mut [f32]) -> Result<()> {
    expect_len("add second operand", a.len(), b.len())?;
    expect_len("add output", a.len(), output.len())?;
    for ((o, x), y) in output.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
    Ok(())
}

/// `max(x, 0)`, with NaN and -0 mapped to +0: the one definition every ReLU (node, fused
/// epilogue, in place) uses, so fused and unfused runs agree bit for bit.
#[inline(always)]
pub fn relu1(x: f32) -> f32 {
    // Branch-free (a mask, not a select): the sign of activations is a coin toss, and inside
    // the GEMM epilogue a branch cost more than the separate ReLU pass it saved.
    let keep = ((x > 0.0) as u32).wrapping_neg();
    f32::from_bits(x.to_bits() & keep)
}

/// Elementwise `out = max(x, 0)`.
pub fn relu(input: &[f32], output: &mut [f32]) -> Result<()> {
    expect_len("relu output", input.len(), output.len())?;
    for (o, &x) in output.iter_mut().zip(input) {
        *o = relu1(x);
    }
    Ok(())
}

/// [`relu`] over `x` in place (a ReLU fused into the node that wrote `x`).
pub fn relu_in_place(x: &mut [f32]) {
    for v in x {
        *v = relu1(*v);
    }
}

/// Channel concatenation of `[C_i, H, W]` images with equal `H, W`. Channels are the outermost
/// axis of one image, so this is the inputs laid end to end.
pub fn concat(inputs: &[&[f32]], output: &mut [f32]) -> Result<()> {
    let total = inputs
        .iter()
        .try_fold(0usize, |acc, x| acc.checked_add(x.len()))
        .ok_or_else(|| Error::shape("concat", "sizes that fit usize", inputs.len()))?;
    expect_len("concat output", total, output.len())?;
    let mut offset = 0;
    for x in inputs {
        output[offset..offset + x.len()].copy_from_slice(x);
        offset += x.len();
    }
    Ok(())
}

/// Checks a max pool's slices and returns `(out_h, out_w)`.
pub(crate) fn check_pool(
    g: &Pool2dGeometry,
    input: &[f32],
    output: &[f32],
) -> Result<(usize, usize)> {
    let (out_h, out_w) = g.output_hw()?;
    let in_plane = g.in_h.checked_mul(g.in_w);
    let out_plane = out_h.checked_mul(out_w);
    let (Some(in_plane), Some(out_plane)) = (in_plane, out_plane) else {
        return Err(Error::shape("maxpool2d", "sizes that fit usize", g));
    };
    let in_len = g.channels.checked_mul(in_plane);
    let out_len = g.channels.checked_mul(out_plane);
    let (Some(in_len), Some(out_len)) = (in_len, out_len) else {
        return Err(Error::shape("maxpool2d", "sizes that fit usize", g));
    };
    expect_len("maxpool2d input", in_len, input.len())?;
    expect_len("maxpool2d output", out_len, output.len())?;
    Ok((out_h, out_w))
}

/// Max pooling; padding positions count as −∞ (i.e. are skipped).
pub fn maxpool2d(g: &Pool2dGeometry, input: &[f32], output: &mut [f32]) -> Result<()> {
    let (out_h, out_w) = check_pool(g, input, output)?;
    let (in_plane, out_plane) = (g.in_h * g.in_w, out_h * out_w);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    for c in 0..g.channels {
        let plane = &input[c * in_plane..(c + 1) * in_plane];
        for oy in 0..out_h {
            for ox in 0..out_w {
                let mut best = f32::NEG_INFINITY;
                for ky in 0..kh {
                    // Input row oy·sh + ky − ph, skipped when it falls in the padding.
                    let Some(iy) = (oy * sh + ky).checked_sub(ph) else {
                        continue;
                    };
                    if iy >= g.in_h {
                        continue;
                    }
                    for kx in 0..kw {
                        let Some(ix) = (ox * sw + kx).checked_sub(pw) else {
                            continue;
                        };
                        if ix >= g.in_w {
                            continue;
                        }
                        let v = plane[iy * g.in_w + ix];
                        if v > best {
                            best = v;
                        }
                    }
                }
                output[c * out_plane + oy * out_w + ox] = best;
            }
        }
    }
    Ok(())
}

/// Mean over each channel's `H·W` plane: `[C, H, W] → [C]`. `plane = H·W`.
pub fn global_avg_pool(input: &[f32], plane: usize, output: &mut [f32]) -> Result<()> {
    let expected = output
        .len()
        .checked_mul(plane)
        .ok_or_else(|| Error::shape("global_avg_pool", "sizes that fit usize", plane))?;
    expect_len("global_avg_pool input", expected, input.len())?;
    if plane == 0 {
        return Err(Error::shape("global_avg_pool plane", "at least 1", 0));
    }
    for (c, out) in output.iter_mut().enumerate() {
        let sum: f32 = input[c * plane..(c + 1) * plane].iter().sum();
        *out = sum / plane as f32;
    }
    Ok(())
}

/// Numerically stable softmax over a vector: `exp(x − max) / Σ exp(x − max)`.
pub fn softmax(input: &[f32], output: &mut [f32]) -> Result<()> {
    expect_len("softmax output", input.len(), output.len())?;
    let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &x) in output.iter_mut().zip(input) {
        *o = (x - max).exp();
        sum += *o;
    }
    for o in output.iter_mut() {
        *o /= sum;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_skips_padding() {
        // in_len 5, k offset 0, pad 2, stride 1, out_len 7 (5 + 4 − 3 + 1 with k=3):
        // input index = o − 2 must be in 0..5 → o in 2..7.
        assert_eq!(valid_range(7, 5, 1, 2, 0), (2, 7));
        // k offset 2: index = o → o in 0..5.
        assert_eq!(valid_range(7, 5, 1, 2, 2), (0, 5));
        // stride 2, pad 1, k 0: index = 2o − 1 ≥ 0 → o ≥ 1; ≤ 4 → o ≤ 2.
        assert_eq!(valid_range(3, 5, 2, 1, 0), (1, 3));
        // Entirely in the padding: in_len 1, pad 3, k 0 → index = o − 3, out_len 2 → empty.
        let (lo, hi) = valid_range(2, 1, 1, 3, 0);
        assert!(lo >= hi);
    }

    #[test]
    fn pattern_bit_order_is_lsb_first() {
        // Row of 2 bytes: element 0 = bit 0 of byte 0, element 9 = bit 1 of byte 1.
        let bits = [0b0000_0001u8, 0b0000_0010];
        assert!(pattern_bit(&bits, 2, 0, 0));
        assert!(!pattern_bit(&bits, 2, 0, 1));
        assert!(pattern_bit(&bits, 2, 0, 9));
        assert!(!pattern_bit(&bits, 2, 0, 8));
    }

    #[test]
    fn kernels_reject_wrong_lengths() {
        let g = Conv2dGeometry {
            in_channels: 2,
            in_h: 3,
            in_w: 3,
            out_channels: 2,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            groups: 1,
        };
        let mut out = vec![0.0; 18];
        assert!(conv2d_f32(&g, &[0.0; 17], &[0.0; 36], None, &mut out).is_err());
        assert!(conv2d_f32(&g, &[0.0; 18], &[0.0; 35], None, &mut out).is_err());
        assert!(conv2d_f32(&g, &[0.0; 18], &[0.0; 36], Some(&[0.0]), &mut out).is_err());
        assert!(conv2d_pattern(&g, &[0.0; 18], &[0; 5], &[1.0; 2], None, &mut out).is_err());
        assert!(conv2d_f32(&g, &[0.0; 18], &[0.0; 36], None, &mut out).is_ok());
        let zero_stride = Conv2dGeometry {
            stride: [0, 1],
            ..g
        };
        assert!(conv2d_f32(&zero_stride, &[0.0; 18], &[0.0; 36], None, &mut out).is_err());
        assert!(linear_f32(&[0.0; 3], &[0.0; 5], None, &mut [0.0; 2]).is_err());
        assert!(add(&[0.0; 3], &[0.0; 2], &mut [0.0; 3]).is_err());
    }
}
