//! Build script of sipl-tune: rpath to libtorch for its tests (it links sipl-train).
include!("../build-support/torch_link.rs");

fn main() {
    link_libtorch();
}
