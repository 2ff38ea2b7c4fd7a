//! One SVG per arm: the primary metric against training size on a log x axis.
//!
//! Ours: the seed mean at each trained size joined by a line, with the 95 % t-interval as an error
//! bar (none when n < 2). The base model (size 0) cannot sit on a log axis (log 0 is undefined), so
//! it is drawn as a dashed horizontal line across the whole plot — see [`x_range`]. Where the
//! experiment mirrors the paper, the paper's points and its starting model's line are drawn beside
//! ours in another colour. Text is laid out with plotters' built-in estimate (no system fonts), so
//! the output is the same on every machine.

use plotters::prelude::*;

use crate::{
    analysis::{Analysis, ArmAnalysis},
    error::{Error, Result},
    format::round3,
};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 440;
const OURS: RGBColor = RGBColor(0, 90, 181);
const PAPER: RGBColor = RGBColor(220, 50, 32);

/// The x range of a plot: from half the smallest positive size to twice the largest, sizes of
/// ours and the paper's together. Size 0 is left out (the base model is a horizontal line, not a
/// point); with no positive size at all the range is 1–10 so the base line still has an axis.
pub fn x_range(sizes: impl IntoIterator<Item = u64>) -> (f64, f64) {
    let positive: Vec<u64> = sizes.into_iter().filter(|&s| s > 0).collect();
    match (positive.iter().min(), positive.iter().max()) {
        (Some(&lo), Some(&hi)) => (lo as f64 / 2.0, hi as f64 * 2.0),
        _ => (1.0, 10.0),
    }
}

/// The y range: every value drawn (means, interval ends, base, paper), padded by 10 % of the span
/// (0.05 when all values are equal).
fn y_range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.1 } else { 0.05 };
    (lo - pad, hi + pad)
}

/// A size as an axis label: 1000 → `1K`, 1500 → `1.5K`, 2e6 → `2M`.
fn size_tick(x: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    };
    if x >= 1e6 {
        format!("{}M", trim(x / 1e6))
    } else if x >= 1e3 {
        format!("{}K", trim(x / 1e3))
    } else {
        trim(x)
    }
}

