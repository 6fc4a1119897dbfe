//! Cost of exits: the HADAS exit head as [`Layer`]s, and the cost of leaving at each candidate
//! position under any [`CostModel`] at an [`OperatingPoint`].
//!
//! An input that leaves at exit `i` of a selection pays the backbone prefix up to that exit's
//! layer **plus the heads of every selected exit up to and including `i`** (it was evaluated at
//! all of them); an input that reaches the final classifier pays the whole network plus every
//! selected head.

use dynas_cost::{Cost, CostModel, ExitPath, OperatingPoint};
use dynas_space::{Activation, Layer, Network, TensorShape};
use serde::{Deserialize, Serialize};

use crate::error::{ExitError, Result};

/// The HADAS exit head: 3x3 conv (stride 1) + batch norm + activation to `width` channels,
/// global average pooling, linear classifier to `num_classes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitHead {
    width: usize,
    activation: Activation,
    num_classes: usize,
}

impl ExitHead {
    /// A head with `width >= 1` conv channels and `num_classes >= 2` outputs.
    pub fn new(width: usize, activation: Activation, num_classes: usize) -> Result<Self> {
        if width == 0 {
            return Err(ExitError::invalid("head width", "must be at least 1"));
        }
        if num_classes < 2 {
            return Err(ExitError::invalid(
                "num_classes",
                format!("{num_classes} < 2"),
            ));
        }
        Ok(Self {
            width,
            activation,
            num_classes,
        })
    }

    /// Conv channels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Activation after the conv.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The head's layers for a feature map of shape `input`, named `{prefix}.conv`,
    /// `{prefix}.pool`, `{prefix}.linear`.
    pub fn layers(&self, prefix: &str, input: TensorShape) -> Vec<Layer> {
        let conv = Layer::conv(
            format!("{prefix}.conv"),
            input,
            self.width,
            3,
            1,
            self.activation,
        );
        let pooled = conv.output();
        vec![
            conv,
            Layer::global_avg_pool(format!("{prefix}.pool"), pooled),
            Layer::linear(format!("{prefix}.linear"), self.width, self.num_classes),
        ]
    }

    /// The head alone as a [`Network`] on `input`.
    pub fn network(&self, prefix: &str, input: TensorShape) -> Network {
        Network::new(input, self.layers(prefix, input))
    }
}

/// Where an exit can be attached: after layer `after_layer` of the backbone [`Network`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitPosition {
    /// Name of the exit (e.g. `Exit_3`).
    pub name: String,
    /// Index of the backbone layer whose output the head reads.
    pub after_layer: usize,
}

impl ExitPosition {
    /// An exit named `name` after layer `after_layer`.
    pub fn new(name: impl Into<String>, after_layer: usize) -> Self {
        Self {
            name: name.into(),
            after_layer,
        }
    }
}

/// Latency, energy and MACs of one path through the network, or their expectation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ExpectedCost {
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Energy in millijoules, where the cost model knows it.
    pub energy_mj: Option<f64>,
    /// Multiply-accumulates.
    pub macs: f64,
}

impl ExpectedCost {
    fn from_cost(cost: Cost, macs: u64) -> Self {
        Self {
            latency_ms: cost.latency_ms,
            energy_mj: cost.energy_mj,
            macs: macs as f64,
        }
    }

    /// Sum of two costs run one after the other (energy only when both know it).
    pub fn then(self, next: Self) -> Self {
        Self {
            latency_ms: self.latency_ms + next.latency_ms,
            energy_mj: self.energy_mj.zip(next.energy_mj).map(|(a, b)| a + b),
            macs: self.macs + next.macs,
        }
    }

    /// This cost scaled by `w` (a probability).
    pub fn scaled(self, w: f64) -> Self {
        Self {
            latency_ms: self.latency_ms * w,
            energy_mj: self.energy_mj.map(|e| e * w),
            macs: self.macs * w,
        }
    }
}

/// Cost of one candidate exit position: the backbone prefix and its head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionCost {
    /// The position.
    pub position: ExitPosition,
    /// Backbone layers `0..=after_layer`.
    pub prefix: ExpectedCost,
    /// The exit head.
    pub head: ExpectedCost,
}

/// Prefix and head costs of every candidate exit position of one backbone at one operating point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitCosts {
    positions: Vec<PositionCost>,
    full: ExpectedCost,
}

