//! The optimiser of supernet training: masked Nesterov SGD for shared weights and the cosine
//! learning-rate schedule.

use tch::{Kind, Tensor};

use crate::supernet::Supernet;

/// SGD with Nesterov momentum for shared weights: [`Sgd::step`] touches only elements that
/// received a gradient in this step (unused slices of shared tensors keep their value and
/// momentum); [`Sgd::step_dense`] is the plain update for steps that used every weight.
#[derive(Debug)]
pub struct Sgd {
    params: Vec<SgdParam>,
    momentum: f64,
    weight_decay: f64,
}

/// One optimised variable, with what its name says about it, decided once.
#[derive(Debug)]
struct SgdParam {
    name: String,
    value: Tensor,
    momentum: Tensor,
    /// Weight decay applies (not batch norm, not biases).
    decay: bool,
    /// The largest subnet uses every element (all weights but kernel-transformation matrices).
    used_by_largest: bool,
}

impl Sgd {
    /// An optimizer over the trainable variables of `supernet` (weight decay skips batch-norm
    /// parameters and biases).
    pub fn new(supernet: &Supernet, momentum: f64, weight_decay: f64) -> Self {
        let vs = supernet.var_store();
        let trainable: Vec<Tensor> = vs.trainable_variables();
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        debug_assert_eq!(named.len(), trainable.len());
        let params = named
            .into_iter()
            .map(|(name, value)| SgdParam {
                decay: !(name.ends_with(".bias") || name.contains(".bn.")),
                used_by_largest: !name.ends_with("_matrix"),
                momentum: value.zeros_like().detach(),
                value,
                name,
            })
            .collect();
        Self {
            params,
            momentum,
            weight_decay,
        }
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for param in &self.params {
            let mut g = param.value.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr` that touches only elements with a non-zero gradient.
    pub fn step(&mut self, lr: f64) {
        self.update(lr, false);
    }

    /// One update with learning rate `lr` for a step that ran the largest subnet, which uses every
    /// element of every weight: weights get the plain Nesterov update of `torch.optim.SGD`
    /// (fewer tensor operations than the masked one); kernel-transformation matrices, which
    /// the largest subnet does not use, keep the masked update.
    pub fn step_dense(&mut self, lr: f64) {
        self.update(lr, true);
    }

    fn update(&mut self, lr: f64, dense: bool) {
        let (mu, wd) = (self.momentum, self.weight_decay);
        tch::no_grad(|| {
            for param in &mut self.params {
                let (p, buf) = (&mut param.value, &mut param.momentum);
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let decay = param.decay && wd > 0.0;
                if dense && param.used_by_largest {
                    // buf = mu buf + (g + wd p); p -= lr (g + wd p + mu buf)
                    let d_p = if decay { g + &*p * wd } else { g };
                    let _ = buf.g_mul_scalar_(mu).g_add_(&d_p);
                    let _ = p.g_sub_(&((d_p + &*buf * mu) * lr));
                    continue;
                }
                let mask = g.ne(0.0).to_kind(Kind::Float);
                let d_p = if decay { &g + &*p * &mask * wd } else { g };
                let new_buf = &*buf * mu + &d_p;
                let new_buf = &new_buf * &mask + &*buf * (1.0 - &mask);
                buf.copy_(&new_buf);
                let update = (&d_p + &new_buf * mu) * &mask;
                let _ = p.g_sub_(&(update * lr));
            }
        });
    }

    /// Momentum buffers by parameter name.
    pub fn buffers(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.params.iter().map(|p| (p.name.as_str(), &p.momentum))
    }
}

/// Learning rate at `step` of `total`: linear warm-up, then cosine decay to zero.
pub fn cosine_lr(base: f64, step: u64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    0.5 * base * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
}
