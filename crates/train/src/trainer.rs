//! The training loop, written out once and generic over the backend.

use std::sync::Arc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use models::{Pooling, RecurrentConfig, SequenceClassifier, SequenceClassifierConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::averaging::blend;
use crate::checkpoint::{CheckpointError, Checkpoints, best_model_index, load_model};
use crate::clip::{clip_global_norm, clip_value};
use crate::config::{ExperimentConfig, OptimizerConfig, TrainingConfig};
use crate::corpus::{Corpus, CorpusError, TaskData, pad_batch};
use crate::ctc::Decoding;
use crate::datasets::Example;
use crate::loader;
use crate::metrics::{Confusion, EpochMetrics, RunSummary, Score, SplitReport, confusion};
use crate::peers::{PeerError, PeerGroup, PeerSetup, Peers};
use crate::store::StoreError;
use crate::task::{Batch, Targets};

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("loss is {value} at epoch {epoch}, step {step}; stopping")]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The loss.
        value: f64,
    },
    /// The corpus could not be loaded.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A peer of a data-parallel run went away, or the collective operations failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A training batch could not be read from the feature store.
    #[error("reading batch {step} of epoch {epoch}: {source}")]
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
}

/// Builds the classifier an experiment describes, for `input_size` features and `classes`.
pub fn build_model<B: Backend>(
    config: &ExperimentConfig,
    (input_size, classes): (usize, usize),
    device: &B::Device,
) -> SequenceClassifier<B> {
    let m = &config.model;
    let recurrent = RecurrentConfig::new(m.cell.clone(), input_size, m.hidden_size)
        .with_num_layers(m.num_layers)
        .with_bidirectional(m.bidirectional)
        .with_dropout(m.dropout);
    SequenceClassifierConfig::new(recurrent, classes).init(device)
}

/// The loss of one batch (mean cross-entropy of the softmax over `y`, or mean squared
/// error for [`Targets::Values`]) and its [`Score`].
///
/// Per-sequence classes pool `y_t` with `pooling`; per-step classes are scored at every
/// valid step; values are read from `y` at each sequence's last valid step.
pub fn batch_loss<B: Backend>(
    model: &SequenceClassifier<B>,
    batch: &Batch,
    pooling: Pooling,
    device: &B::Device,
) -> (Tensor<B, 1>, Score) {
    let inputs =
        Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
    let y = model.forward(inputs, Some(&batch.lengths));
    let [size, time, outputs] = y.dims();
    let ints = |values: &[i64], shape: [usize; 2]| {
        Tensor::<B, 2, Int>::from_data(TensorData::new(values.to_vec(), shape), device)
    };
    match &batch.targets {
        Targets::Classes(labels) => {
            let logits = pooling.pool(y, Some(&batch.lengths));
            let predicted = logits.clone().argmax(1).into_data();
            let mut score = Score {
                sequences: size,
                per_class: vec![(0, 0); outputs],
                ..Score::default()
            };
            for (p, &label) in predicted.iter::<i64>().zip(labels) {
                let right = p == label;
                score.correct += usize::from(right);
                score.per_class[label as usize].0 += usize::from(right);
                score.per_class[label as usize].1 += 1;
            }
            let targets = ints(labels, [size, 1]).reshape([size]);
            let loss = CrossEntropyLossConfig::new()
                .init(device)
                .forward(logits, targets);
            (loss, score)
        }
        Targets::StepClasses { classes, accepted } => {
            let log_p = burn::tensor::activation::log_softmax(y.reshape([size * time, outputs]), 1);
            let picked = log_p
                .clone()
                .gather(1, ints(classes, [size * time, 1]))
                .reshape([size * time]);
            let mask: Vec<f32> = (0..size * time)
                .map(|row| f32::from(u8::from(row % time < batch.lengths[row / time])))
                .collect();
            let valid_steps: usize = batch.lengths.iter().sum();
            let mask = Tensor::<B, 1>::from_data(TensorData::new(mask, [size * time]), device);
            let loss = (picked * mask)
                .sum()
                .neg()
                .div_scalar(valid_steps.max(1) as f64);
            let predicted: Vec<i64> = log_p.argmax(1).into_data().iter::<i64>().collect();
            let mut score = Score {
                sequences: size,
                per_class: vec![(0, 0); outputs],
                ..Score::default()
            };
            for b in 0..size {
                let mut all_right = true;
                for row in b * time..b * time + batch.lengths[b] {
                    let p = predicted[row] as usize;
                    let right = match accepted {
                        Some(accepted) => accepted[row * outputs + p],
                        None => p as i64 == classes[row],
                    };
                    all_right &= right;
                    let class = classes[row] as usize;
                    score.per_class[class].0 += usize::from(right);
                    score.per_class[class].1 += 1;
                }
                score.correct += usize::from(all_right);
            }
            (loss, score)
        }
        Targets::Sequences(targets) => {
            let decoded = decode_batch(y.clone(), &batch.lengths, Decoding::BestPath);
            let mut score = Score {
                sequences: size,
                ..Score::default()
            };
            for (emitted, target) in decoded.iter().zip(targets) {
                let (right, errors) = sequence_outcome(emitted, target);
                score.correct += usize::from(right);
                score.label_errors += errors;
                score.reference_labels += target.len();
            }
            // Loading keeps only examples with at least as many frames as labels.
            let losses = crate::ctc::ctc_loss(y, targets, &batch.lengths, crate::ctc::BLANK)
                .expect("a batch of loadable examples fits the CTC loss");
            (crate::ctc::mean_over_target_lengths(losses, targets), score)
        }
        Targets::Values { values, tolerance } => {
            let output = Pooling::Last
                .pool(y, Some(&batch.lengths))
                .narrow(1, 0, 1)
                .reshape([size]);
            let target = Tensor::<B, 1>::from_data(TensorData::new(values.clone(), [size]), device);
            let error = output - target;
            let correct = error
                .clone()
                .into_data()
                .iter::<f32>()
                .filter(|e| e.abs() < *tolerance)
                .count();
            let score = Score {
                correct,
                sequences: size,
                ..Score::default()
            };
            (error.powi_scalar(2).mean(), score)
        }
    }
}

