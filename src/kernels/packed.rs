//! Fast convolutions: weights decoded and packed once at load, im2col into packed panels (or,
//! for stride-1 convolutions with few filters per group, B panels read in place from the
//! zero-padded input), and the [`gemm`](super::gemm) micro-kernels.
//!
//! The file keeps patterns as bits and int8 as bytes; at load each filter is decoded to the
//! f32 values the reference kernels multiply by (±1 for patterns, `q` for int8: the per-filter
//! scale is still applied once at the end), so the results equal [`super::scalar`]'s bit for
//! bit on finite inputs while the inner loop is a plain SIMD multiply-add. On SIMD128 a
//! multiply by ±1 costs the same as an add or subtract, and decoded weights let the
//! pattern, int8 and f32 encodings share one tuned loop. The cost is memory: 4 bytes per
//! weight at run time (3.1 MB for `sepnet_cifar`, 5.2 MB for `sepnet_small`).

use super::gemm::{self, PanelSource, MR, NR};
use super::scalar::{check_conv, expect_len};
use super::{pattern_row_bytes, Conv2dDims, Conv2dGeometry};
use crate::error::{Error, Result};

/// Stride-1 convolutions with at most this many A panels (`MR` filters each) per group read
/// their B panels in place instead of packing them (see [`PackedConv::run`]).
const IN_PLACE_MAX_A_PANELS: usize = 4;

/// A convolution's weights, decoded and packed for [`gemm::gemm_packed`].
#[derive(Debug, Clone)]
pub struct PackedConv {
    geometry: Conv2dGeometry,
    /// Per group, `packed_len(out_per_group, filter_len, MR)` floats of A panels.
    a: Vec<f32>,
    /// Per output channel, the factor applied to the finished sum (1 for f32 weights).
    scale: Vec<f32>,
    /// Where B panels are read in place instead of packed (fixed by the geometry).
    in_place: Option<InPlacePlan>,
}

/// How [`PackedConv::run`] reads B panels in place: from the input itself (`padded_len` 0) or
/// from a zero-padded copy of one group's planes (`padded_len` floats, rows `row` floats long),
/// tap `p = (c·kh + ky)·kw + kx` at offset `rel[p]` from the panel's first pixel.
#[derive(Debug, Clone)]
struct InPlacePlan {
    padded_len: usize,
    row: usize,
    rel: Vec<usize>,
}

impl PackedConv {
    /// Real-valued weights `[O, C/g, kh, kw]`.
    pub fn f32(g: &Conv2dGeometry, weight: &[f32]) -> Result<PackedConv> {
        let d = g.dims()?;
        expect_len("conv2d weight", weight_count(g, &d)?, weight.len())?;
        let n = d.filter_len;
        Ok(Self::pack(
            g,
            d,
            |o, i| weight[o * n + i],
            vec![1.0; g.out_channels],
        ))
    }

    /// int8 weights `q [O, C/g, kh, kw]` with per-output-channel `scale [O]`.
    pub fn int8(g: &Conv2dGeometry, q: &[i8], scale: &[f32]) -> Result<PackedConv> {
        let d = g.dims()?;
        expect_len("conv2d int8 weight", weight_count(g, &d)?, q.len())?;
        expect_len("conv2d int8 scale", g.out_channels, scale.len())?;
        let n = d.filter_len;
        Ok(Self::pack(
            g,
            d,
            |o, i| f32::from(q[o * n + i]),
            scale.to_vec(),
        ))
    }

    /// Bit-packed patterns `[O, ceil(n/8)]` (FORMAT.md section 2) with per-filter `scale [O]`.
    pub fn pattern(g: &Conv2dGeometry, bits: &[u8], scale: &[f32]) -> Result<PackedConv> {
        let d = g.dims()?;
        let row_bytes = pattern_row_bytes(d.filter_len);
        let expected = g
            .out_channels
            .checked_mul(row_bytes)
            .ok_or_else(|| Error::shape("conv2d pattern bits", "sizes that fit usize", g))?;
        expect_len("conv2d pattern bits", expected, bits.len())?;
        expect_len("conv2d pattern scale", g.out_channels, scale.len())?;
        let weight = |o: usize, i: usize| {
            if super::scalar::pattern_bit(bits, row_bytes, o, i) {
                1.0
            } else {
                -1.0
            }
        };
        Ok(Self::pack(g, d, weight, scale.to_vec()))
    }

