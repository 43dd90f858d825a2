//! The diagonal Gaussian posterior `q(z|x) = N(μ, diag σ²)` with `σ = exp(½·logvar)`: the
//! reparameterized draw and its KL divergence from the prior `N(0, I)`, both with backward,
//! and the backward pass of a KL term taken at the drawn code (any prior).

use super::matrix::Matrix;

/// `z = μ + σ ⊙ ε` with `σ = exp(½·logvar)`. Writes `σ` too: the backward pass needs it.
///
/// # Shapes
/// `mu`, `logvar`, `eps`: batch x latent; `z`, `std`: the same (reshaped).
pub fn reparameterize(mu: &Matrix, logvar: &Matrix, eps: &Matrix, z: &mut Matrix, std: &mut Matrix) {
    assert_eq!(
        mu.shape(),
        logvar.shape(),
        "reparameterize: mu and logvar differ in shape"
    );
    assert_eq!(mu.shape(), eps.shape(), "reparameterize: mu and eps differ in shape");
    z.reshape_for_overwrite(mu.rows, mu.cols);
    std.reshape_for_overwrite(mu.rows, mu.cols);
    for i in 0..mu.data.len() {
        let s = (0.5 * logvar.data[i]).exp();
        std.data[i] = s;
        z.data[i] = mu.data[i] + s * eps.data[i];
    }
}

/// `KL[N(μ, σ²) || N(0, I)] = -½ Σ_j (1 + logvar_j - μ_j² - exp(logvar_j))` for each row
/// (Kingma & Welling 2014, appendix B), into `row_kl`.
pub fn kl_divergence(mu: &Matrix, logvar: &Matrix, row_kl: &mut [f32]) {
    assert_eq!(
        mu.shape(),
        logvar.shape(),
        "kl_divergence: mu and logvar differ in shape"
    );
    assert_eq!(row_kl.len(), mu.rows, "kl_divergence: one value per row");
    for (r, out) in row_kl.iter_mut().enumerate() {
        let (m, lv) = (mu.row(r), logvar.row(r));
        *out = -0.5
            * m.iter()
                .zip(lv)
                .map(|(&m, &lv)| 1.0 + lv - m * m - lv.exp())
                .sum::<f32>();
    }
}

/// Backward through the draw and the KL term together, for the loss
/// `L = f(z) + Σ_j kl_scale_j · Σ_rows KL_j` (a weight per latent dimension, so free bits can
/// switch a dimension's KL off), given `dz = ∂f/∂z`:
///
///   `∂L/∂μ      = dz + kl_scale_j · μ`
///   `∂L/∂logvar = dz ⊙ ε ⊙ ½σ + kl_scale_j · ½(exp(logvar) - 1)`
///
/// # Shapes
/// All batch x latent; `kl_scale`: latent; `dmu`, `dlogvar` reshaped.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_kl_backward(
    mu: &Matrix,
    logvar: &Matrix,
    eps: &Matrix,
    std: &Matrix,
    dz: &Matrix,
    kl_scale: &[f32],
    dmu: &mut Matrix,
    dlogvar: &mut Matrix,
) {
    assert_eq!(
        dz.shape(),
        mu.shape(),
        "reparameterize_kl_backward: dz has the wrong shape"
    );
    assert_eq!(
        kl_scale.len(),
        mu.cols,
        "reparameterize_kl_backward: one KL weight per dimension"
    );
    dmu.reshape_for_overwrite(mu.rows, mu.cols);
    dlogvar.reshape_for_overwrite(mu.rows, mu.cols);
    for i in 0..mu.data.len() {
        let scale = kl_scale[i % mu.cols];
        dmu.data[i] = dz.data[i] + scale * mu.data[i];
        dlogvar.data[i] = dz.data[i] * eps.data[i] * 0.5 * std.data[i] + scale * 0.5 * (logvar.data[i].exp() - 1.0);
    }
}

/// `log p(z) - log q(z|x)` of one draw `z = μ + σ ⊙ ε` from the diagonal Gaussian posterior,
/// under the standard normal prior: with `log q(z|x) = -½ Σ_j (ε_j² + logvar_j + log 2π)` and
/// `log p(z) = -½ Σ_j (z_j² + log 2π)`,
///
///   `log p(z) - log q(z|x) = -½ Σ_j (z_j² - ε_j² - logvar_j)`   (the 2π terms cancel).
///
/// The part of an importance weight `log w = log p(x|z) + log p(z) - log q(z|x)` that does
/// not depend on the decoder.
pub fn log_prior_ratio(z: &[f32], eps: &[f32], logvar: &[f32]) -> f64 {
    -0.5 * z
        .iter()
        .zip(eps)
        .zip(logvar)
        .map(|((&z, &e), &lv)| (z * z - e * e - lv) as f64)
        .sum::<f64>()
}