/// The decodings of each sequence of `y` (`[batch, time, classes]`) over its valid steps.
pub fn decode_batch<B: Backend>(
    y: Tensor<B, 3>,
    lengths: &[usize],
    decoding: Decoding,
) -> Vec<Vec<crate::ctc::Emitted>> {
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
                crate::ctc::BLANK,
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
        let inputs =
            Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
        let logits = pooling.pool(
            model.forward(inputs, Some(&batch.lengths)),
            Some(&batch.lengths),
        );
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

/// Whether a decoding is its reference exactly, and its edit distance from it.
fn sequence_outcome(emitted: &[crate::ctc::Emitted], reference: &[usize]) -> (bool, usize) {
    let decoded: Vec<usize> = emitted.iter().map(|e| e.label).collect();
    (
        decoded == reference,
        crate::ctc::edit_distance(reference, &decoded),
    )
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
    let (mut right, mut errors, mut labels) = (Vec::new(), 0, 0);
    for chunk in examples.chunks(batch_size.max(1)) {
        let batch = pad_batch(&chunk.iter().collect::<Vec<_>>());
        let inputs =
            Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
        let y = model.forward(inputs, Some(&batch.lengths));
        for (emitted, example) in decode_batch(y, &batch.lengths, decoding).iter().zip(chunk) {
            let reference = example.sequence.as_deref().unwrap_or_default();
            let (exact, edits) = sequence_outcome(emitted, reference);
            right.push(exact);
            errors += edits;
            labels += reference.len();
        }
    }
    SplitReport::from_outcomes(split, examples, &right, Some((errors, labels)))
}

/// Epochs since the best validation accuracy so far (0 when the last epoch is the best).
fn epochs_since_best(history: &[EpochMetrics]) -> usize {
    let best =
        history
            .iter()
            .enumerate()
            .fold(None, |best: Option<(usize, f64)>, (i, m)| match best {
                Some((_, accuracy)) if accuracy >= m.valid_accuracy => best,
                _ => Some((i, m.valid_accuracy)),
            });
    best.map_or(0, |(i, _)| history.len() - 1 - i)
}

/// What a finished run produced.
#[derive(Debug)]
pub struct TrainOutcome<B: AutodiffBackend> {
    /// The model after the last epoch.
    pub model: SequenceClassifier<B>,
    /// One entry per epoch.
    pub history: Vec<EpochMetrics>,
    /// The epoch whose model the reports and confusions score: the best validation
    /// accuracy (the latest on ties), the model `best.mpk` holds and `eval`/`predict` load.
    pub best_epoch: usize,
    /// Accuracy on each report split, in all and per speaker, of the best epoch's model.
    pub reports: Vec<SplitReport>,
    /// Confusion matrices of `valid` and each report split (corpus tasks), of that model.
    pub confusions: Vec<Confusion>,
}

impl<B: AutodiffBackend> TrainOutcome<B> {
    /// Everything but the model: what `metrics.json` holds.
    pub fn into_summary(self) -> RunSummary {
        RunSummary {
            best_epoch: self.best_epoch,
            confusions: self.confusions,
            history: self.history,
            reports: self.reports,
        }
    }
}

/// Where a run keeps its checkpoints and whether it continues from them.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Save a checkpoint after every epoch here.
    pub checkpoints: Option<Checkpoints>,
    /// Continue from the latest checkpoint (a fresh start when there is none).
    pub resume: bool,
    /// Train as one peer of a data-parallel run ([`crate::peers`]); alone when `None`.
    pub peers: Option<Peers>,
}

