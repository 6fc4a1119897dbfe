use super::*;
use approx::assert_relative_eq;
use dynas_space::{Activation, Layer, TensorShape};
use rand::Rng;

pub(crate) fn mobilenet_like() -> Network {
    let mut layers = vec![Layer::conv(
        "stem",
        TensorShape::new(3, 224, 224),
        32,
        3,
        2,
        Activation::Relu6,
    )];
    let mut shape = layers[0].output();
    for (i, &(c, s)) in [
        (16, 1),
        (24, 2),
        (24, 1),
        (40, 2),
        (40, 1),
        (80, 2),
        (112, 1),
    ]
    .iter()
    .enumerate()
    {
        let l = Layer::mbconv(
            format!("b{i}"),
            shape,
            c,
            shape.channels * 6,
            3,
            s,
            None,
            Activation::Relu6,
        );
        shape = l.output();
        layers.push(l);
    }
    layers.push(Layer::global_avg_pool("gap", shape));
    layers.push(Layer::linear("fc", shape.channels, 1000));
    Network::new(TensorShape::new(3, 224, 224), layers)
}

#[test]
fn latency_falls_with_clock_and_energy_is_u_shaped() {
    let device = DeviceProfile::jetson_agx_xavier();
    let model = AnalyticalModel::new(device.clone(), AnalyticalParams::default()).unwrap();
    let net = mobilenet_like();
    let mem = device.memory_hz.last().copied();
    let costs: Vec<Cost> = device
        .gpu_hz
        .iter()
        .map(|&g| {
            model
                .estimate(&net, &OperatingPoint::new(None, Some(g), mem).unwrap())
                .unwrap()
        })
        .collect();
    assert!(costs.windows(2).all(|w| w[1].latency_ms <= w[0].latency_ms));
    let energies: Vec<f64> = costs.iter().map(|c| c.energy_mj.unwrap()).collect();
    let argmin = (0..energies.len())
        .min_by(|&a, &b| energies[a].total_cmp(&energies[b]))
        .unwrap();
    assert!(
        argmin > 0 && argmin < energies.len() - 1,
        "energy minimum at an interior clock: {energies:?}"
    );
    let b = model.breakdown(
        &net,
        &OperatingPoint::new(None, Some(device.gpu_hz[5]), mem).unwrap(),
    );
    let b = b.unwrap();
    assert_eq!(b.layers.len(), net.layers.len());
    let direct = model
        .estimate(
            &net,
            &OperatingPoint::new(None, Some(device.gpu_hz[5]), mem).unwrap(),
        )
        .unwrap();
    assert_relative_eq!(b.total.latency_ms, direct.latency_ms, max_relative = 1e-12);
}

#[test]
fn fit_recovers_parameters_from_synthetic_measurements() {
    let device = DeviceProfile::jetson_agx_xavier();
    let truth = AnalyticalParams::builder()
        .macs_per_cycle(180.0)
        .bytes_per_cycle(20.0)
        .layer_overhead_ms(0.0)
        .network_overhead_ms(0.5)
        .power_w(3.0, 12.0, 1.5)
        .new()
        .unwrap();
    let model = AnalyticalModel::new(device.clone(), truth).unwrap();
    let net = mobilenet_like();
    let mut rng = dynas_space::seeded_rng(3);
    let points: Vec<OperatingPoint> = (0..12)
        .map(|_| {
            OperatingPoint::new(
                None,
                Some(device.gpu_hz[rng.random_range(0..device.gpu_hz.len())]),
                Some(device.memory_hz[rng.random_range(0..device.memory_hz.len())]),
            )
            .unwrap()
        })
        .collect();
    let ms: Vec<Measurement<'_>> = points
        .iter()
        .map(|p| {
            let c = model.estimate(&net, p).unwrap();
            Measurement {
                network: &net,
                point: p.clone(),
                latency_ms: c.latency_ms,
                energy_mj: c.energy_mj,
            }
        })
        .collect();
    let fitted = AnalyticalModel::fit(device.clone(), &ms, AnalyticalParams::default()).unwrap();
    for p in device.operating_points().iter().step_by(97) {
        let (a, b) = (
            model.estimate(&net, p).unwrap(),
            fitted.estimate(&net, p).unwrap(),
        );
        assert_relative_eq!(a.latency_ms, b.latency_ms, max_relative = 1e-6);
        assert_relative_eq!(
            a.energy_mj.unwrap(),
            b.energy_mj.unwrap(),
            max_relative = 1e-6
        );
    }
}

#[test]
fn invalid_params_and_too_few_points_are_typed_errors() {
    let bad = AnalyticalParams::builder().macs_per_cycle(-1.0).new();
    assert!(
        matches!(bad, Err(CostError::InvalidParameter { name, .. }) if name == "macs_per_cycle")
    );
    let net = mobilenet_like();
    let one = [Measurement {
        network: &net,
        point: OperatingPoint::default(),
        latency_ms: 1.0,
        energy_mj: None,
    }];
    let r = AnalyticalModel::fit(
        DeviceProfile::jetson_tx2(),
        &one,
        AnalyticalParams::default(),
    );
    assert!(matches!(r, Err(CostError::Fit { .. })));
}

#[test]
fn a_named_clock_domain_is_refused_not_ignored() {
    let device = DeviceProfile::jetson_agx_xavier();
    let model = AnalyticalModel::new(device.clone(), AnalyticalParams::default()).unwrap();
    let npu = device
        .max_operating_point()
        .with_clock(ClockDomain::named("npu").unwrap(), 800_000_000)
        .unwrap();
    let err = model.estimate(&mobilenet_like(), &npu).unwrap_err();
    assert!(
        matches!(&err, CostError::UnknownClockDomain { domain, .. } if domain == "npu"),
        "{err}"
    );
}

#[test]
fn a_network_on_an_npu_follows_the_npu_clock() {
    use crate::device::{ComputeUnit, DomainName};
    let npu = DomainName::new("npu").unwrap();
    let board = DeviceProfile::new(
        "npu-board",
        ComputeUnit::Accelerator(npu.clone()),
        vec![1_800_000_000],
        vec![],
        vec![2_133_000_000],
    );
    // The compute unit needs clocks of its own.
    assert!(board.is_err());
    let board = DeviceProfile::new(
        "npu-board",
        ComputeUnit::Cpu,
        vec![1_800_000_000],
        vec![],
        vec![2_133_000_000],
    )
    .unwrap()
    .with_domain(npu.clone(), vec![300_000_000, 800_000_000])
    .unwrap();
    let board = DeviceProfile {
        compute_unit: ComputeUnit::Accelerator(npu),
        ..board
    };
    let json = serde_json::to_string(&board).unwrap();
    assert!(json.contains(r#""compute_unit":"npu""#), "{json}");
    let model = AnalyticalModel::new(board.clone(), AnalyticalParams::default()).unwrap();
    let (slow, fast) = (board.min_operating_point(), board.max_operating_point());
    let net = mobilenet_like();
    let (s, f) = (
        model.estimate(&net, &slow).unwrap(),
        model.estimate(&net, &fast).unwrap(),
    );
    assert!(s.latency_ms > f.latency_ms, "{s:?} vs {f:?}");
}
