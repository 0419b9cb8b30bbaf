//! Data-parallel training's collectives, through the real c10d (Gloo on the CPU): ranks are
//! threads of this process, each with its own store connection and process group.

use std::net::TcpListener;
use std::time::Duration;

use sipl_loader::scheme::Scheme;
use sipl_train::dist::{Dist, DistError, Launch};
use sipl_train::model::{PretextModel, loss, torchvision_init};
use tch::{Device, Kind, Tensor, nn};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn launch(rank: usize, world: usize, port: u16) -> Launch {
    Launch {
        rank,
        world,
        local_rank: rank,
        master_addr: "127.0.0.1".into(),
        master_port: port,
        agent_store: None,
    }
}

/// Runs `f(rank, dist)` on `world` connected ranks, one thread each; results by rank.
fn on_ranks<T: Send>(world: usize, f: impl Fn(Dist) -> T + Sync) -> Vec<T> {
    let port = free_port();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|r| {
                let f = &f;
                s.spawn(move || {
                    let d = Dist::connect(
                        &launch(r, world, port),
                        Device::Cpu,
                        Duration::from_secs(30),
                    )
                    .expect("connect");
                    f(d)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("rank thread")).collect()
    })
}

/// libtorch's generator is global: rank threads draw their seeded tensors one at a time.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A small PretextModel, identically initialised from `seed`.
fn model(seed: i64) -> (nn::VarStore, PretextModel) {
    let _one = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = PretextModel::new(&vs.root());
    torchvision_init(&vs);
    (vs, m)
}

fn grads(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut g: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| (n, t.grad().copy()))
        .collect();
    g.sort_by(|a, b| a.0.cmp(&b.0));
    g
}

/// A SIPLv1 batch of 8 samples of 24² patches and its labels.
fn batch() -> (Tensor, Tensor) {
    let _one = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(99);
    let x = Tensor::randn([3, 8, 3, 24, 24], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(8, [8], (Kind::Int64, Device::Cpu));
    (x, y)
}

#[test]
fn averaged_half_batch_gradients_equal_the_whole_batch_gradient() {
    tch::set_num_threads(1);
    let (x, y) = batch();
    // One replica on the whole batch. BatchNorm in evaluation mode: with batch statistics,
    // each replica would normalise by its own half's statistics (see below).
    let (vs, m) = model(5);
    let logits = m.forward(Scheme::SiplV1, &x, false);
    loss(&logits, &y, 5.0).total.backward();
    let whole = grads(&vs);
    // Two replicas on half batches, gradients averaged by c10d's Reducer over Gloo.
    let halves = on_ranks(2, |d| {
        let (x, y) = batch();
        let (vs, m) = model(5);
        let reducer = d.reducer(&vs, 0.5).expect("reducer");
        let part = |t: &Tensor, dim: i64| t.narrow(dim, 4 * d.rank as i64, 4);
        let logits = m.forward(Scheme::SiplV1, &part(&x, 1), false);
        let l = loss(&logits, &part(&y, 0), 5.0).total;
        reducer.prepare(&[&l]).expect("prepare");
        l.backward();
        grads(&vs)
    });
    for rank in &halves {
        for ((name, g), (_, w)) in rank.iter().zip(&whole) {
            let diff = (g - w).abs().max().double_value(&[]);
            let scale = w.abs().max().double_value(&[]).max(1e-6);
            assert!(diff <= 1e-5 * scale.max(1.0), "{name}: {diff} (scale {scale})");
        }
    }
    // Both ranks end with identical gradients.
    for ((n, a), (_, b)) in halves[0].iter().zip(&halves[1]) {
        assert!(a.equal(b), "{n} differs between ranks");
    }
}

#[test]
fn batchnorm_statistics_per_replica_change_the_gradient_and_are_stated() {
    tch::set_num_threads(1);
    let (x, y) = batch();
    let (vs, m) = model(5);
    loss(&m.forward(Scheme::SiplV1, &x, true), &y, 5.0).total.backward();
    let whole = grads(&vs);
    let halves = on_ranks(2, |d| {
        let (x, y) = batch();
        let (vs, m) = model(5);
        let reducer = d.reducer(&vs, 25.0).expect("reducer");
        let part = |t: &Tensor, dim: i64| t.narrow(dim, 4 * d.rank as i64, 4);
        let l = loss(&m.forward(Scheme::SiplV1, &part(&x, 1), true), &part(&y, 0), 5.0).total;
        reducer.prepare(&[&l]).expect("prepare");
        l.backward();
        grads(&vs)
    });
    let rel: f64 = halves[0]
        .iter()
        .zip(&whole)
        .map(|((_, g), (_, w))| {
            (g - w).norm().double_value(&[]) / w.norm().double_value(&[]).max(1e-12)
        })
        .fold(0.0, f64::max);
    // Training-mode BatchNorm normalises each replica by its own half: the averaged gradient
    // is not the whole batch's (as in PyTorch's DDP without SyncBatchNorm).
    eprintln!("largest relative gradient difference with per-replica BatchNorm: {rel:.3}");
    assert!(rel > 1e-4, "per-replica statistics should show: {rel}");
}

#[test]
fn collectives_sum_broadcast_and_agree() {
    let out = on_ranks(3, |d| {
        let t = Tensor::from_slice(&[d.rank as f32 + 1.0, 10.0]);
        d.sum(&[&t]).expect("sum");
        let any = d.any(d.rank == 2).expect("any");
        let none = d.any(false).expect("none");
        let same = d.agree("config", "a = 1\nb = 2").map_err(|e| e.to_string());
        let value = if d.rank == 1 { "a = 1\nb = 3" } else { "a = 1\nb = 2" };
        let differ = d.agree("other", value).map_err(|e| e.to_string());
        (Vec::<f32>::try_from(&t).expect("vec"), any, none, same, differ)
    });
    for (rank, (sum, any, none, same, differ)) in out.into_iter().enumerate() {
        assert_eq!(sum, vec![6.0, 30.0]);
        assert!(any && !none);
        assert!(same.is_ok(), "{same:?}");
        if rank == 2 {
            assert!(differ.is_ok(), "rank 2 agrees with rank 0");
        } else {
            let e = differ.expect_err("rank 0 and rank 1 see the mismatch");
            assert!(e.contains("rank 1's other differs") && e.contains("b = 3"), "{e}");
        }
    }
}

#[test]
fn an_unreachable_rendezvous_fails_within_the_timeout() {
    let port = free_port(); // nobody listens there
    let start = std::time::Instant::now();
    let e = Dist::connect(&launch(1, 2, port), Device::Cpu, Duration::from_secs(2))
        .err()
        .expect("no rank 0");
    let waited = start.elapsed();
    assert!(matches!(e, DistError::Connect { .. }), "{e}");
    let m = e.to_string();
    assert!(m.contains(&format!("127.0.0.1:{port}")) && m.contains("within 2 s"), "{m}");
    assert!(waited < Duration::from_secs(20), "took {waited:?}");
}
