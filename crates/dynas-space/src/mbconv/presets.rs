//! The paper presets of [`MbConvSpace`], as data.

use super::*;

impl MbConvSpace {
    /// The AttentiveNAS space searched by HADAS (28 genes, kernel and expand ratio per stage,
    /// swish everywhere, v3 head with final expand 6x, 1000 classes; see
    /// [`MbConvSpace::with_num_classes`] for CIFAR-100).
    pub fn attentive_nas() -> Self {
        let stage = |name: &str,
                     widths: &[usize],
                     depths: &[usize],
                     expand_ratios: &[usize],
                     stride: usize,
                     se: bool| StageSpec {
            name: name.to_string(),
            widths: widths.to_vec(),
            depths: depths.to_vec(),
            kernels: vec![3, 5],
            expand_ratios: expand_ratios.to_vec(),
            stride,
            se,
            activation: Activation::Swish,
            scope: ChoiceScope::PerStage,
        };
        let stages = vec![
            stage("mb1", &[16, 24], &[1, 2], &[1], 1, false),
            stage("mb2", &[24, 32], &[3, 4, 5], &[4, 5, 6], 2, false),
            stage("mb3", &[32, 40], &[3, 4, 5, 6], &[4, 5, 6], 2, true),
            stage("mb4", &[64, 72], &[3, 4, 5, 6], &[4, 5, 6], 2, false),
            stage(
                "mb5",
                &[112, 120, 128],
                &[3, 4, 5, 6, 7, 8],
                &[4, 5, 6],
                1,
                true,
            ),
            stage(
                "mb6",
                &[192, 200, 208, 216],
                &[3, 4, 5, 6, 7, 8],
                &[6],
                2,
                true,
            ),
            stage("mb7", &[216, 224], &[1, 2], &[6], 1, true),
        ];
        let head = HeadSpec {
            in_channels: 3,
            resolutions: vec![192, 224, 256, 288],
            first_conv_widths: vec![16, 24],
            first_conv_stride: 2,
            first_conv_activation: Activation::Swish,
            first_block: None,
            final_expand: FinalExpand::Ratio(6),
            feature_mix_widths: Some(vec![1792, 1984]),
            tail_activation: Activation::Swish,
            num_classes: 1000,
            channel_divisor: 8,
            projection_shortcuts: true,
        };
        Self::new("attentive-nas", head, stages).expect("the AttentiveNAS preset is valid")
    }

    /// once-for-all's OFAMobileNetV3 (width multiplier 1.0): 5 stages of up to 4 blocks, depth
    /// 2/3/4 per stage, kernel 3/5/7 and expand ratio 3/4/6 per block, resolution 160..=224
    /// in steps of 4 (46 genes). First conv and first block 16, stages 24 / 40 (SE) / 80 /
    /// 112 (SE) / 160 (SE) with strides 2, 2, 2, 1, 2, ReLU in the first two stages and hard
    /// swish after, final expand 960, feature mix 1280, 1000 classes.
    pub fn ofa_mobilenet_v3() -> Self {
        Self::ofa_mobilenet_v3_width(1.0).expect("width 1.0 is valid")
    }

    /// [`MbConvSpace::ofa_mobilenet_v3`] with every width scaled by `width_mult` and rounded
    /// to a multiple of 8 as once-for-all does (1.2 is the network of Dynamic-OFA's Jetson
    /// lookup tables: 24 / 32 / 48 / 96 / 136 / 192, final expand 1152, feature mix 1536).
    pub fn ofa_mobilenet_v3_width(width_mult: f64) -> Result<Self> {
        if !(width_mult.is_finite() && width_mult > 0.0 && width_mult <= 10.0) {
            return Err(SpaceError::InvalidParameter {
                name: "width_mult",
                reason: format!("{width_mult} is not in (0, 10]"),
            });
        }
        let scaled = |channels: usize| make_divisible_scaled(channels as f64 * width_mult, 8);
        let stage = |name: &str, width: usize, stride: usize, se: bool, activation| StageSpec {
            name: name.to_string(),
            widths: vec![scaled(width)],
            depths: vec![2, 3, 4],
            kernels: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            stride,
            se,
            activation,
            scope: ChoiceScope::PerBlock,
        };
        let stages = vec![
            stage("stage1", 24, 2, false, Activation::Relu),
            stage("stage2", 40, 2, true, Activation::Relu),
            stage("stage3", 80, 2, false, Activation::HardSwish),
            stage("stage4", 112, 1, true, Activation::HardSwish),
            stage("stage5", 160, 2, true, Activation::HardSwish),
        ];
        let head = HeadSpec {
            in_channels: 3,
            resolutions: (160..=224).step_by(4).collect(),
            first_conv_widths: vec![scaled(16)],
            first_conv_stride: 2,
            first_conv_activation: Activation::HardSwish,
            first_block: Some(FirstBlockSpec {
                width: scaled(16),
                kernel: 3,
                expand_ratio: 1,
                stride: 1,
                se: false,
                activation: Activation::Relu,
            }),
            final_expand: FinalExpand::Widths(vec![scaled(960)]),
            feature_mix_widths: Some(vec![scaled(1280)]),
            tail_activation: Activation::HardSwish,
            num_classes: 1000,
            channel_divisor: 8,
            projection_shortcuts: false,
        };
        let name = if width_mult == 1.0 {
            "ofa-mobilenet-v3".to_string()
        } else {
            format!("ofa-mobilenet-v3-w{width_mult}")
        };
        Self::new(name, head, stages)
    }

