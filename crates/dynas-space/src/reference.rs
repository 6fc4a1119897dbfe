//! Hand-built reference networks to check the network description against published figures
//! (and to cost well-known baselines).
//!
//! Both follow torchvision's definitions: [`mobilenet_v2`] has 3,504,872 parameters at width
//! 1.0 and about 300 M MACs at 224x224; [`mobilenet_v3_large`] has 5,483,032 parameters and
//! 216.6 M MACs (the paper's 219 M also counts element-wise work).

use crate::error::{Result, SpaceError};
use crate::mbconv::make_divisible_scaled;
use crate::network::{Activation, Layer, Network, TensorShape};

/// MobileNetV2 with a width multiplier on `resolution` x `resolution` RGB images, 1000 classes.
///
/// Layer names: `first_conv`, `stage<i>.block<j>` (the 7 bottleneck groups), `last_conv`,
/// `global_pool`, `classifier`.
pub fn mobilenet_v2(width_mult: f64, resolution: usize) -> Result<Network> {
    if !(width_mult.is_finite() && width_mult > 0.0 && width_mult <= 10.0) {
        return Err(SpaceError::InvalidParameter {
            name: "width_mult",
            reason: format!("{width_mult} is not in (0, 10]"),
        });
    }
    if resolution < 32 {
        return Err(SpaceError::InvalidParameter {
            name: "resolution",
            reason: format!("{resolution} is below 32"),
        });
    }
    // (expand ratio t, channels c, repeats n, stride s) of the inverted-residual groups.
    const SETTINGS: [(usize, usize, usize, usize); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let input = TensorShape::new(3, resolution, resolution);
    let mut layers = Vec::with_capacity(22);
    let first = Layer::conv(
        "first_conv",
        input,
        make_divisible_scaled(32.0 * width_mult, 8),
        3,
        2,
        Activation::Relu6,
    );
    let mut shape = first.output();
    layers.push(first);
    for (stage, &(t, c, n, s)) in SETTINGS.iter().enumerate() {
        let out = make_divisible_scaled(c as f64 * width_mult, 8);
        for j in 0..n {
            // torchvision: hidden_dim = round(inp * t), no rounding to 8.
            let mid = shape.channels * t;
            let block = Layer::mbconv(
                format!("stage{}.block{j}", stage + 1),
                shape,
                out,
                mid,
                3,
                if j == 0 { s } else { 1 },
                None,
                Activation::Relu6,
            );
            shape = block.output();
            layers.push(block);
        }
    }
    let last = Layer::conv(
        "last_conv",
        shape,
        make_divisible_scaled(1280.0 * width_mult.max(1.0), 8),
        1,
        1,
        Activation::Relu6,
    );
    shape = last.output();
    layers.push(last);
    let pool = Layer::global_avg_pool("global_pool", shape);
    shape = pool.output();
    layers.push(pool);
    layers.push(Layer::linear("classifier", shape.channels, 1000));
    Ok(Network::new(input, layers))
}

/// MobileNetV3-Large at 224x224, 1000 classes.
///
/// Layer names: `first_conv`, `block<i>` (the 15 bneck blocks), `last_conv`, `global_pool`,
/// `classifier_hidden`, `classifier`.
pub fn mobilenet_v3_large() -> Network {
    use Activation::{HardSwish as HS, Relu as RE};
    // (kernel, expanded, out, SE, activation, stride) of the bneck blocks.
    const BLOCKS: [(usize, usize, usize, bool, Activation, usize); 15] = [
        (3, 16, 16, false, RE, 1),
        (3, 64, 24, false, RE, 2),
        (3, 72, 24, false, RE, 1),
        (5, 72, 40, true, RE, 2),
        (5, 120, 40, true, RE, 1),
        (5, 120, 40, true, RE, 1),
        (3, 240, 80, false, HS, 2),
        (3, 200, 80, false, HS, 1),
        (3, 184, 80, false, HS, 1),
        (3, 184, 80, false, HS, 1),
        (3, 480, 112, true, HS, 1),
        (3, 672, 112, true, HS, 1),
        (5, 672, 160, true, HS, 2),
        (5, 960, 160, true, HS, 1),
        (5, 960, 160, true, HS, 1),
    ];
    let input = TensorShape::new(3, 224, 224);
    let mut layers = Vec::with_capacity(21);
    let first = Layer::conv("first_conv", input, 16, 3, 2, HS);
    let mut shape = first.output();
    layers.push(first);
    for (i, &(kernel, mid, out, se, activation, stride)) in BLOCKS.iter().enumerate() {
        let block = Layer::mbconv(
            format!("block{i}"),
            shape,
            out,
            mid,
            kernel,
            stride,
            se.then(|| make_divisible_scaled((mid / 4) as f64, 8)),
            activation,
        );
        shape = block.output();
        layers.push(block);
    }
    let last = Layer::conv("last_conv", shape, 960, 1, 1, HS);
    shape = last.output();
    layers.push(last);
    let pool = Layer::global_avg_pool("global_pool", shape);
    shape = pool.output();
    layers.push(pool);
    let mut hidden = Layer::linear("classifier_hidden", shape.channels, 1280);
    hidden.activation = HS;
    layers.push(hidden);
    layers.push(Layer::linear("classifier", 1280, 1000));
    Network::new(input, layers)
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;

    #[test]
    fn mobilenet_v2_matches_torchvision_and_the_paper() {
        let network = mobilenet_v2(1.0, 224).expect("valid");
        // torchvision's mobilenet_v2: 3,504,872 parameters; paper: 300 M multiply-adds.
        assert_eq!(network.params(), 3_504_872);
        assert_relative_eq!(network.macs() as f64, 300e6, max_relative = 0.01);
        assert_eq!(network.output().channels, 1000);
        // TF-slim model zoo: mobilenet_v2_1.4_224 has 582 M MACs and 6.06 M parameters.
        let wide = mobilenet_v2(1.4, 224).expect("valid");
        assert_relative_eq!(wide.macs() as f64, 582e6, max_relative = 0.01);
        assert_relative_eq!(wide.params() as f64, 6.06e6, max_relative = 0.01);
    }

    #[test]
    fn mobilenet_v3_large_matches_torchvision_and_the_paper() {
        let network = mobilenet_v3_large();
        // torchvision's mobilenet_v3_large: 5,483,032 parameters; paper: 219 M MAdds. We count
        // 216.6 M: SE rescaling and activations are not multiply-accumulates here.
        assert_eq!(network.params(), 5_483_032);
        assert_relative_eq!(network.macs() as f64, 219e6, max_relative = 0.015);
    }

    #[test]
    fn bad_reference_parameters_are_errors() {
        assert!(matches!(
            mobilenet_v2(0.0, 224),
            Err(SpaceError::InvalidParameter {
                name: "width_mult",
                ..
            })
        ));
        assert!(matches!(
            mobilenet_v2(f64::NAN, 224),
            Err(SpaceError::InvalidParameter {
                name: "width_mult",
                ..
            })
        ));
        assert!(matches!(
            mobilenet_v2(1.0, 8),
            Err(SpaceError::InvalidParameter {
                name: "resolution",
                ..
            })
        ));
    }
}
