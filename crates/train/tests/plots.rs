//! The PNG pictures decode, with the size and colours they promise.

use train::report::metrics::EpochMetrics;
use train::report::plot::{
    PANEL_SIZE, TRAIN_COLOUR, VALID_COLOUR, confusion_colour, confusion_matrix, learning_curves,
    log_lines,
};

fn decode(path: &std::path::Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("file"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut bytes = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut bytes).expect("one frame");
    let pixels = bytes.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, pixels)
}

#[test]
fn learning_curves_and_confusion_matrices_are_written_as_pictures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let history: Vec<EpochMetrics> = (1..=4)
        .map(|epoch| EpochMetrics {
            epoch,
            train_loss: 2.0 / epoch as f64,
            train_accuracy: 0.2 * epoch as f64,
            valid_loss: 2.2 / epoch as f64,
            valid_accuracy: 0.18 * epoch as f64,
            valid_class_accuracy: vec![0.1, 0.2],
            seconds: 1.0,
            valid_label_error_rate: None,
        })
        .collect();
    learning_curves(&dir.path().join("curves.png"), &history).expect("writes");
    let (width, height, pixels) = decode(&dir.path().join("curves.png"));
    assert_eq!((width, height), (2 * PANEL_SIZE.0, PANEL_SIZE.1));
    assert!(
        pixels.contains(&TRAIN_COLOUR) && pixels.contains(&VALID_COLOUR),
        "both series are drawn"
    );

    let counts = vec![vec![5, 0, 1], vec![0, 6, 0], vec![2, 0, 4]];
    let names: Vec<String> = ["XX", "XY", "YX"].map(String::from).to_vec();
    confusion_matrix(&dir.path().join("confusion.png"), &counts, &names).expect("writes");
    let (_, _, pixels) = decode(&dir.path().join("confusion.png"));
    assert!(pixels.contains(&confusion_colour(1.0, true)));
    assert!(pixels.contains(&confusion_colour(1.0 / 6.0, false)));
}

#[test]
fn log_lines_draw_each_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = vec![
        (
            "rnn".to_string(),
            [214, 39, 40],
            (0..30).map(|t| 10f64.powi(t - 30)).collect(),
        ),
        ("gru".to_string(), [44, 160, 44], vec![1e-3; 30]),
    ];
    let path = dir.path().join("lines.png");
    log_lines(&path, "norms", &series, "step t", "norm").expect("writes");
    let (_, _, pixels) = decode(&path);
    for (name, colour, _) in &series {
        assert!(pixels.contains(colour), "{name} drawn");
    }
}

#[test]
fn metrics_csv_has_one_accuracy_column_per_class() {
    let history = vec![EpochMetrics {
        epoch: 1,
        train_loss: 1.0,
        train_accuracy: 0.5,
        valid_loss: 1.5,
        valid_accuracy: 0.25,
        valid_class_accuracy: vec![0.5, 0.0],
        seconds: 2.0,
        valid_label_error_rate: None,
    }];
    let csv = train::report::files::metrics_csv(&history, &["XX".to_string(), "XY".to_string()]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",valid_accuracy_XX,valid_accuracy_XY"));
    assert!(lines[1].ends_with(",0.500000,0.000000"), "{}", lines[1]);
}
