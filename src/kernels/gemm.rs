//! Packed single-precision matrix multiply `C = A · B`, the engine of the fast convolutions.
//!
//! Both operands are packed into panels so the inner loop reads memory in order:
//! - A (`m × k`, the filters) in panels of [`MR`] rows, element `(r, p)` of panel `r / MR` at
//!   `p · MR + r % MR`; rows past `m` are zero;
//! - B (`k × n`, im2col of the input) in panels of [`NR`] columns, element `(p, j)` of panel
//!   `j / NR` at `p · NR + j % NR`; columns past `n` are zero.
//!
//! A micro-kernel multiplies one A panel by one B panel into an `MR × NR` tile. Each output
//! element is accumulated over `p = 0, 1, …, k − 1` in order with a separate multiply and add
//! (no fused multiply-add, no reassociation), exactly like the scalar reference kernels, so the
//! fast convolutions agree with them bit for bit on finite inputs (the zero padding only ever
//! adds ±0, which can at most turn a −0 sum into +0). Micro-kernels are named `ARCH_f32_MRxNR`; [`generic_f32_4x8`] is portable, the
//! `wasm32_simd128` one is chosen at compile time when the target has SIMD128.

/// Rows of an A panel (output channels per tile).
pub const MR: usize = 4;
/// Columns of a B panel (output pixels per tile).
pub const NR: usize = 8;

/// One `MR × NR` tile of results, row-major.
pub type Tile = [[f32; NR]; MR];

/// Floats in the packed form of an `rows × k` operand with panels of `width` rows/columns.
pub fn packed_len(rows: usize, k: usize, width: usize) -> usize {
    rows.div_ceil(width) * width * k
}

/// Portable micro-kernel: `a` is one A panel (`MR · k` floats), `b` one B panel (`NR · k`).
pub fn generic_f32_4x8(k: usize, a: &[f32], b: &[f32]) -> Tile {
    let b = &b[..NR * k];
    generic_4x8_by_rows(k, a, |p| &b[p * NR..(p + 1) * NR])
}

/// [`generic_f32_4x8`] reading B in place: row `p` of the panel is `x[base + rel[p]..][..NR]`.
pub fn generic_f32_4x8_rows(k: usize, a: &[f32], x: &[f32], rel: &[usize], base: usize) -> Tile {
    let rel = &rel[..k];
    generic_4x8_by_rows(k, a, |p| &x[base + rel[p]..][..NR])
}

#[inline(always)]
fn generic_4x8_by_rows<'b>(k: usize, a: &[f32], b_row: impl Fn(usize) -> &'b [f32]) -> Tile {
    let a = &a[..MR * k];
    let mut acc = [[0.0f32; NR]; MR];
    for (p, ap) in a.chunks_exact(MR).enumerate() {
        let bp = b_row(p);
        for (row, &av) in acc.iter_mut().zip(ap) {
            for (c, &bv) in row.iter_mut().zip(bp) {
                *c += av * bv;
            }
        }
    }
    acc
}

/// SIMD128 micro-kernel: eight `f32x4` accumulators, one splat of A and two loads of B per step.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn wasm32_simd128_f32_4x8(k: usize, a: &[f32], b: &[f32]) -> Tile {
    let b = &b[..NR * k];
    let pb = b.as_ptr();
    // SAFETY: b holds NR·k floats, so row p (p < k) is the NR floats from p·NR.
    simd128_4x8_by_rows(k, a, |p| unsafe { pb.add(p * NR) })
}

/// [`wasm32_simd128_f32_4x8`] reading B in place: row `p` is `x[base + rel[p]..][..NR]`
/// (bounds-checked per row: the check is one compare against 16 multiplies and adds).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn wasm32_simd128_f32_4x8_rows(
    k: usize,
    a: &[f32],
    x: &[f32],
    rel: &[usize],
    base: usize,
) -> Tile {
    let rel = &rel[..k];
    simd128_4x8_by_rows(k, a, |p| x[base + rel[p]..][..NR].as_ptr())
}

