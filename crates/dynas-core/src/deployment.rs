//! The hand-off from a search to the runtime: a versioned, serde-JSON [`Deployment`] of the
//! chosen dynamic configurations (subnet genotype, early exits with calibrated thresholds,
//! operating point) and what each is expected to achieve.
//!
//! HADAS, Dynamic-OFA pre-sampling and every other producer write it; the runtime manager in
//! `dynas-dvfs` is built from it with nothing dropped (exit positions included). Subnets are
//! referred to by their [`Genotype`] in the named search space, checked against that space
//! when it is known ([`Deployment::new`] takes the space itself, and files naming a built-in
//! space are checked against it on reading).
//!
//! Files are strict: an unknown or misspelt key (`energy_mJ`), a contradictory duplicate
//! point, a genotype outside the space or an exit after a layer the subnet does not have is an
//! error naming the file and field, never a silent default.

use std::path::Path;

use dynas_cost::{DeviceProfile, OperatingPoint};
use dynas_space::{Genotype, LayerIndex, SearchSpace};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// The newest deployment file format version: this crate reads versions 1 and 2.
///
/// * Version 1: operating points set CPU, GPU and memory clocks only (`cpu_hz`, `gpu_hz`,
///   `memory_hz`).
/// * Version 2: points and the device may also carry further named clock domains
///   (`"dla0_hz": 1395200000` in a point, `"other_clocks": {"dla0": [...]}` in the device).
///
/// A deployment is written as version 1 when it uses no named domain, so files of CPU / GPU /
/// memory boards stay byte-identical and readable by older builds; an older build refuses a
/// version-2 file instead of silently dropping a clock it does not know.
pub const DEPLOYMENT_VERSION: u32 = 2;

/// The version a deployment with these points and device needs (see [`DEPLOYMENT_VERSION`]).
fn needed_version(device: Option<&DeviceProfile>, points: &[DeploymentPoint]) -> u32 {
    let named_point = points
        .iter()
        .any(|p| p.point.clocks().any(|(d, _)| !d.is_well_known()));
    let named_device = device.is_some_and(|d| !d.other_clocks.is_empty());
    if named_point || named_device { 2 } else { 1 }
}

/// Where a figure comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Provenance {
    /// Measured, e.g. `"Fashion-MNIST validation split, 5,000 images"` or
    /// `"host CPU, libtorch, batch 1, 2 threads"`.
    Measured {
        /// On what it was measured.
        on: String,
    },
    /// Given by a model, e.g. `"Jetson AGX Xavier LUT x fitted DVFS law"`.
    Modelled {
        /// Which model, fitted on what.
        model: String,
    },
}

impl Provenance {
    /// A measured figure.
    pub fn measured(on: impl Into<String>) -> Self {
        Self::Measured { on: on.into() }
    }

    /// A modelled figure.
    pub fn modelled(model: impl Into<String>) -> Self {
        Self::Modelled {
            model: model.into(),
        }
    }
}

/// One early exit of a deployed subnet: where it sits, when an input leaves there, and how
/// often inputs did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedExit {
    /// The exit head reads the output of this layer of the subnet's decoded network (a 0-based
    /// index, see [`LayerIndex`]; a 1-based layer count must go through
    /// [`LayerIndex::from_count`]).
    pub after_layer: LayerIndex,
    /// Max-softmax confidence at or above which an input leaves here, in `[0, 1]`.
    pub threshold: f64,
    /// Fraction of the calibration inputs that left here.
    pub exit_rate: f64,
}

/// Expected accuracy and cost of one deployed configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedMetrics {
    /// Top-1 accuracy in percent (exit-rate weighted when the point has exits).
    pub top1: f64,
    /// Expected latency per inference on an idle device, ms.
    pub latency_ms: f64,
    /// Expected energy per inference, mJ, where known.
    pub energy_mj: Option<f64>,
    /// Where `top1` comes from.
    pub accuracy_source: Provenance,
    /// Where latency and energy come from.
    pub cost_source: Provenance,
}

/// One runnable configuration: a subnet, its exits and an operating point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentPoint {
    /// The subnet, in the deployment's search space.
    pub genotype: Genotype,
    /// Its early exits in increasing layer order (empty: run to the final classifier).
    #[serde(default)]
    pub exits: Vec<DeployedExit>,
    /// The DVFS operating point (all clocks `None`: the board's default governor).
    #[serde(default)]
    pub point: OperatingPoint,
    /// What it achieves.
    pub metrics: DeployedMetrics,
}

