//! The pictures decode, with the size, colours and text they promise.

use plots::{
    CONFUSION_CELL, Heatmap, PANEL_SIZE, Panel, Scale, Series, confusion_colour, confusion_matrix,
    heatmap, line_panels, robust_range,
};

fn decode(png: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("a PNG");
    let mut bytes = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut bytes).expect("one frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = bytes.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, pixels)
}

fn has(pixels: &[[u8; 3]], colour: [u8; 3]) -> bool {
    pixels.contains(&colour)
}

/// Pixels dark enough to be text or axes (anti-aliased text has grey edges).
fn dark(pixels: &[[u8; 3]]) -> usize {
    pixels.iter().filter(|p| p.iter().all(|&c| c < 60)).count()
}

const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];

fn two_lines() -> Vec<Series> {
    vec![
        Series::new(
            "train",
            BLUE,
            (1..=5).map(|e| (e as f64, 2.0 / e as f64)).collect(),
        ),
        Series::new(
            "valid",
            ORANGE,
            (1..=5).map(|e| (e as f64, 2.5 / e as f64)).collect(),
        ),
    ]
}

#[test]
fn panels_sit_side_by_side_with_every_line_and_their_labels() {
    let panels = [
        Panel::new("loss", "epoch", "loss", two_lines()),
        Panel::new("accuracy", "epoch", "accuracy (%)", two_lines())
            .with_y_scale(Scale::Linear(Some((0.0, 100.0)))),
    ];
    let (width, height, pixels) = decode(&line_panels(&panels).expect("draws"));
    assert_eq!((width, height), (2 * PANEL_SIZE.0, PANEL_SIZE.1));
    assert!(
        has(&pixels, BLUE) && has(&pixels, ORANGE),
        "both lines drawn"
    );
    assert!(dark(&pixels) > 500, "axes, ticks and labels drawn");
    // The axis names are drawn from the panel: another name, another picture.
    let renamed = [Panel::new("loss", "step", "loss", two_lines())];
    let original = [Panel::new("loss", "epoch", "loss", two_lines())];
    assert_ne!(
        decode(&line_panels(&renamed).expect("draws")).2,
        decode(&line_panels(&original).expect("draws")).2
    );
}

#[test]
fn a_log_axis_leaves_out_what_it_cannot_show_and_odd_data_still_draws() {
    let lines = vec![
        Series::new(
            "decaying",
            BLUE,
            (0..30).map(|t| (t as f64, 10f64.powi(t - 30))).collect(),
        ),
        Series::new(
            "with zeros",
            ORANGE,
            vec![(0.0, 0.0), (1.0, 1e-3), (2.0, f64::NAN), (3.0, 1e-2)],
        ),
    ];
    let panel = Panel::new("norms", "step t", "norm", lines).with_y_scale(Scale::Log10);
    let (_, _, pixels) = decode(&line_panels(&[panel]).expect("draws"));
    assert!(has(&pixels, BLUE) && has(&pixels, ORANGE));
    // One point, no points, a flat line: nothing to divide by zero.
    for points in [vec![(1.0, 0.5)], vec![], vec![(1.0, 2.0), (2.0, 2.0)]] {
        let panel = Panel::new("t", "x", "y", vec![Series::new("s", BLUE, points)]);
        decode(&line_panels(&[panel]).expect("draws"));
    }
}

#[test]
fn confusion_cells_are_shaded_by_their_share_of_the_row_and_labelled() {
    assert_eq!(confusion_colour(1.0, true), [0, 0, 255]);
    assert_eq!(confusion_colour(0.0, false), [255, 255, 255]);
    assert_eq!(confusion_colour(1.0 / 6.0, false), [255, 212, 212]);
    let counts = vec![vec![5, 0, 1], vec![0, 6, 0], vec![2, 0, 4]];
    let names: Vec<String> = ["XX", "XY", "YX"].map(String::from).to_vec();
    let png = confusion_matrix(&counts, &names).expect("draws");
    let (width, height, pixels) = decode(&png);
    assert!(width >= 3 * CONFUSION_CELL && height >= 3 * CONFUSION_CELL);
    // A whole row right (saturated blue), 1 of 6 wrong (light red), 4 of 6 right.
    let saturated = pixels.iter().filter(|&&p| p == [0, 0, 255]).count() as u32;
    assert!(
        saturated > CONFUSION_CELL * CONFUSION_CELL / 2,
        "{saturated} px"
    );
    assert!(has(&pixels, [255, 212, 212]));
    assert!(has(&pixels, confusion_colour(4.0 / 6.0, true)));
    // The class names are drawn: other names, another picture.
    let other: Vec<String> = ["aa", "bb", "cc"].map(String::from).to_vec();
    assert_ne!(
        decode(&confusion_matrix(&counts, &other).expect("draws")).2,
        pixels
    );
}

#[test]
fn a_heatmap_spans_the_colour_map_and_has_a_colour_bar() {
    let (columns, rows) = (200, 13);
    let values: Vec<f32> = (0..columns * rows)
        .map(|i| ((i / rows) as f32 / 10.0).sin() * (i % rows) as f32)
        .collect();
    let map = Heatmap {
        values: &values,
        columns,
        rows,
        seconds_per_column: 0.01,
        row_label: "MFCC coefficient",
        value_label: "cepstral value",
    };
    let (width, height, pixels) = decode(&heatmap(&map).expect("draws"));
    assert!(width > 480 && height > 240);
    // Viridis's ends: at or beyond the 1st and 99th percentiles, in the map and the bar.
    let (low_end, high_end) = ([68, 1, 84], [253, 231, 37]);
    let near = |p: &[u8; 3], q: [u8; 3]| p.iter().zip(q).all(|(a, b)| a.abs_diff(b) <= 2);
    assert!(pixels.iter().any(|p| near(p, low_end)), "lowest colour");
    assert!(pixels.iter().any(|p| near(p, high_end)), "highest colour");
    assert!(dark(&pixels) > 300, "axes and labels drawn");
}

#[test]
fn tick_values_are_short() {
    use plots::tick;
    assert_eq!(tick(5.0), "5");
    assert_eq!(tick(2.5), "2.5");
    assert_eq!(tick(0.125), "0.125");
    assert_eq!(tick(100.0), "100");
    assert_eq!(tick(0.0), "0");
    assert_eq!(tick(1e-12), "1e-12");
    assert_eq!(tick(2.5e-7), "2.5e-7");
}

#[test]
fn the_robust_range_ignores_the_extreme_percent_at_each_end() {
    let values: Vec<f32> = (0..=100).map(|v| v as f32).collect();
    assert_eq!(robust_range(&values), (1.0, 99.0));
    let mut with_outlier = values.clone();
    with_outlier[50] = 1e9;
    with_outlier.push(f32::NAN);
    let (low, high) = robust_range(&with_outlier);
    assert!(low >= 1.0 && high <= 100.0, "({low}, {high})");
    assert_eq!(robust_range(&[]), (0.0, 1.0));
    assert_eq!(robust_range(&[3.0; 10]), (2.5, 3.5));
}