/// The SIMD128 4×8 kernel over any source of B rows. `b_row(p)` must point at NR readable
/// floats for every `p < k` (both callers guarantee it: a checked slice, or a packed panel).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn simd128_4x8_by_rows(k: usize, a: &[f32], b_row: impl Fn(usize) -> *const f32) -> Tile {
    use core::arch::wasm32::*;
    let a = &a[..MR * k];
    let z = f32x4_splat(0.0);
    let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
    let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
    let pa = a.as_ptr();
    for p in 0..k {
        let pb = b_row(p);
        // SAFETY: pb points at NR floats (above) and a holds MR·k floats, so these reads stay
        // inside them; wasm loads have no alignment requirement.
        unsafe {
            let b0 = v128_load(pb as *const v128);
            let b1 = v128_load(pb.add(4) as *const v128);
            let ap = pa.add(p * MR);
            let a0 = v128_load32_splat(ap as *const u32);
            c00 = f32x4_add(c00, f32x4_mul(a0, b0));
            c01 = f32x4_add(c01, f32x4_mul(a0, b1));
            let a1 = v128_load32_splat(ap.add(1) as *const u32);
            c10 = f32x4_add(c10, f32x4_mul(a1, b0));
            c11 = f32x4_add(c11, f32x4_mul(a1, b1));
            let a2 = v128_load32_splat(ap.add(2) as *const u32);
            c20 = f32x4_add(c20, f32x4_mul(a2, b0));
            c21 = f32x4_add(c21, f32x4_mul(a2, b1));
            let a3 = v128_load32_splat(ap.add(3) as *const u32);
            c30 = f32x4_add(c30, f32x4_mul(a3, b0));
            c31 = f32x4_add(c31, f32x4_mul(a3, b1));
        }
    }
    let mut tile = [[0.0f32; NR]; MR];
    for (row, (lo, hi)) in tile
        .iter_mut()
        .zip([(c00, c01), (c10, c11), (c20, c21), (c30, c31)])
    {
        // SAFETY: each row is NR = 8 contiguous floats; the stores write its two halves.
        unsafe {
            v128_store(row.as_mut_ptr() as *mut v128, lo);
            v128_store(row.as_mut_ptr().add(4) as *mut v128, hi);
        }
    }
    tile
}

/// The best micro-kernel this build has.
#[inline]
pub fn micro_kernel(k: usize, a: &[f32], b: &[f32]) -> Tile {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        wasm32_simd128_f32_4x8(k, a, b)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        generic_f32_4x8(k, a, b)
    }
}

/// The best in-place micro-kernel this build has (see [`generic_f32_4x8_rows`]).
#[inline]
pub fn micro_kernel_rows(k: usize, a: &[f32], x: &[f32], rel: &[usize], base: usize) -> Tile {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        wasm32_simd128_f32_4x8_rows(k, a, x, rel, base)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        generic_f32_4x8_rows(k, a, x, rel, base)
    }
}

/// Name of [`micro_kernel`]'s choice, for benchmarks and `info`.
pub fn micro_kernel_name() -> &'static str {
    if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "wasm32_simd128_f32_4x8"
    } else {
        "generic_f32_4x8"
    }
}

/// Packs row-major `a` (`m × k`) into A panels (`dst.len() == packed_len(m, k, MR)`).
pub fn pack_a(m: usize, k: usize, a: &[f32], dst: &mut [f32]) {
    dst.fill(0.0);
    for (r, row) in a.chunks_exact(k).take(m).enumerate() {
        let panel = &mut dst[(r / MR) * MR * k..(r / MR + 1) * MR * k];
        for (p, &v) in row.iter().enumerate() {
            panel[p * MR + r % MR] = v;
        }
    }
}

/// Where [`gemm_packed`]'s B panel `jp` comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PanelSource<'a> {
    /// Packed into the caller's scratch panel just now.
    Packed,
    /// Read in place: row `p` of the panel is `x[base + rel[p]..][..NR]`.
    InPlace {
        x: &'a [f32],
        rel: &'a [usize],
        base: usize,
    },
}

