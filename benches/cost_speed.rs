//! Cost-model speed: one 40-layer network, and a batch of 10,000 architectures.
//!
//! ```text
//! cargo bench -p dynas-cost --bench cost_speed
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dynas_cost::lut::{FbNetInput, harmonic_key};
use dynas_cost::predictor::{ArchEncoding, ArchPredictor, Learner, TargetScale};
use dynas_cost::table::read_arch_targets;
use dynas_cost::{
    AnalyticalModel, AnalyticalParams, CostModel, DeviceProfile, FbNetLut, KeyScheme, LayerLut,
    LutEntry, LutModel, OperatingPoint, TableModel,
};
use dynas_space::{Activation, Layer, Network, SearchSpace, TensorShape};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data");

/// 40 layers: stem, 37 MBConv blocks, global pool, classifier.
fn net40(width_seed: usize) -> Network {
    let input = TensorShape::new(3, 224, 224);
    let mut layers = vec![Layer::conv("stem", input, 16, 3, 2, Activation::HardSwish)];
    let mut shape = layers[0].output();
    for i in 0..37 {
        let stride = if i % 8 == 0 && shape.height > 7 { 2 } else { 1 };
        let out = 16 + 8 * (i / 4) + 8 * ((i + width_seed) % 3);
        let e = 3 + (i + width_seed) % 4;
        let l = Layer::mbconv(
            format!("b{i}"),
            shape,
            out,
            shape.channels * e,
            3 + 2 * (i % 3),
            stride,
            None,
            Activation::Relu,
        );
        shape = l.output();
        layers.push(l);
    }
    layers.push(Layer::global_avg_pool("gap", shape));
    layers.push(Layer::linear("fc", shape.channels, 1000));
    Network::new(input, layers)
}

fn bench(c: &mut Criterion) {
    let device = DeviceProfile::jetson_agx_xavier();
    let analytical =
        AnalyticalModel::new(device.clone(), AnalyticalParams::default()).expect("params");
    let point = OperatingPoint::new(
        device.cpu_hz.last().copied(),
        Some(device.gpu_hz[7]),
        device.memory_hz.last().copied(),
    )
    .expect("valid point");
    let net = net40(0);
    assert_eq!(net.layers.len(), 40);

    // A Harmonic-format LUT with every layer of 50 variants (values from the analytical model).
    let variants: Vec<Network> = (0..50).map(net40).collect();
    let mut lut = LayerLut::new("bench");
    for n in &variants {
        for l in &n.layers {
            if let Some(k) = harmonic_key(l) {
                let lat = analytical
                    .estimate(&Network::new(l.input, vec![l.clone()]), &point)
                    .expect("estimate")
                    .latency_ms;
                lut.insert(k, LutEntry::new(lat, Some(lat * 5.0)));
            }
        }
    }
    let lut_model = LutModel::new(lut, KeyScheme::Harmonic);

    // HW-NAS-Bench FBNet LUT over a network named by its block keys.
    let fb = Arc::new(
        FbNetLut::from_file(format!("{DATA}/fbnet/hwnasbench_fbnet_lut.json")).expect("fbnet lut"),
    );
    let ops = FbNetLut::parse_ops("7818488874147327324245").expect("ops");
    let s = TensorShape::new(16, 32, 32);
    let fb_net = Network::new(
        s,
        FbNetLut::layer_keys(&ops, FbNetInput::Cifar100)
            .expect("keys")
            .into_iter()
            .map(|k| Layer::identity(k, s))
            .collect(),
    );
    let fb_model = fb.model("raspi4_latency", None).expect("metric");

    // NB201 predictor (1,000 training rows).
    let data =
        read_arch_targets(format!("{DATA}/nb201/nb201_hw.csv"), "raspi4_latency").expect("csv");
    let genes: Vec<Vec<usize>> = data.cells[..1000]
        .iter()
        .map(|c| c.ops().to_vec())
        .collect();
    let pred = ArchPredictor::fit(
        ArchEncoding::Nb201,
        &genes,
        &data.targets[..1000],
        Learner::default(),
        TargetScale::Linear,
    )
    .expect("fit");
    let nb_net = Network::new(TensorShape::new(3, 32, 32), vec![])
        .with_arch_id(data.cells[5000].to_string());

    let mut g = c.benchmark_group("one_network");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("analytical_40_layers", |b| {
        b.iter(|| analytical.estimate(black_box(&net), black_box(&point)))
    });
    g.bench_function("analytical_breakdown_40_layers", |b| {
        b.iter(|| analytical.breakdown(black_box(&net), black_box(&point)))
    });
    g.bench_function("harmonic_lut_40_layers", |b| {
        b.iter(|| lut_model.estimate(black_box(&net), black_box(&point)))
    });
    g.bench_function("fbnet_lut_26_blocks", |b| {
        b.iter(|| fb_model.estimate(black_box(&fb_net), black_box(&point)))
    });
    // The same architecture decoded by the space: indexed by its block digits.
    let fb_space = FbNetInput::Cifar100.space();
    let fb_genotype = fb_space.parse_ops("7818488874147327324245").expect("ops");
    let fb_decoded = fb_space.decode(&fb_genotype).expect("decode");
    g.bench_function("fbnet_lut_decoded_network", |b| {
        b.iter(|| fb_model.estimate(black_box(&fb_decoded), black_box(&point)))
    });
    g.bench_function("fbnet_lut_estimate_ops", |b| {
        b.iter(|| fb_model.estimate_ops(black_box(&ops), FbNetInput::Cifar100))
    });
    g.bench_function("nb201_arch_predictor", |b| {
        b.iter(|| pred.estimate(black_box(&nb_net), black_box(&point)))
    });
    g.finish();

    let batch: Vec<Network> = (0..10_000)
        .map(|i| variants[i % variants.len()].clone())
        .collect();
    let mut g = c.benchmark_group("batch_10000");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("analytical_parallel", |b| {
        b.iter(|| analytical.estimate_batch(black_box(&batch), &point))
    });
    g.bench_function("analytical_serial", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|n| analytical.estimate(n, &point))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("harmonic_lut_parallel", |b| {
        b.iter(|| lut_model.estimate_batch(black_box(&batch), &point))
    });
    g.bench_function("harmonic_lut_serial", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|n| lut_model.estimate(n, &point))
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

/// Loading the 15,625-row NAS-Bench-201 CSV.
fn bench_csv(c: &mut Criterion) {
    let path = format!("{DATA}/nb201/nb201_hw.csv");
    let mut g = c.benchmark_group("nb201_csv");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("read_arch_targets", |b| {
        b.iter(|| read_arch_targets(black_box(&path), "raspi4_latency").expect("csv"))
    });
    g.bench_function("table_model_from_csv", |b| {
        b.iter(|| {
            TableModel::from_csv(black_box(&path), "raspi4_latency", Some("pixel3_latency"))
                .expect("csv")
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_csv);
criterion_main!(benches);