/// Trains the experiment on backend `B`, calling `on_step` after each batch and
/// `on_epoch` after each epoch.
///
/// Every epoch draws its batch order and dropout masks from seeds derived from the
/// experiment's seed and the epoch number, so a run resumed from a checkpoint ends with
/// exactly the metrics of an uninterrupted one (on ndarray).
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    data: &TaskData,
    device: &B::Device,
    run: &RunOptions,
    on_step: impl FnMut(usize, usize),
    on_epoch: impl FnMut(&EpochMetrics),
) -> Result<TrainOutcome<B>, TrainError> {
    let job = (config, data, device, run);
    match config.training.optimizer {
        OptimizerConfig::Adam => train_with(job, || AdamConfig::new().init(), on_step, on_epoch),
        OptimizerConfig::AdamW { weight_decay } => train_with(
            job,
            || {
                AdamWConfig::new()
                    .with_weight_decay(weight_decay as f32)
                    .init()
            },
            on_step,
            on_epoch,
        ),
        OptimizerConfig::Sgd { momentum, nesterov } => train_with(
            job,
            || {
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                });
                SgdConfig::new().with_momentum(momentum).init()
            },
            on_step,
            on_epoch,
        ),
    }
}

/// [`train`] with a given optimiser.
fn train_with<B, O>(
    (config, data, device, run): (&ExperimentConfig, &TaskData, &B::Device, &RunOptions),
    new_optimizer: impl Fn() -> O,
    mut on_step: impl FnMut(usize, usize),
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<TrainOutcome<B>, TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    B::seed(device, config.seed);
    let t = &config.training;
    let pooling = data.pooling();
    let model = build_model::<B>(config, data.sizes(), device);
    // Parameters are drawn lazily on first use; draw them now, from the experiment's seed.
    model.state_dict();
    let Restored {
        mut model,
        mut optimizer,
        mut history,
        mut best,
        averaged,
    } = restore(model, new_optimizer, run, device)?;
    let mut averaged = t
        .ema_decay
        .map(|_| averaged.unwrap_or_else(|| model.valid()));
    let steps_per_epoch = data.steps_per_epoch(config);
    let total_steps = t.epochs * steps_per_epoch;
    let group = match &run.peers {
        Some(peers) => {
            let on_lost = Arc::clone(&peers.on_lost);
            let joined =
                PeerGroup::join::<B::InnerBackend>(peers.setup.clone(), device, move |e| {
                    on_lost(e)
                })?;
            joined.check_same_start::<B::InnerBackend>(history.len(), device)?;
            Some(joined)
        }
        None => None,
    };

    for epoch in history.len() + 1..=t.epochs {
        if let Some(patience) = t.early_stopping_patience
            && epochs_since_best(&history) >= patience
        {
            break;
        }
        let started = Instant::now();
        let epoch_seed = config
            .seed
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(epoch as u64);
        B::seed(device, epoch_seed);
        let mut rng = StdRng::seed_from_u64(epoch_seed);
        let (mut loss_sum, mut train_score) = (0.0, Score::default());
        let setup = group.as_ref().map(PeerGroup::setup);
        let batches =
            epoch_batches(data, t, &mut rng, setup).map_err(|source| TrainError::Batch {
                epoch,
                step: 1,
                source,
            })?;
        let mut steps = 0;
        for (index, batch) in batches.enumerate() {
            let step = index + 1;
            let (batch, share) = batch.map_err(|source| TrainError::Batch {
                epoch,
                step,
                source,
            })?;
            let learning_rate =
                t.learning_rate_at((epoch - 1) * steps_per_epoch + index, epoch, total_steps);
            let (updated, value, batch_score) = optimise_step(
                model,
                &mut optimizer,
                (&batch, share),
                learning_rate,
                (t, pooling),
                device,
                group.as_ref(),
            )
            .map_err(|e| match e {
                StepError::NonFinite(value) => TrainError::NonFiniteLoss { epoch, step, value },
                StepError::Peer(e) => TrainError::Peer(e),
            })?;
            model = updated;
            if let (Some(decay), Some(average)) = (t.ema_decay, averaged.take()) {
                averaged = Some(blend(average, &model.valid(), decay));
            }
            loss_sum += value;
            train_score.merge(batch_score);
            steps += 1;
            on_step(epoch, step);
        }
        let inference = averaged.clone().unwrap_or_else(|| model.valid());
        let (valid_loss, valid_score) = validate(&inference, data, t.batch_size, device);
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            train_accuracy: train_score.accuracy(),
            valid_loss,
            valid_accuracy: valid_score.accuracy(),
            valid_class_accuracy: valid_score.class_accuracy(),
            valid_label_error_rate: valid_score.label_error_rate(),
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&metrics);
        let solved = t
            .stop_at_accuracy
            .is_some_and(|target| metrics.valid_accuracy >= target);
        history.push(metrics);
        if best_model_index(&history) == Some(history.len() - 1) {
            best = Some((epoch, inference));
        }
        if let Some(checkpoints) = &run.checkpoints {
            checkpoints.save((&model, averaged.as_ref()), &optimizer, &history)?;
        }
        if solved {
            break;
        }
    }
    let (best_epoch, best_model) =
        best.unwrap_or_else(|| (0, averaged.unwrap_or_else(|| model.valid())));
    let (reports, confusions) = match data {
        TaskData::Corpus(corpus) => score_splits(&best_model, corpus, t.batch_size, device),
        TaskData::Generated { .. } => (Vec::new(), Vec::new()),
    };
    if let Some(group) = group {
        group.finish::<B::InnerBackend>()?;
    }
    Ok(TrainOutcome {
        model,
        history,
        best_epoch,
        reports,
        confusions,
    })
}

