//! Small shape helpers the exporter's graphs share.

use onnx::{Attribute, GraphBuilder};

/// The size of `axis` of `x` as an int64 scalar.
pub(super) fn axis_size(graph: &mut GraphBuilder, x: &str, axis: i64) -> String {
    let shape = graph.node("Shape", &[x], vec![]);
    let index = graph.constant_i64("axis", &[], &[axis]);
    graph.node(
        "Gather",
        &[&shape, &index],
        vec![("axis", Attribute::Int(0))],
    )
}

/// `x` with a new axis of size 1 at `axis`.
pub(super) fn unsqueeze(graph: &mut GraphBuilder, x: &str, axis: i64) -> String {
    let axes = graph.constant_i64(&format!("axis{axis}"), &[1], &[axis]);
    graph.node("Unsqueeze", &[x, &axes], vec![])
}

/// `0, 1, …, n − 1` (int64) for an int64 scalar `n`.
pub(super) fn count_to(graph: &mut GraphBuilder, n: &str) -> String {
    let zero = graph.constant_i64("zero", &[], &[0]);
    let one = graph.constant_i64("one", &[], &[1]);
    graph.node("Range", &[&zero, n, &one], vec![])
}
