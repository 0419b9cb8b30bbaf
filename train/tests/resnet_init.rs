//! `sipl_train::resnet::ResNet18` creates the variables of `tch::vision::resnet::resnet18`
//! under the same names, in the same order: a seeded model draws the same initial values. In a
//! test binary of its own, since libtorch's generator is global and other tests draw from it.

use sipl_train::resnet::ResNet18;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Every variable's name and shape, sorted.
fn shapes(vs: &nn::VarStore) -> Vec<(String, Vec<i64>)> {
    let mut v: Vec<_> = vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
    v.sort();
    v
}

#[test]
fn same_variables_and_initial_values_as_tch_resnet18() {
    tch::manual_seed(3);
    let ours = nn::VarStore::new(Device::Cpu);
    let net = ResNet18::new(&ours.root(), 10);
    tch::manual_seed(3);
    let theirs = nn::VarStore::new(Device::Cpu);
    let reference = tch::vision::resnet::resnet18(&theirs.root(), 10);
    assert_eq!(shapes(&ours), shapes(&theirs));
    let theirs_vars = theirs.variables();
    for (name, t) in ours.variables() {
        assert!(t.equal(&theirs_vars[&name]), "{name} differs");
    }
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let (a, b) = (net.forward_t(&x, false), reference.forward_t(&x, false));
    assert!(a.equal(&b), "evaluation outputs differ");
}