    fn pack(
        g: &Conv2dGeometry,
        d: Conv2dDims,
        weight_at: impl Fn(usize, usize) -> f32,
        scale: Vec<f32>,
    ) -> PackedConv {
        let (m, k) = (d.out_per_group, d.filter_len);
        let per_group = gemm::packed_len(m, k, MR);
        let mut a = vec![0.0f32; per_group * g.groups];
        let mut rows = vec![0.0f32; m * k];
        for (group, dst) in a.chunks_exact_mut(per_group).enumerate() {
            for (r, row) in rows.chunks_exact_mut(k).enumerate() {
                for (i, v) in row.iter_mut().enumerate() {
                    *v = weight_at(group * m + r, i);
                }
            }
            gemm::pack_a(m, k, &rows, dst);
        }
        PackedConv {
            geometry: *g,
            a,
            scale,
            in_place: in_place_plan(g, &d),
        }
    }

    /// Floats the packed weights of a convolution with geometry `g` take (all groups).
    pub fn packed_len(g: &Conv2dGeometry) -> Result<usize> {
        let d = g.dims()?;
        d.out_per_group
            .div_ceil(MR)
            .checked_mul(MR * g.groups)
            .and_then(|v| v.checked_mul(d.filter_len))
            .ok_or_else(|| Error::shape("conv2d", "sizes that fit usize", g))
    }

    pub fn geometry(&self) -> &Conv2dGeometry {
        &self.geometry
    }

    /// `output = conv(input) · scale + bias`, one `[C, H, W]` image, then `max(·, 0)` where
    /// `relu` (a ReLU node fused into this convolution by the executor).
    ///
    /// B panels are read in place where their `NR` output pixels are consecutive in one row of
    /// a stride-1 convolution: each tap's run is then `NR` consecutive floats of the (zero-padded)
    /// input, so only the other panels (row ends, strided convolutions) are packed. The
    /// micro-kernel sees the same values in the same order either way.
    pub fn run(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        output: &mut [f32],
    ) -> Result<()> {
        let g = &self.geometry;
        let d = check_conv(g, input, output, bias)?;
        let (m, k) = (d.out_per_group, d.filter_len);
        let out_plane = d.out_h * d.out_w;
        let in_group = d.in_per_group * g.in_h * g.in_w;
        let a_group = gemm::packed_len(m, k, MR);
        let pointwise = g.kernel == [1, 1] && g.stride == [1, 1] && g.padding == [0, 0];
        let mut padded = vec![0.0f32; self.in_place.as_ref().map_or(0, |p| p.padded_len)];
        let mut panel = vec![0.0f32; NR * k]; // one B panel, reused by every group
        for group in 0..g.groups {
            let x = &input[group * in_group..(group + 1) * in_group];
            let c = &mut output[group * m * out_plane..(group + 1) * m * out_plane];
            let a = &self.a[group * a_group..(group + 1) * a_group];
            let epilogue = |r: usize| {
                let o = group * m + r;
                (self.scale[o], bias.map_or(0.0, |b| b[o]))
            };
            if pointwise {
                // A 1×1 convolution's B is the input itself, `C/g × H·W` row-major.
                gemm::gemm_rows(m, k, out_plane, a, x, &mut panel, c, epilogue, relu);
            } else if let Some(plan) = &self.in_place {
                let src = if plan.padded_len > 0 {
                    pad_planes(g, d.in_per_group, x, &mut padded);
                    &padded[..]
                } else {
                    x
                };
                let out_w = d.out_w;
                let b_panel = |jp: usize, panel: &mut [f32]| {
                    let j0 = jp * NR;
                    let (oy, ox) = (j0 / out_w, j0 % out_w);
                    if ox + NR <= out_w {
                        // Padded coordinates: output (oy, ox) + tap (ky, kx) reads (oy + ky, ox + kx).
                        let base = oy * plan.row + ox;
                        return PanelSource::InPlace {
                            x: src,
                            rel: &plan.rel,
                            base,
                        };
                    }
                    pack_im2col_panel(g, &d, x, jp, panel);
                    PanelSource::Packed
                };
                gemm::gemm_packed(m, k, out_plane, a, b_panel, &mut panel, c, epilogue, relu);
            } else {
                let pack = |jp: usize, panel: &mut [f32]| {
                    pack_im2col_panel(g, &d, x, jp, panel);
                    PanelSource::Packed
                };
                gemm::gemm_packed(m, k, out_plane, a, pack, &mut panel, c, epilogue, relu);
            }
        }
        Ok(())
    }
}

