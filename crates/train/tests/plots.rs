//! The PNG pictures decode, with the size and colours they promise.

use train::metrics::EpochMetrics;
use train::plot::{
    CONFUSION_CELL, LEARNING_CURVES_SIZE, Series, confusion_matrix, confusion_origin,
    learning_curves, log_lines,
};

fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("file"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("one frame");
    (info.width, info.height, pixels)
}

#[test]
fn learning_curves_and_confusion_matrices_are_pictures() {
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
        })
        .collect();
    learning_curves(&dir.path().join("curves.png"), &history).expect("writes");
    let (width, height, pixels) = decode(&dir.path().join("curves.png"));
    let (w, h) = LEARNING_CURVES_SIZE;
    assert_eq!((width as usize, height as usize), (w, h));
    let has = |rgb: [u8; 3]| pixels.chunks_exact(3).any(|p| p == rgb);
    assert!(
        has([31, 119, 180]) && has([255, 127, 14]),
        "both series are drawn"
    );

    // Tick values, titles and legend are black text: present, and outside the panels.
    assert!(has([0, 0, 0]), "labels are drawn");

    let counts = vec![vec![5, 0, 1], vec![0, 6, 0], vec![2, 0, 4]];
    let names: Vec<String> = ["XX", "XY", "YX"].map(String::from).to_vec();
    confusion_matrix(&dir.path().join("confusion.png"), &counts, &names).expect("writes");
    let (width, height, pixels) = decode(&dir.path().join("confusion.png"));
    let (left, top) = confusion_origin(&names);
    let cell = CONFUSION_CELL;
    assert_eq!(
        (width as usize, height as usize),
        (left + 3 * cell + 8, top + 3 * cell + 8)
    );
    let at = |x: usize, y: usize| &pixels[(y * width as usize + x) * 3..][..3];
    // Cell (1, 1) is a whole row: fully saturated blue near its corner (its count is
    // written in the middle).
    assert_eq!(at(left + cell + 3, top + cell + 3), [0, 0, 255]);
    // Row 0: one of six predicted as class 2 (light red), none as class 1 (white).
    assert_eq!(at(left + 2 * cell + 3, top + 3), [255, 212, 212]);
    assert_eq!(at(left + cell + 3, top + 3), [255, 255, 255]);
    // The count "6" is written in white on the saturated cell.
    let centre = (left + cell + cell / 2, top + cell + cell / 2);
    let white_near_centre = (centre.1 - 4..centre.1 + 4)
        .flat_map(|y| (centre.0 - 4..centre.0 + 4).map(move |x| (x, y)))
        .any(|(x, y)| at(x, y) == [255, 255, 255]);
    assert!(white_near_centre, "the count is written in the cell");
    // Other class names give another picture (the labels are drawn from them).
    let other: Vec<String> = ["aa", "bb", "cc"].map(String::from).to_vec();
    confusion_matrix(&dir.path().join("other.png"), &counts, &other).expect("writes");
    assert_ne!(decode(&dir.path().join("other.png")).2, pixels);
}

#[test]
fn log_lines_draw_each_series_and_its_legend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = vec![
        Series {
            name: "rnn".into(),
            values: (0..30).map(|t| 10f64.powi(t - 30)).collect(),
            colour: [214, 39, 40],
        },
        Series {
            name: "gru".into(),
            values: vec![1e-3; 30],
            colour: [44, 160, 44],
        },
    ];
    let path = dir.path().join("lines.png");
    log_lines(&path, &series, "step t", "norm").expect("writes");
    let (_, _, pixels) = decode(&path);
    for s in &series {
        assert!(
            pixels.chunks_exact(3).any(|p| p == s.colour),
            "{} drawn",
            s.name
        );
    }
    assert!(
        pixels.chunks_exact(3).any(|p| p == [0, 0, 0]),
        "labels drawn"
    );
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
    }];
    let csv = train::output::metrics_csv(&history, &["XX".to_string(), "XY".to_string()]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",valid_accuracy_XX,valid_accuracy_XY"));
    assert!(lines[1].ends_with(",0.500000,0.000000"), "{}", lines[1]);
}
