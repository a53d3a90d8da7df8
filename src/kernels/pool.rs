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

/// `dst = max(dst, src)` elementwise with the reference's rule (vectorizes).
fn max_into<'a>(dst: &mut [f32], src: impl Iterator<Item = &'a f32>) {
    for (d, &v) in dst.iter_mut().zip(src) {
        if v > *d {
            *d = v;
        }
    }
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
    for c in 0..g.channels {
        let plane = &input[c * in_plane..(c + 1) * in_plane];
        for (src, dst) in plane
            .chunks_exact(g.in_w)
            .zip(row_max.chunks_exact_mut(out_w))
        {
            dst.fill(f32::NEG_INFINITY);
            for (t, &(ox0, ox1)) in taps.iter().enumerate() {
                if ox0 < ox1 {
                    let first = ox0 * sw + t - pw;
                    max_into(&mut dst[ox0..ox1], src[first..].iter().step_by(sw));
                }
            }
        }
        let out = &mut output[c * out_plane..(c + 1) * out_plane];
        for (dst, &(lo, hi)) in out.chunks_exact_mut(out_w).zip(&rows) {
            dst.fill(f32::NEG_INFINITY);
            for iy in lo..hi {
                max_into(dst, row_max[iy * out_w..(iy + 1) * out_w].iter());
            }
        }
    }
    Ok(())
}
