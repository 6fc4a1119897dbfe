//! Configurations (subnet x exit thresholds x operating point) and their costs.

use std::fmt;
use std::path::Path;

use dynas_core::{DeployedExit, Deployment};
use dynas_cost::{Cost, CostModel, DeviceProfile, ExitAware, ExitPoint, OperatingPoint};
use dynas_space::{Genotype, Network};
use serde::{Deserialize, Serialize};

use crate::error::{DvfsError, Result};

/// Index of a configuration in its [`ConfigurationSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigId(pub usize);

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One runnable configuration: which subnet, which early-exit thresholds, which clocks, and
/// what that costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// The subnet, as a genotype of the set's search space ([`ConfigurationSet::space`]).
    pub genotype: Genotype,
    /// A display label (e.g. a level name); empty: the genotype's compact form is shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// The early exits in layer order, each with its position, calibrated threshold and
    /// expected exit rate, as the deployment gave them (empty: no early exits).
    #[serde(default)]
    pub exits: Vec<DeployedExit>,
    /// The DVFS operating point.
    pub point: OperatingPoint,
    /// Expected accuracy (same unit across the set, e.g. top-1 %).
    pub accuracy: f64,
    /// Expected latency per inference on an otherwise idle device, in ms.
    pub latency_ms: f64,
    /// Expected energy per inference, in mJ.
    pub energy_mj: f64,
}

impl Configuration {
    /// The label, or the genotype's compact form when there is none.
    pub fn name(&self) -> String {
        if self.label.is_empty() {
            self.genotype.to_string()
        } else {
            self.label.clone()
        }
    }

    fn validate(&self, origin: &Path, index: usize) -> Result<()> {
        let err = |field: &str, why: &str| {
            DvfsError::parse(
                origin,
                None,
                format!(
                    "configuration {index} (subnet `{}`): field `{field}` {why}",
                    self.name()
                ),
            )
        };
        if self.genotype.is_empty() {
            return Err(err("genotype", "is empty"));
        }
        if !self.accuracy.is_finite() || self.accuracy < 0.0 {
            return Err(err("accuracy", "must be finite and non-negative"));
        }
        if !self.latency_ms.is_finite() || self.latency_ms <= 0.0 {
            return Err(err("latency_ms", "must be finite and positive"));
        }
        if !self.energy_mj.is_finite() || self.energy_mj < 0.0 {
            return Err(err("energy_mj", "must be finite and non-negative"));
        }
        if self
            .exits
            .iter()
            .any(|e| !e.threshold.is_finite() || !(0.0..=1.0).contains(&e.threshold))
        {
            return Err(err("exits", "thresholds must all lie in [0, 1]"));
        }
        Ok(())
    }

    /// Whether `other` runs the same subnet with the same exit thresholds (only the clocks
    /// may differ).
    pub fn same_variant(&self, other: &Configuration) -> bool {
        self.genotype == other.genotype && self.exits == other.exits
    }
}

/// A validated, non-empty table of configurations, optionally tied to a search space (whose
/// genotypes the configurations run) and to a device whose operating-point table every
/// configuration respects.
///
/// File format (JSON): `{"space": "ofa-mnist", "device": <optional DeviceProfile>,
/// "configurations": [{"genotype": [0, 2, 1, ...], "label": "level0",
/// "exits": [{"after_layer": 3, "threshold": 0.8, "exit_rate": 0.4}],
/// "point": {"cpu_hz": null, "gpu_hz": 1377000000, "memory_hz": 2133000000}, "accuracy": 79.0,
/// "latency_ms": 61.7, "energy_mj": 950.0}, ...]}` (`space`, `device`, `label` and
/// `exits` optional). [`ConfigurationSet::from_file`] also reads a [`Deployment`] file, exits
/// included. Files of the format before exit positions were kept (`exit_thresholds`) are
/// refused with an error saying so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSet")]
pub struct ConfigurationSet {
    /// The search space the genotypes belong to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    space: Option<String>,
    /// The device the operating points belong to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<DeviceProfile>,
    /// The configurations.
    configurations: Vec<Configuration>,
}

/// The unchecked serde form of [`ConfigurationSet`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    #[serde(default)]
    space: Option<String>,
    #[serde(default)]
    device: Option<DeviceProfile>,
    configurations: Vec<Configuration>,
}

impl TryFrom<RawSet> for ConfigurationSet {
    type Error = DvfsError;

    fn try_from(raw: RawSet) -> Result<Self> {
        Self::build(raw.device, raw.configurations, Path::new("<deserialized>"))
            .map(|s| s.with_space(raw.space))
    }
}

