//! The number formats a recurrent stack can run inference in.

use std::fmt;
use std::str::FromStr;

/// The format of a recurrent stack's weights for inference ([`crate::QuantizedRecurrent`]),
/// as `torch.ao.quantization.quantize_dynamic` offers `qint8` and `float16`.
///
/// ```
/// use models::Precision;
///
/// let precision: Precision = "int8".parse().unwrap();
/// assert_eq!(precision, Precision::Int8);
/// assert_eq!(precision.to_string(), "int8");
/// assert!("int4".parse::<Precision>().is_err());
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The trained f32 weights, as the module runs them.
    #[default]
    F32,
    /// Weights rounded to bfloat16 (half the memory), multiplied in f32.
    Bf16,
    /// Weights quantised to int8 per output unit (a quarter of the memory); each step's
    /// input and state are quantised per row when the step runs, the products are summed
    /// in i32, and the gates are computed in f32 (PyTorch's dynamic quantisation).
    Int8,
}

impl Precision {
    /// Every precision, widest first.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Int8];

    /// Its name: `f32`, `bf16` or `int8`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Precision::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}: expected f32, bf16 or int8")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownPrecision(name.to_string()))
    }
}
