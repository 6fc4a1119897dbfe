//! Reference configuration sets built from published data.
//!
//! [`dynamic_ofa_xavier`] uses Dynamic-OFA's published GPU runtime levels (Lou et al.,
//! Jetson Xavier NX; top-1 % and ms at the highest clocks) as the subnet family, the
//! operating points of a device preset (Jetson AGX Xavier: 14 GPU x 9 EMC clocks) and a cost
//! model for how latency and energy scale with the clocks. The published latency is the anchor
//! at the highest operating point; the model supplies the ratios elsewhere. The NX levels on
//! AGX Xavier clocks are a proxy (the two boards share the Volta GPU architecture; the AGX has
//! more SMs), stated wherever the set is used.

use dynas_cost::{ClockDomain, CostModel, DeviceProfile, OperatingPoint};
use dynas_space::{Genotype, SearchSpace, mbconv::MbConvSpace};

use crate::config::{ConfigurationSet, MeasuredVariant, Variant};
use crate::error::{DvfsError, Result};

/// Dynamic-OFA's runtime levels on the Jetson Xavier NX GPU: (top-1 %, latency ms).
pub const DYNAMIC_OFA_XAVIER_NX_GPU: [(f64, f64); 6] = [
    (74.2, 41.2),
    (75.0, 45.4),
    (76.1, 49.4),
    (77.5, 51.1),
    (78.3, 56.7),
    (79.0, 61.7),
];

/// Every GPU x memory clock of `device` (GPU slowest-varying), with the CPU clock and any
/// named domain at its highest (the network runs on the GPU).
pub fn gpu_memory_points(device: &DeviceProfile) -> Vec<OperatingPoint> {
    let top = device.max_operating_point();
    device
        .operating_points()
        .into_iter()
        .filter(|p| {
            p.clocks().all(|(d, hz)| {
                matches!(d, ClockDomain::Gpu | ClockDomain::Memory) || top.hz(d) == Some(hz)
            })
        })
        .collect()
}

/// `count` OFA MobileNetV3 subnets sampled with `seed`, sorted by the model's latency at
/// `point`, with those latencies.
pub fn sample_ofa_subnets(
    model: &dyn CostModel,
    point: &OperatingPoint,
    count: usize,
    seed: u64,
) -> Result<Vec<(Genotype, dynas_space::Network, f64)>> {
    let space = MbConvSpace::ofa_mobilenet_v3();
    let mut rng = dynas_space::seeded_rng(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let g = space.sample(&mut rng);
        let net = space
            .decode(&g)
            .map_err(|e| DvfsError::invalid("subnet", e.to_string()))?;
        let lat = model.estimate(&net, point)?.latency_ms;
        out.push((g, net, lat));
    }
    out.sort_by(|a, b| a.2.total_cmp(&b.2));
    Ok(out)
}

/// The Dynamic-OFA levels as configurations over `device`'s GPU x memory clocks.
///
/// For each level an OFA MobileNetV3 subnet is picked among 400 seeded samples so that the
/// model's latency ratios between levels match the published ones (the smallest level at the
/// 10th latency percentile). Latency and energy at the highest point are the published latency
/// and the model's energy scaled by the same calibration factor; elsewhere the model's ratios.
pub fn dynamic_ofa_xavier(
    model: &dyn CostModel,
    device: &DeviceProfile,
) -> Result<ConfigurationSet> {
    let reference = device.max_operating_point();
    let samples = sample_ofa_subnets(model, &reference, 400, 2024)?;
    let base = samples[samples.len() / 10].2;
    let (_, base_ms) = DYNAMIC_OFA_XAVIER_NX_GPU[0];
    let measured: Vec<MeasuredVariant> = DYNAMIC_OFA_XAVIER_NX_GPU
        .iter()
        .enumerate()
        .map(|(i, &(acc, ms))| {
            let want = base * ms / base_ms;
            let (genotype, net, _) = samples
                .iter()
                .min_by(|a, b| (a.2 - want).abs().total_cmp(&(b.2 - want).abs()))
                .cloned()
                .ok_or_else(|| DvfsError::invalid("samples", "no subnet sampled"))?;
            Ok(MeasuredVariant {
                variant: Variant {
                    genotype,
                    label: format!("dofa-l{i}"),
                    exits: vec![],
                    network: net,
                    accuracy: acc,
                    exit_profile: None,
                },
                latency_ms: ms,
                energy_mj: None,
            })
        })
        .collect::<Result<_>>()?;
    let points = gpu_memory_points(device);
    let set = ConfigurationSet::from_reference_measurements(model, &measured, &reference, &points)?;
    Ok(
        ConfigurationSet::with_device(device.clone(), set.configurations().to_vec())?
            .with_space(Some(MbConvSpace::ofa_mobilenet_v3().name().to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use dynas_cost::{AnalyticalModel, AnalyticalParams};

    #[test]
    fn dynamic_ofa_levels_anchor_at_max_clocks_and_slow_down_below() {
        let dev = DeviceProfile::jetson_agx_xavier();
        let model = AnalyticalModel::new(dev.clone(), AnalyticalParams::default()).expect("model");
        let set = dynamic_ofa_xavier(&model, &dev).expect("set");
        assert_eq!(set.len(), 6 * 14 * 9);
        let top = OperatingPoint::new(
            dev.cpu_hz.last().copied(),
            dev.gpu_hz.last().copied(),
            dev.memory_hz.last().copied(),
        )
        .expect("valid point");
        let at_top: Vec<_> = set
            .configurations()
            .iter()
            .filter(|c| c.point == top)
            .collect();
        assert_eq!(at_top.len(), 6);
        for (c, &(acc, ms)) in at_top.iter().zip(&DYNAMIC_OFA_XAVIER_NX_GPU) {
            assert_relative_eq!(c.accuracy, acc);
            assert_relative_eq!(c.latency_ms, ms, max_relative = 1e-9);
        }
        assert!(
            set.configurations()
                .iter()
                .all(|c| c.latency_ms >= 41.2 - 1e-9)
        );
    }
}
