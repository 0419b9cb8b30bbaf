//! Every numeric and path option of every command, fed values outside its range (from a
//! config key, `--set` or a flag): each is refused at validation, before any work and before
//! anything is written, with an error naming the option, the value and the range, and
//! `sipl <command> --help` states that range. Then the cases that once went wrong in a worse
//! way: a thread count that panicked after the run directory was written, and a downstream
//! head that reported an accuracy it never measured.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{run, s, setup_tiny_training, sipl, train_in};

/// Every refused value: `COMMAND | ARGUMENTS | ERROR | RANGE IN --help`. Arguments are added to
/// the command's [`base`] (a `--flag=value` replaces the base's value, `!--flag` drops it);
/// `{out}` is the case's own output path, which must stay absent. ERROR must appear in the
/// error; RANGE, where there is one, in `sipl COMMAND --help`.
const CASES: &str = "
train | --set=run.threads=0 | run.threads = 0: must be in [1, {cores}] (this machine has |
train | --set=run.threads=100000 | run.threads = 100000: must be in [1, {cores}] (this machine has |
train | --set=run.threads={cores+1} | run.threads = {cores+1}: must be in [1, {cores}] |
train | --set=data.workers=0 | data.workers = 0: must be in [1, {workers}] (4 per core |
train | --set=data.workers=100000 | data.workers = 100000: must be in [1, {workers}] |
train | --set=optim.batch_size=0 | optim.batch_size = 0: must be in [1, 65536] | [1, 65536]
train | --set=optim.batch_size=65537 | optim.batch_size = 65537: must be in [1, 65536] |
train | --set=optim.batch_size=65536 --set=data.patch_size=1024 | optim.batch_size = 65536: must be small enough |
train | --set=optim.lr=nan | optim.lr = NaN: must be a number in (0, 1) | (0, 1)
train | --set=optim.lr=0 | optim.lr = 0: must be a number in (0, 1) |
train | --set=optim.lr=-1 | optim.lr = -1: must be |
train | --set=optim.weight_decay=-1 | optim.weight_decay = -1: must be a number in [0, 1] | [0, 1]
train | --set=optim.epochs=0 | optim.epochs = 0: must be in [1, 1000000] | [1, 1000000]
train | --set=optim.max_steps=0 | optim.max_steps = 0: must be in [1, 1000000000000] | [1, 1000000000000]
train | --set=model.alpha=inf | model.alpha = inf: must be a number in [0, 1000] | [0, 1000]
train | --set=model.alpha=-1 | model.alpha = -1: must be |
train | --set=model.scheme=simclr | model.scheme = simclr: must be opl, siplv1 |
train | --set=data.val_fraction=0 | data.val_fraction = 0: must be a number in (0, 1) |
train | --set=data.val_fraction=1 | data.val_fraction = 1: must be a number in (0, 1) |
train | --set=data.patch_size=0 | data.patch_size = 0: must be in [8, 1024] | [8, 1024]
train | --set=data.patch_size=100000 | data.patch_size = 100000: must be in [8, 1024] |
train | --set=data.train_images=0 | data.train_images = 0: must be |
train | --set=data.train_images=48 | data.train_images = 48: must be in [1, 47] (the dataset has 48 |
train | --set=run.keep_checkpoints=0 | run.keep_checkpoints = 0: must be in [1, 1000] | [1, 1000]
train | --set=run.checkpoint_every=0 | run.checkpoint_every = 0: must be in |
train | --set=run.log_every=0 | run.log_every = 0: must be in |
train | --set=run.bucket_mb=0 | run.bucket_mb = 0: must be a number in (0, 4096] | (0, 4096]
train | --set=run.dist_timeout_s=0 | run.dist_timeout_s = 0: must be in [1, 86400] | [1, 86400]
train | --set=run.amp=true | run.amp = true: must be false on a CPU device |
train | --set=run.device=tpu | run.device = tpu: must be cpu, cuda, cuda:N or auto |
train | --set=data.batch_dtype=f64 | data.batch_dtype = f64: must be f32, bf16 or f16 |
train | --set=model.joint_views=true --set=model.batched_views=true | model.batched_views = true: must be false with model.joint_views |
train | --run-dir={file} | --run-dir = {file}: must be a folder |
train | --devices={cpus} | --devices = {cpus}: must be at most {cores} CPU ranks |
train | --devices=cpu --set=run.threads=0 | run.threads = 0: must be in [1, {cores}] |
eval downstream | --batch=0 | --batch = 0: must be in [1, 65536] | [1, 65536]
eval downstream | --batch=65536 --input-size=1024 | --batch = 65536: must be small enough |
eval downstream | --lr=nan | --lr = NaN: must be a number in (0, 1) | (0, 1)
eval downstream | --lr=-1 | --lr = -1: must be a number in (0, 1) |
eval downstream | --lr=0 | --lr = 0: must be a number in (0, 1) |
eval downstream | --lr=inf | --lr = inf: must be |
eval downstream | --input-size=0 | --input-size = 0: must be in [32, 1024] | [32, 1024]
eval downstream | --input-size=100000 | --input-size = 100000: must be in [32, 1024] |
eval downstream | --classes=1000000 | --classes = 1000000: must be in [2, 2] (the dataset has 2 classes |
eval downstream | --classes=1 | --classes = 1: must be |
eval downstream | --epochs=0 | --epochs = 0: must be in [1, 1000000] | [1, 1000000]
eval downstream | --stratified=0 | --stratified = 0: must be a number in (0, 1) | (0, 1)
eval downstream | --stratified=1 | --stratified = 1: must be |
eval downstream | --stratified=nan | --stratified = NaN: must be |
eval downstream | !--stratified --train-images=0 | --train-images = 0: must be |
eval downstream | !--stratified --train-images=48 | --train-images = 48: must be in [1, 47] (the dataset has 48 images |
eval downstream | --images=1 | --images = 1: must be >= 2 |
eval downstream | --images=49 | --images = 49: must be in [2, 48] ({data} holds 48 images |
eval downstream | --out={file} | --out = {file}: must be a folder |
eval tsne | --per-class=1 | --per-class = 1: must be in [2, 500] | [2, 500]
eval tsne | --per-class=501 | --per-class = 501: must be in [2, 500] |
eval tsne | --perplexity=0 | --perplexity = 0: must be a number in [1, 100] | [1, 100]
eval tsne | --perplexity=nan | --perplexity = NaN: must be |
eval tsne | --perplexity=30 | --perplexity = 30: must be a number in [1, 10.3] (3 × perplexity |
eval tsne | --epochs=250 | --epochs = 250: must be in [251, 100000] | [251, 100000]
eval tsne | --input-size=0 | --input-size = 0: must be in [32, 1024] | [32, 1024]
eval tsne | --classes=0,0 | --classes = 0,0: must be two different classes |
eval tsne | --classes=0,1,1 | --classes = 0,1,1: must be two class indices |
eval tsne | --classes=0,5 | --classes = 5: must be in [0, 1] |
eval tsne | --classes=-1,0 | --classes = -1: must be in [0, 1] |
eval tsne | --out={file} | --out = {file}: must be a folder |
embed | --input-size=0 | --input-size = 0: must be in [32, 1024] | [32, 1024]
embed | --batch=0 | --batch = 0: must be in [1, 65536] | [1, 65536]
embed | --out={missing} | --out = {missing}: must be a file in an existing folder |
export | --out={missing} | --out = {missing}: must be a file in an existing folder |
preview | --samples=0 | --samples = 0: must be in [1, 64] | [1, 64]
preview | --samples=49 | --samples = 49: must be in [1, 48] (the dataset has 48 images |
preview | --tile=0 | --tile = 0: must be in [16, 512] | [16, 512]
preview | --tile=100000 | --tile = 100000: must be in [16, 512] |
preview | --patch-size=0 | --patch-size = 0: must be in [8, 1024] | [8, 1024]
preview | --out={missing} | --out = {missing}: must be a file in an existing folder |
bench step | --batch=0 | --batch = 0: must be in [1, 65536] | [1, 65536]
bench step | --size=0 | --size = 0: must be in [32, 1024] | [32, 1024]
bench step | --steps=0 | --steps = 0: must be in [1, 1000000] | [1, 1000000]
bench step | --warmup=2000000 | --warmup = 2000000: must be in [0, 1000000] | [0, 1000000]
bench step | --batch=65536 --size=1024 | --batch = 65536: must be small enough |
bench train | --steps=0 | --steps = 0: must be in [1, 1000000] | [1, 1000000]
bench train | --warmup-steps=2000000 | --warmup-steps = 2000000: must be in [0, 1000000] | [0, 1000000]
bench train | --set=run.threads=100000 | run.threads = 100000: must be in [1, {cores}] |
bench loader | --workers=0 | --workers = 0: must be in [1, {workers}] |
bench loader | --workers=100000 | --workers = 100000: must be in [1, {workers}] |
bench loader | --seconds=0 | --seconds = 0: must be a number in (0, 86400] | (0, 86400]
bench loader | --seconds=nan | --seconds = NaN: must be |
bench loader | --batch=0 | --batch = 0: must be in [1, 65536] | [1, 65536]
bench loader | --prefetch=0 | --prefetch = 0: must be in [1, 64] | [1, 64]
bench loader | --patch-size=7 | --patch-size = 7: must be in [8, 1024] | [8, 1024]
bench loader | --batch=65536 --patch-size=1024 | --batch = 65536: must be small enough |
bench loader | --warmup-batches=2000000 | --warmup-batches = 2000000: must be in [0, 1000000] | [0, 1000000]
bench loader | --batch-dtype=f64 | unknown batch dtype \"f64\": expected f32, bf16 or f16 | f32, bf16 or f16
tune | --trials=0 | --trials = 0: must be in [1, 100000] | [1, 100000]
tune | --trials=100001 | --trials = 100001: must be in [1, 100000] |
tune | --timeout=0 | --timeout = 0: must be a number in (0, 31536000] |
tune | --timeout=nan | --timeout |
tune | --set=optim.lr=2 | optim.lr = 2: must be a number in (0, 1) |
tune | --storage=redis://x/0 | --storage = redis://x/0: must be sqlite:///FILE |
tune | --study={file} | --study = {file}: must be a folder |
tune | --devices=tpu | run.device = tpu: must be cpu, cuda, cuda:N or auto |
tune | --devices=cuda:0,cuda:0 | --devices = cuda:0,cuda:0: must be distinct devices |
bench soak | --minutes=0 | --minutes = 0: must be a number in (0, 1440] | (0, 1440]
bench soak | --workers=100000 | --workers = 100000: must be in [1, {workers}] |
bench soak | --batch=0 | --batch = 0: must be in [1, 65536] | [1, 65536]
bench soak | --patch-size=0 | --patch-size = 0: must be in [8, 1024] | [8, 1024]
bench soak | --report-seconds=0 | --report-seconds = 0: must be a number in (0, 3600] | (0, 3600]
bench soak | --stall-seconds=-1 | --stall-seconds = -1: must be a number in [0, 3600] | [0, 3600]
bench soak | --hang-seconds=0 | --hang-seconds = 0: must be in [1, 86400] | [1, 86400]
bench soak | --max-growth-mib=nan | --max-growth-mib = NaN: must be a number in [0, 1048576] | [0, 1048576]
ingest | --resize=0 | --resize = 0: must be in [1, 4096] | [1, 4096]
ingest | --resize=5000 | --resize = 5000: must be in [1, 4096] |
ingest | --resize=big | --resize = \"big\": must be N or none |
ingest | --crop=0 | --crop = 0: must be in [1, 4096] |
ingest | --resize=32 --crop=40 | --crop = 40: must be in [1, 32] |
ingest | --zstd-level=0 | --zstd-level = 0: must be in [1, 19] | [1, 19]
ingest | --zstd-level=20 | --zstd-level = 20: must be in [1, 19] |
ingest | --shard-images=0 | --shard-images = 0: must be in [1, 1000000] | [1, 1000000]
ingest | --shard-mib=5000 | --shard-mib = 5000: must be in [1, 4096] | [1, 4096]
ingest | --min-side=0 | --min-side = 0: must be in [1, 65535] | [1, 65535]
ingest | --max-pixels=0 | --max-pixels = 0: must be in [1, 1000000000] | [1, 1000000000]
ingest | --threads=0 | --threads = 0: must be in [1, {workers}] |
ingest | --threads=100000 | --threads = 100000: must be in [1, {workers}] |
ingest | --out={file} | --out = {file}: must be a folder |
synth | --classes=0 | --classes = 0: must be in [1, 48] | [1, 48]
synth | --classes=49 | --classes = 49: must be in [1, 48] (4 shapes × 12 textures |
synth | --per-class=0 | --per-class = 0: must be in [1, 100000] | [1, 100000]
synth | --size=15 | --size = 15: must be in [16, 4096] | [16, 4096]
synth | --size=5000 | --size = 5000: must be in [16, 4096] |
shards inspect | --dump 48 {out} | --dump ID = 48: must be in [0, 47] | [0, images − 1]
shards inspect | --dump x {out} | --dump ID = x: must be an image index |
report | --out={file} | --out = {file}: must be a folder |
";

/// The arguments every case of `cmd` starts from.
fn base(cmd: &str) -> &'static str {
    match cmd {
        "train" => "--config={config} --run-dir={out} -q",
        "eval downstream" => {
            "--random-init --data={data} --out={out} --device=cpu --stratified=0.25 --input-size=32 -q"
        }
        "eval tsne" => {
            "--random-init --data={data} --out={out} --device=cpu --input-size=32 --per-class=8 --perplexity=5 --epochs=300"
        }
        "embed" => "--weights=/no/weights.safetensors --data={data} --out={out} --device=cpu",
        "export" => "--run={root}",
        "preview" => "{data} --out={out}",
        "bench step" => "--device=cpu",
        "bench train" => "--config={config}",
        "bench loader" | "bench soak" | "shards inspect" => "{data}",
        "ingest" => "folder {images} --out={out} -q",
        "synth" => "--out={out}",
        "report" => "{root}",
        "tune" => "--config={config} --space=configs/tune/smoke.toml --study={out} -q",
        other => panic!("no base for {other}"),
    }
}

/// `base` with `args` applied: a `--flag=value` replaces the same flag's value (`--set` is
/// always added), `!--flag` drops it, anything else is appended.
fn apply(base: &str, args: &str) -> Vec<String> {
    let mut out: Vec<String> = base.split_whitespace().map(str::to_owned).collect();
    for a in args.split_whitespace() {
        let flag = a.split('=').next().unwrap_or(a);
        if let Some(drop) = a.strip_prefix('!') {
            out.retain(|b| b != drop && !b.starts_with(&format!("{drop}=")));
        } else if let (Some(i), true) = (
            out.iter().position(|b| b.starts_with(&format!("{flag}="))),
            a.contains('=') && flag != "--set",
        ) {
            out[i] = a.to_owned();
        } else {
            out.push(a.to_owned());
        }
    }
    out
}

/// One refused value.
struct Case {
    /// The subcommand, for its `--help`.
    cmd: Vec<String>,
    args: Vec<String>,
    error: String,
    help: Option<String>,
}

fn cases(f: &Fixture) -> Vec<Case> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let missing = f.root.join("no-such-folder").join("x");
    let fill = |text: &str| {
        text.replace("{data}", s(&f.data))
            .replace("{images}", s(&f.images))
            .replace("{config}", s(&f.config))
            .replace("{file}", s(&f.file))
            .replace("{missing}", s(&missing))
            .replace("{root}", s(&f.root))
            .replace("{cpus}", &vec!["cpu"; cores + 1].join(","))
            .replace("{cores+1}", &(cores + 1).to_string())
            .replace("{cores}", &cores.to_string())
            .replace("{workers}", &(4 * cores).to_string())
    };
    let mut v: Vec<Case> = CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let [cmd, args, error, help] = line.split('|').map(str::trim).collect::<Vec<_>>()[..]
            else {
                panic!("a case needs 4 fields: {line}")
            };
            let cmd: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
            let args = [cmd.clone(), apply(&fill(base(&cmd.join(" "))), &fill(args))].concat();
            let help = Some(help.to_owned()).filter(|h| !h.is_empty());
            Case { cmd, args, error: fill(error), help }
        })
        .collect();
    // Two CPU ranks may not use more threads together than there are cores.
    if cores >= 2 {
        let args =
            apply(&fill(base("train")), &format!("--devices=cpu,cpu --set=run.threads={cores}"));
        v.push(Case {
            cmd: vec!["train".into()],
            args: [vec!["train".to_owned()], args].concat(),
            error: format!("run.threads = {cores}: must be in [1, {}] (2 CPU ranks", cores / 2),
            help: None,
        });
    }
    v
}

/// Runs `sipl ARGS`; a refusal must come long before `limit` (a hang or real work fails).
fn run_bounded(args: &[String], limit: Duration) -> (bool, String) {
    let mut child =
        sipl().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn sipl");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
                .expect("stderr");
            return (status.success(), err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sipl {} still running after {limit:?}: not refused up front", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    images: PathBuf,
    data: PathBuf,
    config: PathBuf,
    /// An existing file where a folder or a new file is expected.
    file: PathBuf,
}

/// 48 images of 32² in 2 classes, ingested, and a config training on them.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().to_owned();
    let (config, _) = setup_tiny_training(&root);
    let file = root.join("a-file");
    std::fs::write(&file, b"keep me").expect("file");
    Fixture { images: root.join("images"), data: root.join("ds"), config, file, root, _tmp: tmp }
}

#[test]
fn every_option_out_of_range_is_refused_up_front_naming_it_and_writing_nothing() {
    let f = fixture();
    let cases = cases(&f);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let helps: Mutex<HashMap<String, String>> = Mutex::default();
    let check = |i: usize, c: &Case| -> Result<(), String> {
        let dir = f.root.join(format!("case-{i:03}"));
        std::fs::create_dir(&dir).expect("case dir");
        let out = dir.join("out");
        let args: Vec<String> = c.args.iter().map(|a| a.replace("{out}", s(&out))).collect();
        let (ok, err) = run_bounded(&args, Duration::from_secs(120));
        let shown = format!("sipl {}", args.join(" "));
        if ok || !err.contains(&c.error) {
            return Err(format!("{shown}\n  wanted {:?}\n  got ({ok}) {err}", c.error));
        }
        if std::fs::read_dir(&dir).expect("case dir").next().is_some() {
            return Err(format!("{shown}\n  wrote into {} before refusing", dir.display()));
        }
        if let Some(range) = &c.help {
            let key = c.cmd.join(" ");
            let help = helps.lock().expect("lock").get(&key).cloned();
            let help = help.unwrap_or_else(|| {
                let mut args: Vec<&str> = c.cmd.iter().map(String::as_str).collect();
                args.push("--help");
                let (ok, out, err) = run(&args);
                assert!(ok, "{key} --help: {err}");
                helps.lock().expect("lock").insert(key.clone(), out.clone());
                out
            });
            if !help.contains(range.as_str()) {
                return Err(format!("sipl {key} --help does not state the range {range}"));
            }
        }
        Ok(())
    };
    // Two at a time: the refusals are quick, the binary's start-up is most of each.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = cases.get(i) else { break };
                    if let Err(e) = check(i, c) {
                        failures.lock().expect("lock").push(e);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        std::fs::read(&f.file).expect("file"),
        b"keep me",
        "an existing file is never touched"
    );
}

/// `run.threads = 0` once panicked inside libtorch after `config.toml` was written, so the
/// corrected command was refused as "another configuration" until `--force`.
#[test]
fn a_refused_value_leaves_no_run_directory_and_the_corrected_run_needs_no_force() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, args) = setup_tiny_training(tmp.path());
    let run_dir = tmp.path().join("run");
    for bad in ["run.threads=0", "run.threads=100000", "run.amp=true", "optim.lr=nan"] {
        let (ok, _, err) = train_in(&args, &run_dir, &["--set", bad]);
        let key = bad.split('=').next().expect("key");
        assert!(!ok && err.contains(&format!("{key} = ")), "{bad}: {err}");
        assert!(!run_dir.exists(), "{bad}: the run directory must not exist");
    }
    let (ok, stdout, err) =
        train_in(&args, &run_dir, &["--set", "run.threads=1", "--set", "optim.max_steps=2"]);
    assert!(ok && stdout.contains("done after 2 steps"), "{stdout}{err}");
}

/// The config keys' ranges are in `sipl train --help`, this machine's thread limits included.
#[test]
fn train_help_lists_every_config_key_with_its_range() {
    let (ok, help, err) = run(&["train", "--help"]);
    assert!(ok, "{err}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for needle in [
        "optim.lr                   (0, 1)".to_string(),
        "optim.batch_size           [1, 65536]".into(),
        format!("run.threads                [1, cores] = [1, {cores}] here"),
        format!("data.workers               [1, 4 × cores] = [1, {}] here", 4 * cores),
        "run.dist_timeout_s         [1, 86400] s".into(),
        "data.batch_dtype           f32, bf16 or f16".into(),
        "model.batched_views        true or false".into(),
    ] {
        assert!(help.contains(&needle), "{needle:?} missing from:\n{help}");
    }
}
