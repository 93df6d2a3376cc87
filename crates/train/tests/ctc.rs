//! The CTC loss against PyTorch's (`reference/ctc.json`, written by `reference/make_ctc.py`):
//! per-sequence losses, the mean PyTorch reports, and the gradient with respect to the
//! logits; and the decoders on probability tables whose best labelling is known.

use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use serde_json::Value;
use train::eval::ctc::{
    CtcError, Decoding, Emitted, ctc_loss, edit_distance, forced_align, greedy_decode,
    mean_over_target_lengths, prefix_beam_search,
};

type B = Autodiff<NdArray>;

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/ctc.json"
    ))
    .expect("golden file");
    serde_json::from_str(&text).expect("JSON")
}

fn numbers(value: &Value) -> Vec<f64> {
    match value {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().expect("a number")],
        _ => panic!("not numbers: {value}"),
    }
}

fn usizes(value: &Value) -> Vec<usize> {
    numbers(value).into_iter().map(|v| v as usize).collect()
}

#[test]
fn losses_means_and_logit_gradients_match_pytorch() {
    let golden = golden();
    for case in golden["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let logits = &case["logits"];
        let (batch, time) = (
            logits.as_array().expect("batch").len(),
            logits[0].as_array().expect("time").len(),
        );
        let classes = logits[0][0].as_array().expect("classes").len();
        let values: Vec<f32> = numbers(logits).into_iter().map(|v| v as f32).collect();
        let device = Default::default();
        let logits =
            Tensor::<B, 3>::from_data(TensorData::new(values, [batch, time, classes]), &device)
                .require_grad();
        let lengths = usizes(&case["target_lengths"]);
        let targets: Vec<Vec<usize>> = case["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .zip(&lengths)
            .map(|(row, &n)| usizes(row)[..n].to_vec())
            .collect();
        let inputs = usizes(&case["input_lengths"]);
        let blank = case["blank"].as_u64().expect("blank") as usize;
        let losses = ctc_loss(logits.clone(), &targets, &inputs, blank).expect("valid batch");
        let ours: Vec<f32> = losses.clone().into_data().iter::<f32>().collect();
        for (i, (ours, theirs)) in ours
            .iter()
            .zip(case["loss"].as_array().expect("loss"))
            .enumerate()
        {
            match theirs.as_f64() {
                Some(theirs) => assert!(
                    (*ours as f64 - theirs).abs() < 1e-6 * theirs.abs().max(1.0),
                    "{name}[{i}]: ours {ours}, PyTorch {theirs}"
                ),
                None => assert!(
                    ours.is_infinite() && *ours > 0.0,
                    "{name}[{i}]: ours {ours}, PyTorch inf"
                ),
            }
        }
        let mean = mean_over_target_lengths(losses.clone(), &targets);
        let theirs = case["mean_zero_infinity"].as_f64().expect("mean");
        let ours = mean.into_scalar() as f64;
        assert!(
            (ours - theirs).abs() < 1e-6 * theirs.max(1.0),
            "{name} mean: ours {ours}, PyTorch {theirs}"
        );
        // The gradient of the sum of the finite losses (PyTorch: zero_infinity).
        let infinite = losses.clone().is_inf();
        let gradients = losses
            .clone()
            .mask_where(infinite, losses.zeros_like())
            .sum()
            .backward();
        let ours: Vec<f32> = logits
            .grad(&gradients)
            .expect("a gradient")
            .into_data()
            .iter::<f32>()
            .collect();
        let theirs = numbers(&case["grad_logits"]);
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (*a as f64 - b).abs() < 1e-5,
                "{name} ∂/∂logits[{i}]: ours {a}, PyTorch {b}"
            );
        }
    }
}