/// Where a run starts: fresh, or the latest checkpoint with its history and the best
/// epoch's model so far.
struct Restored<B: AutodiffBackend, O> {
    model: SequenceClassifier<B>,
    optimizer: O,
    history: Vec<EpochMetrics>,
    /// The best epoch's model, kept in memory for the reports (restored from best.mpk).
    best: Option<(usize, SequenceClassifier<B::InnerBackend>)>,
    /// The moving average of the weights from the checkpoint, when it has one.
    averaged: Option<SequenceClassifier<B::InnerBackend>>,
}

fn restore<B, O>(
    model: SequenceClassifier<B>,
    new_optimizer: impl Fn() -> O,
    run: &RunOptions,
    device: &B::Device,
) -> Result<Restored<B, O>, TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    let fresh = |model| Restored {
        model,
        optimizer: new_optimizer(),
        history: Vec::new(),
        best: None,
        averaged: None,
    };
    let Some(checkpoints) = run.checkpoints.as_ref().filter(|_| run.resume) else {
        return Ok(fresh(model));
    };
    let Some(restored) = checkpoints.restore_latest(model.clone(), new_optimizer(), device)? else {
        return Ok(fresh(model));
    };
    let best = match best_model_index(&restored.history) {
        Some(index) => {
            let best_model = load_model(restored.model.valid(), &checkpoints.best_path(), device)?;
            Some((restored.history[index].epoch, best_model))
        }
        None => None,
    };
    Ok(Restored {
        model: restored.model,
        optimizer: restored.optimizer,
        history: restored.history,
        best,
        averaged: restored.averaged,
    })
}

/// Why an optimiser step was not taken.
enum StepError {
    /// The loss is NaN or infinite (nothing is updated).
    NonFinite(f64),
    /// The peers could not sum their gradients.
    Peer(PeerError),
}

