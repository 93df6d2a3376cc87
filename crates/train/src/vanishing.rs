//! How far back the loss reaches: ‖∂L/∂h_t‖ for every step t, measured for RNN, LSTM and
//! GRU at initialisation and after training (the vanishing-gradient problem, measured).

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use models::{RecurrentState, SequenceClassifier};

use crate::backend::OnBackend;
use crate::config::ExperimentConfig;
use crate::data::batch::Batch;
use crate::data::generated::TemporalOrder;
use crate::engine::{RunOptions, TrainError, train};
use crate::report::files::OutputError;

/// `size` sequences of `task` drawn from `seed`, all of its shortest length: the probe batch
/// [`hidden_gradient_norms`] needs (full-length sequences only).
pub fn probe_batch(task: &TemporalOrder, seed: u64, size: usize) -> Batch {
    use rand::SeedableRng;
    let mut fixed_length = task.clone();
    fixed_length.max_length = fixed_length.min_length;
    fixed_length.sample(&mut rand::rngs::StdRng::seed_from_u64(seed), size)
}

/// ‖∂L/∂h_t‖ of one model on the probe batch, t = 0…T−1, before and after training.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// At initialisation.
    pub before: Vec<f64>,
    /// After training as the experiment says.
    pub after: Vec<f64>,
    /// Validation accuracy at the end of training.
    pub valid_accuracy: f64,
}

/// Builds the experiment's model from its seed, measures [`hidden_gradient_norms`] on
/// `probe`, trains it, and measures again; on whichever backend [`crate::backend::run_on`]
/// picks.
pub struct VanishingJob<'a> {
    /// The experiment (a generated task with one class per sequence).
    pub config: &'a ExperimentConfig,
    /// Full-length sequences to measure on.
    pub probe: &'a Batch,
}

impl OnBackend for VanishingJob<'_> {
    type Output = Result<Measurement, TrainError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let config = self.config;
        let data = config.prepare_data()?;
        B::seed(&device, config.seed);
        let initial = config.model.init::<B>(data.sizes(), &device);
        let before = hidden_gradient_norms(&initial, self.probe, &device);
        let options = RunOptions::default();
        let outcome = train::<B>(config.spec(), &data, &device, &options, ())?;
        Ok(Measurement {
            before,
            after: hidden_gradient_norms(&outcome.model, self.probe, &device),
            valid_accuracy: outcome.history.last().map_or(0.0, |m| m.valid_accuracy),
        })
    }
}

/// ‖∂L/∂h_t‖ for t = 0…T−1, averaged over the batch. L is the cross-entropy of the
/// softmax over `y` at the last step; h_t is the hidden state of the top layer after step
/// t. All sequences of `batch` must have its full length.
///
/// Each step is run on its own, carrying the state, and a zero tensor that requires a
/// gradient is added to the carried hidden state: its gradient is ∂L/∂h_t (burn keeps
/// gradients of leaves only).
pub fn hidden_gradient_norms<B: AutodiffBackend>(
    model: &SequenceClassifier<B>,
    batch: &Batch,
    device: &B::Device,
) -> Vec<f64> {
    let [size, time, features] = batch.shape;
    assert!(
        batch.lengths.iter().all(|&l| l == time),
        "full-length sequences only"
    );
    let x = Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
    let mut state: Option<RecurrentState<B, 3>> = None;
    let mut probes = Vec::with_capacity(time);
    for step in x.chunk(time, 1) {
        let (_, next) = model
            .recurrent
            .forward(step.reshape([size, 1, features]), state, None);
        let probe = Tensor::<B, 3>::zeros(next.hidden.dims(), device).require_grad();
        probes.push(probe.clone());
        state = Some(RecurrentState {
            hidden: next.hidden + probe,
            cell: next.cell,
        });
    }
    let hidden = state.expect("at least one step").hidden;
    let [layers, _, width] = hidden.dims();
    let top = hidden.narrow(0, layers - 1, 1).reshape([size, 1, width]);
    let y = model.output.forward(top);
    let classes = y.dims()[2];
    let logits = y.reshape([size, classes]);
    let targets = Tensor::<B, 1, Int>::from_data(
        TensorData::new(
            batch
                .sequence_classes()
                .expect("a task with one class per sequence")
                .to_vec(),
            [size],
        ),
        device,
    );
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    let grads = loss.backward();
    probes
        .iter()
        .map(|probe| {
            let grad = probe.grad(&grads).expect("every step reaches the loss");
            let top = grad.narrow(0, layers - 1, 1);
            let per_example = top.powi_scalar(2).sum_dim(2).sqrt();
            per_example.mean().into_scalar().elem::<f64>()
        })
        .collect()
}

/// A cell the `vanishing` report compares, with the colour of its lines.
#[derive(Debug, Clone)]
pub struct ComparedCell {
    pub name: &'static str,
    pub cell: models::CellKind,
    /// RGB of its trained line; the line at initialisation is a lighter tint of it.
    pub colour: [u8; 3],
}

