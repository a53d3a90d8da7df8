//! Image → input tensor, per FORMAT.md section 4.
//!
//! Steps: (1) resize so the shorter side is `round(min(input_size) / crop_ratio)` pixels,
//! keeping the aspect ratio; (2) center-crop to `input_size`; (3) normalise each channel with
//! `(pixel / 255 − mean[c]) / std[c]`, channels in `channel_order`.
//!
//! Choices where FORMAT.md leaves room (made to match torchvision's `Resize(int)` +
//! `CenterCrop` on PIL images, which the Python side uses):
//! - The longer side becomes `floor(S · long / short)` (torchvision truncates), at least 1.
//! - The crop offset is `round((resized − crop) / 2)` with Python's round-half-to-even; if the
//!   resized image is smaller than the crop, it is centred with `floor((crop − resized) / 2)`
//!   black pixels before it (torchvision pads with 0), and the padding is normalised like black.
//! - Resampling is separable bilinear with PIL's antialiasing: output pixel `X` maps to source
//!   centre `(X + 0.5) · scale` (`scale = source / resized`), and the triangle filter's support is
//!   widened to `max(scale, 1)` pixels when downscaling, so every source pixel under the output
//!   pixel's footprint contributes (area-correct); weights are normalised to sum to 1. Unlike
//!   PIL, intermediate values stay in f32 (no rounding to u8 between passes), like torchvision's
//!   tensor path with `antialias=True`.
//! - An image that already has size `input_size` is used as is (FORMAT.md: steps 1-2 are the
//!   identity), even when `crop_ratio < 1`.
//! - The alpha channel of RGBA input is ignored.
//!
//! Only the cropped window is ever computed, so a hostile aspect ratio (say 1 × 10⁶ pixels)
//! cannot make the resized image huge in memory.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Largest shorter side a resize may target; keeps coordinate arithmetic far from overflow.
pub const MAX_RESIZE_SIDE: usize = 1 << 20;

/// Channel order of the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChannelOrder {
    #[serde(rename = "RGB")]
    Rgb,
    #[serde(rename = "BGR")]
    Bgr,
}

impl ChannelOrder {
    /// Source channel (0 = R, 1 = G, 2 = B) of each tensor channel.
    fn source_channels(self) -> [usize; 3] {
        match self {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        }
    }
}

/// The validated `sepnet.preprocess` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preprocess {
    /// `[H, W]` of the model input.
    pub input_size: [usize; 2],
    pub channel_order: ChannelOrder,
    /// Per tensor channel, in `channel_order`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub crop_ratio: f32,
    /// Always `"bilinear"` in version 1.
    pub resize: String,
}

/// Memory layout of the caller's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    Rgb,
    Rgba,
}

impl PixelLayout {
    fn channels(self) -> usize {
        match self {
            PixelLayout::Rgb => 3,
            PixelLayout::Rgba => 4,
        }
    }
}

impl Preprocess {
    /// Target length of the shorter side after step (1).
    pub fn resize_short_side(&self) -> usize {
        let min = self.input_size[0].min(self.input_size[1]) as f64;
        (min / f64::from(self.crop_ratio)).round() as usize
    }

    /// Size `(height, width)` of the image after step (1), before cropping.
    pub fn resized_size(&self, height: usize, width: usize) -> (usize, usize) {
        let short = self.resize_short_side().max(1);
        let scale_long = |long: usize, short_src: usize| {
            ((short as f64 * long as f64 / short_src as f64).floor() as usize).max(1)
        };
        if width <= height {
            (scale_long(height, width), short)
        } else {
            (short, scale_long(width, height))
        }
    }
}