/// A versioned set of deployable configurations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// File format version (1 or 2, see [`DEPLOYMENT_VERSION`]).
    pub version: u32,
    /// The method that produced it (`"hadas"`, `"dynamic-ofa"`, ...).
    pub method: String,
    /// Name of the search space the genotypes belong to (e.g. `"ofa-mnist"`).
    pub space: String,
    /// The device whose operating points are used, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceProfile>,
    /// The configurations.
    pub points: Vec<DeploymentPoint>,
}

impl Deployment {
    /// A validated deployment of genotypes of `space` (see [`Deployment::validate_in`]): a
    /// genotype the space does not accept, or an exit after a layer its network does not
    /// have, is refused here rather than at run time.
    pub fn new(
        method: impl Into<String>,
        space: &dyn SearchSpace,
        device: Option<DeviceProfile>,
        points: Vec<DeploymentPoint>,
    ) -> Result<Self> {
        let d = Self {
            version: needed_version(device.as_ref(), &points),
            method: method.into(),
            space: space.name().to_string(),
            device,
            points,
        };
        // Built in code, not read from a file: the error names the field, not a path.
        d.validate_in(space, Path::new("")).map_err(|e| match e {
            CoreError::Parse {
                field: Some(field),
                reason,
                ..
            } => CoreError::Invalid {
                name: field,
                reason,
            },
            other => other,
        })?;
        Ok(d)
    }

