//! The error type that crosses the plugin boundary.
//!
//! It is a `#[repr(u8)]` enum of plain data so that host and plugin agree on it whatever compiler
//! built either side; the host turns it into its own typed error and adds the plugin's name and path.

use std::fmt;

use abi_stable::{std_types::RString, StableAbi};

/// What went wrong inside a plugin call.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The configuration handed to the constructor was rejected.
    InvalidConfig {
        /// What happened, in one line.
        message: RString,
    },
    /// The input of a call (pool, job, files) was rejected.
    InvalidInput {
        /// What happened, in one line.
        message: RString,
    },
    /// The call ran and failed.
    Failed {
        /// What happened, in one line.
        message: RString,
    },
    /// The plugin panicked; the panic was caught at the boundary.
    Panicked {
        /// What happened, in one line.
        message: RString,
    },
    /// The host asked the plugin to stop and it did.
    Cancelled,
}

impl PluginError {
    /// A rejected configuration.
    pub fn invalid_config(message: impl fmt::Display) -> Self {
        Self::InvalidConfig {
            message: message.to_string().into(),
        }
    }

    /// A rejected input.
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Self::InvalidInput {
            message: message.to_string().into(),
        }
    }

    /// A failure while running.
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed {
            message: message.to_string().into(),
        }
    }

    /// Builds the error for a caught panic from its payload.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        Self::Panicked {
            message: message.into(),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig { message } => write!(f, "invalid config: {message}"),
            Self::InvalidInput { message } => write!(f, "invalid input: {message}"),
            Self::Failed { message } => write!(f, "{message}"),
            Self::Panicked { message } => write!(f, "panicked: {message}"),
            Self::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for PluginError {}

/// Runs `f`, turning a panic into [`PluginError::Panicked`] whose message carries the panic's
/// location. Every call the export macros generate goes through here, because unwinding out of an
/// `extern "C"` function aborts the process. While `f` runs, the panic is not printed (the host
/// reports it); panics elsewhere in the plugin go to the previous hook as before.
pub fn catch_panics<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    install_quiet_hook();
    let was_inside = INSIDE_CALL.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    INSIDE_CALL.with(|c| c.set(was_inside));
    match result {
        Ok(result) => result,
        Err(payload) => {
            let mut error = PluginError::from_panic(payload.as_ref());
            if let (PluginError::Panicked { message }, Some(location)) =
                (&mut error, PANIC_LOCATION.with(|l| l.take()))
            {
                *message = format!("{message} (at {location})").into();
            }
            Err(error)
        }
    }
}

thread_local! {
    static INSIDE_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if INSIDE_CALL.with(|c| c.get()) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_LOCATION.with(|l| *l.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Parses a plugin's JSON config into its typed config, naming the offending field on error.
pub fn parse_config<C: serde::de::DeserializeOwned>(json: &str) -> Result<C, PluginError> {
    let text = if json.trim().is_empty() { "{}" } else { json };
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        // The position is in the JSON the host generated, not in anything the user wrote.
        let message = e.inner().to_string();
        let message = match message.rfind(" at line ") {
            Some(at) => message[..at].to_string(),
            None => message,
        };
        if path == "." {
            PluginError::invalid_config(message)
        } else {
            PluginError::invalid_config(format!("field `{path}`: {message}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        mode: String,
    }

    #[test]
    fn catch_panics_turns_panic_into_error() {
        let r: Result<(), _> = catch_panics(|| panic!("boom {}", 7));
        let Err(PluginError::Panicked { message }) = &r else {
            panic!("expected a caught panic, got {r:?}")
        };
        assert!(message.starts_with("boom 7 (at "), "{message}");
        assert!(message.contains("error.rs:"), "{message}");
    }

    #[test]
    fn parse_config_names_the_field() {
        let err = parse_config::<Cfg>(r#"{"mode": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `mode`"), "{err}");
        let err = parse_config::<Cfg>(r#"{"mod": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `mod`"), "{err}");
    }
}
