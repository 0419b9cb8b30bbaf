//! Build script of the `sipl` binary: rpath and CUDA linking for libtorch.
include!("build-support/torch_link.rs");

fn main() {
    link_libtorch();
}
