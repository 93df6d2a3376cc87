//! The generated tasks of the 1997 paper and the per-step / regression losses.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use models::{CellKind, Pooling, RecurrentConfig, SequenceClassifierConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;
use train::data::batch::Targets;
use train::data::generated::{Adding, EmbeddedReber};
use train::eval::batch_loss;

#[test]
fn embedded_reber_strings_follow_the_grammar_and_repeat_the_second_symbol() {
    let batch = EmbeddedReber::default().sample(&mut StdRng::seed_from_u64(3), 200);
    let [size, time, width] = batch.shape;
    let Targets::StepClasses {
        classes,
        accepted: Some(accepted),
    } = &batch.targets
    else {
        panic!("per-step targets with legal sets");
    };
    for b in 0..size {
        let length = batch.lengths[b];
        let symbol_at = |t: usize| {
            (0..width)
                .find(|&k| batch.inputs[(b * time + t) * width + k] == 1.0)
                .expect("one-hot")
        };
        assert_eq!(symbol_at(0), 0, "strings start with B");
        for t in 0..length {
            let row = b * time + t;
            let next = classes[row] as usize;
            assert!(
                accepted[row * width + next],
                "the actual next symbol is legal"
            );
            if t + 1 < length {
                assert_eq!(
                    symbol_at(t + 1),
                    next,
                    "targets are the inputs shifted by one"
                );
            }
        }
        // The second-to-last target (the symbol before the final E) repeats symbol 1, and it
        // is the only legal choice there.
        let row = b * time + length - 2;
        assert_eq!(classes[row] as usize, symbol_at(1));
        assert_eq!(
            accepted[row * width..(row + 1) * width]
                .iter()
                .filter(|&&a| a)
                .count(),
            1
        );
        assert_eq!(classes[b * time + length - 1], 6, "strings end with E");
    }
}

#[test]
fn adding_targets_are_half_plus_a_quarter_of_the_marked_sum() {
    let task = Adding { min_length: 40 };
    let batch = task.sample(&mut StdRng::seed_from_u64(5), 300);
    let [size, time, _] = batch.shape;
    let Targets::Values { values, tolerance } = &batch.targets else {
        panic!("regression targets");
    };
    assert_eq!(*tolerance, 0.04);
    for (b, value) in values.iter().enumerate().take(size) {
        let length = batch.lengths[b];
        assert!((40..=44).contains(&length));
        let pair = |t: usize| {
            let at = (b * time + t) * 2;
            (batch.inputs[at], batch.inputs[at + 1])
        };
        let marked: Vec<usize> = (0..length).filter(|&t| pair(t).1 == 1.0).collect();
        assert_eq!(marked.len(), 2, "exactly two marked pairs");
        assert!(
            marked[0] < 10 && marked[1] < 19,
            "marks in the paper's windows"
        );
        let sum: f32 = marked.iter().filter(|&&t| t != 0).map(|&t| pair(t).0).sum();
        assert!((value - (0.5 + sum / 4.0)).abs() < 1e-6);
        for t in [0, length - 1] {
            if !marked.contains(&t) {
                assert_eq!(pair(t).1, -1.0, "first and last pairs carry −1");
            }
        }
    }
}

#[test]
fn per_step_loss_is_the_cross_entropy_over_valid_steps_only() {
    let device = Default::default();
    let model = SequenceClassifierConfig::new(RecurrentConfig::new(CellKind::gru(), 7, 6), 7)
        .init::<NdArray>(&device);
    let mut batch = EmbeddedReber::default().sample(&mut StdRng::seed_from_u64(9), 4);
    let [size, time, width] = batch.shape;
    let (loss, score) = batch_loss(&model, &batch, Pooling::Last, &device);
    let Targets::StepClasses { classes, .. } = &batch.targets else {
        panic!("per-step targets");
    };
    // The same cross-entropy from burn's loss on the valid rows alone.
    let rows: Vec<i64> = (0..size)
        .flat_map(|b| (0..batch.lengths[b]).map(move |t| (b * time + t) as i64))
        .collect();
    let inputs = Tensor::<NdArray, 3>::from_data(
        TensorData::new(batch.inputs.clone(), batch.shape),
        &device,
    );
    let y = model
        .forward(inputs, Some(&batch.lengths))
        .reshape([size * time, width]);
    let index =
        Tensor::<NdArray, 1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &device);
    let targets: Vec<i64> = rows.iter().map(|&r| classes[r as usize]).collect();
    let targets =
        Tensor::<NdArray, 1, Int>::from_data(TensorData::new(targets, [rows.len()]), &device);
    let expected = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(y.select(0, index), targets);
    let (got, want): (f64, f64) = (loss.into_scalar().elem(), expected.into_scalar().elem());
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert_eq!(score.sequences, size);
    // Padding cannot change the loss: corrupt the targets past every length.
    if let Targets::StepClasses { classes, .. } = &mut batch.targets {
        for b in 0..size {
            for t in batch.lengths[b]..time {
                classes[b * time + t] = 3;
            }
        }
    }
    let (again, _) = batch_loss(&model, &batch, Pooling::Last, &device);
    assert_eq!(again.into_scalar().elem::<f64>(), got);
}
