//! Finite-difference checks of every backward pass in the engine.
//!
//! Each test builds a scalar loss `L`, computes the analytic gradient with the layer's
//! `backward`, and compares it entry by entry with the central difference
//! `(L(θ + h) - L(θ - h)) / 2h`. The engine is `f32`, so `L` is summed in `f64` and the step
//! `h` is large enough (1e-2) that rounding does not swamp the difference.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::activation::{relu_backward, relu_forward, sigmoid_backward, sigmoid_into};
use super::gaussian::{kl_divergence, reparameterize, reparameterize_kl_backward};
use super::linear::{GradInput, Linear};
use super::loss::Recon;
use super::matrix::Matrix;

const STEP: f32 = 1e-2;

fn rng() -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(7)
}

/// Compares `analytic` with central differences of `loss` around `point`.
fn assert_gradient(what: &str, point: &[f32], analytic: &[f32], loss: impl Fn(&[f32]) -> f64) {
    assert_eq!(point.len(), analytic.len());
    let mut x = point.to_vec();
    for i in 0..x.len() {
        let original = x[i];
        x[i] = original + STEP;
        let up = loss(&x);
        x[i] = original - STEP;
        let down = loss(&x);
        x[i] = original;
        let numeric = (up - down) / (2.0 * STEP as f64);
        let a = analytic[i] as f64;
        let error = (a - numeric).abs() / (a.abs() + numeric.abs()).max(1e-2);
        // The worst error measured over every layer here is 1.3e-3 (dlogvar): with the 1e-2
        // floor on the denominator, a term missing from a gradient shows above 3e-5.
        assert!(error < 3e-3, "{what}[{i}]: analytic {a}, finite difference {numeric}");
    }
}

/// `Σ c ⊙ y` in f64: a loss whose gradient with respect to `y` is `c`.
fn weighted_sum(y: &Matrix, c: &Matrix) -> f64 {
    y.data.iter().zip(&c.data).map(|(&y, &c)| y as f64 * c as f64).sum()
}

#[test]
fn linear_gradients_match_finite_differences() {
    let mut rng = rng();
    let mut layer = Linear::new(5, 4, &mut rng);
    let x = Matrix::standard_normal(3, 5, &mut rng);
    let c = Matrix::standard_normal(3, 4, &mut rng);
    let mut dx = Matrix::default();
    layer.backward(&x, &c, GradInput::Write(&mut dx));

    let loss_with = |layer: &Linear, x: &Matrix| {
        let mut y = Matrix::default();
        layer.forward(x, &mut y);
        weighted_sum(&y, &c)
    };
    assert_gradient("dW", &layer.weight.value.data, &layer.weight.grad.data, |w| {
        let mut l = layer.clone();
        l.weight.value.data.copy_from_slice(w);
        loss_with(&l, &x)
    });
    assert_gradient("db", &layer.bias.value.data, &layer.bias.grad.data, |b| {
        let mut l = layer.clone();
        l.bias.value.data.copy_from_slice(b);
        loss_with(&l, &x)
    });
    assert_gradient("dx", &x.data, &dx.data, |v| {
        loss_with(&layer, &Matrix::from_vec(3, 5, v.to_vec()))
    });
}

#[test]
fn relu_gradient_matches_finite_differences() {
    let mut rng = rng();
    let mut x = Matrix::standard_normal(4, 6, &mut rng);
    // Keep inputs away from the kink at 0, where the derivative is undefined.
    for v in &mut x.data {
        if v.abs() < 0.1 {
            *v += 0.3;
        }
    }
    let c = Matrix::standard_normal(4, 6, &mut rng);
    let mut y = x.clone();
    relu_forward(&mut y);
    let mut grad = c.clone();
    relu_backward(&y, &mut grad);
    assert_gradient("relu", &x.data, &grad.data, |v| {
        let mut y = Matrix::from_vec(4, 6, v.to_vec());
        relu_forward(&mut y);
        weighted_sum(&y, &c)
    });
}

