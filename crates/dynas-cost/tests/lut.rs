//! LUT and table models on the shipped real data.

use std::collections::HashMap;
use std::sync::Arc;

use approx::assert_relative_eq;
use dynas_cost::lut::{harmonic_key, ofa_key, parse_ofa_key};
use dynas_cost::{
    AnalyticalModel, AnalyticalParams, CostError, CostModel, DeviceProfile, FbNetInput, FbNetLut,
    KeyScheme, LayerLut, LutModel, OperatingPoint, TableModel,
};
use std::collections::BTreeSet;

use dynas_space::{Activation, Layer, MbConvSpace, Network, SearchSpace, TensorShape, seeded_rng};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data");

fn data(rel: &str) -> String {
    format!("{DATA}/{rel}")
}

#[test]
fn fbnet_lut_sums_reproduce_the_published_columns() {
    let lut = FbNetLut::from_file(data("fbnet/hwnasbench_fbnet_lut.json")).unwrap();
    let mut reader = csv::Reader::from_path(data("fbnet/fbnet_5000_archs_cifar100.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let metrics = [
        "raspi4_latency",
        "pixel3_latency",
        "eyeriss_latency",
        "fpga_latency",
    ];
    let mut rows = 0;
    for rec in reader.records() {
        let rec = rec.unwrap();
        let ops = FbNetLut::parse_ops(&rec[col("ops")]).unwrap();
        for m in metrics {
            let published: f64 = rec[col(&format!("hwnb_{m}"))].parse().unwrap();
            let sum = lut.sum_ops(m, &ops, FbNetInput::Cifar100).unwrap();
            // The CSV prints 6 significant digits: the sum rounded the same way must match.
            let rounded: f64 = format!("{:.5e}", sum).parse().unwrap();
            assert!(
                ((rounded - published) / published).abs() < 1e-9,
                "{m} of {}: LUT sum {sum} vs published {published}",
                &rec[col("ops")]
            );
        }
        rows += 1;
    }
    assert_eq!(rows, 5000);
}

#[test]
fn fbnet_model_sums_layers_by_name_and_names_a_missing_key() {
    let lut = Arc::new(FbNetLut::from_file(data("fbnet/hwnasbench_fbnet_lut.json")).unwrap());
    let ops = FbNetLut::parse_ops("7818488874147327324245").unwrap();
    let s = TensorShape::new(16, 32, 32);
    let layers: Vec<Layer> = FbNetLut::layer_keys(&ops, FbNetInput::Cifar100)
        .unwrap()
        .into_iter()
        .map(|k| Layer::identity(k, s))
        .collect();
    let net = Network::new(TensorShape::new(3, 32, 32), layers.clone());
    let model = lut.model("raspi4_latency", Some("fpga_energy")).unwrap();
    let c = model.estimate(&net, &OperatingPoint::default()).unwrap();
    assert_relative_eq!(c.latency_ms, 30.2529, max_relative = 2e-6);
    assert_relative_eq!(c.energy_mj.unwrap(), 177.119, max_relative = 3e-6);
    let b = model.breakdown(&net, &OperatingPoint::default()).unwrap();
    assert_eq!(b.layers.len(), 26);

    let mut broken = layers;
    broken[3].name = "ConvBlock_H1_W1_nonsense".to_string();
    let err = model
        .estimate(&Network::new(s, broken), &OperatingPoint::default())
        .unwrap_err();
    assert!(
        matches!(&err, CostError::MissingKey { key, .. } if key == "ConvBlock_H1_W1_nonsense"),
        "{err}"
    );
    assert!(lut.model("no_such_metric", None).is_err());
    assert!(FbNetLut::parse_ops("12x").is_err());
}

#[test]
fn fbnet_model_indexed_by_genotype_agrees_with_the_lookup_by_name() {
    let lut = Arc::new(FbNetLut::from_file(data("fbnet/hwnasbench_fbnet_lut.json")).unwrap());
    let model = lut
        .model("edgegpu_latency", Some("edgegpu_energy"))
        .unwrap();
    let point = OperatingPoint::default();
    let mut rng = seeded_rng(4);
    for input in FbNetInput::ALL {
        let space = input.space();
        for _ in 0..50 {
            let genotype = space.sample(&mut rng);
            let net = space.decode(&genotype).unwrap();
            // The same layers without `arch_id` take the lookup by name.
            let mut by_name = net.clone();
            by_name.arch_id = None;
            let expected = model.estimate(&by_name, &point).unwrap();
            let indexed = model.estimate(&net, &point).unwrap();
            let typed = model.estimate_genotype(&genotype, input).unwrap();
            for c in [indexed, typed] {
                assert_relative_eq!(c.latency_ms, expected.latency_ms, max_relative = 1e-12);
                assert_relative_eq!(
                    c.energy_mj.unwrap(),
                    expected.energy_mj.unwrap(),
                    max_relative = 1e-12
                );
            }
            let b = model.breakdown(&net, &point).unwrap();
            let b_name = model.breakdown(&by_name, &point).unwrap();
            assert_eq!(b.layers, b_name.layers);
        }
    }
    // CIFAR-10 networks share every layer with CIFAR-100 but the classifier: not indexed as
    // CIFAR-100, looked up by name.
    let cifar10 = dynas_space::FbNetSpace::cifar10();
    let net = cifar10.decode(&cifar10.smallest()).unwrap();
    let mut by_name = net.clone();
    by_name.arch_id = None;
    let c10 = model.estimate(&net, &point).unwrap();
    assert_relative_eq!(
        c10.latency_ms,
        model.estimate(&by_name, &point).unwrap().latency_ms,
        max_relative = 1e-12
    );
    let c100 = model
        .estimate_genotype(&cifar10.smallest(), FbNetInput::Cifar100)
        .unwrap();
    assert!((c10.latency_ms - c100.latency_ms).abs() > 0.0);
    assert!(model.estimate_ops(&[9; 22], FbNetInput::Cifar100).is_err());
    assert!(model.estimate_ops(&[0; 21], FbNetInput::Cifar100).is_err());
}

/// The OFA-MNIST network whose layers all appear in the shipped Harmonic-NAS LUT.
fn ofa_mnist_net() -> Network {
    let stem = Layer::conv(
        "stem",
        TensorShape::new(1, 28, 28),
        16,
        3,
        2,
        Activation::HardSwish,
    );
    let b0 = Layer::mbconv("b0", stem.output(), 16, 16, 3, 1, None, Activation::Relu);
    let b1 = Layer::mbconv("b1", b0.output(), 24, 48, 7, 2, None, Activation::Relu);
    let b2 = Layer::mbconv("b2", b1.output(), 24, 96, 7, 1, None, Activation::Relu);
    let fe = Layer::conv("final_expand", b2.output(), 40, 1, 1, Activation::HardSwish);
    let gap = Layer::global_avg_pool("gap", fe.output());
    let mix = Layer::conv("feature_mix", gap.output(), 80, 1, 1, Activation::HardSwish)
        .without_batch_norm();
    let fc = Layer::linear("classifier", 80, 10);
    Network::new(
        TensorShape::new(1, 28, 28),
        vec![stem, b0, b1, b2, fe, gap, mix, fc],
    )
}

#[test]
fn harmonic_lut_generates_the_published_keys() {
    let path = data("lut/ofa-mnist/jetson_agx_xavier.json");
    let lut = LayerLut::from_harmonic_file(&path).unwrap();
    let net = ofa_mnist_net();
    let raw: HashMap<String, HashMap<String, String>> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut expected_lat = 0.0;
    let mut expected_en = 0.0;
    for l in &net.layers {
        if let Some(k) = harmonic_key(l) {
            let e = raw
                .get(&k)
                .unwrap_or_else(|| panic!("generated key {k} not in the LUT"));
            expected_lat += e["lat"].parse::<f64>().unwrap();
            expected_en += e["enrg"].parse::<f64>().unwrap();
        }
    }
    let model = LutModel::new(lut.clone(), KeyScheme::Harmonic);
    let c = model.estimate(&net, &OperatingPoint::default()).unwrap();
    assert_relative_eq!(c.latency_ms, expected_lat, max_relative = 1e-12);
    assert_relative_eq!(c.energy_mj.unwrap(), expected_en, max_relative = 1e-12);
    assert!(c.latency_ms > 1.0);
    let b = model.breakdown(&net, &OperatingPoint::default()).unwrap();
    assert_relative_eq!(
        b.prefix(net.layers.len()).latency_ms,
        c.latency_ms,
        max_relative = 1e-12
    );

    // An unknown layer: error naming the key, or the fallback's answer.
    let mut odd = net.clone();
    odd.layers[2] = Layer::mbconv(
        "b1",
        odd.layers[1].output(),
        24,
        64,
        3,
        2,
        Some(8),
        Activation::Relu,
    );
    let err = model
        .estimate(&odd, &OperatingPoint::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mid_ch:64") && err.contains("use_se:1"),
        "{err}"
    );
    let fallback = Arc::new(
        AnalyticalModel::new(
            DeviceProfile::jetson_agx_xavier(),
            AnalyticalParams::default(),
        )
        .unwrap(),
    );
    let with_fb = LutModel::new(lut, KeyScheme::Harmonic).with_fallback(fallback);
    assert!(
        with_fb
            .estimate(&odd, &OperatingPoint::default())
            .unwrap()
            .latency_ms
            > 0.0
    );
}

#[test]
fn harmonic_lut_bad_value_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad_lut.json");
    std::fs::write(&p, r#"{"ConvLayer-x": {"lat": "fast"}}"#).unwrap();
    let err = LayerLut::from_harmonic_file(&p).unwrap_err().to_string();
    assert!(
        err.contains("bad_lut.json") && err.contains("ConvLayer-x") && err.contains("lat"),
        "{err}"
    );
}

#[test]
fn dynamic_ofa_tables_parse_round_trip_and_sum() {
    let model = LutModel::from_ofa_dir(data("lut/dynamic-ofa-xavier-nx/cpu")).unwrap();
    assert_eq!(
        model.resolutions(),
        (160..=224).step_by(4).collect::<Vec<_>>()
    );
    let lut = LayerLut::from_ofa_file(data("lut/dynamic-ofa-xavier-nx/cpu/224_lookup_table.json"))
        .unwrap();
    let mut parsed = 0;
    for key in lut.keys() {
        let layer = parse_ofa_key(key).unwrap_or_else(|| panic!("unparsed key {key}"));
        let index = usize::from(!key.starts_with("Conv-"));
        assert_eq!(ofa_key(&layer, index).as_deref(), Some(key));
        parsed += 1;
    }
    assert_eq!(parsed, lut.len());
    // A network of the first three keys at 224 costs the sum of their means.
    let keys = [
        "Conv-input:224x224x3-output:112x112x24",
        "expanded_conv-input:112x112x24-output:112x112x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0",
        "expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0",
    ];
    let layers: Vec<Layer> = keys.iter().map(|k| parse_ofa_key(k).unwrap()).collect();
    let net = Network::new(TensorShape::new(3, 224, 224), layers);
    let c = model.estimate(&net, &OperatingPoint::default()).unwrap();
    let sum: f64 = keys.iter().map(|k| lut.get(k).unwrap().latency_ms).sum();
    assert_relative_eq!(c.latency_ms, sum, max_relative = 1e-12);
    let small = Network::new(TensorShape::new(3, 150, 150), net.layers.clone());
    let err = model
        .estimate(&small, &OperatingPoint::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("resolution 150"), "{err}");
}

#[test]
fn nb201_table_is_an_exact_model() {
    let path = data("nb201/nb201_hw.csv");
    let t = TableModel::from_csv(&path, "raspi4_latency", None).unwrap();
    assert_eq!(t.len(), 15625);
    assert_eq!(t.skipped(), 0);
    let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
    let net = Network::new(TensorShape::new(3, 32, 32), vec![]).with_arch_id(arch);
    assert_relative_eq!(
        t.estimate(&net, &OperatingPoint::default())
            .unwrap()
            .latency_ms,
        54.7774
    );
    let err = t
        .estimate(
            &net.clone().with_arch_id("nope"),
            &OperatingPoint::default(),
        )
        .unwrap_err();
    assert!(matches!(err, CostError::UnknownArchitecture { .. }));
    let err = TableModel::from_csv(&path, "no_such_col", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no_such_col") && err.contains("nb201_hw.csv"),
        "{err}"
    );
}

#[test]
fn ofa_mnist_space_layers_are_exactly_the_harmonic_lut_keys() {
    let path = data("lut/ofa-mnist/jetson_agx_xavier.json");
    let raw: HashMap<String, HashMap<String, String>> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let space = MbConvSpace::ofa_mnist();
    let mut rng = seeded_rng(3);
    let mut produced = BTreeSet::new();
    for genotype in (0..400)
        .map(|_| space.sample(&mut rng))
        .chain([space.smallest(), space.largest()])
    {
        for layer in &space.decode(&genotype).unwrap().layers {
            if let Some(key) = harmonic_key(layer) {
                assert!(raw.contains_key(&key), "{key} of {genotype} not in the LUT");
                produced.insert(key);
            }
        }
    }
    let all: BTreeSet<String> = raw.keys().cloned().collect();
    assert_eq!(produced, all, "every LUT key is some layer of the space");
}

#[test]
fn ofa_width_1_2_space_layers_are_the_dynamic_ofa_lut_keys() {
    let space = MbConvSpace::ofa_mobilenet_v3_width(1.2).unwrap();
    let mut rng = seeded_rng(9);
    for resolution in [160, 164, 224] {
        let path = data(&format!(
            "lut/dynamic-ofa-xavier-nx/cpu/{resolution}_lookup_table.json"
        ));
        let lut: HashMap<String, serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut produced = BTreeSet::new();
        for _ in 0..300 {
            let mut subnet = space.subnet(&space.sample(&mut rng)).unwrap();
            subnet.resolution = resolution;
            for (index, layer) in space.network(&subnet).layers.iter().enumerate() {
                let key = ofa_key(layer, index).unwrap();
                assert!(lut.contains_key(&key), "{key} not in {path}");
                produced.insert(key);
            }
        }
        assert_eq!(produced.len(), lut.len(), "every key of {path} is produced");
    }
}

#[test]
fn lut_batch_estimates_equal_one_by_one_estimates() {
    // Fresh models, so the batch fills the per-worker memos from an empty shared memo.
    let space = MbConvSpace::ofa_mobilenet_v3_width(1.2).unwrap();
    let mut rng = seeded_rng(11);
    let mut nets: Vec<Network> = (0..400)
        .map(|_| space.decode(&space.sample(&mut rng)).unwrap())
        .collect();
    // A resolution without a table: its error must come back in place, not abort the batch.
    nets[7].input = TensorShape::new(3, 150, 150);
    let point = OperatingPoint::default();
    let batch_model = LutModel::from_ofa_dir(data("lut/dynamic-ofa-xavier-nx/cpu")).unwrap();
    let batch = batch_model.estimate_batch(&nets, &point);
    let single_model = LutModel::from_ofa_dir(data("lut/dynamic-ofa-xavier-nx/cpu")).unwrap();
    assert_eq!(batch.len(), nets.len());
    for (i, (net, got)) in nets.iter().zip(&batch).enumerate() {
        match (single_model.estimate(net, &point), got) {
            (Ok(a), Ok(b)) => assert_relative_eq!(a.latency_ms, b.latency_ms, max_relative = 1e-12),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("network {i}: one by one {a:?}, batch {b:?}"),
        }
    }
    assert!(batch[7].is_err());
}
