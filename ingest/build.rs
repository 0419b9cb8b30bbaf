//! Build script of sipl-ingest: compiles the small C shim over libjpeg's API
//! (`csrc/jpeg_decode.c`) against the headers of the libjpeg-turbo that `turbojpeg-sys` builds
//! from its bundled source (cmake and nasm on PATH; `make setup` provides both), and records
//! that library's version and where its tools (`cjpeg`, `djpeg`) were installed, for the
//! dataset settings and the tests.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg_decode.c");
    let include = std::env::var("DEP_TURBOJPEG_INCLUDE")
        .expect("turbojpeg-sys exports the include directory of the libjpeg-turbo it built");
    let include = Path::new(include.split(',').next().unwrap_or_default());
    let jconfig = std::fs::read_to_string(include.join("jconfig.h"))
        .unwrap_or_else(|e| panic!("{}: {e}", include.join("jconfig.h").display()));
    let version = jconfig
        .lines()
        .find_map(|l| l.strip_prefix("#define LIBJPEG_TURBO_VERSION "))
        .map(|v| v.trim().to_owned())
        .expect("jconfig.h defines LIBJPEG_TURBO_VERSION");
    println!("cargo:rustc-env=SIPL_LIBJPEG_TURBO_VERSION={version}");
    // `cmake --install` puts the command-line tools beside the headers.
    let bin = include.join("../bin");
    println!("cargo:rustc-env=SIPL_LIBJPEG_TURBO_BIN={}", bin.display());
    cc::Build::new()
        .file("csrc/jpeg_decode.c")
        .include(include)
        .flag_if_supported("-std=c11")
        .warnings(true)
        .compile("sipl_jpeg_decode");
}