/// The in-place plan where [`PackedConv::run`] reads B panels in place, `None` where it packs
/// them.
///
/// Stride 1 with few filters per group: a packed panel is reused by every A panel, so packing
/// pays where m is large; where it is small (sepnet's grouped pattern convolutions: 4-16
/// filters a group) the copy cost about as much as the multiplies, and reading in place halved
/// those layers. 1×1 convolutions stay packed: their rows lie a whole plane apart, and read in
/// place they ran slower (in Node, on the Xeon). The padded copy must stay small beside the
/// input: a file may pad a 1×1 input by hundreds, which must not become a huge allocation.
fn in_place_plan(g: &Conv2dGeometry, d: &Conv2dDims) -> Option<InPlacePlan> {
    let pointwise = g.kernel == [1, 1] && g.stride == [1, 1] && g.padding == [0, 0];
    if pointwise
        || g.stride != [1, 1]
        || d.out_w < NR
        || d.out_per_group.div_ceil(MR) > IN_PLACE_MAX_A_PANELS
    {
        return None;
    }
    let [ph, pw] = g.padding;
    let (padded_len, row, plane) = if ph == 0 && pw == 0 {
        (0, g.in_w, g.in_h * g.in_w)
    } else {
        let (pad_h, pad_w) = (g.in_h + 2 * ph, g.in_w + 2 * pw);
        let in_group = d.in_per_group * g.in_h * g.in_w;
        let len = d
            .in_per_group
            .checked_mul(pad_h)
            .and_then(|v| v.checked_mul(pad_w))
            .filter(|&v| v <= 2 * in_group)?;
        (len, pad_w, pad_h * pad_w)
    };
    let [kh, kw] = g.kernel;
    let rel = (0..d.in_per_group)
        .flat_map(|c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (c, ky, kx))))
        .map(|(c, ky, kx)| c * plane + ky * row + kx)
        .collect();
    Some(InPlacePlan {
        padded_len,
        row,
        rel,
    })
}

/// Copies one group's input planes into `dst`, each surrounded by the convolution's zero
/// padding (`(in_h + 2·ph) × (in_w + 2·pw)` per plane); the border stays zero.
fn pad_planes(g: &Conv2dGeometry, channels: usize, x: &[f32], dst: &mut [f32]) {
    let [ph, pw] = g.padding;
    let (pad_h, pad_w) = (g.in_h + 2 * ph, g.in_w + 2 * pw);
    for (src, plane) in x
        .chunks_exact(g.in_h * g.in_w)
        .zip(dst.chunks_exact_mut(pad_h * pad_w))
        .take(channels)
    {
        for (y, row) in src.chunks_exact(g.in_w).enumerate() {
            plane[(y + ph) * pad_w + pw..][..g.in_w].copy_from_slice(row);
        }
    }
}

fn weight_count(g: &Conv2dGeometry, d: &Conv2dDims) -> Result<usize> {
    g.out_channels
        .checked_mul(d.filter_len)
        .ok_or_else(|| Error::shape("conv2d weight", "sizes that fit usize", g))
}