/// The batch mean of each latent dimension's KL term, `KL̄_j = -½ mean_rows(1 + logvar - μ² - e^logvar)`.
pub fn kl_per_dimension(mu: &Matrix, logvar: &Matrix) -> Vec<f64> {
    let mut out = vec![0.0f64; mu.cols];
    for (m, lv) in mu
        .data
        .chunks_exact(mu.cols.max(1))
        .zip(logvar.data.chunks_exact(mu.cols.max(1)))
    {
        for ((o, &m), &lv) in out.iter_mut().zip(m).zip(lv) {
            *o += -0.5 * (1.0 + lv - m * m - lv.exp()) as f64;
        }
    }
    for o in &mut out {
        *o /= mu.rows.max(1) as f64;
    }
    out
}

/// Backward through the draw when the KL term is taken at the sampled `z` (the
/// importance-weighted bound, and the ELBO under a learned prior), for the loss
/// `L = f(z) + Σ_r w_r (log q(z_r|x_r) - log p(z_r))` with ε held fixed, given `dz = ∂f/∂z`
/// and `dz_prior = ∂/∂z Σ_r w_r (-log p(z_r))`. `log q(z|x) = -½ Σ_j (ε_j² + logvar_j + log 2π)`
/// depends on μ not at all and on each `logvar_j` as `-½`:
///
///   `∂L/∂μ      = dz + dz_prior`,
///   `∂L/∂logvar = (dz + dz_prior) ⊙ ε ⊙ ½σ - ½ w_r`.
///
/// # Shapes
/// `eps`, `std`, `dz`, `dz_prior`: rows x latent; `row_weight`: rows; `dmu`, `dlogvar`
/// reshaped.
pub fn reparameterize_sampled_backward(
    eps: &Matrix,
    std: &Matrix,
    dz: &Matrix,
    dz_prior: &Matrix,
    row_weight: &[f32],
    dmu: &mut Matrix,
    dlogvar: &mut Matrix,
) {
    assert_eq!(
        dz.shape(),
        eps.shape(),
        "reparameterize_sampled_backward: dz has the wrong shape"
    );
    assert_eq!(
        dz_prior.shape(),
        eps.shape(),
        "reparameterize_sampled_backward: dz_prior has the wrong shape"
    );
    assert_eq!(
        row_weight.len(),
        eps.rows,
        "reparameterize_sampled_backward: one weight per row"
    );
    dmu.reshape_for_overwrite(eps.rows, eps.cols);
    dlogvar.reshape_for_overwrite(eps.rows, eps.cols);
    for i in 0..eps.data.len() {
        let w = row_weight[i / eps.cols.max(1)];
        let dzi = dz.data[i] + dz_prior.data[i];
        dmu.data[i] = dzi;
        dlogvar.data[i] = dzi * eps.data[i] * 0.5 * std.data[i] - 0.5 * w;
    }
}

/// The inverse of the standard normal distribution function, `Φ⁻¹(p)` for `p` in (0, 1).
///
/// Acklam's rational approximation, relative error below 1.2e-9: more than enough for
/// placing grid lines.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.696_830_286_653_76,
        220.946_098_424_520_5,
        -275.928_510_446_968_7,
        138.357_751_867_269,
        -30.664_798_066_147_16,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -54.476_098_798_224_06,
        161.585_836_858_040_9,
        -155.698_979_859_886_6,
        66.801_311_887_719_72,
        -13.280_681_552_885_72,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -0.322_396_458_041_136_5,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        0.322_467_129_070_039_8,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kl_of_each_dimension_is_known_and_sums_to_the_kl_of_each_row() {
        // Two rows: μ = (1, 0), logvar = (0, ln 2) and μ = (0, 2), logvar = (0, 0).
        // KL = -½ (1 + logvar - μ² - e^logvar) per value: 0.5, ½(1 - ln 2) and 0, 2.
        let mu = Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, 2.0]);
        let logvar = Matrix::from_vec(2, 2, vec![0.0, 2f32.ln(), 0.0, 0.0]);
        let per_dim = kl_per_dimension(&mu, &logvar);
        let expected = [0.25, (0.5 * (1.0 - 2f64.ln()) + 2.0) / 2.0];
        for (got, want) in per_dim.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{per_dim:?} vs {expected:?}");
        }
        let mut rows = [0.0f32; 2];
        kl_divergence(&mu, &logvar, &mut rows);
        let row_mean = (rows[0] + rows[1]) as f64 / 2.0;
        assert!((per_dim.iter().sum::<f64>() - row_mean).abs() < 1e-6, "{rows:?}");
    }
}
