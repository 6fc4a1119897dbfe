//! One regression tree learner for the family: exact splits over pre-sorted features, grown
//! level-wise with L2-regularised leaves and row weights. Boosting ([`super::Gbdt`]) and
//! bagging ([`super::RandomForest`]) both grow their trees here.

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

/// Shape limits of one tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TreeParams {
    /// Maximum depth.
    pub max_depth: usize,
    /// Minimum rows in a leaf.
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (0: leaves are weighted means).
    pub lambda: f64,
    /// Whether leaf sizes count row weights (bootstrap draws) instead of distinct rows.
    pub size_by_weight: bool,
}

/// Row indices sorted by each feature, computed once per fit.
pub(crate) fn presort(x: &Array2<f64>) -> Vec<Vec<usize>> {
    (0..x.ncols())
        .map(|j| {
            let mut idx: Vec<usize> = (0..x.nrows()).collect();
            idx.sort_by(|&a, &b| x[[a, j]].total_cmp(&x[[b, j]]));
            idx
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    pub(crate) fn predict(&self, x: ArrayView1<'_, f64>) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes.get(i) {
                Some(Node::Leaf(v)) => return *v,
                Some(Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                }) => {
                    i = if x[*feature] <= *threshold {
                        *left
                    } else {
                        *right
                    };
                }
                None => return 0.0,
            }
        }
    }
}

/// Grows one tree level-wise on the rows flagged `in_tree`, for residuals `g` with row
/// weights `wt` (leaf value `Σ w g / (Σ w + λ)`, split gain from the same sums).
#[allow(clippy::needless_range_loop)] // per-node slots indexed in parallel arrays
pub(crate) fn grow(
    x: &Array2<f64>,
    g: &[f64],
    wt: &[f64],
    in_tree: &[bool],
    sorted: &[Vec<usize>],
    cols_for_level: &mut dyn FnMut() -> Vec<usize>,
    params: &TreeParams,
) -> Tree {
    let n = g.len();
    let lambda = params.lambda;
    let leaf = |s: f64, w: f64| s / (w + lambda);
    let gain = |s: f64, w: f64| s * s / (w + lambda);
    let size = |st: &Stats| {
        if params.size_by_weight {
            st.w
        } else {
            st.n as f64
        }
    };
    let min_leaf = params.min_samples_leaf as f64;
    // Node of each row (usize::MAX: not in the tree, or in a finished leaf).
    let mut node_of: Vec<usize> = (0..n)
        .map(|i| if in_tree[i] { 0 } else { usize::MAX })
        .collect();
    let mut root = Stats::default();
    for i in 0..n {
        if in_tree[i] {
            root.add(wt[i] * g[i], wt[i]);
        }
    }
    let mut nodes = vec![Node::Leaf(leaf(root.s, root.w))];
    // Open nodes at this level: (node id, sums).
    let mut open: Vec<(usize, Stats)> = vec![(0, root)];
    for _depth in 0..params.max_depth {
        if open.is_empty() {
            break;
        }
        let mut slot = vec![usize::MAX; nodes.len()];
        for (k, &(id, _)) in open.iter().enumerate() {
            slot[id] = k;
        }
        let mut best: Vec<Option<(f64, usize, f64)>> = vec![None; open.len()];
        let mut left = vec![Stats::default(); open.len()];
        let mut last_val = vec![f64::NAN; open.len()];
        for j in cols_for_level() {
            left.iter_mut().for_each(|v| *v = Stats::default());
            last_val.iter_mut().for_each(|v| *v = f64::NAN);
            for &i in &sorted[j] {
                let nd = node_of[i];
                if nd == usize::MAX || nd >= slot.len() || slot[nd] == usize::MAX {
                    continue;
                }
                let k = slot[nd];
                let v = x[[i, j]];
                let all = open[k].1;
                let l = left[k];
                if size(&l) >= min_leaf && size(&all) - size(&l) >= min_leaf && v > last_val[k] {
                    let gn = gain(l.s, l.w) + gain(all.s - l.s, all.w - l.w) - gain(all.s, all.w);
                    if gn > 1e-12 && best[k].is_none_or(|(b, _, _)| gn > b) {
                        best[k] = Some((gn, j, 0.5 * (last_val[k] + v)));
                    }
                }
                left[k].add(wt[i] * g[i], wt[i]);
                last_val[k] = v;
            }
        }
        let mut child_of: Vec<Option<(usize, usize, usize, f64)>> = vec![None; open.len()];
        for (k, &(id, _)) in open.iter().enumerate() {
            if let Some((_, feature, threshold)) = best[k] {
                let l = nodes.len();
                nodes.push(Node::Leaf(0.0));
                nodes.push(Node::Leaf(0.0));
                nodes[id] = Node::Split {
                    feature,
                    threshold,
                    left: l,
                    right: l + 1,
                };
                child_of[k] = Some((l, l + 1, feature, threshold));
            }
        }
        let mut sums = vec![Stats::default(); nodes.len()];
        for i in 0..n {
            let nd = node_of[i];
            if nd == usize::MAX || nd >= slot.len() || slot[nd] == usize::MAX {
                continue;
            }
            match child_of[slot[nd]] {
                Some((l, r, f, t)) => {
                    let c = if x[[i, f]] <= t { l } else { r };
                    node_of[i] = c;
                    sums[c].add(wt[i] * g[i], wt[i]);
                }
                None => node_of[i] = usize::MAX,
            }
        }
        let mut next_open = Vec::new();
        for k in 0..open.len() {
            if let Some((l, r, _, _)) = child_of[k] {
                for c in [l, r] {
                    let st = sums[c];
                    nodes[c] = Node::Leaf(leaf(st.s, st.w));
                    if size(&st) >= 2.0 * min_leaf {
                        next_open.push((c, st));
                    }
                }
            }
        }
        open = next_open;
    }
    Tree { nodes }
}

/// Weighted residual sum, weight sum and row count of a node.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    s: f64,
    w: f64,
    n: usize,
}

impl Stats {
    fn add(&mut self, wg: f64, w: f64) {
        self.s += wg;
        self.w += w;
        self.n += 1;
    }
}
