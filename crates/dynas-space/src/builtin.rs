//! The spaces this crate ships, found by the name they carry ([`SearchSpace::name`]), so that
//! a file naming a built-in space (a deployment) can be checked against it.

use crate::{FbNetSpace, MbConvSpace, Nb201Space, SearchSpace};

/// The built-in space named `name` (`attentive-nas`, `ofa-mobilenet-v3`, `ofa-mnist`,
/// `fmnist-elastic-width`, `nas-bench-201`, `fbnet-cifar100`, `fbnet-cifar10`,
/// `fbnet-imagenet`), or `None` for any other name (a space of your own).
pub fn builtin_space(name: &str) -> Option<Box<dyn SearchSpace>> {
    let space: Box<dyn SearchSpace> = match name {
        "attentive-nas" => Box::new(MbConvSpace::attentive_nas()),
        "ofa-mobilenet-v3" => Box::new(MbConvSpace::ofa_mobilenet_v3()),
        "ofa-mnist" => Box::new(MbConvSpace::ofa_mnist()),
        "fmnist-elastic-width" => Box::new(MbConvSpace::fmnist_elastic_width()),
        "nas-bench-201" => Box::new(Nb201Space::new()),
        "fbnet-cifar100" => Box::new(FbNetSpace::cifar100()),
        "fbnet-cifar10" => Box::new(FbNetSpace::cifar10()),
        "fbnet-imagenet" => Box::new(FbNetSpace::imagenet()),
        _ => return None,
    };
    Some(space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_answers_to_its_own_name() {
        for name in [
            "attentive-nas",
            "ofa-mobilenet-v3",
            "ofa-mnist",
            "fmnist-elastic-width",
            "nas-bench-201",
            "fbnet-cifar100",
            "fbnet-cifar10",
            "fbnet-imagenet",
        ] {
            let space = builtin_space(name).expect(name);
            assert_eq!(space.name(), name);
        }
        assert!(builtin_space("my-space").is_none());
    }
}
