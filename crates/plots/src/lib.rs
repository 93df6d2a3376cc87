//! PNG charts for speechrnn's reports: line panels (linear or log₁₀ y axis), a confusion
//! matrix, and a heat map with a colour bar. They are drawn with [plotters] on an RGB
//! buffer in DejaVu Sans, which is embedded so that a picture looks the same on every
//! machine, and returned as PNG bytes; the caller decides where and how to write them.
//!
//! ```
//! let train = plots::Series::new("train", [31, 119, 180], vec![(1.0, 2.3), (2.0, 1.1), (3.0, 0.6)]);
//! let panel = plots::Panel::new("loss", "epoch", "cross-entropy (nats)", vec![train]);
//! let png = plots::line_panels(&[panel])?;
//! assert_eq!(&png[1..4], b"PNG");
//! # Ok::<(), plots::PlotError>(())
//! ```

use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters could not lay out or draw the chart.
    #[error("drawing the chart failed")]
    Draw(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The pixels could not be encoded.
    #[error("encoding the PNG failed")]
    Encode(#[from] png::EncodingError),
}

impl<E: std::error::Error + Send + Sync + 'static> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        Self::Draw(Box::new(error))
    }
}

/// The font family every text is set in.
const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans as [`FONT`] (once per process).
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid TrueType font"));
    });
}

/// Draws on a white `width × height` RGB canvas and encodes it as PNG.
fn render(
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), PlotError>,
) -> Result<Vec<u8>, PlotError> {
    register_font();
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present()?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(bytes)
}

fn rgb([r, g, b]: [u8; 3]) -> RGBColor {
    RGBColor(r, g, b)
}

/// One line of a [`Panel`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// RGB colour of the line and of its legend entry.
    pub colour: [u8; 3],
    /// `(x, y)` points, joined in order; non-finite ones (and, on a log axis, values ≤ 0)
    /// are left out.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, colour: [u8; 3], points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            colour,
            points,
        }
    }
}

/// How a y axis maps values to heights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Linear, from `low` to `high`; both taken from the data (with 0 included) when `None`.
    Linear(Option<(f64, f64)>),
    /// Logarithmic, from the power of ten at or below the smallest value to the one at or
    /// above the largest.
    Log10,
}

/// Where a panel's legend sits: in the corner its lines leave free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Corner {
    /// Top right (for falling lines, such as a loss).
    #[default]
    UpperRight,
    /// Bottom right (for rising lines, such as an accuracy).
    LowerRight,
}

/// One chart of [`line_panels`]: a title, both axes named (with their units), lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_scale: Scale,
    pub legend: Corner,
    pub series: Vec<Series>,
}

impl Panel {
    /// A panel with a linear y axis from 0 (or the lowest value below it) to the largest.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            y_scale: Scale::Linear(None),
            legend: Corner::UpperRight,
            series,
        }
    }

    /// The same panel with its legend in another corner.
    pub fn with_legend(self, legend: Corner) -> Self {
        Self { legend, ..self }
    }

    /// The same panel with another y scale.
    pub fn with_y_scale(self, y_scale: Scale) -> Self {
        Self { y_scale, ..self }
    }

    /// Whether a point can be drawn: finite, and above 0 on a log axis.
    fn shows(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (self.y_scale != Scale::Log10 || y > 0.0)
    }

    /// The points of every series that [`Panel::shows`].
    fn shown_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&point| self.shows(point))
    }
}

/// A tick value as short as it can be: no trailing zeros, scientific notation outside
/// 0.001–99,999.
pub fn tick(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&magnitude) {
        let text = format!("{value:.1e}");
        text.replace(".0e", "e")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Size of one panel of [`line_panels`], in pixels.
pub const PANEL_SIZE: (u32, u32) = (520, 400);

/// `(low, high)` of `values`, widened to a non-empty range.
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        (0.0, 1.0)
    } else if high > low {
        (low, high)
    } else {
        (low - 0.5, high + 0.5)
    }
}

/// Panels side by side, each [`PANEL_SIZE`], with a legend in each that has named lines.
pub fn line_panels(panels: &[Panel]) -> Result<Vec<u8>, PlotError> {
    let size = (PANEL_SIZE.0 * panels.len().max(1) as u32, PANEL_SIZE.1);
    render(size, |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    })
}

