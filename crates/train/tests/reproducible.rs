//! A seeded run of the `experiment` binary on ndarray reports bit-identical metrics in
//! separate processes. Without `models::AlignedAllocator` (installed by the binary),
//! burn-ndarray's SIMD kernels take alignment-dependent paths and runs drift apart in the
//! last bits within a few steps.

use std::path::Path;

mod common;

/// The per-epoch metrics of a finished run, at full precision, without wall-clock times.
fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir.join("metrics.json")).expect("metrics.json");
    let summary: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut epochs = summary["epochs"].as_array().expect("epochs").clone();
    for epoch in &mut epochs {
        epoch.as_object_mut().expect("an object").remove("seconds");
    }
    epochs
}

#[test]
fn seeded_runs_in_separate_processes_report_identical_metrics() {
    let out = tempfile::tempdir().expect("tempdir");
    let runs: Vec<Vec<serde_json::Value>> = (0..3)
        .map(|i| {
            let name = format!("run{i}");
            let status = common::smoke_train(2, 60, &name, out.path(), &[])
                .output()
                .expect("the experiment binary runs");
            assert!(
                status.status.success(),
                "{}",
                String::from_utf8_lossy(&status.stderr)
            );
            metrics(&out.path().join(name))
        })
        .collect();
    assert_eq!(runs[0].len(), 2);
    assert!(
        runs[0][1]["train_loss"]
            .as_f64()
            .is_some_and(f64::is_finite)
    );
    assert_eq!(runs[0], runs[1], "second run differs from the first");
    assert_eq!(runs[0], runs[2], "third run differs from the first");
}
