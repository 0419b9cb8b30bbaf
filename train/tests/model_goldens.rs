//! The Rust model, loss and Adam against PyTorch on the same weights and inputs (the golden
//! numbers are computed on the fly by `tests/goldens/model_golden.py` in the project's venv).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use sipl_loader::scheme::Scheme;
use sipl_train::adam::{Adam, AdamConfig};
use sipl_train::checkpoint::load_model;
use sipl_train::model::{PretextModel, ViewPasses, loss};
use tch::{Device, Tensor, nn};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn forward_loss_and_adam_match_pytorch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = root.join("../.venv/bin/python");
    assert!(py.exists(), "{} missing: run `make setup`", py.display());
    let out = Command::new(&py)
        .arg(root.join("tests/goldens/model_golden.py"))
        .arg(tmp.path())
        .arg("32")
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let io: HashMap<String, Tensor> = Tensor::read_safetensors(tmp.path().join("io.safetensors"))
        .expect("io")
        .into_iter()
        .collect();

    tch::set_num_threads(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = PretextModel::new(&vs.root());
    load_model(&tmp.path().join("weights.safetensors"), &vs)
        .expect("torchvision names load as they are");

    let views = &io["views"];
    let labels = &io["labels"];
    let eval = tch::no_grad(|| model.forward(Scheme::SiplV1, views, false));
    let emb = tch::no_grad(|| model.embed(&views.get(0), false));
    let e = [
        max_diff(&emb, &io["eval_embedding0"]),
        max_diff(&eval[0], &io["eval_f1"]),
        max_diff(&eval[1], &io["eval_f2"]),
    ];
    println!("eval: embedding {:.1e}, f1 {:.1e}, f2 {:.1e}", e[0], e[1], e[2]);
    assert!(e.iter().all(|d| *d < 1e-4), "{e:?}");

    // Batched views (the CUDA default): one encoder pass, BatchNorm statistics per view, so
    // PyTorch's per-view training logits. (Its running statistics move; nothing below reads
    // them.)
    model.views = ViewPasses::Batched;
    let batched = tch::no_grad(|| model.forward(Scheme::SiplV1, views, true));
    model.views = ViewPasses::PerView;
    let b = max_diff(&batched[0], &io["train_f1"]);
    println!("train, batched views: f1 {b:.1e}");
    assert!(b < 1e-4, "{b}");

    let mut adam = Adam::new(&vs, AdamConfig::new(1e-3, 0.0));
    let train = model.forward(Scheme::SiplV1, views, true);
    let l = loss(&train, labels, 5.0);
    let d = [
        max_diff(&train[0], &io["train_f1"]),
        max_diff(&l.total.reshape([1]), &io["loss"]),
        max_diff(&l.kl.reshape([1]), &io["sym_kl"]),
    ];
    println!("train: f1 {:.1e}, loss {:.1e}, symKL {:.1e}", d[0], d[1], d[2]);
    assert!(d.iter().all(|x| *x < 1e-4), "{d:?}");
    adam.zero_grad();
    l.total.backward();
    adam.step().expect("Adam step");
    let vars = vs.variables();
    let a = [
        max_diff(&vars["fc.2.weight"], &io["after_step_fc2_weight"]),
        max_diff(&vars["encoder.conv1.weight"], &io["after_step_conv1_weight"]),
    ];
    println!("after one Adam step: fc.2.weight {:.1e}, encoder.conv1.weight {:.1e}", a[0], a[1]);
    assert!(a.iter().all(|x| *x < 1e-5), "{a:?}");
}