/// A subnet with its exit thresholds, to be costed at every operating point by a
/// [`CostModel`] (see [`ConfigurationSet::from_cost_model`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// The subnet's genotype.
    pub genotype: Genotype,
    /// A display label (empty: the genotype's compact form).
    pub label: String,
    /// The early exits with their positions and thresholds (empty: no early exits).
    pub exits: Vec<DeployedExit>,
    /// The network description.
    pub network: Network,
    /// Accuracy of the subnet with these thresholds.
    pub accuracy: f64,
    /// Where inputs leave the network with these thresholds; `None`: all run to the end.
    pub exit_profile: Option<ExitProfile>,
}

/// Where inputs leave a network with early exits: `(layers executed, fraction of inputs)`
/// pairs whose fractions sum to 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitProfile {
    exits: Vec<(usize, f64)>,
}

impl ExitProfile {
    /// A checked profile: fractions non-negative and summing to 1 (within 1e-6), at least
    /// one exit, every exit after at least one layer.
    pub fn new(exits: Vec<(usize, f64)>) -> Result<Self> {
        if exits.is_empty() {
            return Err(DvfsError::invalid(
                "exit_profile",
                "needs at least one exit",
            ));
        }
        if exits
            .iter()
            .any(|&(l, f)| l == 0 || !f.is_finite() || f < 0.0)
        {
            return Err(DvfsError::invalid(
                "exit_profile",
                "every exit needs >= 1 layer and a finite, non-negative fraction",
            ));
        }
        let total: f64 = exits.iter().map(|e| e.1).sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(DvfsError::invalid(
                "exit_profile",
                format!("fractions sum to {total}, not 1"),
            ));
        }
        Ok(Self { exits })
    }

    /// The `(layers executed, fraction)` pairs.
    pub fn exits(&self) -> &[(usize, f64)] {
        &self.exits
    }
}

/// A subnet whose latency (and optionally energy) was measured at one reference operating
/// point; a cost model supplies how they scale with the clocks (see
/// [`ConfigurationSet::from_reference_measurements`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredVariant {
    /// The subnet and its exits, costed by the model.
    pub variant: Variant,
    /// Measured latency at the reference point, ms.
    pub latency_ms: f64,
    /// Measured energy at the reference point, mJ (`None`: the model's energy is kept and
    /// scaled by the latency calibration factor).
    pub energy_mj: Option<f64>,
}

/// Expected latency and energy of `variant` at `point`: the whole network, or with an exit
/// profile the exit-rate-weighted prefix costs computed by [`ExitAware`] (the one place
/// expected cost with exits is computed; the exit heads are not costed separately here).
fn expected_cost(
    model: &dyn CostModel,
    variant: &Variant,
    point: &OperatingPoint,
) -> Result<(f64, f64)> {
    let cost = match &variant.exit_profile {
        None => model.estimate(&variant.network, point)?,
        Some(profile) => {
            let n = variant.network.layers.len();
            if let Some(&(layers, _)) = profile.exits().iter().find(|e| e.0 > n) {
                return Err(DvfsError::invalid(
                    "exit_profile",
                    format!(
                        "subnet `{}`: exit after {layers} layers but the network has {n}",
                        variant.name()
                    ),
                ));
            }
            let exits = profile
                .exits()
                .iter()
                .map(|&(after_layers, probability)| ExitPoint {
                    after_layers,
                    probability,
                    head: Cost {
                        latency_ms: 0.0,
                        energy_mj: Some(0.0),
                        peak_memory_bytes: None,
                    },
                })
                .collect();
            ExitAware::new(BorrowedModel(model), exits)?.estimate(&variant.network, point)?
        }
    };
    let energy = cost.energy_mj.ok_or_else(|| {
        DvfsError::invalid(
            "model",
            format!("cost model `{}` gives no energy estimate", model.name()),
        )
    })?;
    Ok((cost.latency_ms, energy))
}

/// A borrowed trait object as a [`CostModel`] (so wrappers that own their inner model can
/// borrow one).
struct BorrowedModel<'a>(&'a dyn CostModel);

impl CostModel for BorrowedModel<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn estimate(
        &self,
        network: &Network,
        point: &OperatingPoint,
    ) -> dynas_cost::Result<dynas_cost::Cost> {
        self.0.estimate(network, point)
    }
    fn breakdown(
        &self,
        network: &Network,
        point: &OperatingPoint,
    ) -> dynas_cost::Result<dynas_cost::CostBreakdown> {
        self.0.breakdown(network, point)
    }
}

impl Variant {
    /// The label, or the genotype's compact form when there is none.
    pub fn name(&self) -> String {
        if self.label.is_empty() {
            self.genotype.to_string()
        } else {
            self.label.clone()
        }
    }
}

impl ConfigurationSet {
    /// A validated set (non-empty; finite, positive latencies; non-negative energies).
    pub fn new(configurations: Vec<Configuration>) -> Result<Self> {
        Self::build(None, configurations, Path::new("<in memory>"))
    }