fn draw_panel(area: &DrawingArea<BitMapBackend, Shift>, panel: &Panel) -> Result<(), PlotError> {
    let (x_low, x_high) = extent(panel.shown_points().map(|p| p.0));
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64);
    // The same drawing for both kinds of y axis (their coordinate types differ).
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(panel.x_label.as_str())
                .y_desc(panel.y_label.as_str())
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 16))
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()?;
            for series in &panel.series {
                let colour = rgb(series.colour);
                let points = series.points.iter().copied().filter(|&p| panel.shows(p));
                let drawn = chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
                if !series.name.is_empty() {
                    drawn.label(series.name.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                }
            }
            if panel.series.iter().any(|s| !s.name.is_empty()) {
                chart
                    .configure_series_labels()
                    .label_font((FONT, 14))
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(160, 160, 160))
                    .position(match panel.legend {
                        Corner::UpperRight => SeriesLabelPosition::UpperRight,
                        Corner::LowerRight => SeriesLabelPosition::LowerRight,
                    })
                    .draw()?;
            }
        }};
    }
    match panel.y_scale {
        Scale::Linear(range) => {
            let (low, high) = range.unwrap_or_else(|| {
                let (low, high) = extent(panel.shown_points().map(|p| p.1));
                (low.min(0.0), high)
            });
            draw!(builder.build_cartesian_2d(x_low..x_high, low..high)?);
        }
        Scale::Log10 => {
            let (low, high) = extent(panel.shown_points().map(|p| p.1.log10()));
            let (low, high) = (10f64.powf(low.floor()), 10f64.powf(high.ceil()));
            draw!(builder.build_cartesian_2d(x_low..x_high, (low..high).log_scale())?);
        }
    }
    Ok(())
}

/// Side of a confusion-matrix cell, in pixels.
pub const CONFUSION_CELL: u32 = 44;

/// Colour of a confusion-matrix cell holding `share` of its row: blue on the diagonal, red
/// off it, white at 0 and saturated at 1.
pub fn confusion_colour(share: f64, diagonal: bool) -> [u8; 3] {
    let shade = (255.0 * (1.0 - share.clamp(0.0, 1.0))) as u8;
    if diagonal {
        [shade, shade, 255]
    } else {
        [255, shade, shade]
    }
}

/// A confusion matrix: row = true class (top to bottom), column = predicted class, each
/// cell with its count and coloured by its share of the row ([`confusion_colour`]); the
/// class names label both axes.
pub fn confusion_matrix(
    counts: &[Vec<usize>],
    class_names: &[String],
) -> Result<Vec<u8>, PlotError> {
    let n = counts.len();
    let last = n.saturating_sub(1) as u32;
    let name = |index: usize| {
        class_names
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    };
    let longest = (0..n).map(|i| name(i).chars().count()).max().unwrap_or(1) as u32;
    let label_room = 48 + 9 * longest;
    let side = CONFUSION_CELL * n.max(1) as u32;
    let size = (side + label_room + 40, side + label_room + 40);
    render(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(label_room)
            .y_label_area_size(label_room)
            // An integer range holds both ends: `0..last` gives the `n` segments `0..=last`.
            .build_cartesian_2d((0..last).into_segmented(), (0..last).into_segmented())?;
        // Row `r` of the matrix is drawn at height `n − 1 − r`, so that row 0 is at the top.
        let class_at = |value: &SegmentValue<u32>, flip: bool| match value {
            SegmentValue::CenterOf(i) if (*i as usize) < n => name(if flip {
                n - 1 - *i as usize
            } else {
                *i as usize
            }),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&|v| class_at(v, false))
            .y_label_formatter(&|v| class_at(v, true))
            .x_desc("predicted class")
            .y_desc("true class")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()?;
        let exact = |column: usize, height: usize| {
            (
                SegmentValue::Exact(column as u32),
                SegmentValue::Exact(height as u32),
            )
        };
        for (row, line) in counts.iter().enumerate() {
            let total = line.iter().sum::<usize>().max(1) as f64;
            let height = n - 1 - row;
            for (column, &count) in line.iter().enumerate().take(n) {
                let share = count as f64 / total;
                let fill = rgb(confusion_colour(share, row == column)).filled();
                chart.draw_series(std::iter::once(Rectangle::new(
                    [exact(column, height + 1), exact(column + 1, height)],
                    fill,
                )))?;
                if count > 0 {
                    let ink = if share > 0.5 { WHITE } else { BLACK };
                    let style = TextStyle::from((FONT, 15).into_font())
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    chart.draw_series(std::iter::once(Text::new(
                        count.to_string(),
                        (
                            SegmentValue::CenterOf(column as u32),
                            SegmentValue::CenterOf(height as u32),
                        ),
                        style,
                    )))?;
                }
            }
        }
        Ok(())
    })
}

