//! Accuracy predictors trained from `(genotype, accuracy)` samples (ndarray): a
//! once-for-all-style MLP on one-hot encodings and a random forest of regression trees on the
//! choice indices. Both are [`AccuracySource`]s, so they plug into
//! [`crate::HardwareProblem`] in place of training every candidate.

use dynas_space::{DynasRng, Genotype, Network, SearchSpace, seeded_rng};
use ndarray::{Array1, Array2, Axis};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::problem::AccuracySource;

/// One-hot encoding of genotypes: one block per dimension, one column per choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneHot {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    width: usize,
}

impl OneHot {
    /// The encoding of `space`.
    pub fn new(space: &dyn SearchSpace) -> Self {
        let sizes: Vec<usize> = space.dimensions().iter().map(|d| d.len()).collect();
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut width = 0;
        for s in &sizes {
            offsets.push(width);
            width += s;
        }
        Self {
            sizes,
            offsets,
            width,
        }
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.width
    }

    fn check(&self, g: &Genotype) -> Result<()> {
        if g.len() != self.sizes.len() {
            return Err(SearchError::invalid(
                "genotype",
                format!(
                    "{} genes, the encoder expects {}",
                    g.len(),
                    self.sizes.len()
                ),
            ));
        }
        if let Some((i, (&v, &s))) = g
            .genes()
            .iter()
            .zip(&self.sizes)
            .enumerate()
            .find(|(_, (v, s))| v >= s)
        {
            return Err(SearchError::invalid(
                "genotype",
                format!("gene {i} = {v} but the dimension has {s} choices"),
            ));
        }
        Ok(())
    }

    /// The rows of `genotypes`.
    pub fn encode(&self, genotypes: &[Genotype]) -> Result<Array2<f64>> {
        let mut x = Array2::zeros((genotypes.len(), self.width));
        for (r, g) in genotypes.iter().enumerate() {
            self.check(g)?;
            for (k, &v) in g.genes().iter().enumerate() {
                x[[r, self.offsets[k] + v]] = 1.0;
            }
        }
        Ok(x)
    }
}

fn check_samples(samples: &[(Genotype, f64)]) -> Result<()> {
    if samples.len() < 2 {
        return Err(SearchError::invalid("samples", "at least two are needed"));
    }
    if let Some((g, y)) = samples.iter().find(|(_, y)| !y.is_finite()) {
        return Err(SearchError::invalid(
            "samples",
            format!("accuracy of `{g}` is {y}"),
        ));
    }
    Ok(())
}

/// Hyper-parameters of [`MlpPredictor`] (defaults: OFA's predictor, 3 x 400 ReLU units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Passes over the samples.
    pub epochs: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl Default for MlpConfig {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Dense {
    w: Array2<f64>,
    b: Array1<f64>,
}

/// An MLP regressor on one-hot encodings, trained with Adam on the mean squared error of
/// standardised accuracies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpPredictor {
    encoder: OneHot,
    layers: Vec<Dense>,
    mean: f64,
    std: f64,
}

