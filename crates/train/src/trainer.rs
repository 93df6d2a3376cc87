//! The training loop, written out once and generic over the backend.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use models::{Pooling, RecurrentConfig, SequenceClassifier, SequenceClassifierConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::config::{ExperimentConfig, TaskConfig};
use crate::task::{Batch, TemporalOrder};

/// Metrics after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's training batches.
    pub train_loss: f64,
    /// Fraction of training sequences classified right during the epoch.
    pub train_accuracy: f64,
    /// Cross-entropy on the validation set after the epoch.
    pub valid_loss: f64,
    /// Accuracy on the validation set after the epoch.
    pub valid_accuracy: f64,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
}

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
}

/// Builds the classifier an experiment describes.
pub fn build_model<B: Backend>(
    config: &ExperimentConfig,
    device: &B::Device,
) -> SequenceClassifier<B> {
    let TaskConfig::TemporalOrder(_) = &config.task;
    let m = &config.model;
    let recurrent = RecurrentConfig::new(m.cell.clone(), TemporalOrder::INPUT_SIZE, m.hidden_size)
        .with_num_layers(m.num_layers)
        .with_bidirectional(m.bidirectional)
        .with_dropout(m.dropout);
    SequenceClassifierConfig::new(recurrent, TemporalOrder::NUM_CLASSES).init(device)
}

/// Cross-entropy of the softmax over `y` at each sequence's last valid step, and the number
/// of sequences whose arg-max is right.
pub fn batch_loss<B: Backend>(
    model: &SequenceClassifier<B>,
    batch: &Batch,
    device: &B::Device,
) -> (Tensor<B, 1>, usize) {
    let inputs =
        Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
    let y = model.forward(inputs, Some(&batch.lengths));
    let logits = Pooling::Last.pool(y, Some(&batch.lengths));
    let targets = Tensor::<B, 1, Int>::from_data(
        TensorData::new(batch.labels.clone(), [batch.labels.len()]),
        device,
    );
    let predicted = logits.clone().argmax(1).into_data();
    let correct = predicted
        .iter::<i64>()
        .zip(&batch.labels)
        .filter(|(p, l)| p == *l)
        .count();
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    (loss, correct)
}

/// Trains the experiment on backend `B`, calling `on_epoch` after each epoch.
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    device: &B::Device,
    mut on_step: impl FnMut(usize, usize),
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<(SequenceClassifier<B>, Vec<EpochMetrics>), TrainError> {
    B::seed(device, config.seed);
    let TaskConfig::TemporalOrder(task) = &config.task;
    let t = &config.training;
    let mut model = build_model::<B>(config, device);
    let mut optimizer = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let validation = task.sample(
        &mut StdRng::seed_from_u64(config.seed + 1),
        t.validation_size,
    );
    let mut history = Vec::with_capacity(t.epochs);

    for epoch in 1..=t.epochs {
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0, 0);
        for step in 1..=t.steps_per_epoch {
            let batch = task.sample(&mut rng, t.batch_size);
            let (loss, batch_correct) = batch_loss(&model, &batch, device);
            let value = loss.clone().into_scalar().elem::<f64>();
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss { epoch, step, value });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(t.learning_rate, model, grads);
            loss_sum += value;
            correct += batch_correct;
            seen += batch.labels.len();
            on_step(epoch, step);
        }
        let (valid_loss, valid_correct) = batch_loss(&model.valid(), &validation, device);
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / t.steps_per_epoch as f64,
            train_accuracy: correct as f64 / seen as f64,
            valid_loss: valid_loss.into_scalar().elem::<f64>(),
            valid_accuracy: valid_correct as f64 / validation.labels.len() as f64,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&metrics);
        history.push(metrics);
    }
    Ok((model, history))
}
