//! Layer keys of the published table formats: building them from a [`Layer`] and parsing
//! them back.

use std::collections::HashMap;

use dynas_space::{Activation, Layer, OpKind, TensorShape};
use serde::{Deserialize, Serialize};

/// The Harmonic-NAS / OFA-MNIST key of a layer (`None` for kinds that format has no key for:
/// pooling, residual blocks, identities, zeros).
pub fn harmonic_key(layer: &Layer) -> Option<String> {
    let i = layer.input;
    let input = format!("1_{}_{}_{}", i.channels, i.height, i.width);
    match layer.kind {
        OpKind::Conv => Some(format!(
            "ConvLayer-input:{input}-in_ch:{}-out_ch:{}-kernel:{}-stride:{}-use_se:0-use_bn:{}",
            i.channels,
            layer.out_channels,
            layer.kernel,
            layer.stride,
            u8::from(layer.batch_norm)
        )),
        OpKind::MbConv => {
            let (mid, expand) = if layer.has_expansion() {
                let ratio = (layer.mid_channels as f64 / i.channels.max(1) as f64).round();
                (layer.mid_channels, ratio as usize)
            } else {
                (0, 1)
            };
            Some(format!(
                "MBConvLayer-input:{input}-in_ch:{}-out_ch:{}-mid_ch:{mid}-expand:{expand}-kernel:{}-stride:{}-use_se:{}",
                i.channels,
                layer.out_channels,
                layer.kernel,
                layer.stride,
                u8::from(layer.se_channels.is_some())
            ))
        }
        OpKind::Linear => Some(format!(
            "LinearLayer-input:{}-in_ch:{}-out_ch:{}",
            i.channels, i.channels, layer.out_channels
        )),
        _ => None,
    }
}

/// Parses a Harmonic-NAS / OFA-MNIST key back into the [`Layer`] it describes (named by the
/// key), or `None` if the key is not in that format. Inverse of [`harmonic_key`] up to the
/// activation, which the format does not record (ReLU is assumed).
pub fn parse_harmonic_key(key: &str) -> Option<Layer> {
    let mut parts = key.split('-');
    let kind = parts.next()?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for p in parts {
        let (k, v) = p.split_once(':')?;
        fields.insert(k, v);
    }
    let num = |name: &str| -> Option<usize> { fields.get(name)?.parse().ok() };
    let input = || -> Option<TensorShape> {
        let v: Vec<usize> = fields
            .get("input")?
            .split('_')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        match v[..] {
            [1, c, h, w] => Some(TensorShape::new(c, h, w)),
            _ => None,
        }
    };
    match kind {
        "ConvLayer" => {
            let l = Layer::conv(
                key,
                input()?,
                num("out_ch")?,
                num("kernel")?,
                num("stride")?,
                Activation::Relu,
            );
            Some(if num("use_bn")? == 1 {
                l
            } else {
                l.without_batch_norm()
            })
        }
        "MBConvLayer" => {
            let input = input()?;
            let mid = match num("mid_ch")? {
                0 => input.channels,
                m => m,
            };
            let se = (num("use_se")? == 1).then_some((mid / 4).max(1));
            Some(Layer::mbconv(
                key,
                input,
                num("out_ch")?,
                mid,
                num("kernel")?,
                num("stride")?,
                se,
                Activation::Relu,
            ))
        }
        "LinearLayer" => Some(Layer::linear(key, num("in_ch")?, num("out_ch")?)),
        _ => None,
    }
}

