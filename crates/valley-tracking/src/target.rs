//! Where tracking goes: the `[tracking]` section of an experiment file, `MLFLOW_TRACKING_URI`, or
//! the local server of `just mlflow`. No server, or one that does not answer, is one line of
//! output, never an error: the local run directory always records.

use serde::{Deserialize, Serialize};

use crate::server::{self, ServerPaths};

/// `[tracking]` of an experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSection {
    /// Record to MLflow at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Tracking server; `MLFLOW_TRACKING_URI` or the local server when absent.
    #[serde(default)]
    pub uri: Option<String>,
    /// MLflow experiment name; the experiment's name when absent.
    #[serde(default)]
    pub experiment_name: Option<String>,
}

impl Default for TrackingSection {
    fn default() -> Self {
        Self {
            enabled: true,
            uri: None,
            experiment_name: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Where tracking goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local run directory only, and why.
    Local(String),
    /// An MLflow server.
    Mlflow(String),
}

/// Chooses the tracking target: `[tracking] enabled = false` → local only; else `[tracking]
/// uri`, else `MLFLOW_TRACKING_URI` (`env_uri`), else the local server (`local_server`, looked
/// up only when needed). A URI that is not `http(s)://` is local only.
pub fn choose_target(
    section: &TrackingSection,
    env_uri: Option<&str>,
    local_server: impl FnOnce() -> Option<String>,
) -> Target {
    if !section.enabled {
        return Target::Local("[tracking] enabled = false".into());
    }
    let uri = section
        .uri
        .clone()
        .or_else(|| env_uri.filter(|u| !u.is_empty()).map(String::from))
        .or_else(local_server);
    match uri {
        None => Target::Local(
            "no MLflow server: set MLFLOW_TRACKING_URI or start one with `just mlflow`".into(),
        ),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Target::Mlflow(u.trim_end_matches('/').to_string())
        }
        Some(u) => Target::Local(format!("`{u}` is not an http(s) tracking server")),
    }
}

/// The tracking target of the current environment for `section` (see [`choose_target`]).
pub fn target_from_env(section: &TrackingSection) -> Target {
    let env_uri = std::env::var("MLFLOW_TRACKING_URI").ok();
    choose_target(section, env_uri.as_deref(), || {
        server::running(&ServerPaths::from_env()).map(|s| s.uri)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(enabled: bool, uri: Option<&str>) -> TrackingSection {
        TrackingSection {
            enabled,
            uri: uri.map(String::from),
            experiment_name: None,
        }
    }

    #[test]
    fn target_follows_file_then_environment_then_local_server() {
        let none = || None;
        let local = || Some("http://127.0.0.1:5999".to_string());
        assert!(matches!(
            choose_target(&section(false, Some("http://x")), Some("http://y"), local),
            Target::Local(why) if why.contains("enabled = false")
        ));
        assert_eq!(
            choose_target(
                &section(true, Some("http://file/")),
                Some("http://env"),
                local
            ),
            Target::Mlflow("http://file".into())
        );
        assert_eq!(
            choose_target(&section(true, None), Some("http://env"), local),
            Target::Mlflow("http://env".into())
        );
        assert_eq!(
            choose_target(&section(true, None), None, local),
            Target::Mlflow("http://127.0.0.1:5999".into())
        );
        assert!(
            matches!(choose_target(&section(true, None), None, none), Target::Local(why) if why.contains("just mlflow"))
        );
        assert!(matches!(
            choose_target(&section(true, None), Some("file:///tmp/mlruns"), none),
            Target::Local(why) if why.contains("not an http(s)")
        ));
    }

    #[test]
    fn the_local_server_is_not_looked_up_when_a_uri_is_given() {
        let t = choose_target(&section(true, None), Some("http://env"), || {
            panic!("looked up the local server")
        });
        assert_eq!(t, Target::Mlflow("http://env".into()));
    }
}