fn check_reconstruction(recon: Recon) {
    let mut rng = rng();
    let logits = Matrix::standard_normal(3, 7, &mut rng);
    let mut target = Matrix::standard_normal(3, 7, &mut rng);
    for v in &mut target.data {
        *v = 1.0 / (1.0 + (-*v).exp());
    }
    let scale = 0.5;
    let mut rows = vec![0.0; 3];
    let mut grad = Matrix::default();
    let logvar = [0.3f32, -0.5, 1.2, 0.0, -2.0, 0.7, 0.1];
    recon.loss(&logits, &target, &logvar, &mut rows, Some((&mut grad, scale)));
    let loss = |s: &[f32], v: &[f32]| {
        let mut rows = vec![0.0; 3];
        recon.loss(&Matrix::from_vec(3, 7, s.to_vec()), &target, v, &mut rows, None);
        scale as f64 * rows.iter().map(|&r| r as f64).sum::<f64>()
    };
    assert_gradient(&format!("{recon:?}"), &logits.data, &grad.data, |s| loss(s, &logvar));
    if recon == Recon::Gaussian {
        // Three rows of weight `scale` each.
        let mut dv = vec![0.0; 7];
        super::loss::gaussian_logvar_grad(&logits, &target, &grad, &logvar, 3.0 * scale, &mut dv);
        assert_gradient("Gaussian logvar", &logvar, &dv, |v| loss(&logits.data, v));
    }
    // The fused pass and the forward-only pass agree on the loss itself.
    let mut forward_only = vec![0.0; 3];
    recon.loss(&logits, &target, &logvar, &mut forward_only, None);
    assert_eq!(rows, forward_only);
}

#[test]
fn gaussian_gradients_match_finite_differences() {
    check_reconstruction(Recon::Gaussian);
}

#[test]
fn gaussian_loss_is_the_normal_negative_log_likelihood() {
    // -log N(2; 0.5, e^0.4) = ½·(1.5²·e^(-0.4) + 0.4 + ln 2π) = 1.873_048_6.
    let (mut rows, s, x) = (
        vec![0.0],
        Matrix::from_vec(1, 1, vec![0.5]),
        Matrix::from_vec(1, 1, vec![2.0]),
    );
    Recon::Gaussian.loss(&s, &x, &[0.4], &mut rows, None);
    assert!((rows[0] - 1.873_048_6).abs() < 1e-5, "{}", rows[0]);
    // Beyond the clamp the variance stops shrinking, and its gradient is 0.
    let mut clamped = vec![0.0];
    Recon::Gaussian.loss(&s, &x, &[-50.0], &mut clamped, None);
    let mut at_floor = vec![0.0];
    Recon::Gaussian.loss(&s, &x, &[super::loss::GAUSSIAN_LOGVAR_RANGE.0], &mut at_floor, None);
    assert_eq!(clamped, at_floor);
    let mut dv = [1.0];
    super::loss::gaussian_logvar_grad(&s, &x, &s, &[-50.0], 1.0, &mut dv);
    assert_eq!(dv, [0.0]);
}

#[test]
fn bce_with_logits_gradient_matches_finite_differences() {
    check_reconstruction(Recon::Bce);
}

#[test]
fn mse_gradient_matches_finite_differences() {
    check_reconstruction(Recon::Mse);
}

#[test]
fn bce_with_logits_is_stable_for_large_logits() {
    // Known values: for s = ±100 and x = 1, ℓ = log(1 + e^(-s)) is ≈ 0 and ≈ 100; a naive
    // log(σ(s)) would give -inf for s = -100 in f32.
    let logits = Matrix::from_vec(2, 1, vec![100.0, -100.0]);
    let target = Matrix::from_vec(2, 1, vec![1.0, 1.0]);
    let mut rows = vec![0.0; 2];
    Recon::Bce.loss(&logits, &target, &[], &mut rows, None);
    assert!(rows[0].abs() < 1e-6, "{}", rows[0]);
    assert!((rows[1] - 100.0).abs() < 1e-4, "{}", rows[1]);
}

#[test]
fn kl_matches_its_closed_form_on_known_values() {
    // KL[N(0,1) || N(0,1)] = 0; KL[N(1, e²) || N(0,1)] = ½(e² + 1 - 1 - 2) = ½(e² - 2).
    let mu = Matrix::from_vec(2, 1, vec![0.0, 1.0]);
    let logvar = Matrix::from_vec(2, 1, vec![0.0, 2.0]);
    let mut kl = vec![0.0; 2];
    kl_divergence(&mu, &logvar, &mut kl);
    assert!(kl[0].abs() < 1e-7);
    let expected = 0.5 * (2f32.exp() - 2.0);
    assert!((kl[1] - expected).abs() < 1e-5, "{} vs {expected}", kl[1]);
}

