//! Weight-sharing supernet on tch (libtorch).

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor, nn, nn::Module};

    #[test]
    fn small_conv_net_forward() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let net = nn::seq()
            .add(nn::conv2d(&p / "conv1", 1, 8, 3, Default::default()))
            .add_fn(|x| x.relu());
        let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = net.forward(&x);
        assert_eq!(y.size(), vec![2, 8, 6, 6]);
    }
}