impl ExitCosts {
    /// Costs from a per-layer [`CostModel::breakdown`] of `network` at `point`: prefix sums plus
    /// the network's fixed per-inference overhead (total minus the sum of its layers), and for
    /// each head the sum of its own layers' costs on the feature map it reads (the model's
    /// [`CostModel::estimate`] when it has no breakdown).
    ///
    /// Positions must be in increasing layer order and inside the network.
    pub fn compute(
        network: &Network,
        positions: &[ExitPosition],
        head: &ExitHead,
        model: &dyn CostModel,
        point: &OperatingPoint,
    ) -> Result<Self> {
        check_positions(positions, network.layers.len())?;
        let breakdown = model.breakdown(network, point)?;
        if breakdown.layers.len() != network.layers.len() {
            return Err(ExitError::shape(
                format!("per-layer breakdown of cost model `{}`", model.name()),
                network.layers.len(),
                breakdown.layers.len(),
            ));
        }
        // Fixed per-inference overheads (total minus the layers) are paid on every path.
        let layer_sum = breakdown.prefix(breakdown.layers.len());
        let overhead = Cost {
            latency_ms: (breakdown.total.latency_ms - layer_sum.latency_ms).max(0.0),
            energy_mj: breakdown
                .total
                .energy_mj
                .zip(layer_sum.energy_mj)
                .map(|(t, l)| (t - l).max(0.0)),
            peak_memory_bytes: None,
        };
        let prefix: Vec<Cost> = breakdown
            .prefix_sums()
            .into_iter()
            .map(|c| c.then(overhead))
            .collect();
        let mut macs = 0u64;
        let prefix_macs: Vec<u64> = network
            .layers
            .iter()
            .map(|l| {
                macs += l.macs();
                macs
            })
            .collect();
        let mut out = Vec::with_capacity(positions.len());
        for p in positions {
            let input = network.layers[p.after_layer].output();
            let head_net = head.network(&p.name, input);
            // The head's own layers, without the model's per-inference overhead.
            let head_cost = match model.breakdown(&head_net, point) {
                Ok(b) => b.prefix(b.layers.len()),
                Err(dynas_cost::CostError::Unsupported { .. }) => {
                    model.estimate(&head_net, point)?
                }
                Err(e) => return Err(e.into()),
            };
            out.push(PositionCost {
                position: p.clone(),
                prefix: ExpectedCost::from_cost(prefix[p.after_layer], prefix_macs[p.after_layer]),
                head: ExpectedCost::from_cost(head_cost, head_net.macs()),
            });
        }
        Ok(Self {
            positions: out,
            full: ExpectedCost::from_cost(breakdown.total, network.macs()),
        })
    }

    /// Costs given directly (measured prefixes and heads), validated: positions increasing,
    /// costs finite and non-negative.
    pub fn from_parts(positions: Vec<PositionCost>, full: ExpectedCost) -> Result<Self> {
        for (i, w) in positions.windows(2).enumerate() {
            if w[1].position.after_layer <= w[0].position.after_layer {
                return Err(ExitError::invalid(
                    format!("position {}", i + 1),
                    "positions must be in strictly increasing layer order",
                ));
            }
        }
        let check = |what: String, c: &ExpectedCost| -> Result<()> {
            let ok = |v: f64| v.is_finite() && v >= 0.0;
            if ok(c.latency_ms) && ok(c.macs) && c.energy_mj.is_none_or(ok) {
                Ok(())
            } else {
                Err(ExitError::invalid(
                    what,
                    format!(
                        "latency {} ms, {} MACs, energy {} mJ: every figure must be finite and \
                         non-negative",
                        c.latency_ms,
                        c.macs,
                        c.energy_mj.map_or("none".to_string(), |e| e.to_string())
                    ),
                ))
            }
        };
        for (i, p) in positions.iter().enumerate() {
            check(format!("prefix cost of position {i}"), &p.prefix)?;
            check(format!("head cost of position {i}"), &p.head)?;
        }
        check("full cost".to_string(), &full)?;
        Ok(Self { positions, full })
    }

    /// Per-position costs.
    pub fn positions(&self) -> &[PositionCost] {
        &self.positions
    }

    /// Cost of the whole network without exits.
    pub fn full(&self) -> ExpectedCost {
        self.full
    }