/// The cells of the report: RNN (red), LSTM (blue), LSTM with chrono initialisation for
/// lags up to `max_length` (purple), GRU (green).
pub fn compared_cells(max_length: usize) -> Vec<ComparedCell> {
    let cell = |name, cell, colour| ComparedCell { name, cell, colour };
    vec![
        cell(
            "rnn",
            models::CellKind::rnn(models::Nonlinearity::Tanh),
            [214, 39, 40],
        ),
        cell("lstm", models::CellKind::lstm(), [31, 119, 180]),
        cell(
            "lstm-chrono",
            models::CellKind::Lstm {
                peephole: false,
                coupled_input_forget: false,
                unit_forget_bias: false,
                chrono_init: Some(max_length),
            },
            [148, 103, 189],
        ),
        cell("gru", models::CellKind::gru(), [44, 160, 44]),
    ]
}

/// `t` and one column per cell and moment (`rnn_init`, `rnn_trained`, …): ‖∂L/∂h_t‖ per step.
pub fn report_csv(results: &[(ComparedCell, Measurement)]) -> String {
    let mut csv = String::from("t");
    for (cell, _) in results {
        csv.push_str(&format!(",{0}_init,{0}_trained", cell.name));
    }
    csv.push('\n');
    let steps = results.first().map_or(0, |(_, m)| m.before.len());
    for t in 0..steps {
        csv.push_str(&t.to_string());
        for (_, m) in results {
            csv.push_str(&format!(",{:.6e},{:.6e}", m.before[t], m.after[t]));
        }
        csv.push('\n');
    }
    csv
}

/// Writes `vanishing_gradients.csv` ([`report_csv`]) and `vanishing_gradients.png` (the
/// norms against t on a log scale; light lines at initialisation, dark ones trained) into
/// `run_dir`, each whole or not at all.
pub fn write_report(
    run_dir: &std::path::Path,
    results: &[(ComparedCell, Measurement)],
) -> Result<(), OutputError> {
    let failed = |file: &str| {
        let path = run_dir.join(file);
        move |source| OutputError { path, source }
    };
    std::fs::create_dir_all(run_dir).map_err(failed(""))?;
    let csv_file = "vanishing_gradients.csv";
    features::write_atomic(&run_dir.join(csv_file), report_csv(results).as_bytes())
        .map_err(failed(csv_file))?;
    let lines: Vec<(String, [u8; 3], Vec<f64>)> = results
        .iter()
        .flat_map(|(cell, m)| {
            let light = cell
                .colour
                .map(|c| (u16::from(c) + (255 - u16::from(c)) * 2 / 3) as u8);
            [
                (format!("{} at init", cell.name), light, m.before.clone()),
                (
                    format!("{} trained", cell.name),
                    cell.colour,
                    m.after.clone(),
                ),
            ]
        })
        .collect();
    let png_file = "vanishing_gradients.png";
    crate::report::plot::log_lines(
        &run_dir.join(png_file),
        "gradient reaching each step",
        &lines,
        "step t",
        "‖∂L/∂h_t‖ (log scale)",
    )
    .map_err(failed(png_file))
}

/// Why the vanishing-gradient study stopped.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The experiment's task is not the temporal-order task the probe needs.
    #[error("vanishing needs a temporal_order task")]
    NotTemporalOrder,
    /// The backend could not be started.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// A cell's training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The report could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// The `experiment vanishing` study: every compared cell on `base`'s task, before and after
/// training, told line by line to `say`; writes the report into `out_dir/NAME/`.
pub fn study(
    base: &ExperimentConfig,
    out_dir: &std::path::Path,
    mut say: impl FnMut(String),
) -> Result<std::path::PathBuf, StudyError> {
    let crate::config::TaskConfig::TemporalOrder(task) = &base.task else {
        return Err(StudyError::NotTemporalOrder);
    };
    let probe = probe_batch(task, base.seed + 2, 64);
    let mut results = Vec::new();
    say(format!("vanishing gradients on {}", base.backend));
    for compared in compared_cells(task.max_length) {
        let mut config = base.clone();
        config.model.cell = compared.cell.clone();
        let job = VanishingJob {
            config: &config,
            probe: &probe,
        };
        let measurement = crate::backend::run_on(config.backend, job)??;
        let (before, after) = (&measurement.before, &measurement.after);
        say(format!(
            "{:5} ‖∂L/∂h_t‖ at t=0 / t=T−1: init {:.2e} / {:.2e}, trained {:.2e} / {:.2e} (validation accuracy {:.1}%)",
            compared.name,
            before[0],
            before[before.len() - 1],
            after[0],
            after[after.len() - 1],
            100.0 * measurement.valid_accuracy
        ));
        results.push((compared, measurement));
    }
    let run_dir = out_dir.join(&base.name);
    write_report(&run_dir, &results)?;
    Ok(run_dir)
}
