//! `experiment corpus-info`: what an audio experiment's corpus holds, before any training.

use crate::config::ExperimentConfig;
use crate::data::sources::CorpusCounts;
use crate::report::metrics::SplitReport;

use super::RunError;

/// Utterances per split, per label and per speaker, and the class order the run will use.
/// `None` when the experiment's task does not read a corpus.
pub fn corpus_table(config: &ExperimentConfig) -> Result<Option<String>, RunError> {
    let Some((task, objective)) = config.task.audio() else {
        return Ok(None);
    };
    let utterances = task.utterances().map_err(RunError::Listing)?;
    let labels = task.resolve_labels(&utterances, objective);
    let mut lines = vec![
        format!("{}: {} utterances", config.name, utterances.len()),
        format!("classes, in output order: {}", labels.join(", ")),
    ];
    let counts = CorpusCounts::new(&utterances);
    lines.extend(label_table(&counts, &labels));
    lines.extend(speaker_lines(&counts));
    Ok(Some(lines.join("\n")))
}

/// A row per label (the classes first), a column per split, and a total row.
fn label_table(counts: &CorpusCounts, labels: &[String]) -> Vec<String> {
    let splits: Vec<&String> = counts.splits.keys().collect();
    let width = labels
        .iter()
        .chain(counts.labels.keys().map(|(_, l)| l))
        .map(|l| l.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut header = format!("\n{:width$}", "label");
    for split in &splits {
        header.push_str(&format!(" {split:>8}"));
    }
    let mut lines = vec![header];
    let mut all_labels: Vec<&String> = labels.iter().collect();
    for (_, label) in counts.labels.keys() {
        if !all_labels.contains(&label) {
            all_labels.push(label);
        }
    }
    for label in all_labels {
        let mut row = format!("{label:width$}");
        for split in &splits {
            let key = ((*split).clone(), label.clone());
            row.push_str(&format!(
                " {:>8}",
                counts.labels.get(&key).copied().unwrap_or(0)
            ));
        }
        if !labels.contains(label) {
            row.push_str("  (not a class: skipped)");
        }
        lines.push(row);
    }
    let mut total = format!("{:width$}", "all");
    for split in &splits {
        total.push_str(&format!(" {:>8}", counts.splits[*split]));
    }
    lines.push(format!("{total}\n"));
    lines
}

/// Per split: how many speakers, the spread of their utterance counts, and each speaker when
/// there are few.
fn speaker_lines(counts: &CorpusCounts) -> Vec<String> {
    let mut lines = Vec::new();
    for split in counts.splits.keys() {
        let speakers: Vec<(&String, usize)> = counts
            .speakers
            .iter()
            .filter(|((s, _), _)| s == split)
            .map(|((_, speaker), &n)| (speaker, n))
            .collect();
        let mut sizes: Vec<usize> = speakers.iter().map(|(_, n)| *n).collect();
        sizes.sort_unstable();
        lines.push(format!(
            "{split}: {} speakers, {}–{} utterances each (median {})",
            speakers.len(),
            sizes.first().copied().unwrap_or(0),
            sizes.last().copied().unwrap_or(0),
            sizes.get(sizes.len() / 2).copied().unwrap_or(0)
        ));
        if speakers.len() <= SplitReport::MAX_SPEAKERS_SHOWN {
            lines.extend(
                speakers
                    .iter()
                    .map(|(speaker, n)| format!("  {speaker}: {n}")),
            );
        }
    }
    lines
}
