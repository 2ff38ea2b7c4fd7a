//! Services the host hands to every plugin call: a metric sink, a progress reporter, a
//! cancellation flag, and the sandbox ([`HostServices::run_sandboxed`]).
//!
//! The services are a `sabi_trait` object whose vtable is a prefix type: new services are
//! appended after the last prefix method with a default body. Measured in issue 5: a plain
//! `HostServices_TO` in the plugin signatures makes abi_stable's load-time layout check reject
//! every plugin built before a method was appended ("interface layout mismatch (too many
//! fields)"), because the host's longer vtable type is compared as the interface. So the object
//! crosses the boundary inside [`HostRef`], whose field is left out of the load-time check; the
//! vtable still carries its length at run time, so an older plugin calls only the methods it
//! knows, and a newer plugin in an older host gets a method's default body (an error). The rule
//! this relies on: the prefix methods (up to `is_cancelled`) never change, methods are only
//! appended, each with a default body.

use std::sync::Mutex;

use abi_stable::{
    sabi_trait,
    sabi_trait::TD_Opaque,
    sabi_types::RRef,
    std_types::{RErr, RResult, RSlice, RString},
    StableAbi,
};

use crate::{PluginError, SandboxRequest, SandboxResult};

/// Which way a metric is better. Reports and valley detection read it from here, never from the
/// metric's name.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Larger is better (accuracy, pass@1).
    HigherIsBetter,
    /// Smaller is better (loss).
    LowerIsBetter,
    /// Neither (learning rate, tokens seen).
    Neutral,
}

/// One metric value at one step.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Metric name, e.g. `train/loss`.
    pub name: RString,
    /// The value; non-finite values are allowed and recorded as such.
    pub value: f64,
    /// The step (optimizer step, or 0 for one-off values).
    pub step: u64,
    /// Unit, e.g. `nats`, `tokens/s`, `fraction`.
    pub unit: RString,
    /// Which way is better.
    pub direction: Direction,
}

impl MetricPoint {
    /// A point with no unit and no direction; set them with the builder methods.
    pub fn new(name: impl Into<String>, value: f64, step: u64) -> Self {
        Self {
            name: name.into().into(),
            value,
            step,
            unit: RString::new(),
            direction: Direction::Neutral,
        }
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into().into();
        self
    }

    /// Marks larger values as better.
    pub fn higher_is_better(mut self) -> Self {
        self.direction = Direction::HigherIsBetter;
        self
    }

    /// Marks smaller values as better.
    pub fn lower_is_better(mut self) -> Self {
        self.direction = Direction::LowerIsBetter;
        self
    }
}

/// Progress of a long call.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all (0 when unknown).
    pub total: u64,
    /// A short message, e.g. the current loss.
    pub message: RString,
}

/// The services a host implements. Plugins use them through [`Host`].
#[sabi_trait]
pub trait HostServices: Sync {
    /// Records metric points; the host batches and forwards them.
    fn log_metrics(&self, points: RSlice<'_, MetricPoint>);

    /// Reports progress of the current call.
    fn report_progress(&self, progress: &Progress);

    /// Whether the host asked the call to stop (Ctrl-C, a deadline).
    #[sabi(last_prefix_field)]
    fn is_cancelled(&self) -> bool;

    /// Runs an untrusted program in the host's sandbox (appended after the prefix: a host
    /// without it answers with the default error).
    fn run_sandboxed(&self, request: &SandboxRequest) -> RResult<SandboxResult, RString> {
        let _ = request;
        RErr(RString::from("this host offers no sandbox"))
    }
}

/// The FFI-safe borrowed form of the host services passed to each call (see the module docs for
/// why its field is opaque to the load-time layout check).
#[repr(C)]
#[derive(StableAbi)]
pub struct HostRef<'a> {
    // SAFETY (of the opaque layout): the vtable is a prefix type whose accessible length travels
    // with it, and its prefix never changes (append-only, enforced by review and the module docs).
    #[sabi(unsafe_sabi_opaque_field)]
    services: HostServices_TO<'a, RRef<'a, ()>>,
}

