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

/// A heat map of `values[row][column]` (rows: `row_labels`, columns: `column_labels`; `None`
/// cells stay blank), each cell coloured by log10 of its value and labelled with it and `unit`.
#[allow(clippy::too_many_arguments)]
pub fn heatmap(
    path: &Path,
    title: &str,
    x_name: &str,
    y_name: &str,
    column_labels: &[usize],
    row_labels: &[usize],
    values: &[Vec<Option<f64>>],
    unit: &str,
) -> Result<()> {
    let (cols, rows) = (column_labels.len().max(1), row_labels.len().max(1));
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (140 + 110 * cols as u32, 120 + 60 * rows as u32))
                .into_drawing_area();
        let draw = |e: String| Error::data(path.display(), format!("cannot draw the plot: {e}"));
        root.fill(&WHITE).map_err(|e| draw(e.to_string()))?;
        let logs: Vec<f64> = values
            .iter()
            .flatten()
            .flatten()
            .map(|v| v.max(1e-9).log10())
            .collect();
        let (lo, hi) = logs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(1e-9);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..cols as f64 - 0.5, -0.5..rows as f64 - 0.5)
            .map_err(|e| draw(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_name)
            .y_desc(y_name)
            .x_labels(cols)
            .y_labels(rows)
            .x_label_formatter(&|v| cell_label(column_labels, *v))
            .y_label_formatter(&|v| cell_label(row_labels, *v))
            .draw()
            .map_err(|e| draw(e.to_string()))?;
        for (r, row) in values.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                let Some(v) = value else { continue };
                let t = (v.max(1e-9).log10() - lo) / span;
                let colour = RGBColor(
                    (255.0 * t) as u8,
                    (90.0 + 80.0 * (1.0 - t)) as u8,
                    (255.0 * (1.0 - t)) as u8,
                );
                // Cell (c, r) is centred on the integer point where its axis labels stand.
                let (x, y) = (c as f64, r as f64);
                chart
                    .draw_series([Rectangle::new(
                        [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                        colour.filled(),
                    )])
                    .map_err(|e| draw(e.to_string()))?;
                chart
                    .draw_series([Text::new(
                        format!("{v:.2}{unit}"),
                        (x - 0.45, y + 0.45),
                        ("sans-serif", 14).into_font().color(&WHITE),
                    )])
                    .map_err(|e| draw(e.to_string()))?;
            }
        }
        root.present().map_err(|e| draw(e.to_string()))?;
    }
    crate::files::write_atomically(path, svg.as_bytes())
}

/// The label of the cell whose centre is at `v`, blank between cells.
fn cell_label(labels: &[usize], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels
        .get(i as usize)
        .map(|l| l.to_string())
        .unwrap_or_default()
}

/// One line of a [`lines`] plot.
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// Points, in order.
    pub points: Vec<(f64, f64)>,
    /// Drawn thin and grey-tinted, for predictions beside measurements.
    pub dashed: bool,
}

/// Line plot of several series on shared axes (SVG).
pub fn lines(
    path: &Path,
    title: &str,
    x_name: &str,
    y_name: &str,
    series: &[Series],
) -> Result<()> {
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (x0, x1) = finite().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = finite().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    if x0 > x1 {
        return Err(Error::data(path.display(), "nothing finite to plot"));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        let draw = |e: String| Error::data(path.display(), format!("cannot draw the plot: {e}"));
        root.fill(&WHITE).map_err(|e| draw(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))
            .map_err(|e| draw(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_name)
            .y_desc(y_name)
            .draw()
            .map_err(|e| draw(e.to_string()))?;
        for (i, s) in series.iter().enumerate() {
            let colour = Palette99::pick(i / 2 * 2).to_rgba();
            let style = if s.dashed {
                colour.mix(0.5).stroke_width(1)
            } else {
                colour.stroke_width(2)
            };
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(|e| draw(e.to_string()))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| draw(e.to_string()))?;
        root.present().map_err(|e| draw(e.to_string()))?;
    }
    crate::files::write_atomically(path, svg.as_bytes())
}