    /// [`Deployment::validate`], then checks that the deployment names `space`, that every
    /// genotype belongs to it and that every exit sits after a layer of the genotype's network.
    pub fn validate_in(&self, space: &dyn SearchSpace, origin: &Path) -> Result<()> {
        self.validate(origin)?;
        let bad = |field: String, reason: String| CoreError::Parse {
            path: origin.to_path_buf(),
            line: None,
            field: Some(field),
            reason,
        };
        if self.space != space.name() {
            return Err(bad(
                "space".into(),
                format!("`{}` is not the space `{}`", self.space, space.name()),
            ));
        }
        for (i, p) in self.points.iter().enumerate() {
            space
                .validate(&p.genotype)
                .map_err(|e| bad(format!("points[{i}].genotype"), e.to_string()))?;
            // A space without network descriptions (a table) cannot say how many layers a
            // subnet has; its exits are checked for order and range only.
            let Ok(network) = space.decode(&p.genotype) else {
                continue;
            };
            let layers = network.layers.len();
            if let Some((j, e)) = p
                .exits
                .iter()
                .enumerate()
                .find(|(_, e)| e.after_layer.index() + 1 >= layers)
            {
                return Err(bad(
                    format!("points[{i}].exits[{j}].after_layer"),
                    format!(
                        "layer index {} is not before the last of the subnet's {layers} layers",
                        e.after_layer
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks every field that needs no search space; `origin` names the file in errors.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |field: String, reason: String| CoreError::Parse {
            path: origin.to_path_buf(),
            line: None,
            field: Some(field),
            reason,
        };
        if !(1..=DEPLOYMENT_VERSION).contains(&self.version) {
            return Err(bad(
                "version".into(),
                format!(
                    "version {} is not supported (this build reads 1 to {DEPLOYMENT_VERSION})",
                    self.version
                ),
            ));
        }
        let needed = needed_version(self.device.as_ref(), &self.points);
        if self.version < needed {
            return Err(bad(
                "version".into(),
                format!(
                    "version {} has no named clock domains, but the file uses them (needs \
                     version {needed})",
                    self.version
                ),
            ));
        }
        if self.points.is_empty() {
            return Err(bad("points".into(), "no configuration".into()));
        }
        for (i, p) in self.points.iter().enumerate() {
            let field = |f: &str| format!("points[{i}].{f}");
            if p.genotype.is_empty() {
                return Err(bad(field("genotype"), "empty genotype".into()));
            }
            for (j, e) in p.exits.iter().enumerate() {
                if !(0.0..=1.0).contains(&e.threshold) {
                    return Err(bad(
                        field(&format!("exits[{j}].threshold")),
                        format!("{} is not in [0, 1]", e.threshold),
                    ));
                }
                if !(0.0..=1.0).contains(&e.exit_rate) {
                    return Err(bad(
                        field(&format!("exits[{j}].exit_rate")),
                        format!("{} is not in [0, 1]", e.exit_rate),
                    ));
                }
            }
            if p.exits
                .windows(2)
                .any(|w| w[1].after_layer <= w[0].after_layer)
            {
                return Err(bad(
                    field("exits"),
                    "exits must be in strictly increasing layer order".into(),
                ));
            }
            let total_rate: f64 = p.exits.iter().map(|e| e.exit_rate).sum();
            if total_rate > 1.0 + 1e-9 {
                return Err(bad(
                    field("exits"),
                    format!("exit rates sum to {total_rate} > 1"),
                ));
            }
            let m = &p.metrics;
            if !(m.top1.is_finite() && (0.0..=100.0).contains(&m.top1)) {
                return Err(bad(
                    field("metrics.top1"),
                    format!("{} is not a percentage", m.top1),
                ));
            }
            if !(m.latency_ms.is_finite() && m.latency_ms > 0.0) {
                return Err(bad(
                    field("metrics.latency_ms"),
                    format!("{} is not finite and positive", m.latency_ms),
                ));
            }
            if let Some(e) = m.energy_mj
                && !(e.is_finite() && e >= 0.0)
            {
                return Err(bad(
                    field("metrics.energy_mj"),
                    format!("{e} is not finite and non-negative"),
                ));
            }
            if let Some(device) = &self.device {
                // A point may leave a domain to the default governor, but every clock it sets
                // must be one of the device's, in a domain the device has.
                if let Some((domain, hz)) = p.point.clocks().find(|(d, hz)| {
                    let list = device.clocks_of(d);
                    let known = device.domains().iter().any(|(k, _)| k == *d);
                    !known || !(list.is_empty() || list.contains(hz))
                }) {
                    return Err(bad(
                        field(&format!("point.{}", domain.field())),
                        format!(
                            "{hz} Hz is not a {domain} clock of `{}` (point {})",
                            device.name, p.point
                        ),
                    ));
                }
            }
        }
        // The same configuration twice is at best redundant and at worst contradictory (two
        // different expectations for one runnable thing): the runtime could not tell them apart.
        for (i, p) in self.points.iter().enumerate() {
            if let Some(j) = self.points[..i]
                .iter()
                .position(|q| q.genotype == p.genotype && q.exits == p.exits && q.point == p.point)
            {
                return Err(bad(
                    format!("points[{i}]"),
                    format!("the same configuration as points[{j}] (genotype, exits and clocks)"),
                ));
            }
        }
        Ok(())
    }

    /// Reads and validates a deployment file; a file naming a built-in space
    /// ([`dynas_space::builtin_space`]) is also checked against that space.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::read_text(path)?;
        Self::from_json_str(&text, path)
    }

    /// Parses and validates a deployment (a leading UTF-8 byte-order mark is skipped);
    /// `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &Path) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let d: Self = serde_json::from_str(text).map_err(|e| CoreError::Parse {
            path: origin.to_path_buf(),
            line: Some(e.line() as u64),
            field: None,
            reason: e.to_string(),
        })?;
        match dynas_space::builtin_space(&d.space) {
            Some(space) => d.validate_in(space.as_ref(), origin)?,
            None => d.validate(origin)?,
        }
        Ok(d)
    }

    /// Writes the deployment as pretty JSON, atomically (temporary file, fsync, rename), so an
    /// interrupted write never leaves a truncated file in place.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self).map_err(|e| CoreError::Parse {
            path: path.to_path_buf(),
            line: None,
            field: None,
            reason: e.to_string(),
        })?;
        crate::write_atomically(path, text.as_bytes())
    }

    /// The points whose metrics are not dominated in (top-1 max, latency min, energy min).
    pub fn pareto_points(&self) -> Vec<&DeploymentPoint> {
        let f: Vec<Vec<f64>> = self
            .points
            .iter()
            .map(|p| {
                vec![
                    -p.metrics.top1,
                    p.metrics.latency_ms,
                    p.metrics.energy_mj.unwrap_or(0.0),
                ]
            })
            .collect();
        crate::pareto::non_dominated(&f)
            .into_iter()
            .map(|i| &self.points[i])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynas_space::MbConvSpace;

    fn space() -> MbConvSpace {
        MbConvSpace::ofa_mnist()
    }

    /// A valid ofa-mnist genotype, distinct for each `k` (the depth gene and one kernel gene).
    fn genotype(k: usize) -> Genotype {
        let mut g = space().largest().into_genes();
        g[1] = k % 3;
        g[2] = (k / 3) % 3;
        Genotype::new(g)
    }

    fn point(top1: f64, latency_ms: f64, energy: f64) -> DeploymentPoint {
        DeploymentPoint {
            genotype: genotype(latency_ms as usize * 10 + energy as usize),
            exits: vec![DeployedExit {
                after_layer: LayerIndex::new(1),
                threshold: 0.9,
                exit_rate: 0.4,
            }],
            point: OperatingPoint::new(None, Some(1_377_000_000), None).unwrap(),
            metrics: DeployedMetrics {
                top1,
                latency_ms,
                energy_mj: Some(energy),
                accuracy_source: Provenance::measured("validation"),
                cost_source: Provenance::modelled("LUT"),
            },
        }
    }

    #[test]
    fn round_trips_through_json_and_keeps_only_valid_files() {
        let d = Deployment::new(
            "hadas",
            &space(),
            None,
            vec![point(90.0, 2.0, 5.0), point(91.0, 3.0, 6.0)],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        d.write_json(&path).unwrap();
        let back = Deployment::from_json_file(&path).unwrap();
        assert_eq!(back, d);

        let mut wrong = serde_json::to_value(&d).unwrap();
        wrong["points"][0]["exits"][0]["threshold"] = serde_json::json!(1.5);
        let err = Deployment::from_json_str(&wrong.to_string(), &path).unwrap_err();
        assert!(
            err.to_string().contains("points[0].exits[0].threshold"),
            "{err}"
        );

        let mut future = serde_json::to_value(&d).unwrap();
        future["version"] = serde_json::json!(99);
        let err = Deployment::from_json_str(&future.to_string(), &path).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
    }

    #[test]
    fn pareto_points_drop_dominated_configurations() {
        let d = Deployment::new(
            "hadas",
            &space(),
            None,
            vec![
                point(90.0, 2.0, 5.0),
                point(89.0, 2.5, 6.0),
                point(91.0, 3.0, 6.0),
            ],
        )
        .unwrap();
        let front = d.pareto_points();
        assert_eq!(front.len(), 2);
        assert!(front.iter().all(|p| p.metrics.top1 != 89.0));
    }

    #[test]
    fn a_named_clock_domain_round_trips_as_version_2() {
        use dynas_cost::{ClockDomain, ComputeUnit, DomainName};
        let device = DeviceProfile::new(
            "xavier-dla",
            ComputeUnit::Gpu,
            vec![],
            vec![1_377_000_000],
            vec![],
        )
        .unwrap()
        .with_domain(
            DomainName::new("dla0").unwrap(),
            vec![640_000_000, 1_395_200_000],
        )
        .unwrap();
        let dla = ClockDomain::named("dla0").unwrap();
        let mut p = point(90.0, 2.0, 5.0);
        p.point = p.point.with_clock(dla.clone(), 640_000_000).unwrap();
        let d = Deployment::new("hadas", &space(), Some(device), vec![p]).unwrap();
        assert_eq!(d.version, 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        d.write_json(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""dla0_hz": 640000000"#), "{text}");
        let back = Deployment::from_json_file(&path).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.points[0].point.hz(&dla), Some(640_000_000));

        // A DLA clock the device does not list is named with its field.
        let mut off = serde_json::to_value(&d).unwrap();
        off["points"][0]["point"]["dla0_hz"] = serde_json::json!(1);
        let err = Deployment::from_json_str(&off.to_string(), &path).unwrap_err();
        assert!(err.to_string().contains("points[0].point.dla0_hz"), "{err}");
        // A version-1 file cannot carry a named domain (an older build would drop it).
        let mut old = serde_json::to_value(&d).unwrap();
        old["version"] = serde_json::json!(1);
        let err = Deployment::from_json_str(&old.to_string(), &path).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
    }

    #[test]
    fn version_1_files_are_read_and_written_unchanged() {
        // The format written before named domains: `null` for clocks not set, version 1.
        let text = r#"{"version": 1, "method": "hadas", "space": "ofa-mnist", "points": [
            {"genotype": [1, 2, 2, 2, 2, 2, 2, 2, 2, 2], "exits": [],
             "point": {"cpu_hz": null, "gpu_hz": 1377000000, "memory_hz": null},
             "metrics": {"top1": 90.0, "latency_ms": 2.0, "energy_mj": 5.0,
                         "accuracy_source": {"kind": "measured", "on": "validation"},
                         "cost_source": {"kind": "modelled", "model": "LUT"}}}]}"#;
        let d = Deployment::from_json_str(text, Path::new("old.json")).unwrap();
        assert_eq!(d.version, 1);
        assert_eq!(
            d.points[0].point,
            OperatingPoint::new(None, Some(1_377_000_000), None).unwrap()
        );
        let again = Deployment::new("hadas", &space(), None, d.points.clone()).unwrap();
        assert_eq!(again.version, 1);
        let written = serde_json::to_value(&again).unwrap();
        assert_eq!(
            written["points"][0]["point"]["cpu_hz"],
            serde_json::Value::Null
        );
    }
}