/// One B panel of the im2col of one group's input planes: row `p = (c·kh + ky)·kw + kx`,
/// columns `j = jp·NR ..` with `j = oy·out_w + ox`; positions in the zero padding (and columns
/// past the end) are 0. Each tap is a run of `NR` consecutive floats: when the panel's pixels
/// lie on one output row the run is a strided read of one input row, a plain copy at stride 1
/// away from the borders.
fn pack_im2col_panel(g: &Conv2dGeometry, d: &Conv2dDims, x: &[f32], jp: usize, panel: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let out_w = d.out_w;
    let n = d.out_h * out_w;
    let in_plane = g.in_h * g.in_w;
    // Input coordinate `o·s + t − pad` when it lies inside `0..len`.
    let at = |o: usize, s: usize, t: usize, pad: usize, len: usize| {
        (o * s + t).checked_sub(pad).filter(|&i| i < len)
    };
    let j0 = jp * NR;
    let width = NR.min(n - j0);
    let (oy0, ox0) = (j0 / out_w, j0 % out_w);
    let mut runs = panel.chunks_exact_mut(NR);
    if width == NR && ox0 + NR <= out_w {
        for c in 0..d.in_per_group {
            let plane = &x[c * in_plane..(c + 1) * in_plane];
            for ky in 0..kh {
                let iy = at(oy0, sh, ky, ph, g.in_h);
                for kx in 0..kw {
                    let Some(run) = runs.next() else { return };
                    let Some(iy) = iy else {
                        run.fill(0.0);
                        continue;
                    };
                    let row = &plane[iy * g.in_w..(iy + 1) * g.in_w];
                    let first = at(ox0, sw, kx, pw, g.in_w);
                    match first {
                        Some(i0) if sw == 1 && i0 + NR <= g.in_w => {
                            run.copy_from_slice(&row[i0..i0 + NR])
                        }
                        Some(i0) if i0 + (NR - 1) * sw < g.in_w => {
                            for (v, &x) in run.iter_mut().zip(row[i0..].iter().step_by(sw)) {
                                *v = x;
                            }
                        }
                        _ => {
                            for (l, v) in run.iter_mut().enumerate() {
                                *v = at(ox0 + l, sw, kx, pw, g.in_w).map_or(0.0, |ix| row[ix]);
                            }
                        }
                    }
                }
            }
        }
    } else {
        for c in 0..d.in_per_group {
            let plane = &x[c * in_plane..(c + 1) * in_plane];
            for ky in 0..kh {
                for kx in 0..kw {
                    let Some(run) = runs.next() else { return };
                    for (l, v) in run.iter_mut().enumerate() {
                        let j = j0 + l;
                        let (oy, ox) = (j / out_w, j % out_w);
                        *v = match (at(oy, sh, ky, ph, g.in_h), at(ox, sw, kx, pw, g.in_w)) {
                            (Some(iy), Some(ix)) if l < width => plane[iy * g.in_w + ix],
                            _ => 0.0,
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(
        c: usize,
        hw: usize,
        o: usize,
        k: usize,
        pad: usize,
        groups: usize,
    ) -> Conv2dGeometry {
        Conv2dGeometry {
            in_channels: c,
            in_h: hw,
            in_w: hw,
            out_channels: o,
            kernel: [k, k],
            stride: [1, 1],
            padding: [pad, pad],
            groups,
        }
    }

    #[test]
    fn in_place_only_for_few_filters_a_group_and_a_small_padded_copy() {
        let plan = |g: Conv2dGeometry| in_place_plan(&g, &g.dims().unwrap()).map(|p| p.padded_len);
        // sepnet_cifar's module1.slice2.pattern: 4 groups of 8 channels → 4 filters, 32×32.
        assert_eq!(plan(geometry(32, 32, 16, 3, 1, 4)), Some(8 * 34 * 34));
        assert_eq!(plan(geometry(8, 16, 8, 3, 0, 1)), Some(0)); // unpadded: the input itself
        assert_eq!(plan(geometry(64, 32, 64, 3, 1, 1)), None); // 64 filters: packing pays
        assert_eq!(plan(geometry(8, 32, 8, 1, 0, 1)), None); // 1×1: packed
        assert_eq!(plan(geometry(8, 4, 8, 3, 1, 1)), None); // rows shorter than a panel
                                                            // A hostile pad around a tiny input would need a copy 10^5 times the input: refused.
        assert_eq!(plan(geometry(4096, 1, 4, 1, 150, 1)), None);
    }
}
