//! Build script of sipl-train: rpath and CUDA linking for libtorch (shared with the binary),
//! and the small C++ shim (autocast, pinned buffers, side-stream copies) compiled against the
//! same libtorch's headers.
include!("../build-support/torch_link.rs");

fn main() {
    link_libtorch();
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=csrc/transfer.cpp");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports its lib dir");
    let include = std::path::Path::new(&lib).join("../include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/autocast.cpp")
        .file("csrc/transfer.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .warnings(false)
        .compile("sipl_shim");
}
