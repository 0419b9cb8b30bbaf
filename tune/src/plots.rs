//! The study's figures, drawn like the project's others (`sipl_eval::plot`: plotters, the
//! embedded font, the same palette): the optimisation history (each trial's value and the
//! best so far, Optuna's `plot_optimization_history`) and the parameter importances
//! (fANOVA, Optuna's `plot_param_importances`).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use sipl_eval::plot::{PALETTE, legend, plot_error, png};

use crate::TuneError;
use crate::driver::Export;

const SIZE: (u32, u32) = (960, 600);

/// Objective (%) against trial number: finished trials as dots, pruned ones as crosses at
/// their last reported pretext accuracy, and the best value so far as a step line.
pub fn history_png(export: &Export, path: &Path) -> Result<(), TuneError> {
    let done: Vec<(f64, f64)> =
        export.trials.iter().filter_map(|t| Some((t.number as f64, 100.0 * t.value?))).collect();
    let pruned: Vec<(f64, f64)> = export
        .trials
        .iter()
        .filter(|t| t.state == "PRUNED")
        .filter_map(|t| {
            let last = t.intermediate.iter().max_by_key(|(e, _)| e.parse::<u64>().unwrap_or(0))?;
            Some((t.number as f64, 100.0 * last.1))
        })
        .collect();
    let mut best = Vec::new();
    let mut so_far = f64::NEG_INFINITY;
    for &(n, v) in &done {
        if v > so_far {
            if let Some(&(_, prev)) = best.last() {
                best.push((n, prev));
            }
            so_far = v;
            best.push((n, v));
        }
    }
    let last = export.trials.iter().map(|t| t.number as f64).fold(0.0, f64::max);
    if let Some(&(_, v)) = best.last() {
        best.push((last, v));
    }
    let top = done.iter().chain(&pruned).map(|p| p.1).fold(1.0, f64::max).min(100.0);
    png(SIZE, path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Optimisation history: {} ({} objective)",
                    export.study_name, export.objective
                ),
                ("sans-serif", 24),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..last + 0.5, 0.0..(top * 1.1).ceil())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("trial")
            .x_label_formatter(&|x| match (x - x.round()).abs() < 1e-9 {
                true => format!("{x:.0}"),
                false => String::new(),
            })
            .y_desc("objective (%)")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(plot_error)?;
        let (blue, orange, grey) = (PALETTE[0], PALETTE[1], PALETTE[7]);
        chart
            .draw_series(done.iter().map(|&p| Circle::new(p, 5, blue.filled())))
            .map_err(plot_error)?
            .label("finished trial")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, blue.filled()));
        chart
            .draw_series(pruned.iter().map(|&p| Cross::new(p, 5, grey.stroke_width(2))))
            .map_err(plot_error)?
            .label("pruned (last pretext accuracy)")
            .legend(move |(x, y)| Cross::new((x + 10, y), 5, grey.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(best, orange.stroke_width(2)))
            .map_err(plot_error)?
            .label(format!("best so far ({so_far:.1}%)"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(2))
            });
        legend(&mut chart)
    })?;
    Ok(())
}

/// One horizontal bar per config key, its fANOVA importance (the shares sum to 1).
pub fn importances_png(importances: &BTreeMap<String, f64>, path: &Path) -> Result<(), TuneError> {
    let mut rows: Vec<(&String, f64)> = importances.iter().map(|(k, v)| (k, *v)).collect();
    rows.sort_by(|a, b| a.1.total_cmp(&b.1));
    png(SIZE, path, |root| {
        let n = rows.len();
        let mut chart = ChartBuilder::on(root)
            .caption("Parameter importances (fANOVA)", ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(200)
            .build_cartesian_2d(0.0..1.0f64, 0.0..n as f64)
            .map_err(plot_error)?;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("importance")
            .y_labels(2 * n + 1)
            .y_label_formatter(&|v| {
                // Bars are centred on i + 0.5: label those ticks only.
                let i = v - 0.5;
                match (i - i.round()).abs() < 1e-6 && i >= 0.0 {
                    true => labels.get(i.round() as usize).cloned().unwrap_or_default(),
                    false => String::new(),
                }
            })
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(plot_error)?;
        let colour = PALETTE[0];
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let y = i as f64;
                Rectangle::new([(0.0, y + 0.15), (r.1, y + 0.85)], colour.filled())
            }))
            .map_err(plot_error)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let at = ((r.1 + 0.01).min(0.9), i as f64 + 0.5);
                Text::new(format!("{:.2}", r.1), at, ("sans-serif", 15).into_font())
            }))
            .map_err(plot_error)?;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::TrialRow;

    #[test]
    fn both_figures_are_drawn() {
        let dir = tempfile::tempdir().expect("tmp");
        let trial = |number, state: &str, value: Option<f64>| TrialRow {
            number,
            state: state.into(),
            params: Default::default(),
            value,
            intermediate: [("1".to_string(), 0.3)].into(),
            epochs: 1,
            wall_s: None,
            error: None,
        };
        let export = Export {
            study_name: "s".into(),
            objective: "pretext".into(),
            trials: vec![
                trial(0, "COMPLETE", Some(0.4)),
                trial(1, "PRUNED", None),
                trial(2, "COMPLETE", Some(0.6)),
            ],
            importances: None,
            session: None,
        };
        history_png(&export, &dir.path().join("h.png")).expect("history");
        let imp = [("optim.lr".to_string(), 0.8), ("optim.batch_size".to_string(), 0.2)].into();
        importances_png(&imp, &dir.path().join("i.png")).expect("importances");
        for f in ["h.png", "i.png"] {
            let img = image::open(dir.path().join(f)).expect("a PNG");
            assert_eq!((img.width(), img.height()), SIZE);
        }
    }
}
