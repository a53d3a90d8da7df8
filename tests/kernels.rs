//! Property tests: every scalar kernel against the naive direct loops of `tests/common` on
//! random shapes (odd channel counts, groups 1/2/4, strides 1/2/3, paddings 0/1/2, kernels
//! 1/3/5, non-square inputs), with weights decoded to f32 by code that shares nothing with the
//! engine (the pattern bit order in particular is decoded independently).

mod common;

use common::conv_cases::*;
use common::*;
use sepnet::kernels::packed::PackedConv;
use sepnet::kernels::{gemm, pool, scalar, Conv2dGeometry};

const CASES: usize = 150;
const TOL: f64 = 1e-5;

fn conv_case(rng: &mut Rng, enc: Enc) {
    let g = random_conv(rng);
    conv_case_with(rng, enc, g);
}

/// The scalar kernel against the naive loops, then the fast kernel against the scalar one, with
/// and without a fused ReLU.
fn conv_case_with(rng: &mut Rng, enc: Enc, g: Conv2dGeometry) {
    let case = ConvCase::new(rng, enc, g);
    let d = g.dims().unwrap();
    let out = case.run_scalar();
    let (expected, shape) = naive_conv(
        &case.x,
        [g.in_channels, g.in_h, g.in_w],
        &case.real,
        case.bias.as_deref(),
        g.out_channels,
        g.kernel,
        g.stride,
        g.padding,
        g.groups,
    );
    assert_eq!(shape, [g.out_channels, d.out_h, d.out_w], "{g:?}");
    let rel = rel_diff(&out, &expected);
    assert!(rel < TOL, "{enc:?} {g:?}: relative deviation {rel}");
    let what = format!("{enc:?} {g:?} ({} kernel)", gemm::micro_kernel_name());
    assert_same_bits(&case.run_packed(false), &out, &what);
    let fused = format!("{what} with a fused ReLU");
    assert_same_bits(&case.run_packed(true), &case.run_scalar_relu(), &fused);
}

#[test]
fn conv2d_f32_matches_naive() {
    let mut rng = Rng::new(1);
    for _ in 0..CASES {
        conv_case(&mut rng, Enc::F32);
    }
}

#[test]
fn conv2d_int8_matches_naive() {
    let mut rng = Rng::new(2);
    for _ in 0..CASES {
        conv_case(&mut rng, Enc::Int8);
    }
}

#[test]
fn conv2d_pattern_matches_naive() {
    let mut rng = Rng::new(3);
    for _ in 0..CASES {
        conv_case(&mut rng, Enc::Pattern);
    }
}

#[test]
fn packed_conv_matches_scalar_on_layer_sized_shapes() {
    let mut rng = Rng::new(4);
    for case in 0..60 {
        let enc = [Enc::F32, Enc::Int8, Enc::Pattern][case % 3];
        let g = random_layer(&mut rng);
        conv_case_with(&mut rng, enc, g);
    }
}

#[test]
fn packed_conv_matches_scalar_on_wide_strided_layers() {
    let mut rng = Rng::new(5);
    for case in 0..60 {
        let enc = [Enc::F32, Enc::Int8, Enc::Pattern][case % 3];
        let g = random_strided_layer(&mut rng);
        conv_case_with(&mut rng, enc, g);
    }
}

#[test]
fn generic_micro_kernel_is_an_in_order_dot_product() {
    assert_micro_kernel_is_in_order_dot(
        gemm::generic_f32_4x8,
        &mut Rng::new(5),
        &[1, 2, 7, 64, 577],
    );
}

#[test]
fn packed_conv_rejects_wrong_lengths() {
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
    assert!(PackedConv::f32(&g, &[0.0; 35]).is_err());
    assert!(PackedConv::int8(&g, &[0; 36], &[1.0]).is_err());
    assert!(PackedConv::pattern(&g, &[0; 5], &[1.0; 2]).is_err());
    let p = PackedConv::pattern(&g, &[0; 6], &[1.0; 2]).unwrap();
    let mut out = vec![0.0; 18];
    assert!(p.run(&[0.0; 17], None, false, &mut out).is_err());
    assert!(p.run(&[0.0; 18], Some(&[0.0]), false, &mut out).is_err());
    assert!(p.run(&[0.0; 18], None, false, &mut out[..17]).is_err());
    assert!(p.run(&[0.0; 18], None, false, &mut out).is_ok());
}

#[test]
fn pattern_conv_is_plus_minus_sums() {
    // One 1×3 filter over a 1×3 input, no padding: bits 0b101 → (+1, −1, +1), scale 2.
    let g = Conv2dGeometry {
        in_channels: 1,
        in_h: 1,
        in_w: 3,
        out_channels: 1,
        kernel: [1, 3],
        stride: [1, 1],
        padding: [0, 0],
        groups: 1,
    };
    let mut out = [0.0];
    scalar::conv2d_pattern(
        &g,
        &[10.0, 20.0, 40.0],
        &[0b101],
        &[2.0],
        Some(&[0.5]),
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0], 2.0 * (10.0 - 20.0 + 40.0) + 0.5);
}