/// A matrix drawn as colours, like `librosa.display.specshow`: `columns` steps of time left
/// to right, `rows` values per step bottom to top, with a colour bar.
#[derive(Debug, Clone, Copy)]
pub struct Heatmap<'a> {
    /// `columns · rows` values, one column (time step) after another.
    pub values: &'a [f32],
    pub columns: usize,
    pub rows: usize,
    /// Seconds from one column to the next (the x axis is in seconds).
    pub seconds_per_column: f64,
    /// Name of the rows (the y axis), e.g. "MFCC coefficient".
    pub row_label: &'a str,
    /// Name of the values (the colour bar).
    pub value_label: &'a str,
}

/// The colour range of a heat map: the 1st and 99th percentiles of the finite values (as
/// seaborn's `robust=True`), so that a few extreme values (MFCC c0, silence in a log-mel
/// spectrum) do not wash the rest out; values beyond it take the end colours.
pub fn robust_range(values: &[f32]) -> (f64, f64) {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return (0.0, 1.0);
    }
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]);
    let (low, high) = (at(0.01), at(0.99));
    if high > low {
        (low, high)
    } else {
        (low - 0.5, high + 0.5)
    }
}

/// A [`Heatmap`] in viridis (dark blue low, yellow high), one colour range for the whole
/// matrix ([`robust_range`]), with time in seconds on the x axis, the row index on the y
/// axis and a colour bar on the right.
pub fn heatmap(map: &Heatmap) -> Result<Vec<u8>, PlotError> {
    let (columns, rows) = (map.columns.max(1), map.rows.max(1));
    let plot_width = (2 * columns as u32).clamp(480, 1600);
    let plot_height = (8 * rows as u32).clamp(240, 640);
    let bar_width = 110;
    let size = (plot_width + 90 + bar_width, plot_height + 80);
    let (low, high) = robust_range(map.values);
    let colour = |v: f32| {
        let v = if v.is_finite() { f64::from(v) } else { low };
        ViridisRGB.get_color_normalized(v.clamp(low, high), low, high)
    };
    let duration = columns as f64 * map.seconds_per_column;
    render(size, |root| {
        let (main, bar) = root.split_horizontally(size.0 - bar_width);
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..duration, 0.0..rows as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (s)")
            .y_desc(map.row_label)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let step = map.seconds_per_column;
        chart.draw_series((0..map.columns).flat_map(|c| {
            (0..map.rows).map(move |r| {
                let value = map.values[c * map.rows + r];
                let (x, y) = (c as f64 * step, r as f64);
                Rectangle::new([(x, y), (x + step, y + 1.0)], colour(value).filled())
            })
        }))?;
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(12)
            .margin_bottom(56)
            .margin_right(8)
            .y_label_area_size(64)
            .set_label_area_size(LabelAreaPosition::Right, 0)
            .build_cartesian_2d(0.0..1.0, low..high)?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(map.value_label)
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .draw()?;
        let bands = 128;
        scale.draw_series((0..bands).map(|b| {
            let (from, to) = (
                low + (high - low) * b as f64 / bands as f64,
                low + (high - low) * (b + 1) as f64 / bands as f64,
            );
            Rectangle::new(
                [(0.0, from), (1.0, to)],
                colour(((from + to) / 2.0) as f32).filled(),
            )
        }))?;
        Ok(())
    })
}
