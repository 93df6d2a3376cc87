//! The subcommands that read an experiment's corpus without training: `corpus-info` and
//! `cmvn-stats`.

use crate::args::Experiment;
use crate::load_config;

/// `corpus-info`: utterances per split, label and speaker, and the class order.
pub fn corpus_info(experiment: &Experiment) -> anyhow::Result<()> {
    let config = load_config(experiment, None)?;
    match train::run::corpus_table(&config)? {
        Some(table) => println!("{table}"),
        None => anyhow::bail!("corpus-info needs an audio_classification or digit_strings task"),
    }
    Ok(())
}

/// `cmvn-stats`: the training features' mean as a JSON line, and on standard error the TOML
/// that makes it the causal normalisation's prior for `prior_frames` frames.
pub fn cmvn_stats(experiment: &Experiment, prior_frames: usize) -> anyhow::Result<()> {
    let config = load_config(experiment, None)?;
    let Some(stats) = train::run::cmvn_stats(&config)? else {
        anyhow::bail!("cmvn-stats needs an audio_classification or digit_strings task")
    };
    println!("{}", serde_json::to_string(&stats)?);
    let mean: Vec<String> = stats.mean.iter().map(f32::to_string).collect();
    eprintln!(
        "task.causal_cmvn.prior = {{ frames = {prior_frames}, mean = [{}] }}",
        mean.join(", ")
    );
    Ok(())
}