/// Turns `pixels` (`height` rows of `width` pixels, row-major, `layout` bytes per pixel) into
/// the `[1, 3, H, W]` input tensor the model expects.
pub fn image_to_tensor(
    spec: &Preprocess,
    pixels: &[u8],
    width: usize,
    height: usize,
    layout: PixelLayout,
) -> Result<Tensor> {
    if width == 0 || height == 0 {
        return Err(Error::BadImage(format!("empty image {width}x{height}")));
    }
    let expected = width
        .checked_mul(height)
        .and_then(|v| v.checked_mul(layout.channels()))
        .ok_or_else(|| Error::BadImage(format!("image {width}x{height} is too large")))?;
    if pixels.len() != expected {
        return Err(Error::BadImage(format!(
            "{width}x{height} image with {} bytes per pixel needs {expected} bytes, got {}",
            layout.channels(),
            pixels.len()
        )));
    }
    let [out_h, out_w] = spec.input_size;
    let (res_h, res_w) = if [height, width] == spec.input_size {
        (height, width)
    } else {
        spec.resized_size(height, width)
    };
    let rows = axis_taps(height, res_h, out_h);
    let cols = axis_taps(width, res_w, out_w);
    let px = layout.channels();

    // Horizontal pass over the source rows that some output row needs.
    let row_lo = rows.iter().flatten().map(|t| t.start).min().unwrap_or(0);
    let row_hi = rows
        .iter()
        .flatten()
        .map(|t| t.start + t.weights.len())
        .max()
        .unwrap_or(0);
    let mut tmp = vec![0.0f32; (row_hi - row_lo) * out_w * 3];
    for r in row_lo..row_hi {
        let src_row = &pixels[r * width * px..(r + 1) * width * px];
        let tmp_row = &mut tmp[(r - row_lo) * out_w * 3..(r - row_lo + 1) * out_w * 3];
        for (x, taps) in cols.iter().enumerate() {
            let Some(taps) = taps else { continue };
            for (k, &w) in taps.weights.iter().enumerate() {
                let p = &src_row[(taps.start + k) * px..(taps.start + k) * px + 3];
                for ch in 0..3 {
                    tmp_row[x * 3 + ch] += w * f32::from(p[ch]);
                }
            }
        }
    }

    // Vertical pass, then normalisation into planar channel order.
    let plane = out_h * out_w;
    let mut out = vec![0.0f32; 3 * plane];
    let order = spec.channel_order.source_channels();
    for y in 0..out_h {
        for x in 0..out_w {
            let mut rgb = [0.0f32; 3];
            if let Some(taps) = &rows[y] {
                for (k, &w) in taps.weights.iter().enumerate() {
                    let t = &tmp[((taps.start + k - row_lo) * out_w + x) * 3..][..3];
                    for ch in 0..3 {
                        rgb[ch] += w * t[ch];
                    }
                }
            }
            for (c, &src) in order.iter().enumerate() {
                out[c * plane + y * out_w + x] = (rgb[src] / 255.0 - spec.mean[c]) / spec.std[c];
            }
        }
    }
    Tensor::new(vec![1, 3, out_h, out_w], out)
}

/// The source pixels and weights that make one output pixel along one axis.
#[derive(Debug)]
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

/// For each of the `crop` output positions along an axis of `src` pixels resized to `resized`
/// and center-cropped: its taps, or `None` where the crop lies outside the resized image.
fn axis_taps(src: usize, resized: usize, crop: usize) -> Vec<Option<Taps>> {
    let offset = crop_offset(resized, crop);
    let scale = src as f64 / resized as f64;
    let support = scale.max(1.0);
    (0..crop)
        .map(|i| {
            let pos = i as i64 + offset;
            if pos < 0 || pos >= resized as i64 {
                return None;
            }
            let center = (pos as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0) as usize).min(src);
            let hi = ((center + support + 0.5).floor().max(0.0) as usize).min(src);
            let mut weights: Vec<f32> = (lo..hi)
                .map(|s| {
                    let t = ((s as f64 + 0.5 - center) / support).abs();
                    (1.0 - t).max(0.0) as f32
                })
                .collect();
            let total: f32 = weights.iter().sum();
            if total <= 0.0 {
                return None;
            }
            for w in &mut weights {
                *w /= total;
            }
            Some(Taps { start: lo, weights })
        })
        .collect()
}