#[test]
fn reparameterization_and_kl_gradients_match_finite_differences() {
    let mut rng = rng();
    let (rows, cols) = (3, 4);
    let mu = Matrix::standard_normal(rows, cols, &mut rng);
    let mut logvar = Matrix::standard_normal(rows, cols, &mut rng);
    for v in &mut logvar.data {
        *v *= 0.5;
    }
    let eps = Matrix::standard_normal(rows, cols, &mut rng);
    let c = Matrix::standard_normal(rows, cols, &mut rng);
    let kl_scale = 0.7;
    // L = Σ c ⊙ z + kl_scale · Σ_rows KL
    let loss = |mu: &Matrix, logvar: &Matrix| {
        let (mut z, mut std) = (Matrix::default(), Matrix::default());
        reparameterize(mu, logvar, &eps, &mut z, &mut std);
        let mut kl = vec![0.0; rows];
        kl_divergence(mu, logvar, &mut kl);
        weighted_sum(&z, &c) + kl_scale as f64 * kl.iter().map(|&k| k as f64).sum::<f64>()
    };
    let (mut z, mut std) = (Matrix::default(), Matrix::default());
    reparameterize(&mu, &logvar, &eps, &mut z, &mut std);
    let (mut dmu, mut dlogvar) = (Matrix::default(), Matrix::default());
    reparameterize_kl_backward(
        &mu,
        &logvar,
        &eps,
        &std,
        &c,
        &vec![kl_scale; cols],
        &mut dmu,
        &mut dlogvar,
    );
    assert_gradient("dmu", &mu.data, &dmu.data, |v| {
        loss(&Matrix::from_vec(rows, cols, v.to_vec()), &logvar)
    });
    assert_gradient("dlogvar", &logvar.data, &dlogvar.data, |v| {
        loss(&mu, &Matrix::from_vec(rows, cols, v.to_vec()))
    });
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    use super::loss::softmax_cross_entropy;
    let mut rng = rng();
    let logits = Matrix::standard_normal(3, 5, &mut rng);
    let labels = [4u8, 0, 2];
    let mut rows = vec![0.0; 3];
    let mut grad = Matrix::default();
    softmax_cross_entropy(&logits, &labels, &mut rows, Some((&mut grad, 1.0)));
    assert_gradient("softmax_ce", &logits.data, &grad.data, |s| {
        let mut rows = vec![0.0; 3];
        softmax_cross_entropy(&Matrix::from_vec(3, 5, s.to_vec()), &labels, &mut rows, None);
        rows.iter().map(|&r| r as f64).sum()
    });
    // Known value: uniform logits over 5 classes cost ln 5 whatever the label.
    let uniform = Matrix::zeros(1, 5);
    let mut row = [0.0];
    softmax_cross_entropy(&uniform, &[3], &mut row, None);
    assert!((row[0] - 5f32.ln()).abs() < 1e-6);
}

#[test]
fn sigmoid_gradient_matches_finite_differences() {
    let mut rng = rng();
    let x = Matrix::standard_normal(3, 4, &mut rng);
    let c = Matrix::standard_normal(3, 4, &mut rng);
    let mut y = Matrix::default();
    sigmoid_into(&x, &mut y);
    let mut grad = c.clone();
    sigmoid_backward(&y, &mut grad);
    assert_gradient("sigmoid", &x.data, &grad.data, |v| {
        let mut y = Matrix::default();
        sigmoid_into(&Matrix::from_vec(3, 4, v.to_vec()), &mut y);
        weighted_sum(&y, &c)
    });
    // Known values: σ(0) = ½, σ(±30) saturates without overflow.
    let mut y = Matrix::default();
    sigmoid_into(&Matrix::from_vec(1, 3, vec![0.0, 30.0, -30.0]), &mut y);
    assert_eq!(y.data[0], 0.5);
    assert!((y.data[1] - 1.0).abs() < 1e-6 && y.data[2] > 0.0 && y.data[2] < 1e-12);
}

