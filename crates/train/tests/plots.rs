//! The PNG pictures decode, with the size and colours they promise.

use train::plot::{confusion_matrix, learning_curves};
use train::trainer::EpochMetrics;

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
    assert_eq!((width, height), (700, 360));
    let has = |rgb: [u8; 3]| pixels.chunks_exact(3).any(|p| p == rgb);
    assert!(
        has([31, 119, 180]) && has([255, 127, 14]),
        "both series are drawn"
    );

    let counts = vec![vec![5, 0, 1], vec![0, 6, 0], vec![2, 0, 4]];
    confusion_matrix(&dir.path().join("confusion.png"), &counts).expect("writes");
    let (width, height, pixels) = decode(&dir.path().join("confusion.png"));
    assert_eq!((width, height), (3 * 32 + 16, 3 * 32 + 16));
    // Cell (1, 1) is a whole row: fully saturated blue at its centre.
    let at = |x: usize, y: usize| &pixels[(y * width as usize + x) * 3..][..3];
    assert_eq!(at(8 + 32 + 16, 8 + 32 + 16), [0, 0, 255]);
    // Row 0: one of six predicted as class 2 (light red), none as class 1 (white).
    assert_eq!(at(8 + 64 + 16, 8 + 16), [255, 212, 212]);
    assert_eq!(at(8 + 32 + 16, 8 + 16), [255, 255, 255]);
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