#[test]
fn linear_matches_naive() {
    let mut rng = Rng::new(4);
    for _ in 0..CASES {
        let i = 1 + rng.below(40);
        let o = 1 + rng.below(17);
        let x = rng.f32s(i);
        let bias = if rng.below(2) == 1 {
            Some(rng.f32s(o))
        } else {
            None
        };
        let w = rng.f32s(o * i);
        let mut out = vec![0.0; o];
        scalar::linear_f32(&x, &w, bias.as_deref(), &mut out).unwrap();
        assert!(rel_diff(&out, &naive_linear(&x, &w, bias.as_deref(), o)) < TOL);

        let q: Vec<i8> = (0..o * i)
            .map(|_| (rng.below(255) as i32 - 127) as i8)
            .collect();
        let s = rng.f32s(o);
        let real: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(k, &v)| v as f32 * s[k / i])
            .collect();
        scalar::linear_int8(&x, &q, &s, bias.as_deref(), &mut out).unwrap();
        assert!(rel_diff(&out, &naive_linear(&x, &real, bias.as_deref(), o)) < TOL);
    }
}

/// The separable pool keeps the reference's NaN and signed-zero rule exactly.
#[test]
fn fast_maxpool_matches_scalar_bit_for_bit() {
    assert_maxpool_matches_scalar(&mut Rng::new(13), 300);
}

#[test]
fn maxpool_matches_naive() {
    let mut rng = Rng::new(5);
    for _ in 0..CASES {
        let (g, oh, ow) = random_pool(&mut rng, [5, 9, 11]);
        let x = rng.f32s(g.channels * g.in_h * g.in_w);
        let mut out = vec![0.0; g.channels * oh * ow];
        scalar::maxpool2d(&g, &x, &mut out).unwrap();
        let (expected, _) = naive_maxpool(
            &x,
            [g.channels, g.in_h, g.in_w],
            g.kernel,
            g.stride,
            g.padding,
        );
        assert_eq!(out, expected, "{g:?}");
        let mut fast = vec![f32::NAN; out.len()];
        pool::maxpool2d(&g, &x, &mut fast).unwrap();
        assert_eq!(fast, out, "separable max pool {g:?}");
        assert!(
            out.iter().all(|v| v.is_finite()),
            "a window saw only padding: {g:?}"
        );
    }
}

#[test]
fn elementwise_and_reductions_match_naive() {
    let mut rng = Rng::new(6);
    for _ in 0..CASES {
        let c = 1 + rng.below(7);
        let hw = 1 + rng.below(30);
        let a = rng.f32s(c * hw);
        let b = rng.f32s(c * hw);
        let mut out = vec![0.0; c * hw];
        scalar::add(&a, &b, &mut out).unwrap();
        assert!(out
            .iter()
            .zip(a.iter().zip(&b))
            .all(|(o, (x, y))| *o == x + y));
        scalar::relu(&a, &mut out).unwrap();
        assert!(out.iter().zip(&a).all(|(o, x)| *o == x.max(0.0)));

        let mut pooled = vec![0.0; c];
        scalar::global_avg_pool(&a, hw, &mut pooled).unwrap();
        let expected: Vec<f32> = (0..c)
            .map(|ci| {
                (a[ci * hw..(ci + 1) * hw]
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>()
                    / hw as f64) as f32
            })
            .collect();
        assert!(rel_diff(&pooled, &expected) < TOL);

        let logits: Vec<f32> = rng.f32s(c).iter().map(|v| v * 30.0).collect();
        let mut probs = vec![0.0; c];
        scalar::softmax(&logits, &mut probs).unwrap();
        assert!(rel_diff(&probs, &naive_softmax(&logits)) < TOL);

        let mut cat = vec![0.0; 2 * c * hw];
        scalar::concat(&[&a, &b], &mut cat).unwrap();
        assert_eq!(&cat[..c * hw], &a[..]);
        assert_eq!(&cat[c * hw..], &b[..]);
    }
}

#[test]
fn random_graphs_match_naive_interpreter() {
    // Whole models from the builder, run by the engine and by the naive interpreter.
    for seed in 0..8 {
        let m = tiny_model(seed);
        let model = sepnet::Model::from_bytes(&m.to_bytes()).unwrap();
        let mut rng = Rng::new(100 + seed);
        let batch = 1 + (seed as usize % 3);
        let x = rng.f32s(batch * 3 * 9 * 11);
        let input = sepnet::Tensor::new(vec![batch, 3, 9, 11], x.clone()).unwrap();
        let (out, acts) = model.run_capturing(&input, &["prb.add", "conv2"]).unwrap();
        assert_eq!(out.logits.shape(), &[batch, 5]);
        for n in 0..batch {
            let vals = naive_run(&m, &x[n * 297..(n + 1) * 297]);
            let got = &out.logits.data()[n * 5..(n + 1) * 5];
            let rel = rel_diff(got, &vals["fc"].0);
            assert!(rel < 1e-5, "seed {seed} image {n}: logits rel {rel}");
            for (name, t) in &acts {
                let per = t.len() / batch;
                let rel = rel_diff(&t.data()[n * per..(n + 1) * per], &vals[name.as_str()].0);
                assert!(rel < 1e-5, "seed {seed} image {n}: {name} rel {rel}");
            }
        }
    }
}
