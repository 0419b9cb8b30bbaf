//! The element type of a batch's pixels (`data.batch_dtype`): f32, or half the bytes as bf16 or
//! f16. A half batch holds the f32 batch's values rounded to nearest, ties to even (the
//! rounding of PyTorch's `Tensor.to(torch.bfloat16)` and `.half()`, NaN payloads aside): workers write, pinned
//! memory holds and PCIe carries half the bytes, and the trainer widens the batch on the device.

use std::fmt;
use std::str::FromStr;

/// Serialised as its name (`f32`, `bf16`, `f16`), PyTorch's short names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum BatchDtype {
    /// 32-bit float: the values the augmentation computes.
    #[default]
    F32,
    /// bfloat16: f32's range, 8 significant bits (what bf16 autocast computes in).
    Bf16,
    /// IEEE half: 11 significant bits, largest finite value 65,504 (ample for normalised pixels).
    F16,
}

impl BatchDtype {
    pub const ALL: [BatchDtype; 3] = [BatchDtype::F32, BatchDtype::Bf16, BatchDtype::F16];
    /// The allowed names, as errors list them.
    pub const NAMES: &str = "f32, bf16 or f16";

    pub fn name(self) -> &'static str {
        match self {
            BatchDtype::F32 => "f32",
            BatchDtype::Bf16 => "bf16",
            BatchDtype::F16 => "f16",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            BatchDtype::F32 => 4,
            BatchDtype::Bf16 | BatchDtype::F16 => 2,
        }
    }

    /// f32 words that hold `len` elements (a buffer is allocated in f32 words).
    pub fn words(self, len: usize) -> usize {
        (len * self.size()).div_ceil(4)
    }

    /// `x` rounded to this type, as its bits (half types only; f32 has no 16-bit form).
    #[inline(always)]
    pub(crate) fn half_bits(self, x: f32) -> u16 {
        match self {
            BatchDtype::Bf16 => half::bf16::from_f32(x).to_bits(),
            BatchDtype::F16 => half::f16::from_f32(x).to_bits(),
            BatchDtype::F32 => unreachable!("f32 elements are not 16 bits"),
        }
    }

    /// The f32 value of 16 bits of this type (half types only).
    #[inline(always)]
    pub(crate) fn widen(self, bits: u16) -> f32 {
        match self {
            BatchDtype::Bf16 => half::bf16::from_bits(bits).to_f32(),
            BatchDtype::F16 => half::f16::from_bits(bits).to_f32(),
            BatchDtype::F32 => unreachable!("f32 elements are not 16 bits"),
        }
    }
}

impl fmt::Display for BatchDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BatchDtype {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BatchDtype::ALL
            .into_iter()
            .find(|d| d.name() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("unknown batch dtype {s:?}: expected {}", Self::NAMES))
    }
}

impl TryFrom<String> for BatchDtype {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<BatchDtype> for String {
    fn from(d: BatchDtype) -> String {
        d.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sizes_and_rounding() {
        for d in BatchDtype::ALL {
            assert_eq!(d.name().parse::<BatchDtype>(), Ok(d));
        }
        assert!("float64".parse::<BatchDtype>().is_err());
        assert_eq!((BatchDtype::Bf16.words(5), BatchDtype::F32.words(5)), (3, 5));
        // 1 + 2^-8 is a tie between two bf16 values: to even, i.e. 1.0.
        let tie = 1.0 + 2f32.powi(-8);
        assert_eq!(BatchDtype::Bf16.widen(BatchDtype::Bf16.half_bits(tie)), 1.0);
        assert_eq!(BatchDtype::F16.widen(BatchDtype::F16.half_bits(0.1)), 0.099975586);
    }
}
