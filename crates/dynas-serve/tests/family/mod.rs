//! The tiny family both serving test binaries pre-sample: a two-width one-stage space and
//! small pre-sampling parameters.

#![allow(dead_code)]

use dynas_serve::PresampleParams;
use dynas_space::{
    Activation, ChoiceScope, FinalExpand, FirstBlockSpec, HeadSpec, MbConvSpace, StageSpec,
};

pub fn tiny_space() -> MbConvSpace {
    let stage = |name: &str, widths: Vec<usize>, stride| StageSpec {
        name: name.to_string(),
        widths,
        depths: vec![1, 2],
        kernels: vec![3, 5],
        expand_ratios: vec![2, 4],
        stride,
        se: false,
        activation: Activation::Relu,
        scope: ChoiceScope::PerBlock,
    };
    let head = HeadSpec {
        in_channels: 1,
        resolutions: vec![16],
        first_conv_widths: vec![8],
        first_conv_stride: 2,
        first_conv_activation: Activation::Relu,
        first_block: Some(FirstBlockSpec {
            width: 8,
            kernel: 3,
            expand_ratio: 1,
            stride: 1,
            se: false,
            activation: Activation::Relu,
        }),
        final_expand: FinalExpand::Widths(vec![16]),
        feature_mix_widths: Some(vec![16]),
        tail_activation: Activation::Relu,
        num_classes: 5,
        channel_divisor: 4,
        projection_shortcuts: true,
    };
    MbConvSpace::new("tiny-dofa", head, vec![stage("s1", vec![8, 16], 2)]).unwrap()
}

pub fn params() -> PresampleParams {
    PresampleParams {
        samples: 8,
        family_size: 3,
        threads: vec![1, 2],
        serve_threads: 1,
        warmup: 1,
        repeats: 3,
        calibration_batches: 2,
        batch_size: 16,
        seed: 5,
    }
}
