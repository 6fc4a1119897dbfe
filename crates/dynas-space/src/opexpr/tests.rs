use super::*;
use crate::network::{CustomCounts, Layer, Network, PoolKind};
use crate::{FbNetSpace, MbConvSpace, Nb201Space, SearchSpace, seeded_rng};

fn assert_counts_agree(network: &Network) {
    for layer in &network.layers {
        let expr = LayerExpr::from_layer(layer);
        assert_eq!(expr.macs(), layer.macs(), "MACs of {}", layer.name);
        assert_eq!(expr.params(), layer.params(), "params of {}", layer.name);
        assert_eq!(
            expr.written_bytes(),
            layer.activation_bytes(),
            "bytes of {}",
            layer.name
        );
    }
}

#[test]
fn expressions_agree_with_the_counters_on_every_space() {
    let mut rng = seeded_rng(3);
    let spaces: Vec<Box<dyn SearchSpace>> = vec![
        Box::new(MbConvSpace::attentive_nas()),
        Box::new(MbConvSpace::ofa_mobilenet_v3()),
        Box::new(Nb201Space::new()),
        Box::new(FbNetSpace::cifar100()),
    ];
    for space in &spaces {
        for _ in 0..20 {
            let genotype = space.sample(&mut rng);
            let network = space.decode(&genotype).expect("decode");
            assert_counts_agree(&network);
        }
    }
}

#[test]
fn rectangular_dilated_and_custom_layers_agree_too() {
    let input = TensorShape::new(8, 9, 9);
    let layers = vec![
        Layer::conv("kx1", input, 16, 3, 1, Activation::Relu).with_kernel_hw(3, 1),
        Layer::conv("dil", input, 16, 2, 2, Activation::Relu).with_dilation(2),
        Layer::pool("p", PoolKind::Max, input, 3, 2),
        Layer::custom(
            "user",
            input,
            8,
            1,
            CustomCounts {
                macs: 5,
                params: 7,
                written_elements: 11,
            },
        ),
        Layer::zero("z", input),
        Layer::identity("i", input),
    ];
    assert_counts_agree(&Network::new(input, layers));
}

#[test]
fn receptive_fields_compose_through_strides_and_dilations() {
    let input = TensorShape::new(1, 32, 32);
    let a = Layer::conv("a", input, 4, 3, 2, Activation::Relu);
    let b = Layer::conv("b", a.output(), 4, 3, 1, Activation::Relu);
    let c = Layer::conv("c", b.output(), 4, 3, 1, Activation::Relu).with_dilation(2);
    let rf = network_receptive_field(&Network::new(input, vec![a, b, c]));
    // 3, then +2*2 = 7, then +(5-1)*2 = 15.
    assert_eq!((rf.height, rf.width), (15, 15));
    assert_eq!(rf.jump_height, 2);
    let kx1 = Layer::conv("k", input, 4, 5, 1, Activation::Relu).with_kernel_hw(5, 1);
    let field = LayerExpr::from_layer(&kx1).receptive_field();
    assert_eq!((field.height, field.width), (5, 1));
}

#[test]
fn bytes_moved_count_input_weights_and_output() {
    let layer =
        Layer::conv("c", TensorShape::new(2, 4, 4), 3, 3, 1, Activation::None).without_batch_norm();
    let expr = LayerExpr::from_layer(&layer);
    let expected = (2 * 16 + (3 * 2 * 9 + 3) + 3 * 16) * BYTES_PER_ELEMENT;
    assert_eq!(expr.bytes_moved(), expected);
    let text = expr.terms[0].to_string();
    assert!(
        text.contains("sum_{ci<2,kh<3,kw<3} W[co,ci,kh,kw]"),
        "{text}"
    );
}
