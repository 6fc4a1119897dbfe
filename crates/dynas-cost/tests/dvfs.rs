//! DVFS laws and the DVFS-scaled lookup-table model on the shipped measured data.

use approx::assert_relative_eq;
use dynas_cost::dvfs::{DvfsLawParams, DvfsScalingLaw, read_gpu_sweep, read_power_sweep};
use dynas_cost::lut::harmonic_key;
use dynas_cost::{
    ClockDomain, CostError, CostModel, CostSource, DvfsLutModel, LayerLut, OperatingPoint,
    jetson_agx_xavier_operating_points,
};
use dynas_space::{Activation, Layer, MbConvSpace, Network, SearchSpace};
use rand::seq::SliceRandom;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data");

fn data(rel: &str) -> String {
    format!("{DATA}/{rel}")
}

fn xavier() -> DvfsLutModel {
    DvfsLutModel::jetson_agx_xavier(DATA).unwrap()
}

/// Mean held-out MAPE over `seeds` draws of 5 fitted clocks per network.
fn held_out_mape(params: DvfsLawParams, seeds: u64) -> f64 {
    let sweeps = read_gpu_sweep(data("dvfs/jetson_tx2_gpu_sweep.csv")).unwrap();
    let params = params.check().unwrap();
    let (mut sum, mut n) = (0.0, 0usize);
    for seed in 0..seeds {
        let mut rng = dynas_space::seeded_rng(seed);
        for s in &sweeps {
            let mut idx: Vec<usize> = (0..s.clock_hz.len()).collect();
            idx.shuffle(&mut rng);
            let (train, test) = idx.split_at(5);
            let clocks: Vec<Vec<f64>> = train.iter().map(|&i| vec![s.clock_hz[i]]).collect();
            let y: Vec<f64> = train.iter().map(|&i| s.latency_ms[i]).collect();
            let law = DvfsScalingLaw::fit_with(&clocks, &y, &params).unwrap();
            for &i in test {
                let t = s.latency_ms[i];
                sum += ((law.predict(&[s.clock_hz[i]]) - t) / t).abs();
                n += 1;
            }
        }
    }
    sum / n as f64
}

#[test]
fn soft_roofline_beats_the_additive_law_on_held_out_tx2_clocks() {
    let soft = held_out_mape(DvfsLawParams::default(), 20);
    let additive = held_out_mape(DvfsLawParams::additive(), 20);
    assert!(soft < 0.035, "soft roofline MAPE {soft}");
    assert!(soft < additive, "soft {soft} vs additive {additive}");
}

#[test]
fn sweep_readers_skip_the_empty_row_and_convert_milliwatts() {
    let sweeps = read_gpu_sweep(data("dvfs/jetson_tx2_gpu_sweep.csv")).unwrap();
    let counts: Vec<(String, usize)> = sweeps
        .iter()
        .map(|s| (s.network.clone(), s.clock_hz.len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("inception_v4".to_string(), 13),
            ("super_resolution".to_string(), 12),
            ("vgg19".to_string(), 13)
        ]
    );
    let power = read_power_sweep(data("dvfs/jetson_tx2_vgg19_gpu_dvfs_power.csv")).unwrap();
    assert_eq!(power.gpu_hz.len(), 13);
    assert!(power.gpu_hz.windows(2).all(|w| w[0] < w[1]));
    assert_relative_eq!(
        power.rail("VDD_IN").unwrap()[0],
        5.2476,
        max_relative = 1e-12
    );
    assert!(power.rail("VDD_NONE").is_err());
}

#[test]
fn bad_sweep_files_name_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.csv");
    std::fs::write(&path, "model,gpu_freq_hz,latency_ms\nnet,fast,1.0\n").unwrap();
    let err = read_gpu_sweep(&path).unwrap_err().to_string();
    assert!(
        err.contains("sweep.csv") && err.contains("gpu_freq_hz"),
        "{err}"
    );
    std::fs::write(&path, "model,gpu_freq_hz\nnet,1\n").unwrap();
    let err = read_gpu_sweep(&path).unwrap_err().to_string();
    assert!(err.contains("latency_ms"), "{err}");
    assert!(matches!(
        read_power_sweep(dir.path().join("missing.csv")),
        Err(CostError::Io { .. })
    ));
    assert!(matches!(
        DvfsLutModel::jetson_agx_xavier(dir.path()),
        Err(CostError::Io { .. })
    ));
}

#[test]
fn highest_clocks_give_the_measured_table_entries() {
    let model = xavier();
    let lut = LayerLut::from_harmonic_file(data("lut/ofa-mnist/jetson_agx_xavier.json")).unwrap();
    let space = MbConvSpace::ofa_mnist();
    let mut rng = dynas_space::seeded_rng(5);
    for genotype in (0..20).map(|_| space.sample(&mut rng)) {
        let net = space.decode(&genotype).unwrap();
        let b = model.breakdown(&net, &model.reference_point()).unwrap();
        for ((layer, cost), source) in net.layers.iter().zip(&b.layers).zip(model.sources(&net)) {
            match harmonic_key(layer) {
                Some(key) => {
                    let entry = lut.get(&key).unwrap();
                    assert_eq!(source, CostSource::Measured);
                    assert_relative_eq!(cost.latency_ms, entry.latency_ms, max_relative = 1e-12);
                    assert_relative_eq!(
                        cost.energy_mj.unwrap(),
                        entry.energy_mj.unwrap(),
                        max_relative = 1e-12
                    );
                }
                None => {
                    assert_eq!(source, CostSource::Free);
                    assert_relative_eq!(cost.latency_ms, 0.0);
                }
            }
        }
        let total = model.estimate(&net, &model.reference_point()).unwrap();
        let last = b.prefix_sums().last().copied().unwrap();
        assert_relative_eq!(total.latency_ms, last.latency_ms, max_relative = 1e-12);
        assert_relative_eq!(
            total.energy_mj.unwrap(),
            last.energy_mj.unwrap(),
            max_relative = 1e-12
        );
    }
}