#[test]
fn a_batch_that_cannot_be_scored_is_an_error_not_a_panic() {
    let device = Default::default();
    let logits = Tensor::<B, 3>::zeros([2, 4, 3], &device);
    let error = |targets: &[Vec<usize>], inputs: &[usize]| {
        ctc_loss(logits.clone(), targets, inputs, 0).expect_err("refused")
    };
    assert!(matches!(
        error(&[vec![1]], &[4, 4]),
        CtcError::BatchSize {
            what: "targets",
            ..
        }
    ));
    assert!(matches!(
        error(&[vec![1], vec![2]], &[5, 4]),
        CtcError::Length { index: 0, .. }
    ));
    assert!(matches!(
        error(&[vec![1], vec![1, 2, 1, 2, 1]], &[4, 4]),
        CtcError::Length { index: 1, .. }
    ));
    assert!(matches!(
        error(&[vec![0], vec![1]], &[4, 4]),
        CtcError::Label { label: 0, .. }
    ));
    assert!(matches!(
        error(&[vec![3], vec![1]], &[4, 4]),
        CtcError::Label { label: 3, .. }
    ));
    // Empty targets are fine: the loss is that of all blanks.
    let loss = ctc_loss(logits, &[vec![], vec![]], &[4, 2], 0).expect("empty targets");
    let values: Vec<f32> = loss.into_data().iter::<f32>().collect();
    let uniform = 3f32.ln();
    assert!((values[0] - 4.0 * uniform).abs() < 1e-5 && (values[1] - 2.0 * uniform).abs() < 1e-5);
}

/// Log-probabilities of a table of probabilities.
fn logs(table: &[&[f32]]) -> Vec<f32> {
    table
        .iter()
        .flat_map(|row| row.iter().map(|p| p.ln()))
        .collect()
}

#[test]
fn greedy_decoding_merges_runs_and_gives_their_frames() {
    // blank, 1, 2: frames say 2 2 blank 2 1 1 blank.
    let table: &[&[f32]] = &[
        &[0.1, 0.1, 0.8],
        &[0.2, 0.1, 0.7],
        &[0.9, 0.05, 0.05],
        &[0.1, 0.1, 0.8],
        &[0.1, 0.8, 0.1],
        &[0.1, 0.8, 0.1],
        &[0.7, 0.2, 0.1],
    ];
    let decoded = greedy_decode(&logs(table), 7, 3, 0);
    let spans: Vec<(usize, usize, usize)> =
        decoded.iter().map(|e| (e.label, e.start, e.end)).collect();
    assert_eq!(spans, [(2, 0, 2), (2, 3, 4), (1, 4, 6)]);
    // Only the valid frames count.
    let first_two: Vec<usize> = greedy_decode(&logs(table), 2, 3, 0)
        .iter()
        .map(|e| e.label)
        .collect();
    assert_eq!(first_two, [2]);
}

#[test]
fn prefix_beam_search_sums_the_alignments_of_a_labelling() {
    // Three frames over blank, 1, 2. Best path: blank, blank, 2 → "2" (0.5·0.5·0.4 = 0.1).
    // "1" collects 0.4·0.4·0.3 + … over its many alignments and wins.
    let table: &[&[f32]] = &[&[0.5, 0.4, 0.1], &[0.5, 0.4, 0.1], &[0.3, 0.3, 0.4]];
    let log_p = logs(table);
    let greedy: Vec<usize> = greedy_decode(&log_p, 3, 3, 0)
        .iter()
        .map(|e| e.label)
        .collect();
    assert_eq!(greedy, [2]);
    // Every labelling's probability, by brute force over the 27 paths.
    let mut totals = std::collections::BTreeMap::<Vec<usize>, f32>::new();
    for path in 0..27usize {
        let symbols = [path / 9, path / 3 % 3, path % 3];
        let mut labels: Vec<usize> = Vec::new();
        let mut previous = 0;
        for &s in &symbols {
            if s != 0 && s != previous {
                labels.push(s);
            }
            previous = s;
        }
        let p: f32 = symbols
            .iter()
            .enumerate()
            .map(|(t, &s)| table[t][s])
            .product();
        *totals.entry(labels).or_default() += p;
    }
    let best = totals
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("labellings")
        .0
        .clone();
    assert_eq!(best, [1]);
    assert_eq!(prefix_beam_search(&log_p, 3, 3, 0, 8), best);
    // A repeated label needs a blank between its two runs.
    let twice: &[&[f32]] = &[&[0.05, 0.9, 0.05], &[0.9, 0.05, 0.05], &[0.05, 0.9, 0.05]];
    assert_eq!(prefix_beam_search(&logs(twice), 3, 3, 0, 4), [1, 1]);
    let once: &[&[f32]] = &[&[0.05, 0.9, 0.05], &[0.05, 0.9, 0.05], &[0.05, 0.9, 0.05]];
    assert_eq!(prefix_beam_search(&logs(once), 3, 3, 0, 4), [1]);
}

