//! Finding, loading and calling valley plugins: samplers, trainers and evaluators built as
//! dynamic libraries against `valley-plugin-api`.
//!
//! Each library is opened with `lib_header_from_path` and checked with `init_root_module`, not
//! with `RootModule::load_from_file`: the latter caches the first module of a root-module type
//! for the whole process, so a second plugin of the same type would silently be the first one
//! again (a test loads two samplers and shows they are two). Every failure is one line naming the
//! file and what is wrong ([`LoadError`]); the caller decides whether to go on with the other
//! plugins (listing and checking always do). A plugin's errors and panics come back as
//! [`HostError::Plugin`], naming it.
//!
//! Every call gets the host's services ([`CallServices`]): a metric sink, a progress sink, the
//! cancel flag and the sandbox, which runs model-written programs for evaluators.
//!
//! ```
//! use valley_plugin_host::{LoadError, PluginLibrary, PluginSearch};
//!
//! // A file that is not there is one line naming it.
//! let err = PluginLibrary::load("/nonexistent/libx.so".as_ref()).unwrap_err();
//! assert!(matches!(err, LoadError::Missing { .. }));
//! assert_eq!(err.to_string(), "/nonexistent/libx.so: no such file");
//!
//! // Looking in an empty directory finds nothing, and says where it looked.
//! let dir = tempfile::tempdir()?;
//! let search = PluginSearch { dirs: vec![dir.path().to_path_buf()] };
//! assert!(search.discover().plugins.is_empty());
//! let err = search.find_plugin("arms.random.order", "random").unwrap_err();
//! assert!(err.to_string().contains("no plugin named `random`"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod error;
mod library;
mod load_error;
mod search;
mod services;

pub use error::{HostError, Result};
pub use library::{LoadedEvaluator, LoadedSampler, LoadedTrainer, PluginLibrary};
pub use load_error::LoadError;
pub use search::{workspace_root, Discovery, PluginSearch};
pub use services::{CallServices, MetricSink, ProgressSink};
