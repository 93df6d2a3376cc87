//! Weights the fused kernels packed for one inference call, kept for the next calls with
//! the same weight tensors (a live stream calls once per frame).

use std::borrow::Cow;
use std::sync::Arc;

use burn_ndarray::NdArrayTensor;

use super::{Operands, View, cpu};

/// Weights packed by earlier inference calls on this thread, most recent first, each with
/// handles to the tensors it was packed from: while a handle is held, the tensor's buffer
/// is neither freed (so its address names only it) nor written in place (burn-ndarray
/// copies a buffer that is shared before writing), so the same address means the same
/// values.
struct PackedCache {
    entries: Vec<PackedEntry>,
}

/// Where a weight's values lie: address, length and strides.
type Place = (usize, usize, (usize, usize));

struct PackedEntry {
    /// Per direction: where `W_ihᵀ` and `W_hhᵀ` lie.
    key: Vec<[Place; 2]>,
    _held: Vec<NdArrayTensor>,
    packed: Vec<Arc<cpu::PackedWeights>>,
}

/// Layers kept packed per thread (a stack of a few layers, or a few models).
const PACKED_KEPT: usize = 8;

thread_local! {
    static PACKED: std::cell::RefCell<PackedCache> =
        const { std::cell::RefCell::new(PackedCache { entries: Vec::new() }) };
}

/// Each direction's packed weights, from the thread's cache or packed now and kept; `None`
/// when a weight is not read in place (a copy has no lasting address).
pub(super) fn packed_weights(
    operands: &[NdArrayTensor],
    views: &[View],
    inputs: &[cpu::Inputs],
) -> Option<Vec<Arc<cpu::PackedWeights>>> {
    let mut key = Vec::with_capacity(inputs.len());
    let mut held = Vec::with_capacity(2 * inputs.len());
    let per_direction =
        Operands::per_direction(&operands[1..]).zip(Operands::per_direction(&views[1..]));
    for (tensors, views) in per_direction {
        let place = |view: &View| match &view.values {
            Cow::Borrowed(values) => Some((values.as_ptr() as usize, values.len(), view.strides)),
            Cow::Owned(_) => None,
        };
        let places = [place(views.w_ih_t)?, place(views.w_t)?];
        let handles = [tensors.w_ih_t.clone(), tensors.w_t.clone()];
        // A handle must share its tensor's buffer (a borrowed buffer's may be a copy).
        for (handle, place) in handles.iter().zip(&places) {
            if View::of(handle).values.as_ptr() as usize != place.0 {
                return None;
            }
        }
        key.push(places);
        held.extend(handles);
    }
    PACKED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(at) = cache.entries.iter().position(|e| e.key == key) {
            let entry = cache.entries.remove(at);
            let packed = entry.packed.clone();
            cache.entries.insert(0, entry);
            return Some(packed);
        }
        let packed: Vec<Arc<cpu::PackedWeights>> = inputs
            .iter()
            .map(|i| Arc::new(i.pack_weights(crate::precision::Precision::F32)))
            .collect();
        cache.entries.insert(
            0,
            PackedEntry {
                key,
                _held: held,
                packed: packed.clone(),
            },
        );
        cache.entries.truncate(PACKED_KEPT);
        Some(packed)
    })
}
