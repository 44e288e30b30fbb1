//! Plots written as SVG with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::EpochMetrics;

/// Training loss and train/validation accuracy against epoch, side by side.
pub fn training_curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        let draw = |e: String| Error::data(path.display(), format!("cannot draw the plot: {e}"));
        root.fill(&WHITE).map_err(|e| draw(e.to_string()))?;
        let (left, right) = root.split_horizontally(480);
        let epochs = history.len().max(1) as f32;
        let max_loss = history
            .iter()
            .map(|m| m.train_loss)
            .fold(0.0f32, f32::max)
            .max(1e-6);
        let mut chart = ChartBuilder::on(&left)
            .caption("training loss", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1f32..epochs.max(2.0), 0f32..max_loss * 1.05)
            .map_err(|e| draw(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .draw()
            .map_err(|e| draw(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                history.iter().map(|m| (m.epoch as f32, m.train_loss)),
                &BLUE,
            ))
            .map_err(|e| draw(e.to_string()))?;
        let mut chart = ChartBuilder::on(&right)
            .caption("accuracy", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1f32..epochs.max(2.0), 0f32..1f32)
            .map_err(|e| draw(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .draw()
            .map_err(|e| draw(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                history.iter().map(|m| (m.epoch as f32, m.train_accuracy)),
                &BLUE,
            ))
            .map_err(|e| draw(e.to_string()))?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                history
                    .iter()
                    .filter_map(|m| m.validation.map(|v| (m.epoch as f32, v.accuracy))),
                &RED,
            ))
            .map_err(|e| draw(e.to_string()))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| draw(e.to_string()))?;
        root.present().map_err(|e| draw(e.to_string()))?;
    }
    crate::files::write_atomically(path, svg.as_bytes())
}