#[test]
fn every_clock_matters_and_energy_is_u_shaped_over_the_gpu_clock() {
    let model = xavier();
    let net = {
        let space = MbConvSpace::ofa_mnist();
        space.decode(&space.largest()).unwrap()
    };
    let top = model.reference_point();
    let device = model.device().clone();
    let at_top = model.estimate(&net, &top).unwrap();
    let lowered = [
        OperatingPoint::new(
            device.cpu_hz.first().copied(),
            top.gpu_hz(),
            top.memory_hz(),
        )
        .unwrap(),
        OperatingPoint::new(
            top.cpu_hz(),
            device.gpu_hz.first().copied(),
            top.memory_hz(),
        )
        .unwrap(),
        OperatingPoint::new(
            top.cpu_hz(),
            top.gpu_hz(),
            device.memory_hz.first().copied(),
        )
        .unwrap(),
    ];
    for point in &lowered {
        let c = model.estimate(&net, point).unwrap();
        assert!(c.latency_ms > 1.05 * at_top.latency_ms, "{point}: {c:?}");
    }
    let energies: Vec<f64> = device
        .gpu_hz
        .iter()
        .map(|&g| {
            model
                .estimate(
                    &net,
                    &OperatingPoint::new(top.cpu_hz(), Some(g), top.memory_hz()).unwrap(),
                )
                .unwrap()
                .energy_mj
                .unwrap()
        })
        .collect();
    let argmin = (0..energies.len())
        .min_by(|&a, &b| energies[a].total_cmp(&energies[b]))
        .unwrap();
    assert!(
        argmin > 0 && argmin + 1 < energies.len(),
        "interior energy minimum: {energies:?}"
    );
    // A 0 Hz clock cannot even be built into a point.
    assert!(matches!(
        OperatingPoint::new(Some(0), top.gpu_hz(), top.memory_hz()),
        Err(CostError::InvalidParameter { .. })
    ));
}

#[test]
fn exit_head_layers_without_keys_are_priced_by_the_regression() {
    let model = xavier();
    let input = dynas_space::TensorShape::new(24, 7, 7);
    let conv = Layer::conv("exit.conv", input, 32, 3, 1, Activation::Relu);
    let pool = Layer::global_avg_pool("exit.pool", conv.output());
    let head = Network::new(
        input,
        vec![conv, pool, Layer::linear("exit.linear", 32, 10)],
    );
    assert_eq!(
        model.sources(&head),
        [
            CostSource::Regression,
            CostSource::Free,
            CostSource::Regression
        ]
    );
    let r = model.regression();
    let b = model.breakdown(&head, &model.reference_point()).unwrap();
    let (lat, en) = r.predict(&head.layers[0]);
    assert_relative_eq!(b.layers[0].latency_ms, lat, max_relative = 1e-12);
    assert_relative_eq!(b.layers[0].energy_mj.unwrap(), en, max_relative = 1e-12);
    assert!(lat > r.latency[0] && en > 0.0);
    let slow = OperatingPoint::new(
        model.device().cpu_hz.first().copied(),
        model.device().gpu_hz.first().copied(),
        model.device().memory_hz.first().copied(),
    )
    .unwrap();
    let single = model.layer_cost(&head.layers[2], &slow).unwrap();
    assert!(single.latency_ms > b.layers[2].latency_ms);
}

#[test]
fn the_xavier_grid_has_every_clock_combination() {
    let points = jetson_agx_xavier_operating_points(DATA).unwrap();
    assert_eq!(points.len(), 29 * 14 * 9);
    let model = xavier();
    assert_eq!(model.operating_points(), points);
    assert!(points.iter().all(|p| model.device().supports(p)));
    assert_eq!(
        points.iter().max().unwrap().gpu_hz(),
        model.reference_point().gpu_hz()
    );
}

#[test]
fn a_clock_domain_the_model_does_not_price_is_a_typed_error() {
    // The DVFS laws were fitted on CPU / GPU / memory sweeps: a DLA clock cannot be priced,
    // and ignoring it would give the same cost at every DLA clock.
    let model = xavier();
    let net = {
        let space = MbConvSpace::ofa_mnist();
        space.decode(&space.largest()).unwrap()
    };
    let with_dla = model
        .reference_point()
        .with_clock(ClockDomain::named("dla0").unwrap(), 1_395_200_000)
        .unwrap();
    for result in [
        model.estimate(&net, &with_dla).map(|_| ()),
        model.breakdown(&net, &with_dla).map(|_| ()),
    ] {
        let err = result.expect_err("unknown domain");
        assert!(
            matches!(&err, CostError::UnknownClockDomain { model, domain, .. }
                if model == "dvfs-lut" && domain == "dla0"),
            "{err}"
        );
        assert!(err.to_string().contains("dla0"), "{err}");
    }
    // The same point without the DLA clock is priced as before.
    assert!(model.estimate(&net, &model.reference_point()).is_ok());
}