#[cfg(test)]
mod strictness {
    use super::*;
    use dynas_space::MbConvSpace;

    fn valid() -> (MbConvSpace, Deployment) {
        let space = MbConvSpace::ofa_mnist();
        let point = DeploymentPoint {
            genotype: space.largest(),
            exits: vec![DeployedExit {
                after_layer: LayerIndex::new(3),
                threshold: 0.9,
                exit_rate: 0.3,
            }],
            point: OperatingPoint::default(),
            metrics: DeployedMetrics {
                top1: 91.0,
                latency_ms: 2.0,
                energy_mj: Some(3.0),
                accuracy_source: Provenance::measured("validation"),
                cost_source: Provenance::modelled("LUT"),
            },
        };
        let d = Deployment::new("hadas", &space, None, vec![point]).unwrap();
        (space, d)
    }

    fn refused(value: serde_json::Value, needle: &str) {
        let err =
            Deployment::from_json_str(&value.to_string(), Path::new("dep.json")).expect_err(needle);
        let text = err.to_string();
        assert!(
            text.contains("dep.json") && text.contains(needle),
            "{needle}: {text}"
        );
    }

    #[test]
    fn a_genotype_outside_the_space_is_refused_in_code_and_in_files() {
        let (space, d) = valid();
        let mut long = d.points[0].clone();
        long.genotype = Genotype::new(vec![0; space.dimensions().len() + 1]);
        let err = Deployment::new("hadas", &space, None, vec![long]).unwrap_err();
        assert!(err.to_string().contains("points[0].genotype"), "{err}");
        let mut v = serde_json::to_value(&d).unwrap();
        v["points"][0]["genotype"] = serde_json::json!([9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
        refused(v, "points[0].genotype");
    }

    #[test]
    fn an_exit_after_a_missing_layer_is_refused() {
        let (_, d) = valid();
        let mut v = serde_json::to_value(&d).unwrap();
        v["points"][0]["exits"][0]["after_layer"] = serde_json::json!(500);
        refused(v, "points[0].exits[0].after_layer");
    }

    #[test]
    fn misspelt_keys_and_duplicate_points_are_refused() {
        let (_, d) = valid();
        let mut v = serde_json::to_value(&d).unwrap();
        let metrics = v["points"][0]["metrics"].as_object_mut().unwrap();
        let energy = metrics.remove("energy_mj").unwrap();
        metrics.insert("energy_mJ".into(), energy);
        refused(v, "energy_mJ");

        let mut v = serde_json::to_value(&d).unwrap();
        let mut twin = v["points"][0].clone();
        twin["metrics"]["top1"] = serde_json::json!(50.0);
        v["points"].as_array_mut().unwrap().push(twin);
        refused(v, "points[1]");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let (_, d) = valid();
        let text = format!("\u{feff}{}", serde_json::to_string(&d).unwrap());
        assert_eq!(
            Deployment::from_json_str(&text, Path::new("bom.json")).unwrap(),
            d
        );
    }
}