/// The once-for-all / Dynamic-OFA key of layer `index` of a MobileNetV3 network (`None` for
/// kinds that format has no key for).
///
/// Convolutions are named by their role as in the published tables: the first layer is
/// `Conv`, a conv on a 1 x 1 input is the feature-mix `Conv_2`, any other conv the final
/// expansion `Conv_1`; the classifier is `Logits` and global pooling `AvgPool2D`.
pub fn ofa_key(layer: &Layer, index: usize) -> Option<String> {
    let i = layer.input;
    let o = layer.output();
    let hwc = |s: TensorShape| format!("{}x{}x{}", s.height, s.width, s.channels);
    match layer.kind {
        OpKind::Conv => {
            let name = if index == 0 {
                "Conv"
            } else if i.height == 1 && i.width == 1 {
                "Conv_2"
            } else {
                "Conv_1"
            };
            Some(format!("{name}-input:{}-output:{}", hwc(i), hwc(o)))
        }
        OpKind::MbConv => Some(format!(
            "expanded_conv-input:{}-output:{}-expand:{}-kernel:{}-stride:{}-idskip:{}-se:{}-hs:{}",
            hwc(i),
            hwc(o),
            layer.mid_channels,
            layer.kernel,
            layer.stride,
            u8::from(layer.has_identity_shortcut()),
            u8::from(layer.se_channels.is_some()),
            u8::from(layer.activation == Activation::HardSwish)
        )),
        OpKind::Linear => Some(format!(
            "Logits-input:1x1x{}-output:{}",
            i.channels, layer.out_channels
        )),
        OpKind::GlobalAvgPool => Some(format!("AvgPool2D-input:{}-output:{}", hwc(i), hwc(o))),
        _ => None,
    }
}

/// Parses a once-for-all key back into the [`Layer`] it describes (named by the key), or
/// `None` if the key is not in that format. Inverse of [`ofa_key`] for its layer kinds.
pub fn parse_ofa_key(key: &str) -> Option<Layer> {
    let mut parts = key.split('-');
    let kind = parts.next()?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for p in parts {
        let (k, v) = p.split_once(':')?;
        fields.insert(k, v);
    }
    let shape = |s: &str| -> Option<TensorShape> {
        let v: Vec<usize> = s
            .split('x')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        match v[..] {
            [h, w, c] => Some(TensorShape::new(c, h, w)),
            _ => None,
        }
    };
    let num = |name: &str| -> Option<usize> { fields.get(name)?.parse().ok() };
    let input = shape(fields.get("input")?)?;
    match kind {
        "Conv" | "Conv_1" | "Conv_2" => {
            let out = shape(fields.get("output")?)?;
            let stride = input.height.div_ceil(out.height.max(1)).max(1);
            let kernel = if kind == "Conv" { 3 } else { 1 };
            let l = Layer::conv(
                key,
                input,
                out.channels,
                kernel,
                stride,
                Activation::HardSwish,
            );
            Some(if kind == "Conv_2" {
                l.without_batch_norm()
            } else {
                l
            })
        }
        "expanded_conv" => {
            let out = shape(fields.get("output")?)?;
            let se = num("se")? == 1;
            let mid = num("expand")?;
            let act = if num("hs")? == 1 {
                Activation::HardSwish
            } else {
                Activation::Relu
            };
            Some(Layer::mbconv(
                key,
                input,
                out.channels,
                mid,
                num("kernel")?,
                num("stride")?,
                se.then_some((mid / 4).max(1)),
                act,
            ))
        }
        "AvgPool2D" => Some(Layer::global_avg_pool(key, input)),
        // `Logits-input:1x1x1536-output:1000` has a flat output.
        "Logits" => Some(Layer::linear(key, input.channels, num("output")?)),
        _ => None,
    }
}

/// How a [`super::LutModel`] turns a layer into a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyScheme {
    /// [`harmonic_key`].
    Harmonic,
    /// [`ofa_key`].
    Ofa,
    /// The layer's own `name` (FBNet-style spaces that name layers by their LUT key).
    LayerName,
}

impl KeyScheme {
    /// The key of layer `index`; a descriptive pseudo-key for kinds the scheme cannot name,
    /// so that the missing-key error still says what was looked up.
    pub fn key(&self, layer: &Layer, index: usize) -> String {
        let key = match self {
            Self::Harmonic => harmonic_key(layer),
            Self::Ofa => ofa_key(layer, index),
            Self::LayerName => Some(layer.name.clone()),
        };
        key.unwrap_or_else(|| format!("{:?}({})", layer.kind, layer.name))
    }
}