impl MlpPredictor {
    /// Trains a predictor for genotypes of `space`.
    pub fn fit(
        space: &dyn SearchSpace,
        samples: &[(Genotype, f64)],
        config: &MlpConfig,
    ) -> Result<Self> {
        check_samples(samples)?;
        if config.epochs == 0 || config.batch_size == 0 || config.hidden.contains(&0) {
            return Err(SearchError::invalid(
                "mlp config",
                "epochs, batch size and widths must be positive",
            ));
        }
        if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
            return Err(SearchError::invalid("learning rate", "must be positive"));
        }
        let encoder = OneHot::new(space);
        let genotypes: Vec<Genotype> = samples.iter().map(|(g, _)| g.clone()).collect();
        let x = encoder.encode(&genotypes)?;
        let ys: Vec<f64> = samples.iter().map(|(_, y)| *y).collect();
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let std = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64)
            .sqrt()
            .max(1e-12);
        let y = Array1::from_iter(ys.iter().map(|v| (v - mean) / std));
        let mut rng = seeded_rng(config.seed);
        let mut widths = vec![encoder.width()];
        widths.extend(&config.hidden);
        widths.push(1);
        let mut layers: Vec<Dense> = Vec::with_capacity(widths.len() - 1);
        for w in widths.windows(2) {
            // He initialisation.
            let normal = Normal::new(0.0, (2.0 / w[0] as f64).sqrt())
                .map_err(|e| SearchError::invalid("initialisation", e.to_string()))?;
            layers.push(Dense {
                w: Array2::from_shape_fn((w[0], w[1]), |_| normal.sample(&mut rng)),
                b: Array1::zeros(w[1]),
            });
        }
        let mut m: Vec<Dense> = layers.iter().map(zeros_like).collect();
        let mut v: Vec<Dense> = layers.iter().map(zeros_like).collect();
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let mut t = 0i32;
        let mut order: Vec<usize> = (0..samples.len()).collect();
        for _ in 0..config.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(config.batch_size) {
                let xb = x.select(Axis(0), chunk);
                let yb = y.select(Axis(0), chunk);
                let grads = backprop(&layers, &xb, &yb);
                t += 1;
                let lr = config.learning_rate * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
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
        Ok(Self {
            encoder,
            layers,
            mean,
            std,
        })
    }

    /// Predicted accuracies of `genotypes`.
    pub fn predict(&self, genotypes: &[Genotype]) -> Result<Vec<f64>> {
        let x = self.encoder.encode(genotypes)?;
        let out = forward(&self.layers, &x).pop().unwrap_or_else(|| x.clone());
        Ok(out
            .column(0)
            .iter()
            .map(|v| v * self.std + self.mean)
            .collect())
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

impl AccuracySource for MlpPredictor {
    fn name(&self) -> &str {
        "mlp-predictor"
    }
    fn accuracy(&self, genotype: &Genotype, _network: &Network) -> Result<f64> {
        Ok(self.predict(std::slice::from_ref(genotype))?[0])
    }
}

/// Hyper-parameters of [`ForestPredictor`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Number of trees.
    pub trees: usize,
    /// Maximum depth of a tree.
    pub max_depth: usize,
    /// Minimum samples in a leaf.
    pub min_leaf: usize,
    /// Fraction of genes tried at each split (random-forest feature bagging).
    pub feature_fraction: f64,
    /// Seed of the bootstrap and feature draws.
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        Self {
            trees: 100,
            max_depth: 12,
            min_leaf: 2,
            feature_fraction: 0.7,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Leaf(f64),
    /// Go left when gene `gene` <= `value` (or == `value` when `equal`).
    Split {
        gene: usize,
        value: usize,
        equal: bool,
        left: usize,
        right: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
}

fn goes_left(gene: usize, value: usize, equal: bool) -> bool {
    if equal { gene == value } else { gene <= value }
}

impl Tree {
    fn predict(&self, genes: &[usize]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf(v) => return v,
                Node::Split {
                    gene,
                    value,
                    equal,
                    left,
                    right,
                } => {
                    i = if goes_left(genes[gene], value, equal) {
                        left
                    } else {
                        right
                    }
                }
            }
        }
    }
}

/// A random forest of regression trees splitting on `gene <= value` (choices are ordered from
/// small to large networks in most dynas spaces) or `gene == value` (unordered choices).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestPredictor {
    sizes: Vec<usize>,
    trees: Vec<Tree>,
}

struct Builder<'a> {
    x: &'a [Vec<usize>],
    y: &'a [f64],
    sizes: &'a [usize],
    config: &'a ForestConfig,
}

impl Builder<'_> {
    fn build(
        &self,
        idx: Vec<usize>,
        depth: usize,
        nodes: &mut Vec<Node>,
        rng: &mut DynasRng,
    ) -> usize {
        let mean = idx.iter().map(|&i| self.y[i]).sum::<f64>() / idx.len() as f64;
        let at = nodes.len();
        nodes.push(Node::Leaf(mean));
        if depth >= self.config.max_depth || idx.len() < 2 * self.config.min_leaf {
            return at;
        }
        let n_genes = self.sizes.len();
        let k = ((self.config.feature_fraction * n_genes as f64).ceil() as usize).clamp(1, n_genes);
        let mut genes: Vec<usize> = (0..n_genes).collect();
        genes.shuffle(rng);
        genes.truncate(k);
        genes.sort_unstable();
        let total: f64 = idx.iter().map(|&i| self.y[i]).sum();
        let total_sq: f64 = idx.iter().map(|&i| self.y[i] * self.y[i]).sum();
        let n = idx.len() as f64;
        let parent_sse = total_sq - total * total / n;
        let mut best: Option<(f64, usize, usize, bool)> = None;
        for &g in &genes {
            let c = self.sizes[g];
            let mut sum = vec![0.0; c];
            let mut sq = vec![0.0; c];
            let mut cnt = vec![0usize; c];
            for &i in &idx {
                let v = self.x[i][g];
                sum[v] += self.y[i];
                sq[v] += self.y[i] * self.y[i];
                cnt[v] += 1;
            }
            let mut consider = |ls: f64, lq: f64, lc: usize, t: usize, equal: bool| {
                let rc = idx.len() - lc;
                if lc < self.config.min_leaf || rc < self.config.min_leaf {
                    return;
                }
                let sse = (lq - ls * ls / lc as f64)
                    + ((total_sq - lq) - (total - ls) * (total - ls) / rc as f64);
                if best.is_none_or(|b| sse < b.0) {
                    best = Some((sse, g, t, equal));
                }
            };
            // Ordered splits (gene <= t) and one-vs-rest splits (gene == t) for unordered choices.
            let (mut ls, mut lq, mut lc) = (0.0, 0.0, 0usize);
            for t in 0..c {
                if t + 1 < c {
                    ls += sum[t];
                    lq += sq[t];
                    lc += cnt[t];
                    consider(ls, lq, lc, t, false);
                }
                if c > 2 {
                    consider(sum[t], sq[t], cnt[t], t, true);
                }
            }
        }
        let Some((sse, gene, value, equal)) = best else {
            return at;
        };
        if sse >= parent_sse - 1e-12 {
            return at;
        }
        let (l, r): (Vec<usize>, Vec<usize>) = idx
            .iter()
            .partition(|&&i| goes_left(self.x[i][gene], value, equal));
        let left = self.build(l, depth + 1, nodes, rng);
        let right = self.build(r, depth + 1, nodes, rng);
        nodes[at] = Node::Split {
            gene,
            value,
            equal,
            left,
            right,
        };
        at
    }
}

