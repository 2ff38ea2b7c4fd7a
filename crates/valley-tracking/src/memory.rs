//! An in-memory [`Tracker`] for unit tests of code that records runs: it keeps every event in
//! order, so a test asserts on what was recorded without files or a server.

use std::{collections::BTreeMap, sync::Mutex};

use super::{Event, Result, RunId, RunSpec, RunStatus, Tracker, TrackingError};

/// Keeps runs and their events in memory.
#[derive(Debug, Default)]
pub struct MemoryTracker {
    events: Mutex<Vec<(RunId, Event)>>,
}

impl MemoryTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<(RunId, Event)> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events of one run.
    pub fn run_events(&self, run: &RunId) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|(r, _)| r == run)
            .map(|(_, e)| e)
            .collect()
    }

    /// Every run's start spec, by id.
    pub fn runs(&self) -> BTreeMap<RunId, RunSpec> {
        self.events()
            .into_iter()
            .filter_map(|(r, e)| match e {
                Event::Start(spec) => Some((r, spec)),
                _ => None,
            })
            .collect()
    }

    /// How a run ended, if it did.
    pub fn status(&self, run: &RunId) -> Option<RunStatus> {
        self.run_events(run).iter().rev().find_map(|e| match e {
            Event::End { status, .. } => Some(*status),
            _ => None,
        })
    }
}

impl Tracker for MemoryTracker {
    fn create_run(&self, spec: RunSpec) -> Result<RunId> {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let n = events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Start(_)))
            .count();
        let id = RunId(format!("{:06}-{}", n + 1, spec.name));
        events.push((id.clone(), Event::Start(spec)));
        Ok(id)
    }

    fn record(&self, run: &RunId, event: Event, _content: Option<&[u8]>) -> Result<()> {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if !events.iter().any(|(r, _)| r == run) {
            return Err(TrackingError::UnknownRun(run.0.clone()));
        }
        events.push((run.clone(), event));
        Ok(())
    }
}
