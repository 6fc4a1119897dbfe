//! Wrappers around any [`CostModel`]: caching, linear calibration to measurements and the
//! expected cost of a network with early exits.

use std::collections::HashMap;
use std::sync::RwLock;

use dynas_space::{Genotype, Network};

use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::linalg;
use crate::model::{Cost, CostBreakdown, CostModel};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CacheKey {
    Genes(Genotype),
    Arch(String),
    Net(Box<Network>),
}

impl CacheKey {
    fn of(network: &Network) -> Self {
        match (&network.genes, &network.arch_id) {
            (Some(g), _) => Self::Genes(g.clone()),
            (None, Some(a)) => Self::Arch(a.clone()),
            (None, None) => Self::Net(Box::new(network.clone())),
        }
    }
}

/// Caches an inner model's answers by architecture (its genes or `arch_id`, or the whole
/// network when it has neither) and operating point. Errors are not cached.
#[derive(Debug)]
pub struct CachedModel<M> {
    inner: M,
    costs: RwLock<HashMap<(CacheKey, OperatingPoint), Cost>>,
    breakdowns: RwLock<HashMap<(CacheKey, OperatingPoint), CostBreakdown>>,
    capacity: usize,
}

impl<M: CostModel> CachedModel<M> {
    /// Caches up to `capacity` answers of each kind (when full the cache is cleared, which
    /// keeps memory bounded without bookkeeping on the hot path).
    pub fn new(inner: M, capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(CostError::InvalidParameter {
                name: "capacity".to_string(),
                reason: "must be at least 1".to_string(),
            });
        }
        Ok(Self {
            inner,
            costs: RwLock::new(HashMap::new()),
            breakdowns: RwLock::new(HashMap::new()),
            capacity,
        })
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Number of cached totals.
    pub fn len(&self) -> usize {
        self.costs.read().map_or(0, |c| c.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup<V: Clone>(
        map: &RwLock<HashMap<(CacheKey, OperatingPoint), V>>,
        capacity: usize,
        key: (CacheKey, OperatingPoint),
        compute: impl FnOnce() -> Result<V>,
    ) -> Result<V> {
        if let Ok(m) = map.read()
            && let Some(v) = m.get(&key)
        {
            return Ok(v.clone());
        }
        let v = compute()?;
        if let Ok(mut m) = map.write() {
            if m.len() >= capacity {
                m.clear();
            }
            m.insert(key, v.clone());
        }
        Ok(v)
    }
}

impl<M: CostModel> CostModel for CachedModel<M> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Self::lookup(
            &self.costs,
            self.capacity,
            (CacheKey::of(network), point.clone()),
            || self.inner.estimate(network, point),
        )
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        Self::lookup(
            &self.breakdowns,
            self.capacity,
            (CacheKey::of(network), point.clone()),
            || self.inner.breakdown(network, point),
        )
    }
}

/// Linear calibration of an inner model to measurements: `latency = scale · inner + offset`
/// (and the same, separately fitted, for energy when measured energies are given).
#[derive(Debug, Clone)]
pub struct Calibrated<M> {
    inner: M,
    latency: (f64, f64),
    energy: Option<(f64, f64)>,
}

/// Fits `(scale, offset)` of `y ≈ scale · x + offset`, falling back to a pure scale when
/// there is one point or all `x` are equal.
fn fit_line(x: &[f64], y: &[f64], what: &str) -> Result<(f64, f64)> {
    let err = |reason: String| CostError::Fit {
        model: "calibrated".to_string(),
        reason: format!("{what}: {reason}"),
    };
    if x.is_empty() {
        return Err(err("no measurements".to_string()));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(err("non-finite value".to_string()));
    }
    let rows: Vec<Vec<f64>> = x.iter().map(|&v| vec![v, 1.0]).collect();
    if x.len() >= 2
        && let Some(w) = linalg::lstsq(&rows, y, &[0, 1], 0.0)
    {
        return Ok((w[0], w[1]));
    }
    let w = linalg::lstsq(&rows, y, &[0], 0.0)
        .ok_or_else(|| err("the model predicts 0 for every measurement".to_string()))?;
    Ok((w[0], 0.0))
}