fn conv_geometry(in_channels: usize, stride: usize, padding: usize) -> super::conv::ConvGeometry {
    super::conv::ConvGeometry {
        in_channels,
        out_channels: 3,
        kernel: 3,
        stride,
        padding,
        in_height: 5,
        in_width: 4,
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    use super::conv::Conv2d;
    // One input channel as the first layer of an image model has, whose gathers take a path
    // of their own, and two.
    for (in_channels, stride, padding) in [(2, 1, 0), (2, 2, 1), (2, 1, 1), (1, 2, 1)] {
        let g = conv_geometry(in_channels, stride, padding);
        let mut rng = rng();
        let mut conv = Conv2d::new(g, &mut rng);
        let x = Matrix::standard_normal(2, g.in_size(), &mut rng);
        let c = Matrix::standard_normal(2, g.out_size(), &mut rng);
        let (mut col, mut y, mut dcol, mut dx) = (
            Matrix::default(),
            Matrix::default(),
            Matrix::default(),
            Matrix::default(),
        );
        conv.forward(&x, &mut col, &mut y);
        assert_eq!(y.shape(), (2, g.out_size()));
        conv.backward(&col, &c, &mut dcol, GradInput::Write(&mut dx));
        // Adding onto an input that feeds two layers gives the same gradient on top.
        let mut both = Matrix::from_vec(dx.rows, dx.cols, vec![1.0; dx.data.len()]);
        conv.backward(&col, &c, &mut dcol, GradInput::Add(&mut both));
        for (sum, d) in both.data.iter().zip(&dx.data) {
            assert!((sum - 1.0 - d).abs() < 1e-5, "GradInput::Add: {sum} vs 1 + {d}");
        }
        let loss = |conv: &Conv2d, x: &Matrix| {
            let (mut col, mut y) = (Matrix::default(), Matrix::default());
            conv.forward(x, &mut col, &mut y);
            weighted_sum(&y, &c)
        };
        assert_gradient("conv dW", &conv.weight.value.data, &conv.weight.grad.data, |w| {
            let mut k = conv.clone();
            k.weight.value.data.copy_from_slice(w);
            loss(&k, &x)
        });
        assert_gradient("conv db", &conv.bias.value.data, &conv.bias.grad.data, |b| {
            let mut k = conv.clone();
            k.bias.value.data.copy_from_slice(b);
            loss(&k, &x)
        });
        assert_gradient("conv dx", &x.data, &dx.data, |v| {
            loss(&conv, &Matrix::from_vec(2, g.in_size(), v.to_vec()))
        });
    }
}

#[test]
fn conv2d_matches_a_direct_convolution_on_known_values() {
    use super::conv::{Conv2d, ConvGeometry};
    // One channel, a 3x3 image 1..9, a 2x2 kernel of ones, stride 1, no padding: each output
    // is the sum of a 2x2 window: [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12, 16], [24, 28]].
    let g = ConvGeometry {
        in_channels: 1,
        out_channels: 1,
        kernel: 2,
        stride: 1,
        padding: 0,
        in_height: 3,
        in_width: 3,
    };
    let mut conv = Conv2d::new(g, &mut rng());
    conv.weight.value.data.fill(1.0);
    conv.bias.value.data[0] = 0.5;
    let x = Matrix::from_vec(1, 9, (1..=9).map(|v| v as f32).collect());
    let (mut col, mut y) = (Matrix::default(), Matrix::default());
    conv.forward(&x, &mut col, &mut y);
    assert_eq!(y.data, vec![12.5, 16.5, 24.5, 28.5]);
    // With padding 1 and stride 2 the output is 2x2 too, its top-left window holding only x[0,0].
    let g = ConvGeometry {
        padding: 1,
        stride: 2,
        ..g
    };
    let mut conv = Conv2d::new(g, &mut rng());
    conv.weight.value.data.fill(1.0);
    conv.bias.value.data[0] = 0.0;
    conv.forward(&x, &mut col, &mut y);
    assert_eq!(y.data, vec![1.0, 2.0 + 3.0, 4.0 + 7.0, 5.0 + 6.0 + 8.0 + 9.0]);
}

#[test]
fn conv_transpose_gradients_match_finite_differences() {
    use super::conv::{ConvTranspose2d, ConvTransposeGeometry};
    // One output channel as the last layer of a grey-image model has, and three.
    for (out_channels, stride, padding, output_padding) in
        [(3, 1, 0, 0), (3, 2, 1, 1), (3, 2, 0, 1), (3, 2, 1, 0), (1, 2, 1, 1)]
    {
        let g = ConvTransposeGeometry {
            in_channels: 2,
            out_channels,
            kernel: 3,
            stride,
            padding,
            output_padding,
            in_height: 3,
            in_width: 2,
        };
        let mut rng = rng();
        let mut layer = ConvTranspose2d::new(g, &mut rng);
        let x = Matrix::standard_normal(2, g.in_size(), &mut rng);
        let c = Matrix::standard_normal(2, g.out_size(), &mut rng);
        let (mut cols, mut y, mut dcols, mut dx) = (
            Matrix::default(),
            Matrix::default(),
            Matrix::default(),
            Matrix::default(),
        );
        layer.forward(&x, &mut cols, &mut y);
        assert_eq!(y.shape(), (2, g.out_size()));
        layer.backward(&x, &c, &mut dcols, GradInput::Write(&mut dx));
        // Adding onto an input that feeds two layers gives the same gradient on top.
        let mut both = Matrix::from_vec(dx.rows, dx.cols, vec![1.0; dx.data.len()]);
        layer.backward(&x, &c, &mut dcols, GradInput::Add(&mut both));
        assert_eq!(both.shape(), dx.shape());
        for (sum, d) in both.data.iter().zip(&dx.data) {
            assert!((sum - 1.0 - d).abs() < 1e-5, "GradInput::Add: {sum} vs 1 + {d}");
        }
        let loss = |l: &ConvTranspose2d, x: &Matrix| {
            let (mut cols, mut y) = (Matrix::default(), Matrix::default());
            l.forward(x, &mut cols, &mut y);
            weighted_sum(&y, &c)
        };
        assert_gradient("convT dW", &layer.weight.value.data, &layer.weight.grad.data, |w| {
            let mut k = layer.clone();
            k.weight.value.data.copy_from_slice(w);
            loss(&k, &x)
        });
        assert_gradient("convT db", &layer.bias.value.data, &layer.bias.grad.data, |b| {
            let mut k = layer.clone();
            k.bias.value.data.copy_from_slice(b);
            loss(&k, &x)
        });
        assert_gradient("convT dx", &x.data, &dx.data, |v| {
            loss(&layer, &Matrix::from_vec(2, g.in_size(), v.to_vec()))
        });
    }
}

#[test]
fn conv_transpose_is_the_adjoint_of_conv() {
    // <conv(x), y> = <x, convT(y)> for the same kernel and no bias: the defining property.
    use super::conv::{Conv2d, ConvTranspose2d, ConvTransposeGeometry};
    let t = ConvTransposeGeometry {
        in_channels: 4,
        out_channels: 2,
        kernel: 3,
        stride: 2,
        padding: 1,
        output_padding: 1,
        in_height: 4,
        in_width: 4,
    };
    // The Keras-style decoder step: 4x4 maps to 8x8, which a stride-2 conv maps back to 4x4.
    assert_eq!((t.out_height(), t.out_width()), (8, 8));
    let mut rng = rng();
    let mut convt = ConvTranspose2d::new(t, &mut rng);
    let mut conv = Conv2d::new(t.adjoint(), &mut rng);
    conv.weight.value = convt.weight.value.clone();
    conv.bias.value.data.fill(0.0);
    convt.bias.value.data.fill(0.0);
    let x = Matrix::standard_normal(1, t.adjoint().in_size(), &mut rng);
    let y = Matrix::standard_normal(1, t.in_size(), &mut rng);
    let (mut col, mut cx, mut ty) = (Matrix::default(), Matrix::default(), Matrix::default());
    conv.forward(&x, &mut col, &mut cx);
    convt.forward(&y, &mut col, &mut ty);
    let left: f64 = cx.data.iter().zip(&y.data).map(|(&a, &b)| a as f64 * b as f64).sum();
    let right: f64 = x.data.iter().zip(&ty.data).map(|(&a, &b)| a as f64 * b as f64).sum();
    assert!((left - right).abs() < 1e-4 * left.abs().max(1.0), "{left} vs {right}");
}