    /// The cost of leaving at each exit of `exits` (indices into the positions, strictly
    /// increasing) and, as the last element, of reaching the final classifier.
    pub fn path_costs(&self, exits: &[usize]) -> Result<Vec<ExpectedCost>> {
        self.active_path_costs(exits, &vec![true; exits.len()])
    }

    /// Like [`ExitCosts::path_costs`], but the heads of exits with `active[j] == false` (exits
    /// whose threshold can never fire) are not run and not paid; their own path cost is that of
    /// the next exit that can fire.
    pub fn active_path_costs(&self, exits: &[usize], active: &[bool]) -> Result<Vec<ExpectedCost>> {
        let probabilities = vec![0.0; exits.len() + 1];
        let (time, macs) = self.exit_paths(exits, active, &probabilities)?;
        Ok(dynas_cost::exit_path_costs(&time)
            .into_iter()
            .zip(dynas_cost::exit_path_costs(&macs))
            .map(|(c, m)| ExpectedCost {
                latency_ms: c.latency_ms,
                energy_mj: c.energy_mj,
                macs: m.latency_ms,
            })
            .collect())
    }

    /// Expected cost per input when a fraction `rates[j]` of inputs leaves at the `j`-th exit
    /// of `exits` and the last rate's share at the final classifier (heads of exits with
    /// `active[j] == false` are not run), by [`dynas_cost::expected_exit_cost`].
    pub fn expected(
        &self,
        exits: &[usize],
        active: &[bool],
        rates: &[f64],
    ) -> Result<ExpectedCost> {
        let (time, macs) = self.exit_paths(exits, active, rates)?;
        let c = dynas_cost::expected_exit_cost(&time);
        Ok(ExpectedCost {
            latency_ms: c.latency_ms,
            energy_mj: c.energy_mj,
            macs: dynas_cost::expected_exit_cost(&macs).latency_ms,
        })
    }

    /// The ways out of the network for `exits` (then the final classifier) as
    /// [`dynas_cost::ExitPath`]s: once in time and energy, once in MACs (carried as latency).
    fn exit_paths(
        &self,
        exits: &[usize],
        active: &[bool],
        probabilities: &[f64],
    ) -> Result<(Vec<ExitPath>, Vec<ExitPath>)> {
        check_selection(exits, self.positions.len())?;
        if active.len() != exits.len() {
            return Err(ExitError::shape("active flags", exits.len(), active.len()));
        }
        if probabilities.len() != exits.len() + 1 {
            return Err(ExitError::shape(
                "exit rates (exits + final)",
                exits.len() + 1,
                probabilities.len(),
            ));
        }
        let time = |c: ExpectedCost| Cost {
            latency_ms: c.latency_ms,
            energy_mj: c.energy_mj,
            peak_memory_bytes: None,
        };
        let macs = |c: ExpectedCost| Cost::latency(c.macs);
        let mut time_paths = Vec::with_capacity(exits.len() + 1);
        let mut macs_paths = Vec::with_capacity(exits.len() + 1);
        for ((&e, &on), &p) in exits.iter().zip(active).zip(probabilities) {
            let pos = &self.positions[e];
            time_paths.push(ExitPath {
                prefix: time(pos.prefix),
                head: on.then(|| time(pos.head)),
                probability: p,
            });
            macs_paths.push(ExitPath {
                prefix: macs(pos.prefix),
                head: on.then(|| macs(pos.head)),
                probability: p,
            });
        }
        let last = probabilities[exits.len()];
        time_paths.push(ExitPath {
            prefix: time(self.full),
            head: None,
            probability: last,
        });
        macs_paths.push(ExitPath {
            prefix: macs(self.full),
            head: None,
            probability: last,
        });
        Ok((time_paths, macs_paths))
    }

    /// HADAS's figure: the unweighted mean over the selected exits and the final classifier of
    /// the cost of leaving there (ignores how many inputs actually leave where).
    pub fn hadas_mean(&self, exits: &[usize]) -> Result<ExpectedCost> {
        let share = 1.0 / (exits.len() + 1) as f64;
        self.expected(
            exits,
            &vec![true; exits.len()],
            &vec![share; exits.len() + 1],
        )
    }
}