    /// A validated set whose operating points must all be supported by `device`.
    pub fn with_device(device: DeviceProfile, configurations: Vec<Configuration>) -> Result<Self> {
        Self::build(Some(device), configurations, Path::new("<in memory>"))
    }

    fn build(
        device: Option<DeviceProfile>,
        configurations: Vec<Configuration>,
        origin: &Path,
    ) -> Result<Self> {
        if configurations.is_empty() {
            return Err(DvfsError::parse(
                origin,
                None,
                "field `configurations` is empty",
            ));
        }
        for (i, c) in configurations.iter().enumerate() {
            c.validate(origin, i)?;
            if let Some(d) = &device
                && !d.supports(&c.point)
            {
                return Err(DvfsError::parse(
                    origin,
                    None,
                    format!(
                        "configuration {i}: field `point` ({}) is not an operating point of `{}`",
                        c.point, d.name
                    ),
                ));
            }
        }
        Ok(Self {
            space: None,
            device,
            configurations,
        })
    }

    /// The same set tied to the search space `space` (name as in
    /// [`dynas_space::SearchSpace`]).
    pub fn with_space(mut self, space: Option<String>) -> Self {
        self.space = space;
        self
    }

    /// The search space the genotypes belong to, if known.
    pub fn space(&self) -> Option<&str> {
        self.space.as_deref()
    }

    /// The runtime's configurations from a search's [`Deployment`]: one per point, with the
    /// point's genotype, exit thresholds, operating point and expected top-1, latency and
    /// energy; the deployment's space and device carry over.
    ///
    /// Energy is required by the manager's `min-energy` objective: a deployment without energy
    /// for any point (e.g. host-measured latency only) gets 0 mJ for every point, so the
    /// objective falls back to accuracy (its tie-break); a deployment with energy for some
    /// points but not others is refused.
    pub fn from_deployment(deployment: &Deployment) -> Result<Self> {
        let with_energy = deployment
            .points
            .iter()
            .filter(|p| p.metrics.energy_mj.is_some())
            .count();
        if with_energy != 0 && with_energy != deployment.points.len() {
            return Err(DvfsError::invalid(
                "deployment",
                format!(
                    "{with_energy} of {} points have an energy figure: all or none must",
                    deployment.points.len()
                ),
            ));
        }
        let configurations = deployment
            .points
            .iter()
            .map(|p| Configuration {
                genotype: p.genotype.clone(),
                label: String::new(),
                exits: p.exits.clone(),
                point: p.point.clone(),
                accuracy: p.metrics.top1,
                latency_ms: p.metrics.latency_ms,
                energy_mj: p.metrics.energy_mj.unwrap_or(0.0),
            })
            .collect();
        let origin = format!("<deployment `{}`>", deployment.method);
        Ok(Self::build(
            deployment.device.clone(),
            configurations,
            Path::new(&origin),
        )?
        .with_space(Some(deployment.space.clone())))
    }

    /// Reads a configuration table or a [`Deployment`] file (told apart by the deployment's
    /// top-level `points` field).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path)
            .map_err(|e| DvfsError::io(path, "read", e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DvfsError::parse(path, Some(e.line()), format!("{e}")))?;
        if value.get("points").is_some() {
            let deployment = Deployment::from_json_str(&text, path)
                .map_err(|e| DvfsError::parse(path, None, e.to_string()))?;
            Self::from_deployment(&deployment)
        } else {
            Self::from_json_str(&text, path)
        }
    }

    /// Every variant costed by `model` at every point of `points`, variant-major.
    pub fn from_cost_model(
        model: &dyn CostModel,
        variants: &[Variant],
        points: &[OperatingPoint],
    ) -> Result<Self> {
        let mut configurations = Vec::with_capacity(variants.len() * points.len());
        for v in variants {
            for p in points {
                let (latency_ms, energy_mj) = expected_cost(model, v, p)?;
                configurations.push(Configuration {
                    genotype: v.genotype.clone(),
                    label: v.label.clone(),
                    exits: v.exits.clone(),
                    point: p.clone(),
                    accuracy: v.accuracy,
                    latency_ms,
                    energy_mj,
                });
            }
        }
        Self::new(configurations)
    }

