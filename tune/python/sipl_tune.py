"""The Optuna side of `sipl tune`: sampling, pruning and storage; every trial is an ordinary,
resumable `sipl train` run directory. `sipl tune` validates its flags and the search space,
then runs this script with one JSON request as its only argument (see tune/src/driver.rs).

A trial's life:
  ask (or claim an orphaned RUNNING trial) -> `sipl train --epoch-handshake` in
  STUDY/trials/NNNN -> after each epoch, report pretext validation accuracy (the monitor
  objective: the monitor's kNN accuracy, after each epoch it measures); the pruner may answer
  "stop" -> COMPLETE (value: best pretext accuracy, the monitor's best kNN accuracy, or
  `sipl eval downstream`'s best held-out accuracy), PRUNED, or FAIL (the run's first error
  line).

A trial is owned by one tuner process (user attributes sipl_owner and sipl_heartbeat). An
interrupted trial is put back as WAITING; so is a trial left RUNNING by a tuner that died (same
host: its process is gone; any host: no heartbeat for GRACE_S). `study.ask()` hands a WAITING
trial to exactly one tuner (the storage pops it atomically) with its parameters, and its run
resumes from its last checkpoint.

Exit status: 0 done or interrupted (SIGINT/SIGTERM: running trials checkpoint and stay
resumable), 2 a bad request or storage (message on stderr), 1 anything unexpected.
"""

import contextlib
import fcntl
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HEARTBEAT_S = 5.0
GRACE_S = 30.0
ASK_GRACE_S = 10.0
LOCK_WAIT_S = 300.0
# The field of the epoch handshake's line each objective reports to the pruner.
REPORTED = {"pretext": "val_accuracy", "downstream": "val_accuracy", "monitor": "knn_accuracy"}


class UsageError(Exception):
    """A bad request or an unusable storage: reported as one line, exit status 2."""


class TunerCrashed(Exception):
    """Trials the storage could not record: exit status 1."""


def log(req, message):
    if not req.get("quiet"):
        print(f"tune: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Storage, study, space


def open_storage(url):
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal:"):]
        if not path:
            raise UsageError("storage journal: needs a file, e.g. journal:/shared/study.log")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    url = with_driver(url)
    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
        except Exception as e:  # SQLAlchemy's and the drivers' errors have no common base
            # Tuners that start together on an empty database race to create its tables:
            # the loser sees a duplicate and tries again.
            racing = any(w in str(e) for w in ("already exists", "duplicate key", "UniqueViolation", "database is locked"))
            if racing and attempt < 5:
                time.sleep(0.2 * 2**attempt)
                continue
            raise UsageError(f"storage {redact(url)}: cannot open it: {first_line(e)}") from None


def with_driver(url):
    """MySQL URLs without a driver get PyMySQL (the one in python/requirements.txt)."""
    if url.startswith("mysql://"):
        return "mysql+pymysql://" + url[len("mysql://"):]
    return url


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def engine_kwargs(url):
    if url.startswith("sqlite"):
        # Several tuners (threads or processes) write one file: wait for its lock.
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        # A dead server or network is an error within a minute, not a hang.
        args = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "options": "-c statement_timeout=60000"}
        return {"connect_args": args, "pool_pre_ping": True}
    return {"pool_pre_ping": True}