/// `C = A · B` with A packed and B one panel at a time: `b_panel(jp, panel)` either packs the
/// panel (columns `jp·NR ..`, `NR · k` floats) into `panel` just before use, so it stays in L1
/// while every A panel passes over it, or says where to read it in place. Then
/// `c[r][j] = acc · scale(r) + bias(r)` for the valid `m × n` part of row-major `c` (row stride
/// `n`): the reference kernels' own epilogue, followed by [`super::scalar::relu1`] where
/// `relu` (a fused ReLU node: the same values as running it after). `panel` is the caller's
/// scratch (at least `NR · k` floats), reused across groups and layers.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed<'src>(
    m: usize,
    k: usize,
    n: usize,
    a_packed: &[f32],
    mut b_panel: impl for<'p> FnMut(usize, &'p mut [f32]) -> PanelSource<'src>,
    panel: &mut [f32],
    c: &mut [f32],
    epilogue: impl Fn(usize) -> (f32, f32),
    relu: bool,
) {
    let panel = &mut panel[..NR * k];
    for jp in 0..n.div_ceil(NR) {
        let j0 = jp * NR;
        let cols = NR.min(n - j0);
        let source = b_panel(jp, panel);
        for (ip, a_panel) in a_packed.chunks_exact(MR * k).enumerate() {
            let r0 = ip * MR;
            let tile = match source {
                PanelSource::InPlace { x, rel, base } => {
                    micro_kernel_rows(k, a_panel, x, rel, base)
                }
                PanelSource::Packed => micro_kernel(k, a_panel, panel),
            };
            for (r, row) in tile.iter().enumerate().take(m.saturating_sub(r0)) {
                let (s, b) = epilogue(r0 + r);
                let dst = &mut c[(r0 + r) * n + j0..(r0 + r) * n + j0 + cols];
                store_row(row, s, b, relu, dst);
            }
        }
    }
}

/// One tile row into `dst` (its first `dst.len() ≤ NR` columns): `v · s + b`, then
/// [`super::scalar::relu1`] where `relu`.
#[inline(always)]
fn store_row(row: &[f32; NR], s: f32, b: f32, relu: bool, dst: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if dst.len() == NR {
        use core::arch::wasm32::*;
        let (vs, vb) = (f32x4_splat(s), f32x4_splat(b));
        // SAFETY: row and dst both hold NR = 8 floats; wasm loads and stores need no alignment.
        unsafe {
            let mut lo = f32x4_add(f32x4_mul(v128_load(row.as_ptr() as *const v128), vs), vb);
            let mut hi = f32x4_add(
                f32x4_mul(v128_load(row.as_ptr().add(4) as *const v128), vs),
                vb,
            );
            if relu {
                // relu1 lane-wise: keep the bits where y > 0, else +0 (NaN and -0 included).
                let z = f32x4_splat(0.0);
                lo = v128_and(lo, f32x4_gt(lo, z));
                hi = v128_and(hi, f32x4_gt(hi, z));
            }
            v128_store(dst.as_mut_ptr() as *mut v128, lo);
            v128_store(dst.as_mut_ptr().add(4) as *mut v128, hi);
        }
        return;
    }
    if relu {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = super::scalar::relu1(v * s + b);
        }
    } else {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d = v * s + b;
        }
    }
}

/// [`gemm_packed`] with B given row-major (`k × n`), packed panel by panel.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows(
    m: usize,
    k: usize,
    n: usize,
    a_packed: &[f32],
    b: &[f32],
    panel: &mut [f32],
    c: &mut [f32],
    epilogue: impl Fn(usize) -> (f32, f32),
    relu: bool,
) {
    let pack = |jp: usize, panel: &mut [f32]| {
        let j0 = jp * NR;
        let width = NR.min(n - j0);
        for (p, out) in panel.chunks_exact_mut(NR).enumerate() {
            out[..width].copy_from_slice(&b[p * n + j0..p * n + j0 + width]);
            out[width..].fill(0.0);
        }
        PanelSource::Packed
    };
    gemm_packed(m, k, n, a_packed, pack, panel, c, epilogue, relu);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_a_pads_with_zero_rows() {
        let (m, k) = (5, 3);
        let a: Vec<f32> = (0..m * k).map(|v| v as f32 + 1.0).collect();
        let mut ap = vec![f32::NAN; packed_len(m, k, MR)];
        pack_a(m, k, &a, &mut ap);
        assert_eq!(ap.len(), 2 * MR * k);
        for r in 0..2 * MR {
            for p in 0..k {
                let want = if r < m { a[r * k + p] } else { 0.0 };
                assert_eq!(ap[(r / MR) * MR * k + p * MR + r % MR], want);
            }
        }
    }
}
