// Shared by the build scripts of every package that links libtorch (included with `include!`).
//
// Two things a plain tch build gets wrong for us (see ARCHITECTURE.md, "Linking libtorch"):
// 1. the binary does not find libtorch at run time unless LD_LIBRARY_PATH is set, so we bake
//    an rpath to the libtorch we built against;
// 2. the linker drops libtorch_cuda.so (no symbol of it is referenced), and then CUDA is never
//    available, so we force it in with --no-as-needed when the library exists.

fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: no rpath to libtorch baked in");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // The venv's Python (lib is VENV/lib/pythonX.Y/site-packages/torch/lib), for `sipl tune`.
    let python = std::path::Path::new(&lib).ancestors().nth(5).map(|v| v.join("bin/python"));
    if let Some(p) = python.filter(|p| p.exists()) {
        println!("cargo:rustc-env=SIPL_VENV_PYTHON={}", p.display());
    }
    let cuda = std::path::Path::new(&lib).join("libtorch_cuda.so");
    if cuda.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,-lc10_cuda,--as-needed");
    }
}
