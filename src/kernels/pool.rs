//! Fast max pooling: separable (a horizontal max per input row, then a vertical max over whole
//! rows, which vectorizes), with the window bounds worked out once per call, not per element.
//!
//! Max is taken with the reference's own rule (`v > best`, starting from −∞), and both passes
//! visit values in the reference's row-major window order, so the result equals
//! [`super::scalar::maxpool2d`]'s exactly, signed zeros and NaNs included.

use super::scalar::{check_pool, valid_range};
use super::Pool2dGeometry;
use crate::error::Result;

/// Half-open input ranges of the windows along one axis, clipped to the input.
fn windows(
    out_len: usize,
    in_len: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Vec<(usize, usize)> {
    (0..out_len)
        .map(|o| {
            let start = o * stride;
            let lo = start.saturating_sub(pad).min(in_len);
            let hi = (start + k).saturating_sub(pad).min(in_len);
            (lo, hi.max(lo))
        })
        .collect()
}

/// `dst[i] = max(dst[i], src[i])` with the reference's rule `v > best` (a NaN or a tie keeps
/// `dst`). Written as a select, not as `if v > *d { *d = v }`: that conditional store compiled
/// to a branch per element, mispredicted about half the time on real activations, which made
/// the 3×3/2 pool of `sepnet_small` its slowest layer.
fn max_into_scalar(dst: &mut [f32], src: &[f32]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = if v > *d { v } else { *d };
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use max_into_scalar as max_into;

/// SIMD128 [`max_into_scalar`]: `f32x4.pmax(d, v)` is `d < v ? v : d`, the same rule lane by lane.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn max_into(dst: &mut [f32], src: &[f32]) {
    use core::arch::wasm32::*;
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let body = n - n % 4;
    for i in (0..body).step_by(4) {
        // SAFETY: i + 4 <= body <= n, the length of both slices; wasm loads are unaligned.
        unsafe {
            let d = v128_load(dst.as_ptr().add(i) as *const v128);
            let v = v128_load(src.as_ptr().add(i) as *const v128);
            v128_store(dst.as_mut_ptr().add(i) as *mut v128, f32x4_pmax(d, v));
        }
    }
    max_into_scalar(&mut dst[body..], &src[body..]);
}

/// Max pooling of one `[C, H, W]` image; padding positions count as −∞.
pub fn maxpool2d(g: &Pool2dGeometry, input: &[f32], output: &mut [f32]) -> Result<()> {
    let (out_h, out_w) = check_pool(g, input, output)?;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let rows = windows(out_h, g.in_h, kh, sh, ph);
    // For each horizontal tap t, the outputs whose input column ox·sw + t − pw exists.
    let taps: Vec<(usize, usize)> = (0..kw)
        .map(|t| valid_range(out_w, g.in_w, sw, pw, t))
        .collect();
    let in_plane = g.in_h * g.in_w;
    let out_plane = out_h * out_w;
    let mut row_max = vec![0.0f32; g.in_h * out_w];
    // With stride s > 1 each input row is first split into its s phases (phase r holds columns
    // r, r + s, ...), so every tap reads a contiguous run: tap t of outputs ox0.. starts at
    // column ox0·s + t − pad, i.e. at index (ox0·s + t − pad) / s of phase (ox0·s + t − pad) % s.
    let phase_len = g.in_w.div_ceil(sw);
    let mut phases = vec![0.0f32; if sw > 1 { sw * phase_len } else { 0 }];
    for c in 0..g.channels {
        let plane = &input[c * in_plane..(c + 1) * in_plane];
        for (src, dst) in plane
            .chunks_exact(g.in_w)
            .zip(row_max.chunks_exact_mut(out_w))
        {
            if sw > 1 {
                for (r, phase) in phases.chunks_exact_mut(phase_len).enumerate() {
                    for (p, &v) in phase.iter_mut().zip(src.iter().skip(r).step_by(sw)) {
                        *p = v;
                    }
                }
            }
            dst.fill(f32::NEG_INFINITY);
            for (t, &(ox0, ox1)) in taps.iter().enumerate() {
                if ox0 < ox1 {
                    let first = ox0 * sw + t - pw;
                    let run = if sw > 1 {
                        let start = (first % sw) * phase_len + first / sw;
                        &phases[start..start + (ox1 - ox0)]
                    } else {
                        &src[first..first + (ox1 - ox0)]
                    };
                    max_into(&mut dst[ox0..ox1], run);
                }
            }
        }
        let out = &mut output[c * out_plane..(c + 1) * out_plane];
        for (dst, &(lo, hi)) in out.chunks_exact_mut(out_w).zip(&rows) {
            dst.fill(f32::NEG_INFINITY);
            for iy in lo..hi {
                max_into(dst, &row_max[iy * out_w..(iy + 1) * out_w]);
            }
        }
    }
    Ok(())
}
