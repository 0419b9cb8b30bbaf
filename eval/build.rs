//! Build script of sipl-eval (its tests link libtorch): rpath and CUDA linking for libtorch.
include!("../build-support/torch_link.rs");

fn main() {
    link_libtorch();
}