/// One optimiser step on `batch`: the loss, its gradients (summed over the peers of a
/// data-parallel run, each peer's loss weighted by its `share` of the batch; clipped as
/// configured) and the update. Returns the updated model, the loss and the batch's score.
fn optimise_step<B, O>(
    model: SequenceClassifier<B>,
    optimizer: &mut O,
    (batch, share): (&Batch, f64),
    learning_rate: f64,
    (t, pooling): (&TrainingConfig, Pooling),
    device: &B::Device,
    group: Option<&PeerGroup>,
) -> Result<(SequenceClassifier<B>, f64, Score), StepError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    let (mut loss, mut score) = batch_loss(&model, batch, pooling, device);
    let mut value = loss.clone().into_scalar().elem::<f64>();
    if group.is_some() {
        loss = loss.mul_scalar(share);
        value *= share;
        if share == 0.0 {
            score = Score {
                per_class: vec![(0, 0); score.per_class.len()],
                ..Score::default()
            };
        }
    }
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    if let Some(group) = group {
        (grads, value, score) = group
            .sum_step(&model, grads, (value, score), device)
            .map_err(StepError::Peer)?;
    }
    // A peer's NaN makes the sum NaN, so every peer refuses the step alike.
    if !value.is_finite() {
        return Err(StepError::NonFinite(value));
    }
    if let Some(max) = t.clip_grad_value {
        clip_value::<B, _>(&model, &mut grads, max);
    }
    if let Some(max_norm) = t.clip_grad_norm {
        clip_global_norm::<B, _>(&model, &mut grads, max_norm);
    }
    Ok((optimizer.step(learning_rate, model, grads), value, score))
}

/// Training batches, each with its share of the loss, as they are read.
type WeightedBatches<'a> = Box<dyn Iterator<Item = Result<(Batch, f64), StoreError>> + 'a>;

/// One epoch's training batches, each with its share of the loss (1 when training alone):
/// fresh draws for a generated task; for a corpus, the training utterances shuffled, each as
/// one of its versions with SpecAugment's masks (see [`crate::loader`]). A peer of a
/// data-parallel run gets its part of each batch ([`PeerSetup::rows_read`]).
fn epoch_batches<'a>(
    data: &'a TaskData,
    t: &TrainingConfig,
    rng: &mut StdRng,
    setup: Option<&PeerSetup>,
) -> Result<WeightedBatches<'a>, StoreError> {
    match data {
        TaskData::Generated { task, .. } => {
            let drawn: Vec<(Batch, f64)> = (0..t.steps_per_epoch)
                .map(|_| {
                    let batch = task.sample(rng, t.batch_size);
                    match setup {
                        None => (batch, 1.0),
                        Some(setup) => {
                            let part = batch.rows(setup.rows_read(batch.size()));
                            let share = setup.share(
                                batch.size(),
                                part.loss_normalizer(),
                                batch.loss_normalizer(),
                            );
                            (part, share)
                        }
                    }
                })
                .collect();
            Ok(Box::new(drawn.into_iter().map(Ok)))
        }
        TaskData::Corpus(corpus) => {
            let draws = loader::draw_epoch(&corpus.train, &corpus.augment, corpus.blocks, rng);
            let (examples, batch_size) = (draws.len(), t.batch_size.max(1));
            let setup = setup.cloned();
            let part = {
                let setup = setup.clone();
                move |rows: usize| setup.as_ref().map_or(0..rows, |s| s.rows_read(rows))
            };
            let batches = loader::epoch_batches(&corpus.train, draws, batch_size, part)?;
            Ok(Box::new(batches.enumerate().map(move |(index, batch)| {
                let rows = batch_size.min(examples - index * batch_size);
                let share = setup
                    .as_ref()
                    .map_or(1.0, |s| s.share(rows, s.part(rows).len(), rows));
                batch.map(|batch| (batch, share))
            })))
        }
    }
}

/// Mean loss and score on the validation data.
fn validate<B: Backend>(
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
fn score_splits<B: Backend>(
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
            reports.push(SplitReport::new(split, examples, &predictions));
        }
        let classes = corpus.labels.len();
        confusions.push((
            split.to_string(),
            confusion(examples, &predictions, classes),
        ));
    }
    (reports, confusions)
}
