//! An exported encoder loads into `torchvision.models.resnet18` (strict) and gives the Rust
//! embeddings on the same inputs to 1e-4; runs without weights and weights of another model are
//! clear errors.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use sipl_eval::export::{Which, export_encoder, run_weights};
use sipl_train::checkpoint::{load_model, model_tensors, write_tensors};
use sipl_train::model::PretextModel;
use tch::{Device, Kind, Tensor, nn};

const CHECK: &str = r#"
import sys, torch, torchvision
from safetensors.torch import load_file, save_file
net = torchvision.models.resnet18()
net.load_state_dict(load_file(sys.argv[1]), strict=True)
net.eval()
x = load_file(sys.argv[2])["x"]
with torch.no_grad():
    save_file({"embedding": net(x).contiguous()}, sys.argv[3])
"#;

#[test]
fn exported_encoder_matches_torchvision() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = PretextModel::new(&vs.root());
    // Non-trivial BatchNorm statistics, as after training.
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.ends_with("running_var") {
                let _ = t.uniform_(0.5, 1.5);
            } else if name.ends_with("running_mean") {
                let _ = t.uniform_(-0.1, 0.1);
            }
        }
    });
    write_tensors(&run.join("final.safetensors"), &model_tensors(&vs)).expect("weights");
    let out = tmp.path().join("encoder.safetensors");
    let n =
        export_encoder(&run_weights(&run, Which::Final).expect("weights"), &out).expect("export");
    assert_eq!(n, 122, "torchvision resnet18 has 122 state-dict entries");

    let x = Tensor::randn([3, 3, 64, 64], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("x", &x)], tmp.path().join("x.safetensors")).expect("x");
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let status = Command::new(py)
        .args(["-c", CHECK])
        .arg(&out)
        .arg(tmp.path().join("x.safetensors"))
        .arg(tmp.path().join("y.safetensors"))
        .status()
        .expect("python");
    assert!(status.success(), "torchvision could not load the export");
    let y: HashMap<String, Tensor> = Tensor::read_safetensors(tmp.path().join("y.safetensors"))
        .expect("y")
        .into_iter()
        .collect();
    let ours = tch::no_grad(|| model.embed(&x, false));
    let diff = (&ours - &y["embedding"]).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "max difference {diff}");
}

#[test]
fn runs_without_weights_and_foreign_weights_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = run_weights(tmp.path(), Which::Best).expect_err("no weights");
    assert!(err.to_string().contains("no best.safetensors"), "{err}");
    let foreign = tmp.path().join("foreign.safetensors");
    let t = Tensor::zeros([10, 10], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("classifier.weight", &t)], &foreign).expect("write");
    let err = export_encoder(&foreign, &tmp.path().join("o.safetensors")).expect_err("foreign");
    assert!(err.to_string().contains("weights of another model"), "{err}");
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = PretextModel::new(&vs.root());
    assert!(load_model(&foreign, &vs).is_err());
}