    /// A small once-for-all space for 1-channel 28x28 (or 20x20) images that trains on a CPU
    /// in minutes, with the layers of the `lut/ofa-mnist` Jetson lookup tables: first conv
    /// 1->16 k3 s2, first block 16->16 e1 k3, one stage of width 24 (first block stride 2,
    /// kernel 3/5/7 and expand 3/4/6 per block, depth 2/3/4 as in OFA's elastic depth), final
    /// expand 1x1 conv 24->40 with batch norm, global pool, feature-mix 1x1 conv 40->80
    /// without batch norm, linear 80->10. Genes: resolution (20/28), depth, 4 x (kernel, expand).
    pub fn ofa_mnist() -> Self {
        let stages = vec![StageSpec {
            name: "stage1".to_string(),
            widths: vec![24],
            depths: vec![2, 3, 4],
            kernels: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            stride: 2,
            se: false,
            activation: Activation::Relu,
            scope: ChoiceScope::PerBlock,
        }];
        let head = HeadSpec {
            in_channels: 1,
            resolutions: vec![20, 28],
            first_conv_widths: vec![16],
            first_conv_stride: 2,
            first_conv_activation: Activation::HardSwish,
            first_block: Some(FirstBlockSpec {
                width: 16,
                kernel: 3,
                expand_ratio: 1,
                stride: 1,
                se: false,
                activation: Activation::Relu,
            }),
            final_expand: FinalExpand::Widths(vec![40]),
            feature_mix_widths: Some(vec![80]),
            tail_activation: Activation::HardSwish,
            num_classes: 10,
            channel_divisor: 8,
            projection_shortcuts: false,
        };
        Self::new("ofa-mnist", head, stages).expect("the OFA MNIST preset is valid")
    }

    /// GoldenNAS's width-elastic space for 1-channel 28x28 (or 20x20) images: the head of
    /// [`MbConvSpace::ofa_mnist`] (first conv 1->16 k3 s2, first block 16->16 e1 k3) with
    /// several output widths per stage, so that channel scaling is trained. Stage 1: widths
    /// 16/24/32, depth 2/3/4, kernel 3/5/7 and expand 3/4/6 per block, stride 2, ReLU;
    /// stage 2: widths 24/40/56, depth 2/3, kernel 3/5 and expand 3/4/6 per block, stride 2,
    /// hard swish; final expand 1x1 conv to 64 or 96 channels, global pool, feature-mix 1x1
    /// conv to 128, linear to 10 (20 genes; the largest subnet has about 30x the MACs of the
    /// smallest).
    pub fn fmnist_elastic_width() -> Self {
        let stage =
            |name: &str, widths: &[usize], depths: &[usize], kernels: &[usize], activation| {
                StageSpec {
                    name: name.to_string(),
                    widths: widths.to_vec(),
                    depths: depths.to_vec(),
                    kernels: kernels.to_vec(),
                    expand_ratios: vec![3, 4, 6],
                    stride: 2,
                    se: false,
                    activation,
                    scope: ChoiceScope::PerBlock,
                }
            };
        let stages = vec![
            stage(
                "stage1",
                &[16, 24, 32],
                &[2, 3, 4],
                &[3, 5, 7],
                Activation::Relu,
            ),
            stage(
                "stage2",
                &[24, 40, 56],
                &[2, 3],
                &[3, 5],
                Activation::HardSwish,
            ),
        ];
        let head = HeadSpec {
            final_expand: FinalExpand::Widths(vec![64, 96]),
            feature_mix_widths: Some(vec![128]),
            ..Self::ofa_mnist().head().clone()
        };
        Self::new("fmnist-elastic-width", head, stages)
            .expect("the width-elastic Fashion-MNIST preset is valid")
    }
}