def redact(url):
    """The URL without a password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in cred else url
    return url


def make_sampler(req):
    import optuna

    if req["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=req["seed"])
    return optuna.samplers.TPESampler(seed=req["seed"])


def make_pruner(req):
    import optuna

    if req["pruner"] == "none":
        return optuna.pruners.NopPruner()
    if req["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=req["epochs"])
    # Median: compared from the third finished trial on, after each epoch.
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def distributions(space):
    import optuna.distributions as d

    out = {}
    for p in space["params"]:
        kind = p["kind"]
        if kind == "float":
            out[p["key"]] = d.FloatDistribution(p["low"], p["high"], log=p["log"])
        elif kind == "int":
            out[p["key"]] = d.IntDistribution(p["low"], p["high"], log=p["log"])
        elif kind == "power_of_two":
            out[pow2_name(p["key"])] = d.IntDistribution(p["low_exp"], p["high_exp"])
        else:
            out[p["key"]] = d.CategoricalDistribution(p["choices"])
    return out


def pow2_name(key):
    return f"log2({key})"


def config_values(space, params):
    """Optuna's parameters as config values ({key: value})."""
    values = {}
    for p in space["params"]:
        if p["kind"] == "power_of_two":
            values[p["key"]] = 2 ** int(params[pow2_name(p["key"])])
        else:
            values[p["key"]] = params[p["key"]]
    return values


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def open_study(req, storage):
    import optuna

    name = req["study_name"]
    if req["mode"] == "report":
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise UsageError(f"storage {redact(req['storage'])} holds no study named {name!r}") from None
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(req),
        pruner=make_pruner(req),
        direction="maximize",
        load_if_exists=True,
    )
    space = json.dumps(req["space"], sort_keys=True)
    saved = study.user_attrs.get("sipl_space")
    if saved is not None and saved != space and not req["force"]:
        raise UsageError(
            f"study {name!r} was started with another search space; run it with the same space, "
            "or pass --force to go on with this one (earlier trials keep theirs)"
        )
    objective = study.user_attrs.get("sipl_objective")
    if objective is not None and objective != req["objective"] and not req["force"]:
        raise UsageError(
            f"study {name!r} maximises the {objective} objective, not {req['objective']}; "
            "pass --force to change it"
        )
    # Tuners that join a shared study (another folder, another machine) train from its base
    # config and score on its evaluation set, or are refused naming what differs.
    base = req["base_text"]
    joined = study.user_attrs.get("sipl_base")
    if joined is not None and joined != base and not req["force"]:
        raise UsageError(
            f"study {name!r} was started with another base config ({toml_changes(joined, base)}); "
            "use the same --config and --set, or pass --force"
        )
    evaluation = json.dumps({"data": req["eval_data"], "args": req["eval_args"]})
    scored = study.user_attrs.get("sipl_eval")
    if req["objective"] == "downstream" and scored not in (None, evaluation) and not req["force"]:
        raise UsageError(
            f"study {name!r} scores its trials on another evaluation (was {scored}); "
            "pass the same --eval-data and --eval-arg, or --force"
        )
    study.set_user_attr("sipl_space", space)
    study.set_user_attr("sipl_objective", req["objective"])
    study.set_user_attr("sipl_base", base)
    if req["objective"] == "downstream":
        study.set_user_attr("sipl_eval", evaluation)
    # A tuner that resumes or joins a study draws anew: seeded by --seed and the trials so
    # far, mixed so that no two such pairs share a sampler seed.
    count = len(study.get_trials(deepcopy=False))
    stray = foreign_run(Path(req["study_dir"]), count)
    if stray is not None:
        raise UsageError(
            f"{stray} is the run of a trial {int(stray.name)} that study {name!r} does not have "
            "(its storage was lost or replaced, or the folder held another study), and a new "
            "trial would take it over: restore the storage, or run the study in a new folder"
        )
    req = dict(req, seed=sampler_seed(req["seed"], count))
    study.sampler = make_sampler(req)
    return study


def foreign_run(folder, trials):
    """A run directory `folder/trials/NNNN` numbered beyond a study's `trials` trials, if any
    (a trial is asked, and so counted, before its directory is made)."""
    with contextlib.suppress(OSError):
        for run in sorted((folder / "trials").iterdir()):
            if run.is_dir() and run.name.isdigit() and int(run.name) >= trials:
                return run
    return None


