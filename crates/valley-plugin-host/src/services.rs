//! The host services handed to every plugin call: a metric sink, a progress sink, the cancel
//! flag, and the sandbox (plugins never spawn untrusted code themselves).

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};

use valley_plugin_api::{abi_stable::std_types::RSlice, host::HostServices, MetricPoint, Progress};

/// Where a call's metric points go as they arrive.
pub type MetricSink<'a> = Box<dyn Fn(Vec<MetricPoint>) + Send + Sync + 'a>;

/// What a call's progress reports drive (a progress bar, log lines).
pub type ProgressSink<'a> = Box<dyn Fn(&Progress) + Send + Sync + 'a>;

/// The host services behind one plugin call: metrics are collected for the caller (or streamed
/// to a sink as they arrive), progress is logged (or handed to a sink), and cancellation is a
/// shared flag (Ctrl-C sets it).
#[derive(Default)]
pub struct CallServices<'a> {
    metrics: Mutex<Vec<MetricPoint>>,
    cancel: Arc<AtomicBool>,
    label: String,
    sink: Option<MetricSink<'a>>,
    progress: Option<ProgressSink<'a>>,
}

impl<'a> CallServices<'a> {
    /// Services for a call labelled `label` (shown in progress lines), sharing `cancel`.
    pub fn new(label: impl Into<String>, cancel: Arc<AtomicBool>) -> Self {
        Self {
            metrics: Mutex::default(),
            cancel,
            label: label.into(),
            sink: None,
            progress: None,
        }
    }

    /// Sends every metric point to `sink` as it arrives instead of collecting it.
    #[must_use]
    pub fn streaming(mut self, sink: MetricSink<'a>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Hands progress reports to `sink` instead of logging them.
    #[must_use]
    pub fn with_progress(mut self, sink: ProgressSink<'a>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The metric points logged so far.
    pub fn take_metrics(&self) -> Vec<MetricPoint> {
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl HostServices for CallServices<'_> {
    fn log_metrics(&self, points: RSlice<'_, MetricPoint>) {
        if let Some(sink) = &self.sink {
            sink(points.to_vec());
            return;
        }
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(points.iter().cloned());
    }

    fn report_progress(&self, progress: &Progress) {
        if let Some(sink) = &self.progress {
            sink(progress);
            return;
        }
        tracing::info!(
            call = %self.label,
            "{}/{} {}",
            progress.done,
            progress.total,
            progress.message
        );
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn run_sandboxed(
        &self,
        request: &valley_plugin_api::SandboxRequest,
    ) -> abi_stable::std_types::RResult<
        valley_plugin_api::SandboxResult,
        abi_stable::std_types::RString,
    > {
        valley_sandbox::service::serve(request)
    }
}
