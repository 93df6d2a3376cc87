//! Evaluation: a model's loss and score over examples, its class predictions, the
//! per-speaker reports of the report splits and their confusion matrices, and CTC decoding.
//! What each target kind means by loss and score is its [`objective`].

pub mod ctc;
pub mod objective;
pub mod score;

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use models::{Pooling, SequenceClassifier};

use crate::data::batch::pad_batch;
use crate::data::corpus::{Corpus, TaskData};
use crate::data::example::Example;
use crate::report::metrics::{Confusion, SplitReport};
use ctc::Decoding;
use objective::sequence_outcome;
pub use objective::{batch_loss, forward};
use score::Score;

/// The decodings of each sequence of `y` (`[batch, time, classes]`) over its valid steps.
pub fn decode_batch<B: Backend>(
    y: Tensor<B, 3>,
    lengths: &[usize],
    decoding: Decoding,
) -> Vec<Vec<ctc::Emitted>> {
    let [_, time, classes] = y.dims();
    let values: Vec<f32> = y.into_data().iter::<f32>().collect();
    lengths
        .iter()
        .enumerate()
        .map(|(b, &frames)| {
            let at = b * time * classes;
            decoding.decode(
                &values[at..at + time * classes],
                frames,
                classes,
                ctc::BLANK,
            )
        })
        .collect()
}

/// Mean loss and the [`Score`] of `model` over `examples`, in batches of `batch_size`.
pub fn evaluate<B: Backend>(
    model: &SequenceClassifier<B>,
    examples: &[Example],
    batch_size: usize,
    pooling: Pooling,
    device: &B::Device,
) -> (f64, Score) {
    let (mut loss, mut score) = (0.0, Score::default());
    for chunk in examples.chunks(batch_size.max(1)) {
        let batch = pad_batch(&chunk.iter().collect::<Vec<_>>());
        let (batch_loss, batch_score) = batch_loss(model, &batch, pooling, device);
        loss += batch_loss.into_scalar().elem::<f64>() * chunk.len() as f64;
        score.merge(batch_score);
    }
    (loss / examples.len().max(1) as f64, score)
}

/// The predicted class of each example, in order (arg-max of the pooled `y_t`).
pub fn predict_classes<B: Backend>(
    model: &SequenceClassifier<B>,
    examples: &[Example],
    batch_size: usize,
    pooling: Pooling,
    device: &B::Device,
) -> Vec<usize> {
    let mut predictions = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let batch = pad_batch(&chunk.iter().collect::<Vec<_>>());
        let logits = pooling.pool(forward(model, &batch, device), Some(&batch.lengths));
        predictions.extend(
            logits
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .map(|p| p as usize),
        );
    }
    predictions
}

/// The report of a split whose examples are labelled with sequences, read by `decoding`:
/// string accuracy in all and per speaker, and the label error rate.
pub fn sequence_report<B: Backend>(
    model: &SequenceClassifier<B>,
    split: &str,
    examples: &[Example],
    (batch_size, decoding): (usize, Decoding),
    device: &B::Device,
) -> SplitReport {
    let (mut outcomes, mut errors, mut labels) = (Vec::new(), 0, 0);
    for chunk in examples.chunks(batch_size.max(1)) {
        let batch = pad_batch(&chunk.iter().collect::<Vec<_>>());
        let y = forward(model, &batch, device);
        for (emitted, example) in decode_batch(y, &batch.lengths, decoding).iter().zip(chunk) {
            let reference = example.origin.sequence.as_deref().unwrap_or_default();
            let (exact, edits) = sequence_outcome(emitted, reference);
            outcomes.push((example.origin.speaker.as_str(), exact));
            errors += edits;
            labels += reference.len();
        }
    }
    SplitReport::from_outcomes(split, &outcomes, Some((errors, labels)))
}

/// Mean loss and score on the validation data.
pub fn validate<B: Backend>(
    model: &SequenceClassifier<B>,
    data: &TaskData,
    batch_size: usize,
    device: &B::Device,
) -> (f64, Score) {
    let pooling = data.pooling();
    match data {
        TaskData::Generated { validation, .. } => {
            let (loss, score) = batch_loss(model, validation, pooling, device);
            (loss.into_scalar().elem::<f64>(), score)
        }
        TaskData::Corpus(corpus) => evaluate(model, &corpus.valid, batch_size, pooling, device),
    }
}

/// Per-speaker reports of the report splits, and confusion matrices of `valid` and each
/// report split.
pub fn score_splits<B: Backend>(
    model: &SequenceClassifier<B>,
    corpus: &Corpus,
    batch_size: usize,
    device: &B::Device,
) -> (Vec<SplitReport>, Vec<Confusion>) {
    let (mut reports, mut confusions) = (Vec::new(), Vec::new());
    let splits = std::iter::once(("valid", &corpus.valid)).chain(
        corpus
            .reports
            .iter()
            .map(|(name, examples)| (name.as_str(), examples)),
    );
    if corpus.sequences {
        for (split, examples) in splits.skip(1) {
            let reading = (batch_size, Decoding::BestPath);
            reports.push(sequence_report(model, split, examples, reading, device));
        }
        return (reports, confusions);
    }
    for (split, examples) in splits {
        let predictions = predict_classes(model, examples, batch_size, corpus.pooling, device);
        if split != "valid" {
            reports.push(class_report(split, examples, &predictions));
        }
        let classes = corpus.labels.len();
        confusions.push((
            split.to_string(),
            confusion(examples, &predictions, classes),
        ));
    }
    (reports, confusions)
}

/// Scores class `predictions` against the examples' labels, in all and per speaker.
pub fn class_report(split: &str, examples: &[Example], predictions: &[usize]) -> SplitReport {
    let outcomes: Vec<(&str, bool)> = examples
        .iter()
        .zip(predictions)
        .map(|(example, &predicted)| {
            (
                example.origin.speaker.as_str(),
                predicted == example.origin.label,
            )
        })
        .collect();
    SplitReport::from_outcomes(split, &outcomes, None)
}

/// Counts of (true class, predicted class): row = truth, column = prediction.
pub fn confusion(examples: &[Example], predictions: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0; classes]; classes];
    for (example, &predicted) in examples.iter().zip(predictions) {
        counts[example.origin.label][predicted] += 1;
    }
    counts
}