/// Index in the resized axis of the first cropped pixel (negative: the crop starts in the
/// black padding). Matches torchvision's `CenterCrop`.
fn crop_offset(resized: usize, crop: usize) -> i64 {
    if resized >= crop {
        let d = (resized - crop) as i64;
        let half = d / 2;
        // Python round(d / 2): an exact .5 goes to the even neighbour.
        if d % 2 == 1 && half % 2 == 1 {
            half + 1
        } else {
            half
        }
    } else {
        -(((crop - resized) / 2) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: [usize; 2], crop_ratio: f32) -> Preprocess {
        Preprocess {
            input_size: size,
            channel_order: ChannelOrder::Rgb,
            mean: [0.0; 3],
            std: [1.0; 3],
            crop_ratio,
            resize: "bilinear".into(),
        }
    }

    #[test]
    fn identity_when_size_matches() {
        let (w, h) = (3, 2);
        let pixels: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 256) as u8).collect();
        let t = image_to_tensor(&spec([2, 3], 0.875), &pixels, w, h, PixelLayout::Rgba).unwrap();
        assert_eq!(t.shape(), &[1, 3, 2, 3]);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let expected = f32::from(pixels[(y * w + x) * 4 + c]) / 255.0;
                    assert!((t.data()[c * 6 + y * 3 + x] - expected).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn downscale_averages_blocks() {
        // 4x4 → 2x2 with scale 2: each output pixel is the mean of a 2x2 block under PIL's
        // widened triangle (weights 1/8, 3/8, 3/8, 1/8 per axis over 4 pixels, clipped).
        let mut pixels = vec![0u8; 4 * 4 * 3];
        for y in 0..4 {
            for x in 0..4 {
                let v = if x < 2 { 0 } else { 255 };
                pixels[(y * 4 + x) * 3..][..3].copy_from_slice(&[v, v, v]);
            }
        }
        let t = image_to_tensor(&spec([2, 2], 1.0), &pixels, 4, 4, PixelLayout::Rgb).unwrap();
        // Left output column: taps at x=0..3 with weights [3/8,3/8,... clipped]: x in lo..hi
        // = 0..3 → weights ∝ (0.75, 0.75, 0.25) for centre 1.0 → 0.25/1.75 of white.
        let left = t.data()[0];
        let right = t.data()[1];
        assert!((left - 0.25 / 1.75).abs() < 1e-6, "{left}");
        assert!((right - 1.5 / 1.75).abs() < 1e-6, "{right}");
    }

    #[test]
    fn crop_offset_matches_python_round() {
        assert_eq!(crop_offset(36, 32), 2);
        assert_eq!(crop_offset(33, 32), 0); // round(0.5) = 0
        assert_eq!(crop_offset(35, 32), 2); // round(1.5) = 2
        assert_eq!(crop_offset(37, 32), 2); // round(2.5) = 2
        assert_eq!(crop_offset(39, 32), 4); // round(3.5) = 4
        assert_eq!(crop_offset(30, 32), -1);
    }

    #[test]
    fn hostile_aspect_ratio_is_cheap() {
        let pixels = vec![128u8; 100_000 * 3];
        let t = image_to_tensor(&spec([4, 4], 1.0), &pixels, 100_000, 1, PixelLayout::Rgb).unwrap();
        assert_eq!(t.shape(), &[1, 3, 4, 4]);
        assert!(t.data().iter().all(|v| (v - 128.0 / 255.0).abs() < 1e-5));
        assert!(image_to_tensor(&spec([4, 4], 1.0), &pixels, 7, 7, PixelLayout::Rgb).is_err());
        assert!(image_to_tensor(&spec([4, 4], 1.0), &[], 0, 7, PixelLayout::Rgb).is_err());
    }
}
