//! Where tensors live: the `device` setting of the trainer and evaluator plugins.
//!
//! `cpu` (the default everywhere), `cuda` (GPU 0) or `cuda:N`. CUDA needs the crates built with
//! the `cuda` feature (`cargo build --release --features cuda`, see docs/gpu/README.md);
//! without it the setting is refused with that advice instead of falling back to the CPU.

use candle_core::Device;

/// Parses a `device` setting and opens the device.
///
/// # Errors
/// A message naming the value when it is not `cpu`, `cuda` or `cuda:N`, or when CUDA is asked
/// for and this build has no CUDA support or no such GPU.
pub fn open(setting: &str) -> Result<Device, String> {
    let ordinal = match setting {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("device `{other}`: use cpu, cuda or cuda:N"))?,
    };
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
}
