//! Lowering a structured subnet of [`MbConvSpace`] to the network description.

use super::*;

impl MbConvSpace {
    /// The layers of a subnet. Meant for subnets of this space ([`MbConvSpace::subnet`], or
    /// checked with [`MbConvSpace::genotype`]); other values give a network of those sizes.
    pub fn network(&self, subnet: &MbConvSubnet) -> Network {
        let head = &self.head;
        let input = TensorShape::new(head.in_channels, subnet.resolution, subnet.resolution);
        let mut layers =
            Vec::with_capacity(6 + subnet.stages.iter().map(|s| s.blocks.len()).sum::<usize>());
        let first_conv = Layer::conv(
            "first_conv",
            input,
            subnet.first_conv_width,
            3,
            head.first_conv_stride,
            head.first_conv_activation,
        );
        let mut shape = first_conv.output();
        layers.push(first_conv);
        if let Some(block) = &head.first_block {
            let mid = self.mid_channels(shape.channels, block.expand_ratio);
            let layer = Layer::mbconv(
                "first_block",
                shape,
                block.width,
                mid,
                block.kernel,
                block.stride,
                block.se.then(|| self.se_channels(mid)),
                block.activation,
            );
            shape = layer.output();
            layers.push(layer);
        }
        for ((spec, choice), names) in self
            .stages
            .iter()
            .zip(&subnet.stages)
            .zip(&self.block_names)
        {
            for (b, block) in choice.blocks.iter().enumerate() {
                let mid = self.mid_channels(shape.channels, block.expand_ratio);
                let name = match names.get(b) {
                    Some(name) => name.clone(),
                    None => format!("{}.block{b}", spec.name),
                };
                let mut layer = Layer::mbconv(
                    name,
                    shape,
                    choice.width,
                    mid,
                    block.kernel,
                    if b == 0 { spec.stride } else { 1 },
                    spec.se.then(|| self.se_channels(mid)),
                    spec.activation,
                );
                layer.projection_shortcut = head.projection_shortcuts;
                shape = layer.output();
                layers.push(layer);
            }
        }
        if let Some(width) = subnet.final_expand_width {
            let layer = Layer::conv("final_expand", shape, width, 1, 1, head.tail_activation);
            shape = layer.output();
            layers.push(layer);
        }
        let pool = Layer::global_avg_pool("global_pool", shape);
        shape = pool.output();
        layers.push(pool);
        if let Some(width) = subnet.feature_mix_width {
            let mut layer = Layer::conv("feature_mix", shape, width, 1, 1, head.tail_activation)
                .without_batch_norm();
            // OFA and AttentiveNAS build this conv without bias.
            layer.bias = false;
            shape = layer.output();
            layers.push(layer);
        }
        layers.push(Layer::linear(
            "classifier",
            shape.channels,
            head.num_classes,
        ));
        Network::new(input, layers)
    }
}