/// Draws the arm's plot; `None` when the arm has no value of the primary metric to draw.
///
/// # Errors
/// [`Error::Plot`] when plotters fails to draw (it writes to a string, so only on a bug).
pub fn plot_arm(a: &Analysis<'_>, arm: &ArmAnalysis<'_>) -> Result<Option<String>> {
    if arm.primary.is_empty() && arm.base.is_none() {
        return Ok(None);
    }
    let metric = &a.experiment.primary_metric;
    let trained: Vec<(f64, &crate::stats::Summary)> = arm
        .primary
        .iter()
        .filter(|(&size, _)| size > 0)
        .map(|(&size, s)| (size as f64, s))
        .collect();
    let paper_points: Vec<(f64, f64)> = arm
        .paper
        .map(|p| {
            p.points
                .iter()
                .filter(|pt| pt.0 > 0)
                .map(|pt| (pt.0 as f64, pt.1))
                .collect()
        })
        .unwrap_or_default();
    let paper_base = arm
        .paper
        .and_then(|p| p.points.iter().find(|pt| pt.0 == 0).map(|pt| pt.1));

    let (x0, x1) = x_range(
        arm.primary.keys().copied().chain(
            arm.paper
                .into_iter()
                .flat_map(|p| p.points.iter().map(|pt| pt.0)),
        ),
    );
    let mut ys: Vec<f64> = Vec::new();
    for (_, s) in &trained {
        ys.extend([s.mean, s.min, s.max]);
        ys.extend(s.interval().map(|(l, h)| [l, h]).into_iter().flatten());
    }
    if let Some(b) = &arm.base {
        ys.push(b.mean);
    }
    ys.extend(paper_points.iter().map(|p| p.1));
    ys.extend(paper_base);
    let (y0, y1) = y_range(&ys);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let caption = format!(
            "{} — {}: {metric} by training size",
            a.experiment.name, arm.name
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(plot_err)?;
        let y_desc = if a.unit.is_empty() {
            metric.clone()
        } else {
            format!("{metric} ({})", a.unit)
        };
        chart
            .configure_mesh()
            .x_desc(if arm.base.is_some() {
                "training size (log scale; the base model, size 0, is the dashed line)"
            } else {
                "training size (log scale)"
            })
            .y_desc(y_desc)
            .x_label_formatter(&|x| size_tick(*x))
            .y_label_formatter(&|y| round3(*y))
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(plot_err)?;

        if let Some(b) = &arm.base {
            let label = format!(
                "base model (size 0{}): {}",
                if arm.base_pooled { ", all arms" } else { "" },
                round3(b.mean)
            );
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, b.mean), (x1, b.mean)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        }
        if let Some(series) = arm.paper {
            if let Some(pb) = paper_base {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x0, pb), (x1, pb)],
                        3,
                        4,
                        PAPER.stroke_width(1),
                    ))
                    .map_err(plot_err)?
                    .label(format!("paper: starting model {}", round3(pb)))
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], PAPER));
            }
            chart
                .draw_series(LineSeries::new(
                    paper_points.iter().copied(),
                    PAPER.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("paper: {}", series.label))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], PAPER.stroke_width(2)));
        }
        if !trained.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    trained.iter().map(|(x, s)| (*x, s.mean)),
                    OURS.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label("ours: seed mean, 95 % t-interval")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], OURS.stroke_width(2)));
            chart
                .draw_series(
                    trained
                        .iter()
                        .map(|(x, s)| Circle::new((*x, s.mean), 4, OURS.filled())),
                )
                .map_err(plot_err)?;
            chart
                .draw_series(trained.iter().filter_map(|(x, s)| {
                    s.interval()
                        .map(|(lo, hi)| ErrorBar::new_vertical(*x, lo, s.mean, hi, OURS, 10))
                }))
                .map_err(plot_err)?;
        }
        // The paper's markers go on top (hollow), so they stay visible where ours coincide.
        chart
            .draw_series(
                paper_points
                    .iter()
                    .map(|p| TriangleMarker::new(*p, 7, PAPER.stroke_width(2))),
            )
            .map_err(plot_err)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Some(svg))
}

fn plot_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Plot(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_zero_never_reaches_the_log_axis() {
        // Base only: a range still exists, and it is positive (log-safe).
        assert_eq!(x_range([0]), (1.0, 10.0));
        assert_eq!(x_range([]), (1.0, 10.0));
        // 0 is ignored, the rest spans half the smallest to twice the largest.
        assert_eq!(x_range([0, 10, 300]), (5.0, 600.0));
        assert_eq!(x_range([1000, 0, 30_000]), (500.0, 60_000.0));
        let (lo, _) = x_range([0, 1]);
        assert!(lo > 0.0 && lo.ln().is_finite());
    }

    #[test]
    fn ticks_read_as_sizes() {
        assert_eq!(size_tick(10.0), "10");
        assert_eq!(size_tick(1000.0), "1K");
        assert_eq!(size_tick(1500.0), "1.5K");
        assert_eq!(size_tick(30_000.0), "30K");
        assert_eq!(size_tick(2e6), "2M");
        assert_eq!(size_tick(0.5), "0.5");
    }

    #[test]
    fn flat_values_get_a_padded_range() {
        let (lo, hi) = y_range(&[0.2, 0.2]);
        assert!((lo - 0.15).abs() < 1e-12 && (hi - 0.25).abs() < 1e-12);
        assert_eq!(y_range(&[]), (0.0, 1.0));
        let (lo, hi) = y_range(&[0.0, 1.0]);
        assert!((lo + 0.1).abs() < 1e-12 && (hi - 1.1).abs() < 1e-12);
    }
}
