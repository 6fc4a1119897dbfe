//! A small multi-layer perceptron regressor (ReLU, Adam on the mean squared error of
//! standardised targets): OFA's accuracy predictor, in the learner family.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::Regressor;
use crate::error::{CostError, Result};

/// Hyper-parameters of [`Mlp`] (defaults: OFA's predictor, 3 x 400 ReLU units); checked by
/// [`MlpParams::check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpParams {
    /// Hidden layer widths (each ≥ 1).
    pub hidden: Vec<usize>,
    /// Passes over the samples (≥ 1).
    pub epochs: usize,
    /// Adam learning rate (> 0).
    pub learning_rate: f64,
    /// Mini-batch size (≥ 1).
    pub batch_size: usize,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl Default for MlpParams {
    fn default() -> Self {
        Self {
            hidden: vec![400, 400, 400],
            epochs: 200,
            learning_rate: 1e-3,
            batch_size: 256,
            seed: 0,
        }
    }
}

impl MlpParams {
    /// The parameters if every field is in range, or an error naming the field.
    pub fn check(&self) -> Result<&Self> {
        let bad = |name: &str, reason: &str| {
            Err(CostError::InvalidParameter {
                name: name.to_string(),
                reason: reason.to_string(),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.hidden.contains(&0) {
            return bad("hidden", "widths must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be positive and finite");
        }
        Ok(self)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Dense {
    w: Array2<f64>,
    b: Array1<f64>,
}

/// A fitted MLP regressor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    layers: Vec<Dense>,
    mean: f64,
    std: f64,
}

impl Mlp {
    /// Fits `y ≈ f(x)` on the rows of `x` (targets standardised inside).
    pub fn fit(x: &Array2<f64>, ys: &[f64], params: &MlpParams) -> Result<Self> {
        params.check()?;
        let (n, p) = x.dim();
        if n != ys.len() || n == 0 || p == 0 {
            return Err(CostError::Fit {
                model: "mlp".to_string(),
                reason: format!("{n} rows of {p} features but {} targets", ys.len()),
            });
        }
        if x.iter().chain(ys).any(|v| !v.is_finite()) {
            return Err(CostError::Fit {
                model: "mlp".to_string(),
                reason: "non-finite feature or target".to_string(),
            });
        }
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let std = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64)
            .sqrt()
            .max(1e-12);
        let y = Array1::from_iter(ys.iter().map(|v| (v - mean) / std));
        let mut rng = dynas_space::seeded_rng(params.seed);
        let mut widths = vec![p];
        widths.extend(&params.hidden);
        widths.push(1);
        let mut layers: Vec<Dense> = Vec::with_capacity(widths.len() - 1);
        for w in widths.windows(2) {
            // He initialisation.
            let normal =
                Normal::new(0.0, (2.0 / w[0] as f64).sqrt()).map_err(|e| CostError::Fit {
                    model: "mlp".to_string(),
                    reason: e.to_string(),
                })?;
            layers.push(Dense {
                w: Array2::from_shape_fn((w[0], w[1]), |_| normal.sample(&mut rng)),
                b: Array1::zeros(w[1]),
            });
        }
        let mut m: Vec<Dense> = layers.iter().map(zeros_like).collect();
        let mut v: Vec<Dense> = layers.iter().map(zeros_like).collect();
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let mut t = 0i32;
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..params.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(params.batch_size) {
                let xb = x.select(Axis(0), chunk);
                let yb = y.select(Axis(0), chunk);
                let grads = backprop(&layers, &xb, &yb);
                t += 1;
                let lr = params.learning_rate * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                for ((layer, g), (mi, vi)) in layers
                    .iter_mut()
                    .zip(&grads)
                    .zip(m.iter_mut().zip(v.iter_mut()))
                {
                    mi.w.zip_mut_with(&g.w, |a, &d| *a = b1 * *a + (1.0 - b1) * d);
                    vi.w.zip_mut_with(&g.w, |a, &d| *a = b2 * *a + (1.0 - b2) * d * d);
                    mi.b.zip_mut_with(&g.b, |a, &d| *a = b1 * *a + (1.0 - b1) * d);
                    vi.b.zip_mut_with(&g.b, |a, &d| *a = b2 * *a + (1.0 - b2) * d * d);
                    ndarray::Zip::from(&mut layer.w)
                        .and(&mi.w)
                        .and(&vi.w)
                        .for_each(|p, &a, &b| {
                            *p -= lr * a / (b.sqrt() + eps);
                        });
                    ndarray::Zip::from(&mut layer.b)
                        .and(&mi.b)
                        .and(&vi.b)
                        .for_each(|p, &a, &b| {
                            *p -= lr * a / (b.sqrt() + eps);
                        });
                }
            }
        }
        Ok(Self { layers, mean, std })
    }
}

impl Regressor for Mlp {
    fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.w.nrows())
    }

    fn predict_row(&self, x: ArrayView1<'_, f64>) -> f64 {
        self.predict(&x.insert_axis(Axis(0)).to_owned())[0]
    }

    fn predict(&self, x: &Array2<f64>) -> Vec<f64> {
        let out = forward(&self.layers, x).pop().unwrap_or_else(|| x.clone());
        out.column(0)
            .iter()
            .map(|v| v * self.std + self.mean)
            .collect()
    }
}

fn zeros_like(d: &Dense) -> Dense {
    Dense {
        w: Array2::zeros(d.w.raw_dim()),
        b: Array1::zeros(d.b.raw_dim()),
    }
}

/// Activations of every layer (input first, output last; ReLU on hidden layers).
fn forward(layers: &[Dense], x: &Array2<f64>) -> Vec<Array2<f64>> {
    let mut acts = vec![x.clone()];
    for (i, l) in layers.iter().enumerate() {
        let mut z = acts[acts.len() - 1].dot(&l.w) + &l.b;
        if i + 1 < layers.len() {
            z.mapv_inplace(|v| v.max(0.0));
        }
        acts.push(z);
    }
    acts
}

fn backprop(layers: &[Dense], x: &Array2<f64>, y: &Array1<f64>) -> Vec<Dense> {
    let acts = forward(layers, x);
    let n = x.nrows() as f64;
    let out = &acts[acts.len() - 1];
    // d(MSE)/d(out)
    let mut delta: Array2<f64> = (out - &y.view().insert_axis(Axis(1))).mapv(|d| 2.0 * d / n);
    let mut grads: Vec<Dense> = Vec::with_capacity(layers.len());
    for i in (0..layers.len()).rev() {
        let a_prev = &acts[i];
        let gw = a_prev.t().dot(&delta);
        let gb = delta.sum_axis(Axis(0));
        if i > 0 {
            let mut d = delta.dot(&layers[i].w.t());
            d.zip_mut_with(a_prev, |g, &a| {
                if a <= 0.0 {
                    *g = 0.0;
                }
            });
            delta = d;
        }
        grads.push(Dense { w: gw, b: gb });
    }
    grads.reverse();
    grads
}
