//! The sweep's seam (issue 14): it tells observers what happens instead of printing or tracking
//! itself; the run tracker and the command line's printer are two observers, and this test is a
//! third. In-process, with the real sampler plugins (sample-only, tracking off): the sweep starts
//! first and finishes last, every cell starts, is sampled, hands over its `result.json` and ends
//! in that order, and a cell an observer knows as finished is skipped without being started.

use std::{
    collections::BTreeMap,
    sync::{atomic::AtomicBool, Arc, Mutex},
};

use valley_e2e::{profile_dir, require_built, tiny_train, toml_path, write_file};
use valley_experiment::{
    CellEnd, Experiment, Prepared, Result, Sweep, SweepEvent, SweepObserver, SweepSummary,
};
use valley_plugin_host::{CallServices, PluginSearch};

/// Records every event as one line; says every cell is finished when `skip` is set.
#[derive(Default)]
struct Recorder {
    lines: Mutex<Vec<String>>,
    skip: bool,
}

impl SweepObserver for Recorder {
    fn on_sweep_event(&self, event: &SweepEvent<'_>) -> Result<()> {
        let line = match event {
            SweepEvent::Started { cells } => format!("started {cells}"),
            SweepEvent::CellStarted { planned, .. } => format!("{} started", planned.key),
            SweepEvent::CellSampled { key, ids, .. } => format!("{key} sampled {}", ids.len()),
            SweepEvent::CellEnded { key, end } => match end {
                CellEnd::Finished(_) => format!("{key} finished"),
                CellEnd::Skipped(why) => format!("{key} skipped: {why}"),
                other => format!("{key} {other:?}"),
            },
            SweepEvent::Artifact { key, name, .. } => format!("{key} artifact {name}"),
            SweepEvent::Finished => "finished".into(),
            // Students, metrics and progress do not happen in a sample-only sweep without
            // students; record them anyway so that a surprise shows.
            other => format!("other {other:?}"),
        };
        self.lines.lock().unwrap().push(line);
        Ok(())
    }

    fn finished_run(&self, key: &str, _config_hash: &str) -> Option<String> {
        self.skip.then(|| format!("the recorder, for {key}"))
    }
}

fn sweep(exp: &Experiment, observer: &dyn SweepObserver) -> SweepSummary {
    let search = PluginSearch {
        dirs: vec![profile_dir()],
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let prepared = Prepared::new(exp.clone(), &search).unwrap();
    let plan = prepared
        .plan(&CallServices::new("plan", cancel.clone()))
        .unwrap();
    Sweep {
        prepared: &prepared,
        plan: &plan,
        observer,
        registry: &prepared.registry,
        students: &BTreeMap::new(),
        cancel,
        force: false,
        jobs: 2,
        sample_only: true,
        base_evals: Default::default(),
    }
    .run()
    .unwrap()
}

#[test]
fn observers_hear_each_cell_start_sample_and_end_in_order() {
    require_built();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "events.toml",
        &format!(
            r#"[data]
train = {train}

[arms.random]
order = {{ plugin = "random" }}

[arms.easy-first]
order = {{ plugin = "easy-first" }}

[sweep]
sizes = [5, 10]
seeds = [1]

[output]
runs_dir = {runs}

[tracking]
enabled = false
"#,
            train = toml_path(&tiny_train()),
            runs = toml_path(&dir.path().join("runs")),
        ),
    );
    let exp = Experiment::load(file.to_str().unwrap(), &[]).unwrap();

    let recorder = Recorder::default();
    let summary = sweep(&exp, &recorder);
    assert_eq!(summary.finished.len(), 4, "{summary:?}");
    let lines = recorder.lines.into_inner().unwrap();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("started 4"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("finished"),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 2 + 4 * 4, "{lines:#?}");
    for key in [
        "random-n5-s1",
        "random-n10-s1",
        "easy-first-n5-s1",
        "easy-first-n10-s1",
    ] {
        let at = |what: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(key) && l[key.len()..].starts_with(what))
                .unwrap_or_else(|| panic!("no `{key}{what}` in {lines:#?}"))
        };
        let size = &key[key.find("-n").unwrap() + 2..key.rfind("-s").unwrap()];
        assert!(
            at(" started") < at(&format!(" sampled {size}")),
            "{lines:#?}"
        );
        assert!(at(" sampled") < at(" artifact result.json"), "{lines:#?}");
        assert!(at(" artifact result.json") < at(" finished"), "{lines:#?}");
    }

    // The same plan again, with an observer that knows every cell as finished.
    let recorder = Recorder {
        skip: true,
        ..Recorder::default()
    };
    let summary = sweep(&exp, &recorder);
    assert_eq!(
        (summary.skipped.len(), summary.finished.len()),
        (4, 0),
        "{summary:?}"
    );
    let lines = recorder.lines.into_inner().unwrap();
    assert!(
        lines.iter().all(|l| !l.ends_with(" started")),
        "a skipped cell was started: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "random-n5-s1 skipped: finished; found in the recorder, for random-n5-s1"),
        "{lines:#?}"
    );
}