fn check_positions(positions: &[ExitPosition], layers: usize) -> Result<()> {
    for (i, p) in positions.iter().enumerate() {
        if p.after_layer >= layers {
            return Err(ExitError::invalid(
                format!("position `{}`", p.name),
                format!(
                    "after layer {} but the network has {layers} layers",
                    p.after_layer
                ),
            ));
        }
        if i > 0 && p.after_layer <= positions[i - 1].after_layer {
            return Err(ExitError::invalid(
                format!("position `{}`", p.name),
                "positions must be in strictly increasing layer order",
            ));
        }
    }
    Ok(())
}

/// Checks that `exits` are strictly increasing indices below `positions`.
pub(crate) fn check_selection(exits: &[usize], positions: usize) -> Result<()> {
    for (i, &e) in exits.iter().enumerate() {
        if e >= positions {
            return Err(ExitError::invalid(
                "exit selection",
                format!("exit {e} is not below the {positions} candidate positions"),
            ));
        }
        if i > 0 && e <= exits[i - 1] {
            return Err(ExitError::invalid(
                "exit selection",
                format!("exits must be strictly increasing, got {exits:?}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MacsModel, chain_network};
    use approx::assert_relative_eq;

    #[test]
    fn head_layers_count_macs() {
        let head = ExitHead::new(32, Activation::Relu, 10).expect("ok");
        let net = head.network("e", TensorShape::new(16, 8, 8));
        assert_eq!(net.macs(), 8 * 8 * 32 * 16 * 9 + 32 * 10);
        assert_eq!(net.output(), TensorShape::flat(10));
        assert!(ExitHead::new(0, Activation::Relu, 10).is_err());
        assert!(ExitHead::new(8, Activation::Relu, 1).is_err());
    }

    #[test]
    fn path_costs_add_prefix_and_every_evaluated_head() {
        let net = chain_network(6, 10);
        let positions: Vec<_> = (0..5)
            .map(|i| ExitPosition::new(format!("e{i}"), i))
            .collect();
        let head = ExitHead::new(16, Activation::Relu, 10).expect("ok");
        let model = MacsModel;
        let point = OperatingPoint::new(None, Some(1_000_000_000), None).unwrap();
        let costs = ExitCosts::compute(&net, &positions, &head, &model, &point).expect("ok");
        let paths = costs.path_costs(&[1, 3]).expect("ok");
        let p = costs.positions();
        assert_relative_eq!(
            paths[0].macs,
            (net.prefix_macs(2) + p[1].head.macs as u64) as f64
        );
        assert_relative_eq!(
            paths[1].macs,
            net.prefix_macs(4) as f64 + p[1].head.macs + p[3].head.macs
        );
        assert_relative_eq!(
            paths[2].macs,
            net.macs() as f64 + p[1].head.macs + p[3].head.macs
        );
        // MacsModel: 1 ms per 1e6 MACs, 2 mJ per ms.
        assert_relative_eq!(
            paths[1].latency_ms,
            paths[1].macs / 1e6,
            max_relative = 1e-12
        );
        assert_relative_eq!(
            paths[1].energy_mj.expect("energy"),
            2.0 * paths[1].latency_ms,
            max_relative = 1e-12
        );
        let mean = costs.hadas_mean(&[1, 3]).expect("ok");
        assert_relative_eq!(mean.macs, paths.iter().map(|c| c.macs).sum::<f64>() / 3.0);
        assert!(costs.path_costs(&[3, 1]).is_err());
        assert!(costs.path_costs(&[5]).is_err());
        let bad = vec![ExitPosition::new("late", 10)];
        assert!(ExitCosts::compute(&net, &bad, &head, &model, &point).is_err());
    }

    #[test]
    fn bad_given_costs_are_a_sentence_not_a_struct_dump() {
        let ok = ExpectedCost {
            latency_ms: 1.0,
            energy_mj: Some(2.0),
            macs: 3.0,
        };
        let bad = PositionCost {
            position: ExitPosition::new("e0", 0),
            prefix: ExpectedCost {
                latency_ms: f64::NAN,
                ..ok
            },
            head: ok,
        };
        let err = ExitCosts::from_parts(vec![bad], ok).expect_err("NaN latency");
        let (shown, debug) = (err.to_string(), format!("{err:?}"));
        assert!(
            shown.contains("prefix cost of position 0") && shown.contains("latency NaN ms"),
            "{shown}"
        );
        assert!(!shown.contains("ExpectedCost"), "{shown}");
        // `unwrap` and `main() -> Result` print Debug: the same sentence.
        assert_eq!(debug, shown);
    }
}
