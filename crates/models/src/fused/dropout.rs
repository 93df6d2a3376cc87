//! Dropout between fused layers.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// `input` with each element zeroed with probability `prob` and the others scaled by
/// `1 / (1 − prob)`, while training (on an autodiff backend): burn's `Dropout`, drawn faster.
///
/// burn's `Dropout` draws every element through its distribution sampler, about a tenth of
/// a two-layer LSTM's training step on burn-ndarray. Here one seed comes from the
/// backend's generator, so `B::seed` still makes runs repeatable, and the mask from a
/// xoshiro stream, 32 bits an element.
pub(crate) fn dropout<B: Backend, const D: usize>(input: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    let device = input.device();
    if prob == 0.0 || !B::ad_enabled(&device) {
        return input;
    }
    let seed = Tensor::<B, 1>::random([3], Distribution::Default, &device)
        .into_data()
        .iter::<f32>()
        .fold(0u64, |seed, draw| {
            (seed << 21) ^ (draw * (1 << 21) as f32) as u64
        });
    let mut stream = SmallRng::seed_from_u64(seed);
    // An element is dropped when its 32-bit draw is below `prob · 2³²`.
    let threshold = (prob * 4_294_967_296.0) as u64;
    let scale = (1.0 / (1.0 - prob)) as f32;
    let shape = input.shape();
    let count = shape.num_elements();
    let mut mask = Vec::with_capacity(count + 1);
    while mask.len() < count {
        let draws = stream.next_u64();
        for draw in [draws & 0xffff_ffff, draws >> 32] {
            mask.push(if draw < threshold { 0.0 } else { scale });
        }
    }
    mask.truncate(count);
    input * Tensor::from_data(TensorData::new(mask, shape), &device)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;
    use burn::tensor::backend::Backend;
    use burn_autodiff::Autodiff;
    use burn_ndarray::NdArray;

    use super::dropout;

    type Training = Autodiff<NdArray>;

    /// The backend's generator is global: tests that seed it and draw take turns.
    static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn mask(prob: f64) -> Vec<f32> {
        let ones = Tensor::<Training, 3>::ones([8, 50, 64], &Default::default());
        dropout(ones, prob).into_data().to_vec().expect("f32")
    }

    #[test]
    fn drops_the_given_share_and_scales_the_rest() {
        let _turn = SEEDED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Training::seed(&Default::default(), 11);
        for prob in [0.2, 0.5] {
            let values = mask(prob);
            let dropped = values.iter().filter(|&&v| v == 0.0).count() as f64;
            let share = dropped / values.len() as f64;
            // 25,600 draws: three standard deviations are under 0.01.
            assert!((share - prob).abs() < 0.01, "p = {prob}: dropped {share}");
            let scale = (1.0 / (1.0 - prob)) as f32;
            assert!(values.iter().all(|&v| v == 0.0 || v == scale));
        }
    }

    #[test]
    fn the_backend_seed_repeats_the_mask_and_each_call_draws_anew() {
        let _turn = SEEDED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Training::seed(&Default::default(), 3);
        let (first, second) = (mask(0.3), mask(0.3));
        assert_ne!(first, second, "two calls draw two masks");
        Training::seed(&Default::default(), 3);
        assert_eq!(mask(0.3), first, "the same seed gives the same mask");
    }

    #[test]
    fn inference_and_zero_probability_pass_the_input_through() {
        let x = Tensor::<NdArray, 2>::ones([4, 5], &Default::default());
        assert_eq!(dropout(x.clone(), 0.5).into_data(), x.into_data());
        assert_eq!(mask(0.0), vec![1.0; 8 * 50 * 64]);
    }
}