def sampler_seed(seed, trials):
    """The sampler's seed for a tuner started with --seed `seed` on a study with `trials`
    trials: a hash of the pair (a sum would give --seed 2 after one trial the draws of --seed 1
    after two), within the 32 bits NumPy's generators take."""
    digest = hashlib.sha256(f"sipl-tune-seed:{seed}:{trials}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def toml_changes(old, new):
    """The keys two TOML texts give different values, as `key: old -> new` (at most five)."""
    try:
        import tomllib
    except ImportError:  # before Python 3.11
        return "its text"

    def flat(text):
        out = {}

        def walk(table, prefix):
            for k, v in table.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                else:
                    out[f"{prefix}{k}"] = v

        try:
            walk(tomllib.loads(text), "")
        except tomllib.TOMLDecodeError:
            out["(unreadable)"] = text
        return out

    a, b = flat(old), flat(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    shown = [f"{k}: {a.get(k, '-')} -> {b.get(k, '-')}" for k in keys[:5]]
    return ", ".join(shown + ([f"{len(keys) - 5} more"] if len(keys) > 5 else [])) or "its text"


# ---------------------------------------------------------------------------------------------
# Ownership of RUNNING trials


def process_start(pid):
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


OWNER = {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start(os.getpid())}


def owner_alive(owner):
    if owner.get("host") != OWNER["host"]:
        return None  # another machine: only its heartbeat tells
    start = process_start(owner.get("pid", -1))
    return start is not None and start == owner.get("start")


def orphaned(t, now):
    """Whether a RUNNING trial has no live tuner."""
    attrs = t.user_attrs
    if attrs.get("sipl_surplus"):
        return False
    owner = attrs.get("sipl_owner")
    if owner is None:
        # Claimed within milliseconds of `ask`: a tuner killed in between left it.
        started = t.datetime_start.timestamp() if t.datetime_start else now
        return now - started > ASK_GRACE_S
    if owner == OWNER:
        return False
    alive = owner_alive(owner)
    if alive is not None:
        return not alive
    return now - attrs.get("sipl_heartbeat", 0.0) > GRACE_S


@contextlib.contextmanager
def study_lock(req):
    """One tuner at a time picks its next trial, among the tuners of this machine that share
    the study folder (all of them, for SQLite and journal files)."""
    with open(Path(req["study_dir"]) / ".tune.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Tuner:
    def __init__(self, req, study, begun=None):
        self.req = req
        self.study = study
        self.stop = threading.Event()
        # Set when every worker has ended: heartbeats go on until then (a trial still
        # checkpointing after SIGINT is not an orphan).
        self.done = threading.Event()
        self.crashed = []
        # --timeout counts from the tuner's start (Optuna's import and the storage included).
        begun = time.time() if begun is None else begun
        self.deadline = begun + req["timeout_s"] if req["timeout_s"] else None
        self.children = {}
        self.mine = set()
        # This tuner's trials and the seconds their `sipl` commands ran (the rest of the
        # tuner's time is its own overhead).
        self.session = {"trials": 0, "failed": 0, "run_s": 0.0}
        self.lock = threading.Lock()
        self.distributions = distributions(req["space"])

    # Heartbeats of the trials this process runs, for tuners on other machines.
    def heartbeat(self):
        import optuna

        while not self.done.wait(HEARTBEAT_S):
            with self.lock:
                ids = list(self.mine)
            for trial_id in ids:
                with contextlib.suppress(Exception):
                    optuna.trial.Trial(self.study, trial_id).set_user_attr("sipl_heartbeat", time.time())

    def next_trial(self):
        """(trial, resumed) for this worker, or None when the study has its trials."""
        from optuna.trial import TrialState

        n = self.req["trials"]
        with study_lock(self.req):
            if self.stop.is_set():
                return None
            trials = self.study.get_trials(deepcopy=False)
            now = time.time()
            orphans = [t for t in trials if t.state == TrialState.RUNNING and t.number < n and orphaned(t, now)]
            for t in orphans:
                # Put back for `ask`, which hands it to one tuner only.
                self.study._storage.set_trial_state_values(t._trial_id, TrialState.WAITING)
            if orphans:
                trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING and t.number < n for t in trials)
            if not waiting:
                if self.deadline and now >= self.deadline:
                    return None
                if sum(1 for t in trials if not t.user_attrs.get("sipl_surplus")) >= n:
                    return None
            trial = self.study.ask(self.distributions)
            if trial.number >= n:
                # Another machine's tuner took the last number at the same moment: this one
                # is beyond --trials and never runs.
                trial.set_user_attr("sipl_surplus", True)
                self.study.tell(trial, state=TrialState.FAIL)
                return None
            resumed = "sipl_sets" in trial.user_attrs
            self.claim(trial)
            return trial, resumed

    def claim(self, trial):
        trial.set_user_attr("sipl_owner", OWNER)
        trial.set_user_attr("sipl_heartbeat", time.time())
        with self.lock:
            self.mine.add(trial._trial_id)

    def release(self, trial):
        with self.lock:
            self.mine.discard(trial._trial_id)

    def stop_all(self):
        """After SIGINT/SIGTERM: no new trial; running ones checkpoint and stay resumable."""
        if not self.stop.is_set():
            log(self.req, "stopping: running trials checkpoint and stay resumable (run the same command to go on)")
        self.stop.set()
        with self.lock:
            children = list(self.children.values())
        for p in children:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGINT)

    def worker(self, device):
        while True:
            try:
                picked = self.next_trial()
            except Exception as e:  # the storage failed or refused: this worker ends
                self.crashed.append(f"picking a trial: {type(e).__name__}: {first_line(e)}")
                return
            if picked is None:
                return
            trial, resumed = picked
            with self.lock:
                self.session["trials"] += 1
            try:
                self.run_trial(trial, device, resumed)
            except Exception as e:  # the study goes on: this trial fails, or waits if it cannot
                self.trial_crashed(trial, e)
            finally:
                self.release(trial)
            if self.stop.is_set():
                return

    def trial_crashed(self, trial, e):
        from optuna.trial import TrialState

        detail = f"the tuner failed while running it: {type(e).__name__}: {first_line(e)}"
        log(self.req, f"trial {trial.number}: {detail}")
        with self.lock:
            self.session["failed"] += 1
        try:
            trial.set_user_attr("sipl_error", detail)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        except Exception as e2:  # the storage is gone too: the trial stays for a later tuner
            self.crashed.append(f"trial {trial.number}: {detail}; recording it failed: {first_line(e2)}")

    # -----------------------------------------------------------------------------------------
    # One trial

    def run_trial(self, trial, device, resumed):
        from optuna.trial import TrialState

        req = self.req
        number = trial.number
        run = Path(req["study_dir"]) / "trials" / f"{number:04d}"
        sets = trial.user_attrs.get("sipl_sets")
        if sets is None:
            values = config_values(req["space"], trial.params)
            sets = [f"{k}={toml_value(v)}" for k, v in values.items()]
            trial.set_user_attr("sipl_sets", sets)
            trial.set_user_attr("sipl_values", values)
        trial.set_user_attr("sipl_run", str(run))
        shown = ", ".join(sets)
        log(req, f"trial {number} {'resumed' if resumed else 'started'}{' on ' + device if device else ''}: {shown}")
        run.parent.mkdir(parents=True, exist_ok=True)
        if resumed and not wait_unlocked(run, self.stop):
            if self.stop.is_set():
                self.interrupted(trial, "stopped while waiting for the previous run to let go of its lock")
            else:
                trial.set_user_attr("sipl_error", f"{run} stayed locked by another process for {LOCK_WAIT_S:.0f} s")
                self.study.tell(trial, state=TrialState.FAIL)
            return
        started = time.time()
        outcome, detail = self.train(trial, run, sets, device)
        if outcome == "complete" and req["objective"] == "downstream":
            outcome, detail = self.downstream(trial, run, device)
        wall = trial.user_attrs.get("sipl_wall_s", 0.0) + (time.time() - started)
        trial.set_user_attr("sipl_wall_s", wall)
        trial.set_user_attr("sipl_epochs", epochs_run(run))
        if outcome == "complete":
            self.study.tell(trial, detail)
            log(req, f"trial {number} finished: {detail:.4f} ({wall:.1f} s)")
        elif outcome == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
            acc = self.study._storage.get_trial(trial._trial_id).intermediate_values.get(detail)
            what = "monitor kNN accuracy" if req["objective"] == "monitor" else "pretext accuracy"
            shown = f", {what} {acc:.4f}" if acc is not None else ""
            log(req, f"trial {number} pruned after epoch {detail}{shown} ({wall:.1f} s)")
        elif outcome == "interrupted":
            self.interrupted(trial, detail)
        else:
            trial.set_user_attr("sipl_error", detail)
            self.study.tell(trial, state=TrialState.FAIL)
            with self.lock:
                self.session["failed"] += 1
            log(req, f"trial {number} failed: {detail}")

    def interrupted(self, trial, why):
        """Back to WAITING: the next `ask` of any tuner resumes it."""
        from optuna.trial import TrialState

        self.study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
        log(self.req, f"trial {trial.number} interrupted ({why}); it resumes from its checkpoint on the next run")

    def waited(self, trial, p, started):
        """Waits for a command of `trial` and counts its seconds."""
        rc = p.wait()
        with self.lock:
            self.children.pop(trial._trial_id, None)
            self.session["run_s"] += time.time() - started
        return rc

    def spawn(self, trial, cmd, log_path, **kw):
        with open(log_path, "ab") as err:
            err.write(f"\n$ {' '.join(cmd)}\n".encode())
            err.flush()
            # SIPL_DIE_WITH_PARENT: the run gets SIGTERM when this process dies, even by
            # SIGKILL, so that it checkpoints and lets go of its run directory.
            env = dict(os.environ, SIPL_DIE_WITH_PARENT="1")
            p = subprocess.Popen(cmd, stderr=err, env=env, **kw)
        with self.lock:
            self.children[trial._trial_id] = p
        if self.stop.is_set():
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGINT)
        return p

    def train(self, trial, run, sets, device):
        req = self.req
        cmd = [req["sipl"], "train", "--config", req["base_config"]]
        for s in sets + ["run.checkpoint_each_epoch=true"] + ([f"run.device={device}"] if device else []):
            cmd += ["--set", s]
        cmd += ["--run-dir", str(run), "--epoch-handshake", "-q"]
        log_path = run.parent / f"{run.name}.log"
        started = time.time()
        p = self.spawn(trial, cmd, log_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        reported = set(self.study._storage.get_trial(trial._trial_id).intermediate_values)
        last_epoch = int(trial.user_attrs.get("sipl_values", {}).get("optim.epochs", req["epochs"]))
        pruned_at = None
        last = ""
        for line in p.stdout:
            line = line.strip()
            if not line.startswith("{"):
                last = line or last
                continue
            try:
                v = json.loads(line)
                epoch, acc = int(v["epoch"]), v.get(REPORTED[req["objective"]])
            except (ValueError, KeyError, TypeError, AttributeError):
                last = line
                continue
            # With the monitor objective, epochs the monitor did not measure report nothing,
            # and the pruner is asked only after an epoch that reported.
            fresh = isinstance(acc, (int, float)) and math.isfinite(acc)
            if epoch not in reported and fresh:
                trial.report(float(acc), epoch)
                reported.add(epoch)
            go = not self.stop.is_set()
            # The last epoch is never pruned: the trial has finished by then.
            if go and fresh and epoch < last_epoch and trial.should_prune():
                pruned_at, go = epoch, False
            with contextlib.suppress(BrokenPipeError):
                p.stdin.write("continue\n" if go else "stop\n")
                p.stdin.flush()
        with contextlib.suppress(BrokenPipeError):
            p.stdin.close()
        rc = self.waited(trial, p, started)
        if rc == 0 and pruned_at is not None:
            return "pruned", pruned_at
        if rc == 0 and ": stopped" in last or (rc != 0 and self.stop.is_set()):
            return "interrupted", "stopped by signal"
        if rc != 0:
            return "fail", first_error(log_path) or f"sipl train exited with status {rc}"
        if req["objective"] == "monitor":
            best = best_of(run, "knn_accuracy")
            if best is None:
                return "fail", "the run recorded no monitor figure (is [monitor] in its config?)"
            return "complete", best
        best = best_of(run, "val_accuracy")
        if best is None:
            return "fail", "the run recorded no validation accuracy"
        return "complete", best

    def downstream(self, trial, run, device):
        req = self.req
        cmd = [req["sipl"], "eval", "downstream", "--run", str(run), "--data", req["eval_data"], "--mode", "cached", "-q"]
        if device:
            cmd += ["--device", device]
        cmd += req["eval_args"]
        log_path = run.parent / f"{run.name}.log"
        started = time.time()
        p = self.spawn(trial, cmd, log_path, stdout=subprocess.DEVNULL)
        rc = self.waited(trial, p, started)
        if rc != 0 and self.stop.is_set():
            return "interrupted", "stopped by signal during the downstream evaluation"
        if rc != 0:
            return "fail", first_error(log_path) or f"sipl eval downstream exited with status {rc}"
        try:
            with open(run / "eval" / "downstream-cached" / "summary.json") as f:
                return "complete", float(json.load(f)["best_val_accuracy"])
        except (OSError, KeyError, ValueError) as e:
            return "fail", f"no downstream summary: {e}"


def wait_unlocked(run, stop):
    """Waits until no process holds the run directory's lock (a run of a dead tuner still
    writing its last checkpoint). False when stopped first."""
    lock = run / ".lock"
    deadline = time.time() + LOCK_WAIT_S
    while True:
        try:
            with open(lock, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return True
        except FileNotFoundError:
            return True
        except BlockingIOError:
            if stop.is_set() or time.time() > deadline:
                return False
            time.sleep(0.2)


def metrics(run):
    out = []
    with contextlib.suppress(OSError):
        for line in (run / "metrics.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def best_of(run, key):
    """The largest `key` of the run's metrics lines after its first step (`val_accuracy`:
    pretext validation; `knn_accuracy`: the monitor, whose step-0 figure is the untrained
    encoder's), or None."""
    accs = [m[key] for m in metrics(run) if key in m and m.get("step", 1) > 0]
    return max(accs) if accs else None


def epochs_run(run):
    """Validations at distinct steps: one per epoch (the last one at the run's end)."""
    return len({m["step"] for m in metrics(run) if "val_accuracy" in m})


def first_error(log_path):
    with contextlib.suppress(OSError):
        lines = Path(log_path).read_text(errors="replace").splitlines()
        start = max((i for i, l in enumerate(lines) if l.startswith("$ ")), default=0)
        for l in lines[start:]:
            if l.startswith("error: "):
                return l[len("error: "):]
    return None


# ---------------------------------------------------------------------------------------------
# Export for the report


def export(req, study, session=None):
    from optuna.trial import TrialState

    space = req["space"]
    trials = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("sipl_surplus"):
            continue
        state = t.state.name
        if state == "WAITING" and "sipl_sets" in t.user_attrs:
            state = "INTERRUPTED"
        values = t.user_attrs.get("sipl_values")
        if values is None:
            try:
                values = config_values(space, t.params)
            except KeyError:
                values = dict(t.params)
        trials.append(
            {
                "number": t.number,
                "state": state,
                "params": values,
                "value": t.value if t.state == TrialState.COMPLETE else None,
                "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                "epochs": t.user_attrs.get("sipl_epochs", len(t.intermediate_values)),
                "wall_s": t.user_attrs.get("sipl_wall_s"),
                "error": t.user_attrs.get("sipl_error"),
            }
        )
    return {
        "study_name": study.study_name,
        "objective": study.user_attrs.get("sipl_objective", req["objective"]),
        "trials": trials,
        "importances": importances(study, space),
        "session": session,
    }


def importances(study, space):
    """fANOVA importances of the searched keys (None below two finished trials)."""
    import optuna
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(done) < 2:
        return None
    names = {pow2_name(p["key"]): p["key"] for p in space["params"]}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        imp = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as e:  # too few distinct values, a single-valued parameter, ...
        print(f"tune: no parameter importances: {e}", file=sys.stderr)
        return None
    return {names.get(k, k): float(v) for k, v in imp.items() if math.isfinite(v)}


SIGNALLED = []


def on_signal(signum, _frame):
    # Only a flag: the main loop does the work (a handler that took locks could deadlock
    # when a second signal lands inside the first, as a terminal's Ctrl-C plus the copy
    # sipl passes on do).
    SIGNALLED.append(signum)


def save_study_files(req):
    """The study folder, made once the storage has opened: the resolved space and base config
    (a new or --force'd study) and where its study lives."""
    folder = Path(req["study_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    files = {"study.json": json.dumps(req["saved"], indent=2) + "\n"}
    if req.get("space_toml") is not None:
        files["space.toml"] = req["space_toml"]
        files["base.toml"] = req["base_toml"]
    with study_lock(req):
        # sipl checked the folder's study before; this catches a tuner of another study that
        # started on the same fresh folder at the same moment.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            held = json.loads((folder / "study.json").read_text()).get("study_name")
            if held is not None and held != req["saved"]["study_name"]:
                raise UsageError(
                    f"{folder}: holds the study {held!r}, and its trials/ are that study's: "
                    f"a study named {req['saved']['study_name']!r} needs a folder of its own"
                )
        for name, text in files.items():
            tmp = folder / (name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, folder / name)


def main():
    begun = time.time()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    req = json.loads(sys.argv[1])
    import logging

    try:
        import optuna
    except ImportError as e:
        raise UsageError(
            f"{sys.executable} cannot import optuna ({e}): run `make setup`, which installs "
            "python/requirements.txt into the project's venv, or point SIPL_PYTHON at a Python that has it"
        ) from None

    optuna.logging.set_verbosity(logging.WARNING)
    storage = open_storage(req["storage"])
    study = open_study(req, storage)
    save_study_files(req)
    if req["mode"] == "tune":
        tuner = Tuner(req, study, begun)
        threading.Thread(target=tuner.heartbeat, daemon=True).start()
        workers = [threading.Thread(target=tuner.worker, args=(d,)) for d in req["devices"]]
        if SIGNALLED:
            tuner.stop_all()
        for w in workers:
            w.start()
        # Joined with a timeout: the main thread watches for signals meanwhile.
        for w in workers:
            while w.is_alive():
                w.join(0.2)
                if SIGNALLED:
                    tuner.stop_all()
        tuner.stop.set()
        tuner.done.set()
        session = dict(tuner.session, wall_s=time.time() - begun)
        if tuner.crashed:
            raise TunerCrashed("; ".join(tuner.crashed))
    else:
        session = None
    with open(req["export"] + ".tmp", "w") as f:
        json.dump(export(req, study, session), f)
    os.replace(req["export"] + ".tmp", req["export"])


if __name__ == "__main__":
    try:
        main()
    except (UsageError, TunerCrashed) as e:
        where = os.environ.get("SIPL_TUNE_ERROR_FILE")
        if where:
            Path(where).write_text(str(e))
        else:
            print(f"error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
