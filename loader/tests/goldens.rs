//! Every augmentation op against torchvision 0.26 on fixed inputs with fixed parameters.
//! The goldens and the script that made them sit in `tests/goldens/`
//! (`.venv/bin/python loader/tests/goldens/make_goldens.py`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sipl_loader::augment::{
    Brightness, ColourParams, Contrast, GaussianBlur, Grayscale, Hue, ProjectNormalize,
    ResizedCrop, Saturation, Solarize, StyleConfig, StyleOp, apply_style, resize::resize,
};
use sipl_loader::planar::Planar;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens")
}

fn load(name: &str, shape: &Value) -> Planar {
    let bytes = std::fs::read(dir().join(name)).expect("golden file");
    let data: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let s: Vec<usize> = shape
        .as_array()
        .expect("shape")
        .iter()
        .map(|v| v.as_u64().expect("dim") as usize)
        .collect();
    assert_eq!(s[0], 3);
    Planar::from_chw(s[1], s[2], data)
}

fn f(p: &Value, k: &str) -> f32 {
    p[k].as_f64().unwrap_or_else(|| panic!("param {k}")) as f32
}

fn u(p: &Value, k: &str) -> usize {
    p[k].as_u64().unwrap_or_else(|| panic!("param {k}")) as usize
}

fn run_case(op: &str, p: &Value, img: &mut Planar) {
    match op {
        "brightness" => Brightness(f(p, "factor")).apply(img),
        "contrast" => Contrast(f(p, "factor")).apply(img),
        "saturation" => Saturation(f(p, "factor")).apply(img),
        "hue" => Hue(f(p, "factor")).apply(img),
        "grayscale" => Grayscale.apply(img),
        "gaussian_blur" => {
            GaussianBlur { kernel_size: u(p, "kernel_size"), sigma: f(p, "sigma") }.apply(img)
        }
        "solarize" => Solarize(f(p, "threshold")).apply(img),
        "resized_crop" => ResizedCrop {
            top: u(p, "top"),
            left: u(p, "left"),
            height: u(p, "height"),
            width: u(p, "width"),
            size: u(p, "size"),
        }
        .apply(img),
        "resize" => *img = resize(img, u(p, "size"), u(p, "size")),
        "center_crop_then_crop" => {
            let g = u(p, "gap");
            let top = ((img.height - g) as f64 / 2.0).round_ties_even() as usize;
            let left = ((img.width - g) as f64 / 2.0).round_ties_even() as usize;
            let s = u(p, "size");
            *img = img.crop(top + u(p, "top"), left + u(p, "left"), s, s);
        }
        "project_normalize" => ProjectNormalize.apply(img),
        "style_pipeline" => {
            let c: Vec<usize> = p["crop"]
                .as_array()
                .expect("crop")
                .iter()
                .map(|v| v.as_u64().expect("n") as usize)
                .collect();
            let crop = ResizedCrop {
                top: c[0],
                left: c[1],
                height: c[2],
                width: c[3],
                size: u(p, "size"),
            };
            let mut order = [0u8; 4];
            for (o, v) in order.iter_mut().zip(p["order"].as_array().expect("order")) {
                *o = v.as_u64().expect("id") as u8;
            }
            let colour = ColourParams {
                order,
                brightness: f(p, "brightness"),
                contrast: f(p, "contrast"),
                saturation: f(p, "saturation"),
                hue: f(p, "hue"),
                grayscale: p["grayscale"].as_bool().expect("bool"),
                sigma: f(p, "sigma"),
                solarize: p["solarize"].as_bool().expect("bool"),
            };
            apply_style(img, &crop, &colour, &StyleConfig::default());
        }
        other => panic!("no Rust op for golden op {other}"),
    }
}

#[test]
fn every_op_matches_torchvision() {
    let text = std::fs::read_to_string(dir().join("cases.json")).expect("cases.json");
    let all: Value = serde_json::from_str(&text).expect("json");
    let cases = all["cases"].as_array().expect("cases");
    assert!(cases.len() >= 28);
    let mut report = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let mut img = load(case["input"].as_str().expect("input"), &case["input_shape"]);
        run_case(case["op"].as_str().expect("op"), &case["params"], &mut img);
        let want = load(case["output"].as_str().expect("output"), &case["output_shape"]);
        assert_eq!((img.height, img.width), (want.height, want.width), "{name}: shape");
        let err =
            img.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let tol = case["tol"].as_f64().expect("tol") as f32;
        report.push(format!("{name}: max error {err:.2e} (tolerance {tol:.0e})"));
        assert!(err <= tol, "{name}: max abs error {err} > {tol}");
    }
    println!("{}", report.join("\n"));
}
