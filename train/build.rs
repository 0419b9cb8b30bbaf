//! Build script of sipl-train: rpath and CUDA linking for libtorch (shared with the binary),
//! and the small C++ shim (autocast, fused Adam, pinned buffers, side-stream copies, c10d
//! process groups)
//! compiled against the same libtorch's headers.
//!
//! Two optional parts of the shim need headers libtorch does not ship:
//! - the NCCL backend needs the CUDA runtime and NCCL headers, which the pip torch install
//!   brings (`site-packages/nvidia/{cu13,nccl}/include`);
//! - the Gloo backend (CPU ranks) needs Gloo's headers, which `make setup` unpacks from
//!   Debian's libgloo-dev into `.work/gloo` (or `SIPL_GLOO_INCLUDE` names a directory).
//!
//! Without them the build succeeds and asking for that backend is a clear run-time error.
use std::path::{Path, PathBuf};

include!("../build-support/torch_link.rs");

fn main() {
    link_libtorch();
    for f in [
        "shim.h",
        "shim.cpp",
        "adam.cpp",
        "autocast.cpp",
        "transfer.cpp",
        "dist.cpp",
        "dist_nccl.cpp",
    ] {
        println!("cargo:rerun-if-changed=csrc/{f}");
    }
    println!("cargo:rerun-if-env-changed=SIPL_GLOO_INCLUDE");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports its lib dir");
    let include = Path::new(&lib).join("../include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/shim.cpp")
        .file("csrc/adam.cpp")
        .file("csrc/autocast.cpp")
        .file("csrc/transfer.cpp")
        .file("csrc/dist.cpp")
        .file("csrc/dist_nccl.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .warnings(false);
    match gloo_include() {
        Some(dir) => {
            println!("cargo:rerun-if-changed={}", dir.display());
            build.include(dir).define("SIPL_HAVE_GLOO", None);
        }
        None => {
            // Rerun once `make setup` has unpacked them.
            println!("cargo:rerun-if-changed=../.work/gloo");
            println!(
                "cargo:warning=Gloo headers not found (run `make setup`): CPU ranks cannot communicate"
            )
        }
    }
    // `crt/` and `nv/` come from nvidia-cuda-crt and nvidia-cuda-cccl (python/requirements.txt).
    let site = Path::new(&lib).join("../..");
    let cuda_dirs: Vec<PathBuf> =
        ["nvidia/cu13/include", "nvidia/nccl/include"].iter().map(|d| site.join(d)).collect();
    let has_cuda = Path::new(&lib).join("libtorch_cuda.so").exists()
        && ["cuda_runtime_api.h", "crt/host_config.h", "nv/target"]
            .iter()
            .all(|h| cuda_dirs[0].join(h).exists())
        && cuda_dirs[1].join("nccl.h").exists();
    if has_cuda {
        build.includes(&cuda_dirs).define("SIPL_HAVE_NCCL", None);
    } else {
        println!("cargo:warning=CUDA/NCCL headers not found: this build has no NCCL backend");
    }
    build.compile("sipl_shim");
}

/// Gloo's headers: `SIPL_GLOO_INCLUDE`, else what `make setup` unpacked into `.work/gloo`.
fn gloo_include() -> Option<PathBuf> {
    let from_env = std::env::var_os("SIPL_GLOO_INCLUDE").map(PathBuf::from);
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let unpacked = manifest.join("../.work/gloo/usr/include");
    [from_env, Some(unpacked)].into_iter().flatten().find(|d| d.join("gloo/context.h").exists())
}