/// The labelling a path of symbols collapses to (repeats merged, blanks dropped), with the
/// frames of each label: best-path decoding of a table that puts each frame on its symbol.
fn collapse(symbols: &[usize], classes: usize) -> Vec<Emitted> {
    let table: Vec<f32> = symbols
        .iter()
        .flat_map(|&s| (0..classes).map(move |c| f32::from(u8::from(c == s))))
        .collect();
    greedy_decode(&table, symbols.len(), classes, 0)
}

#[test]
fn forced_alignment_is_the_most_probable_path_of_the_labelling() {
    // Five frames over blank, 1, 2: the best of the 3⁵ paths that collapse to each
    // labelling, by brute force, against the Viterbi alignment.
    let table: &[&[f32]] = &[
        &[0.2, 0.5, 0.3],
        &[0.4, 0.3, 0.3],
        &[0.3, 0.3, 0.4],
        &[0.5, 0.1, 0.4],
        &[0.1, 0.6, 0.3],
    ];
    let log_p = logs(table);
    for labels in [
        vec![1],
        vec![1, 2],
        vec![2, 1],
        vec![1, 1],
        vec![1, 2, 1],
        vec![2, 2, 2],
    ] {
        let mut best: Option<(f32, Vec<Emitted>)> = None;
        for path in 0..3usize.pow(5) {
            let symbols: Vec<usize> = (0..5).map(|t| path / 3usize.pow(4 - t) % 3).collect();
            let emitted = collapse(&symbols, 3);
            if emitted.iter().map(|e| e.label).collect::<Vec<_>>() != labels {
                continue;
            }
            let p: f32 = symbols
                .iter()
                .enumerate()
                .map(|(t, &s)| table[t][s])
                .product();
            if best.as_ref().is_none_or(|(q, _)| p > *q) {
                best = Some((p, emitted));
            }
        }
        let (_, want) = best.expect("every labelling here fits five frames");
        assert_eq!(
            forced_align(&log_p, 5, 3, 0, &labels),
            Some(want),
            "{labels:?}"
        );
    }
    // Too many labels for the frames: three repeats need five frames.
    assert_eq!(forced_align(&log_p, 4, 3, 0, &[2, 2, 2]), None);
    assert_eq!(forced_align(&log_p, 5, 3, 0, &[]), Some(Vec::new()));
}

#[test]
fn decodings_agree_with_their_searches() {
    let table: &[&[f32]] = &[&[0.5, 0.4, 0.1], &[0.5, 0.4, 0.1], &[0.3, 0.3, 0.4]];
    // Unnormalised logits: the log-probabilities shifted per frame.
    let logits: Vec<f32> = logs(table)
        .chunks(3)
        .enumerate()
        .flat_map(|(t, row)| row.iter().map(move |x| x + t as f32).collect::<Vec<_>>())
        .collect();
    assert_eq!(Decoding::with_beam_width(1), Decoding::BestPath);
    assert_eq!(Decoding::with_beam_width(0), Decoding::BestPath);
    assert_eq!(
        Decoding::BestPath.decode(&logits, 3, 3, 0),
        greedy_decode(&logs(table), 3, 3, 0)
    );
    let beam = Decoding::with_beam_width(8).decode(&logits, 3, 3, 0);
    let labels: Vec<usize> = beam.iter().map(|e| e.label).collect();
    assert_eq!(labels, prefix_beam_search(&logs(table), 3, 3, 0, 8));
    assert_eq!(Some(beam), forced_align(&logs(table), 3, 3, 0, &labels));
}

#[test]
fn edit_distance_counts_insertions_deletions_and_substitutions() {
    assert_eq!(edit_distance(&[1, 2, 3, 4], &[1, 2, 3, 4]), 0);
    assert_eq!(edit_distance(&[1, 2, 3, 4], &[1, 3, 4]), 1);
    assert_eq!(edit_distance(&[1, 2, 3, 4], &[1, 2, 9, 3, 4]), 1);
    assert_eq!(edit_distance(&[1, 2, 3, 4], &[4, 3, 2, 1]), 4);
    assert_eq!(edit_distance::<u8>(&[], &[]), 0);
    assert_eq!(edit_distance(&[], &[7, 7, 7]), 3);
}
