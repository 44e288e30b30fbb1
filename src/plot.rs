//! Plots written as SVG with plotters.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::EpochMetrics;

/// Training loss and train/validation accuracy against epoch, side by side.
pub fn training_curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let line = |label: &str, points: Vec<(f64, f64)>| Series {
        label: label.to_string(),
        points,
        dashed: false,
    };
    let loss = [line(
        "train",
        history
            .iter()
            .map(|m| (m.epoch as f64, m.train_loss as f64))
            .collect(),
    )];
    let accuracy = [
        line(
            "train",
            history
                .iter()
                .map(|m| (m.epoch as f64, m.train_accuracy as f64))
                .collect(),
        ),
        line(
            "validation",
            history
                .iter()
                .filter_map(|m| m.validation.map(|v| (m.epoch as f64, v.accuracy as f64)))
                .collect(),
        ),
    ];
    let max_loss = history
        .iter()
        .map(|m| m.train_loss as f64)
        .filter(|l| l.is_finite())
        .fold(1e-6, f64::max);
    svg(path, (960, 400), |root, draw| {
        let (left, right) = root.split_horizontally(480);
        let loss_axes = Axes {
            title: "training loss",
            x_name: "epoch",
            y_name: "",
            y_range: Some(0.0..max_loss * 1.05),
            legend: SeriesLabelPosition::UpperRight,
        };
        panel(&left, &loss_axes, &loss, draw)?;
        let accuracy_axes = Axes {
            title: "accuracy",
            y_range: Some(0.0..1.0),
            legend: SeriesLabelPosition::LowerRight,
            ..loss_axes
        };
        panel(&right, &accuracy_axes, &accuracy, draw)
    })
}

/// Draws an SVG of `size` with `paint`, then writes it to `path` atomically.
fn svg(
    path: &Path,
    size: (u32, u32),
    paint: impl FnOnce(&DrawingArea<SVGBackend, Shift>, &dyn Fn(String) -> Error) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let draw = |e: String| Error::data(path.display(), format!("cannot draw the plot: {e}"));
        root.fill(&WHITE).map_err(|e| draw(e.to_string()))?;
        paint(&root, &draw)?;
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
    let size = (140 + 110 * cols as u32, 120 + 60 * rows as u32);
    svg(path, size, |root, draw| {
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
        let mut chart = ChartBuilder::on(root)
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
        Ok(())
    })
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
    let axes = Axes {
        title,
        x_name,
        y_name,
        y_range: None,
        legend: SeriesLabelPosition::UpperRight,
    };
    svg(path, (900, 560), |root, draw| {
        panel(root, &axes, series, draw)
    })
}

/// Titles, the y range (the data's, padded, when `None`) and the legend's place of a panel.
struct Axes<'a> {
    title: &'a str,
    x_name: &'a str,
    y_name: &'a str,
    y_range: Option<Range<f64>>,
    legend: SeriesLabelPosition,
}

/// Draws `series` on `area` (non-finite points left out). A dashed series takes the colour of
/// the solid one before it (a prediction or guide beside its measurement).
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    axes: &Axes<'_>,
    series: &[Series],
    draw: &dyn Fn(String) -> Error,
) -> Result<()> {
    let finite = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let points: Vec<Vec<(f64, f64)>> = series.iter().map(finite).collect();
    let all = || points.iter().flatten();
    let (x0, x1) = all().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = all().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    if x0 > x1 {
        return Err(draw("nothing finite to plot".to_string()));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let y_range = axes.y_range.clone().unwrap_or((y0 - pad)..(y1 + pad));
    let mut chart = ChartBuilder::on(area)
        .caption(axes.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..if x1 > x0 { x1 } else { x0 + 1.0 }, y_range)
        .map_err(|e| draw(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(axes.x_name)
        .y_desc(axes.y_name)
        .draw()
        .map_err(|e| draw(e.to_string()))?;
    let mut colour_index = 0;
    for (i, (s, points)) in series.iter().zip(points).enumerate() {
        if !s.dashed && i > 0 {
            colour_index += 1;
        }
        let colour = Palette99::pick(colour_index).to_rgba();
        let style = if s.dashed {
            colour.mix(0.5).stroke_width(1)
        } else {
            colour.stroke_width(2)
        };
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
        .position(axes.legend.clone())
        .draw()
        .map_err(|e| draw(e.to_string()))?;
    Ok(())
}