impl<M: CostModel> Calibrated<M> {
    /// Fits the calibration from measured `(network, point, latency ms, energy mJ)` tuples.
    /// Energy is calibrated when at least two measurements carry it and the model predicts
    /// energy for them.
    pub fn fit(
        inner: M,
        measured: &[(&Network, OperatingPoint, f64, Option<f64>)],
    ) -> Result<Self> {
        let mut px = Vec::new();
        let mut py = Vec::new();
        let mut ex = Vec::new();
        let mut ey = Vec::new();
        for (net, point, lat, energy) in measured {
            let c = inner.estimate(net, point)?;
            px.push(c.latency_ms);
            py.push(*lat);
            if let (Some(p), Some(m)) = (c.energy_mj, energy) {
                ex.push(p);
                ey.push(*m);
            }
        }
        let latency = fit_line(&px, &py, "latency")?;
        let energy = if ex.len() >= 2 {
            Some(fit_line(&ex, &ey, "energy")?)
        } else {
            None
        };
        Ok(Self {
            inner,
            latency,
            energy,
        })
    }

    /// `(scale, offset)` of the latency calibration.
    pub fn latency_calibration(&self) -> (f64, f64) {
        self.latency
    }

    /// `(scale, offset)` of the energy calibration, if fitted.
    pub fn energy_calibration(&self) -> Option<(f64, f64)> {
        self.energy
    }

    fn apply(&self, c: Cost) -> Cost {
        Cost {
            latency_ms: self.latency.0 * c.latency_ms + self.latency.1,
            energy_mj: match self.energy {
                Some((s, o)) => c.energy_mj.map(|e| s * e + o),
                None => c.energy_mj,
            },
            peak_memory_bytes: c.peak_memory_bytes,
        }
    }
}

impl<M: CostModel> CostModel for Calibrated<M> {
    fn name(&self) -> &str {
        "calibrated"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Ok(self.apply(self.inner.estimate(network, point)?))
    }

    /// Layers are scaled (the offset is a per-inference overhead, added to the total only).
    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let b = self.inner.breakdown(network, point)?;
        let scale = |c: &Cost| Cost {
            latency_ms: self.latency.0 * c.latency_ms,
            energy_mj: match self.energy {
                Some((s, _)) => c.energy_mj.map(|e| s * e),
                None => c.energy_mj,
            },
            peak_memory_bytes: c.peak_memory_bytes,
        };
        Ok(CostBreakdown {
            layers: b.layers.iter().map(scale).collect(),
            total: self.apply(b.total),
        })
    }
}

/// One early exit: after which layer it branches off, how likely an input leaves there, and
/// what its head costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExitPoint {
    /// The exit runs after layers `0..after_layers` (1-based count of backbone layers).
    pub after_layers: usize,
    /// Probability that an input leaves at this exit.
    pub probability: f64,
    /// Cost of the exit head itself.
    pub head: Cost,
}

/// Expected cost of a network with early exits:
/// `Σ_exits p_i · (prefix cost up to exit i + heads evaluated on the way)`.
///
/// Exits are evaluated in order; an input leaving at exit `i` has run the backbone up to it
/// and the heads of exits `0..=i`. The final classifier is the exit with
/// `after_layers == network.layers.len()`. Probabilities must sum to 1.
#[derive(Debug, Clone)]
pub struct ExitAware<M> {
    inner: M,
    exits: Vec<ExitPoint>,
}

impl<M: CostModel> ExitAware<M> {
    /// Checked: exits strictly increasing in `after_layers`, probabilities in [0, 1] summing
    /// to 1 (within 1e-6).
    pub fn new(inner: M, exits: Vec<ExitPoint>) -> Result<Self> {
        let bad = |reason: String| CostError::InvalidParameter {
            name: "exits".to_string(),
            reason,
        };
        if exits.is_empty() {
            return Err(bad("at least one exit is needed".to_string()));
        }
        if exits
            .windows(2)
            .any(|w| w[0].after_layers >= w[1].after_layers)
        {
            return Err(bad(
                "exits must be strictly increasing in `after_layers`".to_string()
            ));
        }
        if let Some(e) = exits.iter().find(|e| !(0.0..=1.0).contains(&e.probability)) {
            return Err(bad(format!(
                "probability {} is outside [0, 1]",
                e.probability
            )));
        }
        let sum: f64 = exits.iter().map(|e| e.probability).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(bad(format!("probabilities sum to {sum}, not 1")));
        }
        Ok(Self { inner, exits })
    }

    /// The exits.
    pub fn exits(&self) -> &[ExitPoint] {
        &self.exits
    }

    /// Expected cost given the inner model's per-layer breakdown (see
    /// [`crate::expected_exit_cost`]).
    pub fn expected(&self, breakdown: &CostBreakdown) -> Result<Cost> {
        let n = breakdown.layers.len();
        let prefixes = breakdown.prefix_sums();
        let mut paths = Vec::with_capacity(self.exits.len());
        for e in &self.exits {
            if e.after_layers == 0 || e.after_layers > n {
                return Err(CostError::InvalidParameter {
                    name: "exits".to_string(),
                    reason: format!("exit after {} layers, network has {n}", e.after_layers),
                });
            }
            paths.push(crate::ExitPath {
                prefix: prefixes[e.after_layers - 1],
                head: Some(e.head),
                probability: e.probability,
            });
        }
        Ok(crate::expected_exit_cost(&paths))
    }
}