    /// Variants measured at `reference`, scaled to every point of `points` by the ratio the
    /// model predicts: `latency(p) = measured * model(p) / model(reference)`, likewise energy.
    pub fn from_reference_measurements(
        model: &dyn CostModel,
        measured: &[MeasuredVariant],
        reference: &OperatingPoint,
        points: &[OperatingPoint],
    ) -> Result<Self> {
        let mut configurations = Vec::with_capacity(measured.len() * points.len());
        for m in measured {
            if !m.latency_ms.is_finite() || m.latency_ms <= 0.0 {
                return Err(DvfsError::invalid(
                    "latency_ms",
                    format!("subnet `{}`: must be finite and positive", m.variant.name()),
                ));
            }
            let (ref_lat, ref_energy) = expected_cost(model, &m.variant, reference)?;
            if ref_lat <= 0.0 || ref_energy <= 0.0 {
                return Err(DvfsError::invalid(
                    "model",
                    format!(
                        "cost model `{}` gives a non-positive cost for `{}` at the reference",
                        model.name(),
                        m.variant.name()
                    ),
                ));
            }
            let lat_scale = m.latency_ms / ref_lat;
            let energy_scale = m.energy_mj.map_or(lat_scale, |e| e / ref_energy);
            for p in points {
                let (lat, energy) = expected_cost(model, &m.variant, p)?;
                configurations.push(Configuration {
                    genotype: m.variant.genotype.clone(),
                    label: m.variant.label.clone(),
                    exits: m.variant.exits.clone(),
                    point: p.clone(),
                    accuracy: m.variant.accuracy,
                    latency_ms: lat * lat_scale,
                    energy_mj: energy * energy_scale,
                });
            }
        }
        Self::new(configurations)
    }

    /// Loads a set from a JSON file (format in the type's documentation).
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path)
            .map_err(|e| DvfsError::io(path, "read", e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses a set from JSON text; `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &Path) -> Result<Self> {
        let raw: RawSet = serde_json::from_str(text)
            .map_err(|e| DvfsError::parse(origin, Some(e.line()), format!("{e}")))?;
        Ok(Self::build(raw.device, raw.configurations, origin)?.with_space(raw.space))
    }

    /// Writes the set as pretty JSON.
    pub fn to_json_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| DvfsError::parse(path, None, e.to_string()))?;
        dynas_space::files::write_output(path, text).map_err(|e| DvfsError::io(path, "write", e))
    }

    /// The device, if known.
    pub fn device(&self) -> Option<&DeviceProfile> {
        self.device.as_ref()
    }

    /// Number of configurations (never 0).
    pub fn len(&self) -> usize {
        self.configurations.len()
    }

    /// Always `false`: a set is never empty.
    pub fn is_empty(&self) -> bool {
        self.configurations.is_empty()
    }

    /// All configurations, indexable by [`ConfigId`]`.0`.
    pub fn configurations(&self) -> &[Configuration] {
        &self.configurations
    }

    /// The configuration `id`, or [`DvfsError::UnknownConfiguration`].
    pub fn get(&self, id: ConfigId) -> Result<&Configuration> {
        self.configurations
            .get(id.0)
            .ok_or(DvfsError::UnknownConfiguration {
                index: id.0,
                len: self.configurations.len(),
            })
    }

    /// Iterates over `(id, configuration)`.
    pub fn iter(&self) -> impl Iterator<Item = (ConfigId, &Configuration)> {
        self.configurations
            .iter()
            .enumerate()
            .map(|(i, c)| (ConfigId(i), c))
    }

    /// The subset satisfying `keep` (ids are renumbered); an error if nothing is kept.
    pub fn filter(&self, keep: impl Fn(&Configuration) -> bool) -> Result<Self> {
        let configurations: Vec<_> = self
            .configurations
            .iter()
            .filter(|c| keep(c))
            .cloned()
            .collect();
        if configurations.is_empty() {
            return Err(DvfsError::invalid("filter", "no configuration kept"));
        }
        Ok(Self {
            space: self.space.clone(),
            device: self.device.clone(),
            configurations,
        })
    }

    /// The fastest configuration (ties: less energy).
    pub fn fastest(&self) -> ConfigId {
        self.best_by(|a, b| {
            a.latency_ms
                .total_cmp(&b.latency_ms)
                .then(a.energy_mj.total_cmp(&b.energy_mj))
        })
    }

    /// The most accurate configuration (ties: faster, then less energy).
    pub fn most_accurate(&self) -> ConfigId {
        self.best_by(|a, b| {
            b.accuracy
                .total_cmp(&a.accuracy)
                .then(a.latency_ms.total_cmp(&b.latency_ms))
                .then(a.energy_mj.total_cmp(&b.energy_mj))
        })
    }

    fn best_by(
        &self,
        cmp: impl Fn(&Configuration, &Configuration) -> std::cmp::Ordering,
    ) -> ConfigId {
        let mut best = 0;
        for (i, c) in self.configurations.iter().enumerate().skip(1) {
            if cmp(c, &self.configurations[best]).is_lt() {
                best = i;
            }
        }
        ConfigId(best)
    }

    /// Ids of the configurations running the same subnet and exit thresholds as `id`.
    pub fn same_variant(&self, id: ConfigId) -> Result<Vec<ConfigId>> {
        let base = self.get(id)?;
        Ok(self
            .iter()
            .filter(|(_, c)| c.same_variant(base))
            .map(|(i, _)| i)
            .collect())
    }
}

#[cfg(test)]
mod tests;
