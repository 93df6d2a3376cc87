//! What `experiment train` prints: a line per epoch, and the summary after the last.

use crate::config::ExperimentConfig;
use crate::data::corpus::TaskData;
use crate::report::metrics::{EpochMetrics, RunSummary};

/// One epoch's line: losses, accuracies, the label error rate of sequence tasks, seconds.
pub fn epoch_line(m: &EpochMetrics) -> String {
    format!(
        "epoch {:>3}  train loss {:.4} acc {:.1}%  valid loss {:.4} acc {:.1}%{}  ({:.1} s)",
        m.epoch,
        m.train_loss,
        100.0 * m.train_accuracy,
        m.valid_loss,
        100.0 * m.valid_accuracy,
        m.valid_label_error_rate
            .map(|rate| format!(" label error rate {:.1}%", 100.0 * rate))
            .unwrap_or_default(),
        m.seconds
    )
}

/// The lines after training: why it stopped, the final validation accuracy, and each report
/// split in all, per speaker and per class, scored with the best epoch's model.
pub fn summary_text(
    config: &ExperimentConfig,
    data: &TaskData,
    summary: &RunSummary,
    run_dir: &std::path::Path,
) -> String {
    let mut lines = Vec::new();
    let history = &summary.history;
    let last = history.last().expect("at least one epoch");
    let steps_per_epoch = config.training.batches_per_epoch(data);
    if let Some(target) = config
        .training
        .stop_at_accuracy
        .filter(|&target| last.valid_accuracy >= target)
    {
        let sequences = last.epoch * steps_per_epoch * config.training.batch_size;
        lines.push(format!(
            "solved (validation accuracy ≥ {:.1}%) after epoch {}: {sequences} training sequences",
            100.0 * target,
            last.epoch
        ));
    } else if history.len() < config.training.epochs {
        lines.push(format!(
            "stopped early after epoch {}: no better validation accuracy for {} epochs",
            last.epoch,
            config.training.early_stopping_patience.unwrap_or(0)
        ));
    }
    let names = data.class_names();
    let sequences = matches!(data, TaskData::Corpus(corpus) if corpus.sequences);
    let chance = match names.len() {
        _ if sequences => String::new(),
        0 => String::new(),
        classes => format!(" (chance {:.1}%)", 100.0 / classes as f64),
    };
    lines.push(format!(
        "final validation accuracy {:.1}%{chance}; metrics in {}",
        100.0 * last.valid_accuracy,
        run_dir.display()
    ));
    lines.extend(report_lines(summary, &names));
    lines.join("\n")
}

/// The report splits and the per-class accuracies, of the best epoch's model.
fn report_lines(summary: &RunSummary, names: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let best_epoch = summary.best_epoch;
    if let Some(best) = summary.history.iter().find(|m| m.epoch == best_epoch)
        && !summary.reports.is_empty()
    {
        lines.push(format!(
            "scored with epoch {best_epoch}'s model (best.mpk, the best validation accuracy: {:.1}%):",
            100.0 * best.valid_accuracy
        ));
    }
    lines.extend(summary.reports.iter().map(ToString::to_string));
    for (split, counts) in &summary.confusions {
        lines.push(format!("{split} per class: {}", per_class(counts, names)));
    }
    lines
}

/// Each class's accuracy from a confusion matrix (row = truth): `yes 97.1% (99/102), …`.
pub fn per_class(counts: &[Vec<usize>], names: &[String]) -> String {
    counts
        .iter()
        .zip(names)
        .enumerate()
        .map(|(class, (row, name))| {
            let total: usize = row.iter().sum();
            let right = row.get(class).copied().unwrap_or(0);
            format!(
                "{name} {:.1}% ({right}/{total})",
                100.0 * right as f64 / total.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
