//! How many sequences came out right: the counts every objective returns per batch.

/// How many sequences of a batch (or several) came out right, and per class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// Sequences counted right (see [`Targets`](crate::data::batch::Targets) for what "right" means per kind).
    pub correct: usize,
    /// Sequences scored.
    pub sequences: usize,
    /// Per class: (right, total), by true class; empty for regression and sequences.
    pub per_class: Vec<(usize, usize)>,
    /// For label sequences: insertions, deletions and substitutions against the references.
    pub label_errors: usize,
    /// For label sequences: labels in the references.
    pub reference_labels: usize,
}

impl Score {
    /// Adds another batch's counts.
    pub fn merge(&mut self, other: Score) {
        self.correct += other.correct;
        self.sequences += other.sequences;
        self.label_errors += other.label_errors;
        self.reference_labels += other.reference_labels;
        if self.per_class.len() < other.per_class.len() {
            self.per_class.resize(other.per_class.len(), (0, 0));
        }
        for (mine, theirs) in self.per_class.iter_mut().zip(other.per_class) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// Fraction of sequences right.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.sequences.max(1) as f64
    }

    /// Edit distance over reference length, for label sequences (none for other targets).
    pub fn label_error_rate(&self) -> Option<f64> {
        (self.reference_labels > 0).then(|| self.label_errors as f64 / self.reference_labels as f64)
    }

    /// Accuracy of each class (0 for a class never seen).
    pub fn class_accuracy(&self) -> Vec<f64> {
        self.per_class
            .iter()
            .map(|&(right, total)| right as f64 / total.max(1) as f64)
            .collect()
    }
}
