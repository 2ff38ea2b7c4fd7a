//! Where tensors live and in what precision: the `device` and `dtype` settings of the trainer and
//! evaluator plugins, parsed when their config loads ([`DeviceSetting`], [`Precision`]).
//!
//! `cpu` (the default everywhere), `cuda` (GPU 0) or `cuda:N`. CUDA needs the crates built with
//! the `cuda` feature (`cargo build --release --features cuda`, see docs/gpu/README.md);
//! without it the setting is refused with that advice instead of falling back to the CPU.

use std::{fmt, str::FromStr};

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

/// A `device` setting: `cpu`, `cuda` (GPU 0) or `cuda:N`; in config files as that string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSetting {
    /// The CPU.
    #[default]
    Cpu,
    /// The CUDA GPU of this ordinal.
    Cuda(usize),
}

impl FromStr for DeviceSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("device `{other}`: use cpu, cuda or cuda:N")),
        }
    }
}

impl TryFrom<String> for DeviceSetting {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DeviceSetting> for String {
    fn from(d: DeviceSetting) -> Self {
        d.to_string()
    }
}

impl fmt::Display for DeviceSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSetting {
    /// Opens the device.
    ///
    /// # Errors
    /// A message naming the setting when CUDA is asked for and this build has no CUDA support or
    /// no such GPU.
    pub fn open(self) -> Result<Device, String> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => open_cuda(ordinal, &self.to_string()),
        }
    }
}

/// A `dtype` setting: `f32` or `bf16` (bf16 is meant for CUDA).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// The tensors' dtype.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
        }
    }
}

/// Parses a `device` setting and opens the device.
///
/// # Errors
/// A message naming the value when it is not `cpu`, `cuda` or `cuda:N`, or when CUDA is asked
/// for and this build has no CUDA support or no such GPU.
pub fn open(setting: &str) -> Result<Device, String> {
    setting.parse::<DeviceSetting>()?.open()
}

fn open_cuda(ordinal: usize, setting: &str) -> Result<Device, String> {
    if !candle_core::utils::cuda_is_available() {
        return Err(format!(
            "device `{setting}`: this build has no CUDA support (build the plugins with `--features cuda`, see docs/gpu/README.md)"
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| format!("device `{setting}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_opens_and_bad_names_are_refused() {
        assert!(matches!(open("cpu"), Ok(Device::Cpu)));
        let err = open("gpu").unwrap_err();
        assert!(err.contains("device `gpu`"), "{err}");
        assert!(open("cuda:x").unwrap_err().contains("cuda:N"));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let err = open("cuda:0").unwrap_err();
        assert!(err.contains("--features cuda"), "{err}");
    }

    /// Issue 14: `device` and `dtype` are checked when a config loads, not when training starts.
    #[test]
    fn settings_parse_when_the_config_loads() {
        let d: DeviceSetting = serde_json::from_str(r#""cuda:1""#).unwrap();
        assert_eq!(d, DeviceSetting::Cuda(1));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#""cuda:1""#);
        let cuda: DeviceSetting = serde_json::from_str(r#""cuda""#).unwrap();
        assert_eq!(cuda, DeviceSetting::Cuda(0));
        let err = serde_json::from_str::<DeviceSetting>(r#""gpu""#).unwrap_err();
        assert!(err.to_string().contains("use cpu, cuda or cuda:N"), "{err}");
        let p: Precision = serde_json::from_str(r#""bf16""#).unwrap();
        assert_eq!(p.dtype(), DType::BF16);
        let err = serde_json::from_str::<Precision>(r#""fp16""#).unwrap_err();
        // serde's own message names the value and the accepted ones.
        assert!(
            err.to_string()
                .contains("unknown variant `fp16`, expected `f32` or `bf16`"),
            "{err}"
        );
    }
}
