"""Unit tests of the Optuna driver's pure parts (tests/tune.rs runs them with the venv's
Python: python -m unittest discover -s tune/python)."""

import os
import tempfile
import time
import unittest
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import sipl_tune as t

SPACE = {
    "params": [
        {"kind": "float", "key": "optim.lr", "low": 1e-5, "high": 1e-3, "log": True},
        {"kind": "power_of_two", "key": "optim.batch_size", "low_exp": 5, "high_exp": 8},
        {"kind": "categorical", "key": "model.scheme", "choices": ["opl", "siplv1"]},
    ]
}


def trial(attrs, started=None):
    return SimpleNamespace(user_attrs=attrs, datetime_start=started)


class Values(unittest.TestCase):
    def test_config_values_and_their_toml(self):
        params = {"optim.lr": 1e-4, "log2(optim.batch_size)": 6, "model.scheme": "opl"}
        v = t.config_values(SPACE, params)
        self.assertEqual(v, {"optim.lr": 1e-4, "optim.batch_size": 64, "model.scheme": "opl"})
        self.assertEqual([t.toml_value(x) for x in v.values()], ["0.0001", "64", '"opl"'])
        self.assertEqual(t.toml_value(True), "true")

    def test_distributions_search_the_exponent(self):
        d = t.distributions(SPACE)
        self.assertEqual((d["log2(optim.batch_size)"].low, d["log2(optim.batch_size)"].high), (5, 8))
        self.assertTrue(d["optim.lr"].log)

    def test_urls(self):
        self.assertEqual(t.redact("postgresql://u:secret@h/db"), "postgresql://u:***@h/db")
        self.assertEqual(t.redact("postgresql://u@h/db"), "postgresql://u@h/db")
        self.assertEqual(t.with_driver("mysql://u@h/db"), "mysql+pymysql://u@h/db")
        self.assertEqual(t.with_driver("sqlite:///x.db"), "sqlite:///x.db")


class Seeds(unittest.TestCase):
    def test_no_two_seed_and_trial_counts_share_a_sampler_seed(self):
        seeds = {(s, n): t.sampler_seed(s, n) for s in range(64) for n in range(64)}
        self.assertEqual(len(set(seeds.values())), len(seeds))
        # The quoted collision: --seed 2 after one trial, --seed 1 after two.
        self.assertNotEqual(t.sampler_seed(2, 1), t.sampler_seed(1, 2))
        # NumPy's generators take 32 bits; a large --seed is no error.
        self.assertTrue(all(0 <= v < 2**32 for v in seeds.values()))
        self.assertLess(t.sampler_seed(2**64 - 1, 7), 2**32)

    def test_base_config_changes_are_named(self):
        old = '[data]\npath = "/a"\n[optim]\nlr = 0.1\n'
        new = '[data]\npath = "/b"\n[optim]\nlr = 0.1\nepochs = 3\n'
        self.assertEqual(t.toml_changes(old, new), "data.path: /a -> /b, optim.epochs: - -> 3")


class Folder(unittest.TestCase):
    def test_a_folder_of_another_study_is_not_taken_over(self):
        with tempfile.TemporaryDirectory() as d:
            req = {"study_dir": d, "saved": {"storage": "sqlite:///$STUDY/study.db", "study_name": "a"}}
            t.save_study_files(req)
            t.save_study_files(req)
            with self.assertRaisesRegex(t.UsageError, "holds the study 'a'"):
                t.save_study_files(dict(req, saved={"storage": None, "study_name": "b"}))
            self.assertIn('"a"', (Path(d) / "study.json").read_text())

    def test_runs_beyond_the_studys_trials_are_not_taken_over(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertIsNone(t.foreign_run(Path(d), 0))
            (Path(d) / "trials" / "0001").mkdir(parents=True)
            (Path(d) / "trials" / "0001.log").write_text("")
            self.assertIsNone(t.foreign_run(Path(d), 2))
            self.assertEqual(t.foreign_run(Path(d), 1).name, "0001")


class Ownership(unittest.TestCase):
    def test_a_trial_of_a_live_tuner_is_not_orphaned(self):
        now = time.time()
        self.assertFalse(t.orphaned(trial({"sipl_owner": t.OWNER, "sipl_heartbeat": 0}), now))

    def test_a_dead_local_tuner_orphans_its_trial_at_once(self):
        dead = dict(t.OWNER, pid=2**22 + 7)  # beyond pid_max: no such process
        self.assertTrue(t.orphaned(trial({"sipl_owner": dead, "sipl_heartbeat": time.time()}), time.time()))
        reused = dict(t.OWNER, start=(t.OWNER["start"] or 0) + 1)  # our pid, another start
        self.assertTrue(t.orphaned(trial({"sipl_owner": reused, "sipl_heartbeat": time.time()}), time.time()))

    def test_another_machine_is_judged_by_its_heartbeat(self):
        other = {"host": "elsewhere", "pid": 1, "start": 1}
        now = time.time()
        self.assertFalse(t.orphaned(trial({"sipl_owner": other, "sipl_heartbeat": now - 5}), now))
        self.assertTrue(t.orphaned(trial({"sipl_owner": other, "sipl_heartbeat": now - t.GRACE_S - 1}), now))

    def test_an_unclaimed_trial_waits_a_moment(self):
        now = time.time()
        self.assertFalse(t.orphaned(trial({}, datetime.fromtimestamp(now - 1)), now))
        self.assertTrue(t.orphaned(trial({}, datetime.fromtimestamp(now - t.ASK_GRACE_S - 1)), now))
        self.assertFalse(t.orphaned(trial({"sipl_surplus": True}, datetime.fromtimestamp(0)), now))


class Runs(unittest.TestCase):
    def test_metrics_best_epochs_and_first_error(self):
        with tempfile.TemporaryDirectory() as d:
            run = Path(d)
            (run / "metrics.jsonl").write_text(
                '{"epoch":1,"step":5,"val_accuracy":0.25}\n{"loss":1,"step":6}\n'
                '{"epoch":2,"step":10,"val_accuracy":0.5}\n{"epoch":2,"step":12,"val_accuracy":0.375}\n'
                '{"epoch":0,"step":0,"knn_accuracy":0.75}\n{"epoch":2,"step":12,"knn_accuracy":0.125}\n{"cut'
            )
            self.assertEqual(t.best_of(run, "val_accuracy"), 0.5)
            self.assertEqual(t.best_of(run, "knn_accuracy"), 0.125)
            self.assertEqual(t.epochs_run(run), 3)
            log = run / "0000.log"
            log.write_text("$ sipl train a\nerror: old\n\n$ sipl train b\nresuming\nerror: data.train_images = 100: must be in [1, 47]\n")
            self.assertEqual(t.first_error(log), "data.train_images = 100: must be in [1, 47]")
            self.assertIsNone(t.best_of(run / "missing", "val_accuracy"))

    def test_an_unlocked_or_absent_run_directory_is_free(self):
        with tempfile.TemporaryDirectory() as d:
            stop = SimpleNamespace(is_set=lambda: False)
            self.assertTrue(t.wait_unlocked(Path(d) / "none", stop))
            (Path(d) / ".lock").write_text("")
            self.assertTrue(t.wait_unlocked(Path(d), stop))


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    unittest.main()