impl<M: CostModel> CostModel for ExitAware<M> {
    fn name(&self) -> &str {
        "exit-aware"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        self.expected(&self.inner.breakdown(network, point)?)
    }
}

/// Carries a model measured at one operating point (a LUT, a table, a predictor) to every
/// other point: each layer's cost is scaled by the ratio a DVFS-aware `scaler` (usually a
/// fitted [`crate::AnalyticalModel`]) gives for that layer between the two points. Latency and
/// energy scale separately; an inner model without energy gets the scaler's energy scaled by
/// the latency calibration of that layer. Fixed per-inference time of the inner model (its
/// total minus its layers) scales like the scaler's own fixed time.
#[derive(Debug, Clone)]
pub struct DvfsScaled<M, S> {
    inner: M,
    scaler: S,
    reference: OperatingPoint,
}

impl<M: CostModel, S: CostModel> DvfsScaled<M, S> {
    /// `inner` was measured at `reference`; `scaler` must give per-layer breakdowns.
    pub fn new(inner: M, scaler: S, reference: OperatingPoint) -> Self {
        Self {
            inner,
            scaler,
            reference,
        }
    }
}

impl<M: CostModel, S: CostModel> CostModel for DvfsScaled<M, S> {
    fn name(&self) -> &str {
        "dvfs-scaled"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Ok(self.breakdown(network, point)?.total)
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let base = self.inner.breakdown(network, &self.reference)?;
        let at_ref = self.scaler.breakdown(network, &self.reference)?;
        let at_point = self.scaler.breakdown(network, point)?;
        let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { 1.0 };
        let layers: Vec<Cost> = base
            .layers
            .iter()
            .zip(at_ref.layers.iter().zip(&at_point.layers))
            .map(|(c, (r, p))| {
                let lat = ratio(r.latency_ms, p.latency_ms);
                let energy = match (c.energy_mj, r.energy_mj, p.energy_mj) {
                    (Some(e), Some(er), Some(ep)) => Some(e * ratio(er, ep)),
                    (None, Some(_), Some(ep)) => Some(ep * ratio(r.latency_ms, c.latency_ms)),
                    (e, _, _) => e,
                };
                Cost {
                    latency_ms: c.latency_ms * lat,
                    energy_mj: energy,
                    peak_memory_bytes: c.peak_memory_bytes,
                }
            })
            .collect();
        if layers.len() != network.layers.len() {
            return Err(CostError::Unsupported {
                model: self.name().to_string(),
                what: "inner or scaler models without one cost per layer".to_string(),
            });
        }
        let mut total = layers
            .iter()
            .skip(1)
            .fold(layers.first().copied().unwrap_or_default(), |a, c| {
                a.then(*c)
            });
        // Fixed per-inference time (total minus layers) of the inner model scales like the
        // scaler's own fixed time, and stays as it is when the scaler has none.
        let fixed = |b: &CostBreakdown| {
            b.total.latency_ms - b.layers.iter().map(|c| c.latency_ms).sum::<f64>()
        };
        let overhead = fixed(&base);
        if overhead > 0.0 {
            let (r, p) = (fixed(&at_ref), fixed(&at_point));
            total.latency_ms += overhead * if r > 0.0 && p > 0.0 { p / r } else { 1.0 };
        }
        Ok(CostBreakdown { layers, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// 1 ms and 2 mJ per layer; counts calls.
    struct PerLayer(AtomicUsize);
    impl CostModel for PerLayer {
        fn name(&self) -> &str {
            "per-layer"
        }
        fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
            Ok(self.breakdown(network, point)?.total)
        }
        fn breakdown(&self, network: &Network, _: &OperatingPoint) -> Result<CostBreakdown> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let layers = vec![
                Cost {
                    latency_ms: 1.0,
                    energy_mj: Some(2.0),
                    peak_memory_bytes: Some(10)
                };
                network.layers.len()
            ];
            let total = layers.iter().fold(
                Cost {
                    energy_mj: Some(0.0),
                    ..Cost::default()
                },
                |a, c| a.then(*c),
            );
            Ok(CostBreakdown { layers, total })
        }
    }

    fn net(n: usize) -> Network {
        use dynas_space::{Layer, TensorShape};
        let s = TensorShape::new(8, 4, 4);
        Network::new(
            s,
            (0..n)
                .map(|i| Layer::identity(format!("l{i}"), s))
                .collect(),
        )
    }

    #[test]
    fn dvfs_scaled_follows_the_scaler_between_points() {
        use crate::{AnalyticalModel, AnalyticalParams, DeviceProfile};
        use dynas_space::{Activation, Layer, TensorShape};
        let dev = DeviceProfile::jetson_agx_xavier();
        let scaler = AnalyticalModel::new(dev.clone(), AnalyticalParams::default()).unwrap();
        let input = TensorShape::new(3, 64, 64);
        let a = Layer::conv("a", input, 32, 3, 1, Activation::Relu);
        let b = Layer::conv("b", a.output(), 64, 3, 2, Activation::Relu);
        let n = Network::new(input, vec![a, b]);
        let (hi, lo) = (dev.max_operating_point(), dev.min_operating_point());
        // The inner model is the scaler itself measured at `hi`: scaling must reproduce `lo`.
        let m = DvfsScaled::new(scaler.clone(), scaler.clone(), hi.clone());
        let got = m.breakdown(&n, &lo).unwrap();
        let want = scaler.breakdown(&n, &lo).unwrap();
        for (g, w) in got.layers.iter().zip(&want.layers) {
            assert_relative_eq!(g.latency_ms, w.latency_ms, max_relative = 1e-12);
            assert_relative_eq!(
                g.energy_mj.unwrap(),
                w.energy_mj.unwrap(),
                max_relative = 1e-12
            );
        }
        assert_relative_eq!(
            got.total.latency_ms,
            want.total.latency_ms,
            max_relative = 1e-2
        );
        assert!(got.total.latency_ms > scaler.breakdown(&n, &hi).unwrap().total.latency_ms);
    }

    #[test]
    fn cache_answers_repeats_without_calling_the_model() {
        let cached = CachedModel::new(PerLayer(AtomicUsize::new(0)), 100).unwrap();
        let n = net(4).with_arch_id("a");
        let p = OperatingPoint::default();
        let a = cached.estimate(&n, &p).unwrap();
        let b = cached.estimate(&n, &p).unwrap();
        assert_eq!(a, b);
        assert_eq!(cached.inner().0.load(Ordering::SeqCst), 1);
        cached.estimate(&net(5), &p).unwrap();
        assert_eq!(cached.inner().0.load(Ordering::SeqCst), 2);
        assert!(CachedModel::new(PerLayer(AtomicUsize::new(0)), 0).is_err());
    }

    #[test]
    fn calibration_recovers_a_linear_map() {
        let nets: Vec<Network> = (1..6).map(net).collect();
        let p = OperatingPoint::default();
        let measured: Vec<_> = nets
            .iter()
            .map(|n| {
                (
                    n,
                    p.clone(),
                    1.5 * n.layers.len() as f64 + 0.25,
                    Some(4.0 * n.layers.len() as f64),
                )
            })
            .collect();
        let cal = Calibrated::fit(PerLayer(AtomicUsize::new(0)), &measured).unwrap();
        assert_relative_eq!(cal.latency_calibration().0, 1.5, epsilon = 1e-9);
        assert_relative_eq!(cal.latency_calibration().1, 0.25, epsilon = 1e-9);
        let c = cal.estimate(&net(10), &p).unwrap();
        assert_relative_eq!(c.latency_ms, 15.25, epsilon = 1e-9);
        assert_relative_eq!(c.energy_mj.unwrap(), 40.0, epsilon = 1e-9);
    }

    #[test]
    fn exit_aware_is_the_probability_weighted_prefix_cost() {
        let head = Cost {
            latency_ms: 0.5,
            energy_mj: Some(1.0),
            peak_memory_bytes: None,
        };
        let exits = vec![
            ExitPoint {
                after_layers: 2,
                probability: 0.5,
                head,
            },
            ExitPoint {
                after_layers: 6,
                probability: 0.5,
                head: Cost {
                    energy_mj: Some(0.0),
                    ..Cost::default()
                },
            },
        ];
        let m = ExitAware::new(PerLayer(AtomicUsize::new(0)), exits).unwrap();
        let c = m.estimate(&net(6), &OperatingPoint::default()).unwrap();
        // 0.5 * (2 + 0.5) + 0.5 * (6 + 0.5)
        assert_relative_eq!(c.latency_ms, 4.5, epsilon = 1e-12);
        assert_relative_eq!(
            c.energy_mj.unwrap(),
            0.5 * 5.0 + 0.5 * 13.0,
            epsilon = 1e-12
        );
        assert!(m.estimate(&net(4), &OperatingPoint::default()).is_err());
        let bad = vec![ExitPoint {
            after_layers: 1,
            probability: 0.7,
            head,
        }];
        assert!(ExitAware::new(PerLayer(AtomicUsize::new(0)), bad).is_err());
    }
}
