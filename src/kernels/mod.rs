//! Compute kernels for every graph op, plus the geometry types they share with the loader.
//!
//! [`scalar`] holds the portable reference kernels: clear loops that define what each op
//! computes, kept forever as the reference. The fast convolutions live beside them:
//! [`packed`] (weights decoded and packed once, im2col into panels) on top of [`gemm`]'s
//! micro-kernels (`generic_f32_4x8` everywhere, `wasm32_simd128_f32_4x8` on SIMD128 builds),
//! and [`pool`] (separable max pooling),
//! all property-tested against [`scalar`] (`tests/kernels.rs`, and `tests/wasm.rs` for the
//! SIMD128 kernel). Every kernel works on ONE image (`[C, H, W]` or `[K]`, row-major) and checks
//! its arguments on entry, so a kernel can be called with anything and will return a typed
//! error rather than index out of bounds. The executor loops over the batch.
//!
//! The geometry types ([`Conv2dGeometry`], [`Pool2dGeometry`]) are the single place where output
//! sizes and the FORMAT.md section 3 requirements are computed: the loader uses them for shape
//! inference, the kernels for argument checks.

pub mod gemm;
pub mod packed;
pub mod pool;
pub mod scalar;

use crate::error::{Error, Result};

/// Shape and hyper-parameters of one 2-D convolution over one `[C, H, W]` image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    /// `[kh, kw]`
    pub kernel: [usize; 2],
    /// `[sh, sw]`
    pub stride: [usize; 2],
    /// `[ph, pw]`, zero padding on both sides.
    pub padding: [usize; 2],
    pub groups: usize,
}

/// Sizes derived from a valid [`Conv2dGeometry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dDims {
    pub out_h: usize,
    pub out_w: usize,
    /// Input channels read by each filter: `C / groups`.
    pub in_per_group: usize,
    /// Output channels per group: `O / groups`.
    pub out_per_group: usize,
    /// Weights per filter: `(C / groups) · kh · kw`.
    pub filter_len: usize,
}

impl Conv2dGeometry {
    /// Checks the FORMAT.md requirements (all sizes ≥ 1, `C % g == 0`, `O % g == 0`, the padded
    /// input at least as large as the kernel) and returns the derived sizes. Arithmetic is
    /// checked, so absurd values give an error, not an overflow.
    pub fn dims(&self) -> Result<Conv2dDims> {
        let bad = |reason: String| Error::graph("conv2d", reason);
        let all = [
            ("in_channels", self.in_channels),
            ("height", self.in_h),
            ("width", self.in_w),
            ("out_channels", self.out_channels),
            ("kernel height", self.kernel[0]),
            ("kernel width", self.kernel[1]),
            ("stride height", self.stride[0]),
            ("stride width", self.stride[1]),
            ("groups", self.groups),
        ];
        for (what, v) in all {
            if v == 0 {
                return Err(bad(format!("{what} must be >= 1")));
            }
        }
        if !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(bad(format!(
                "groups {} must divide in_channels {} and out_channels {}",
                self.groups, self.in_channels, self.out_channels
            )));
        }
        let out_h = window_output_len(self.in_h, self.kernel[0], self.stride[0], self.padding[0])
            .ok_or_else(|| bad("kernel taller than the padded input".into()))?;
        let out_w = window_output_len(self.in_w, self.kernel[1], self.stride[1], self.padding[1])
            .ok_or_else(|| bad("kernel wider than the padded input".into()))?;
        let in_per_group = self.in_channels / self.groups;
        let filter_len = in_per_group
            .checked_mul(self.kernel[0])
            .and_then(|v| v.checked_mul(self.kernel[1]))
            .ok_or_else(|| bad("filter size overflows".into()))?;
        Ok(Conv2dDims {
            out_h,
            out_w,
            in_per_group,
            out_per_group: self.out_channels / self.groups,
            filter_len,
        })
    }
}

/// Shape and hyper-parameters of a 2-D max pool over one `[C, H, W]` image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dGeometry {
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding counts as −∞; must be smaller than the kernel so every window sees a real value.
    pub padding: [usize; 2],
}

impl Pool2dGeometry {
    /// Checks the requirements and returns `(out_h, out_w)`.
    pub fn output_hw(&self) -> Result<(usize, usize)> {
        let bad = |reason: String| Error::graph("maxpool2d", reason);
        let all = [
            ("channels", self.channels),
            ("height", self.in_h),
            ("width", self.in_w),
            ("kernel height", self.kernel[0]),
            ("kernel width", self.kernel[1]),
            ("stride height", self.stride[0]),
            ("stride width", self.stride[1]),
        ];
        for (what, v) in all {
            if v == 0 {
                return Err(bad(format!("{what} must be >= 1")));
            }
        }
        if self.padding[0] >= self.kernel[0] || self.padding[1] >= self.kernel[1] {
            return Err(bad(format!(
                "padding {:?} must be smaller than kernel {:?}",
                self.padding, self.kernel
            )));
        }
        let out_h = window_output_len(self.in_h, self.kernel[0], self.stride[0], self.padding[0])
            .ok_or_else(|| bad("kernel taller than the padded input".into()))?;
        let out_w = window_output_len(self.in_w, self.kernel[1], self.stride[1], self.padding[1])
            .ok_or_else(|| bad("kernel wider than the padded input".into()))?;
        Ok((out_h, out_w))
    }
}

/// `(len + 2·pad − k) / stride + 1` (floor), or `None` if the padded input is shorter than the
/// kernel, the stride is zero, or the arithmetic overflows.
pub fn window_output_len(len: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = pad.checked_mul(2)?.checked_add(len)?;
    let span = padded.checked_sub(k)?;
    span.checked_div(stride)?.checked_add(1)
}

/// Bytes per row of a bit-packed pattern filter with `filter_len` weights: `ceil(n / 8)`.
pub fn pattern_row_bytes(filter_len: usize) -> usize {
    filter_len.div_ceil(8)
}