/// Borrows any [`HostServices`] implementation as the FFI form.
pub fn host_ref<'a, T: HostServices + 'a>(services: &'a T) -> HostRef<'a> {
    HostRef {
        services: HostServices_TO::from_ptr(services, TD_Opaque),
    }
}

/// The plugin's handle on the host services.
pub struct Host<'a> {
    inner: HostServices_TO<'a, RRef<'a, ()>>,
}

impl<'a> Host<'a> {
    /// Wraps the FFI form.
    pub fn new(inner: HostRef<'a>) -> Self {
        Self {
            inner: inner.services,
        }
    }

    /// Records one metric point.
    pub fn log(&self, point: MetricPoint) {
        self.inner
            .log_metrics(RSlice::from_slice(std::slice::from_ref(&point)));
    }

    /// Records several metric points at once.
    pub fn log_all(&self, points: &[MetricPoint]) {
        self.inner.log_metrics(RSlice::from_slice(points));
    }

    /// Reports progress.
    pub fn progress(&self, done: u64, total: u64, message: impl Into<String>) {
        self.inner.report_progress(&Progress {
            done,
            total,
            message: message.into().into(),
        });
    }

    /// Whether the host asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Runs an untrusted program in the host's sandbox.
    ///
    /// # Errors
    /// [`PluginError::Failed`] when the host has no sandbox, refuses the run (missing
    /// isolation) or cannot run it; a misbehaving program is a result, not an error.
    pub fn run_sandboxed(&self, request: &SandboxRequest) -> Result<SandboxResult, PluginError> {
        self.inner
            .run_sandboxed(request)
            .into_result()
            .map_err(PluginError::failed)
    }

    /// `Err(PluginError::Cancelled)` when the host asked to stop; call it between units of work.
    ///
    /// # Errors
    /// [`PluginError::Cancelled`] when cancellation was requested.
    pub fn check_cancelled(&self) -> Result<(), PluginError> {
        if self.is_cancelled() {
            Err(PluginError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// An in-memory host for tests of plugins run in-process: records every metric and progress
/// update, and can be told to cancel.
#[derive(Default)]
pub struct RecordingHost {
    /// Every metric point logged, in order.
    pub metrics: Mutex<Vec<MetricPoint>>,
    /// Every progress update, in order.
    pub progress: Mutex<Vec<Progress>>,
    /// What `is_cancelled` answers.
    pub cancelled: std::sync::atomic::AtomicBool,
    /// When above 0, a progress update with `done` at least this sets `cancelled`: a stop
    /// request (a signal) that arrives right after that unit of work, for deterministic tests.
    pub cancel_at: std::sync::atomic::AtomicU64,
}

impl RecordingHost {
    /// A [`Host`] over this recorder.
    pub fn host(&self) -> Host<'_> {
        Host::new(host_ref(self))
    }
}

impl HostServices for RecordingHost {
    fn log_metrics(&self, points: RSlice<'_, MetricPoint>) {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(points.iter().cloned());
    }

    fn report_progress(&self, progress: &Progress) {
        let at = self.cancel_at.load(std::sync::atomic::Ordering::SeqCst);
        if at > 0 && progress.done >= at {
            self.cancelled
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(progress.clone());
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_host_sees_metrics_progress_and_cancellation() {
        let rec = RecordingHost::default();
        let host = rec.host();
        host.log(
            MetricPoint::new("loss", 2.5, 3)
                .unit("nats")
                .lower_is_better(),
        );
        host.progress(1, 4, "step 1");
        assert!(host.check_cancelled().is_ok());
        rec.cancelled
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(host.check_cancelled(), Err(PluginError::Cancelled));
        let m = rec.metrics.lock().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].direction, Direction::LowerIsBetter);
        assert_eq!(m[0].unit.as_str(), "nats");
        assert_eq!(rec.progress.lock().unwrap()[0].total, 4);
    }

    #[test]
    fn a_host_without_the_sandbox_answers_with_the_default_error() {
        let rec = RecordingHost::default();
        let err = rec
            .host()
            .run_sandboxed(&SandboxRequest::python("print(1)", b""))
            .unwrap_err();
        assert_eq!(err, PluginError::failed("this host offers no sandbox"));
    }
}