impl ForestPredictor {
    /// Trains a forest for genotypes of `space`.
    pub fn fit(
        space: &dyn SearchSpace,
        samples: &[(Genotype, f64)],
        config: &ForestConfig,
    ) -> Result<Self> {
        check_samples(samples)?;
        if config.trees == 0 || config.max_depth == 0 || config.min_leaf == 0 {
            return Err(SearchError::invalid(
                "forest config",
                "trees, depth and leaf size must be positive",
            ));
        }
        if !(config.feature_fraction > 0.0 && config.feature_fraction <= 1.0) {
            return Err(SearchError::invalid(
                "feature fraction",
                "must be in (0, 1]",
            ));
        }
        let encoder = OneHot::new(space);
        for (g, _) in samples {
            encoder.check(g)?;
        }
        let x: Vec<Vec<usize>> = samples.iter().map(|(g, _)| g.genes().to_vec()).collect();
        let y: Vec<f64> = samples.iter().map(|(_, y)| *y).collect();
        let builder = Builder {
            x: &x,
            y: &y,
            sizes: &encoder.sizes,
            config,
        };
        let mut rng = seeded_rng(config.seed);
        let trees = (0..config.trees)
            .map(|_| {
                let idx: Vec<usize> = (0..samples.len())
                    .map(|_| rng.random_range(0..samples.len()))
                    .collect();
                let mut nodes = Vec::new();
                builder.build(idx, 0, &mut nodes, &mut rng);
                Tree { nodes }
            })
            .collect();
        Ok(Self {
            sizes: encoder.sizes,
            trees,
        })
    }

    /// Predicted accuracies of `genotypes` (mean over trees).
    pub fn predict(&self, genotypes: &[Genotype]) -> Result<Vec<f64>> {
        genotypes
            .iter()
            .map(|g| {
                if g.len() != self.sizes.len()
                    || g.genes().iter().zip(&self.sizes).any(|(v, s)| v >= s)
                {
                    return Err(SearchError::invalid(
                        "genotype",
                        format!("`{g}` does not fit the trained space"),
                    ));
                }
                Ok(self.trees.iter().map(|t| t.predict(g.genes())).sum::<f64>()
                    / self.trees.len() as f64)
            })
            .collect()
    }
}

impl AccuracySource for ForestPredictor {
    fn name(&self) -> &str {
        "forest-predictor"
    }
    fn accuracy(&self, genotype: &Genotype, _network: &Network) -> Result<f64> {
        Ok(self.predict(std::slice::from_ref(genotype))?[0])
    }
}

/// Kendall's tau-b rank correlation between predictions and truths.
pub fn kendall_tau(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..n {
        for j in (i + 1)..n {
            let da = a[i] - a[j];
            let db = b[i] - b[j];
            if da == 0.0 && db == 0.0 {
                continue;
            } else if da == 0.0 {
                ties_a += 1.0;
            } else if db == 0.0 {
                ties_b += 1.0;
            } else if (da > 0.0) == (db > 0.0) {
                concordant += 1.0;
            } else {
                discordant += 1.0;
            }
        }
    }
    let denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)).sqrt();
    if denom == 0.0 {
        0.0
    } else {
        (concordant - discordant) / denom
    }
}
