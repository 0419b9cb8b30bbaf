//! What a run shows while it trains: a progress bar on a terminal, or, when stderr is not one
//! (a log file under nohup or Slurm, `make demo > log`), one plain line every `run.log_every`
//! steps and one per validation and monitor figure, so that a log read later shows progress.
//! Only the main rank shows anything.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::metrics::{MonitorLine, TrainLine, ValidationLine};

/// How a run shows its progress (`TrainJob::progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// Plain lines on stderr (a log file).
    Lines,
    /// Nothing (`--quiet`, and every rank but the first).
    Off,
}

impl Progress {
    /// [`Progress::Bar`] on a terminal, [`Progress::Lines`] elsewhere, [`Progress::Off`] when
    /// `quiet`.
    pub fn for_stderr(quiet: bool) -> Self {
        use std::io::IsTerminal;
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Progress::Off,
            (false, true) => Progress::Bar,
            (false, false) => Progress::Lines,
        }
    }
}

/// The run's display: the bar (hidden unless [`Progress::Bar`]) and the plain lines.
pub(super) struct Display {
    bar: ProgressBar,
    lines: bool,
    /// When and at which step this process started, for the rate and the time left.
    start: (Instant, u64),
    total: u64,
}

impl Display {
    pub(super) fn new(style: Progress, total: u64, at: u64) -> Self {
        let bar = match style {
            Progress::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "train {bar:30} {pos}/{len} steps  {msg}  eta {eta}",
                    )
                    .expect("static template"),
                );
                bar.set_position(at);
                bar
            }
            _ => ProgressBar::hidden(),
        };
        Display { bar, lines: style == Progress::Lines, start: (Instant::now(), at), total }
    }

    pub(super) fn step(&self, step: u64) {
        self.bar.set_position(step);
    }

    /// A metrics line: the bar's message, or a plain line.
    pub(super) fn train(&self, l: &TrainLine) {
        self.bar.set_message(format!(
            "loss {:.4} acc {:.3} {:.0} samples/s",
            l.loss, l.accuracy, l.samples_per_s
        ));
        if self.lines {
            let pct = 100.0 * l.step as f64 / self.total.max(1) as f64;
            eprintln!(
                "step {}/{} ({pct:.0}%) epoch {} loss {:.4} acc {:.3} lr {:.3e} {:.0} samples/s, {} left",
                l.step,
                self.total,
                l.epoch,
                l.loss,
                l.accuracy,
                l.lr,
                l.samples_per_s,
                self.time_left(l.step)
            );
        }
    }

    pub(super) fn validation(&self, v: &ValidationLine) {
        self.note(format!(
            "epoch {} step {}: pretext val accuracy {:.1}%{}",
            v.epoch,
            v.step,
            100.0 * v.val_accuracy,
            v.val_predictions.map_or(String::new(), |n| format!(" of {n} predictions"))
        ));
    }

    pub(super) fn monitor(&self, m: &MonitorLine) {
        self.note(format!(
            "epoch {} step {}: monitor kNN (k = {}) {:.1}% [{:.1}, {:.1}] of {} held-out images ({:.1} s)",
            m.epoch,
            m.step,
            m.knn_k,
            100.0 * m.knn_accuracy,
            100.0 * m.knn_low,
            100.0 * m.knn_high,
            m.knn_held_out,
            m.monitor_seconds
        ));
    }

    /// A line above the bar, or a plain line.
    pub(super) fn note(&self, text: String) {
        if self.lines {
            eprintln!("{text}");
        } else if !self.bar.is_hidden() {
            self.bar.println(text);
        }
    }

    pub(super) fn abandon(&self, why: &'static str) {
        self.bar.abandon_with_message(why);
    }

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// `1h02m`, `3m05s` or `12s` at this process's rate so far.
    fn time_left(&self, step: u64) -> String {
        let done = step.saturating_sub(self.start.1);
        if done == 0 {
            return "?".into();
        }
        let per_step = self.start.0.elapsed().as_secs_f64() / done as f64;
        let s = (per_step * self.total.saturating_sub(step) as f64).round() as u64;
        match s {
            0..60 => format!("{s}s"),
            60..3600 => format!("{}m{:02}s", s / 60, s % 60),
            _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        }
    }
}
