//! Pure policy for sending a run's events to MLflow: which requests, in which order, how
//! log-batch is split, what each request acknowledges, and when and how soon to retry.
//!
//! Consecutive params, metrics and tags events are merged into `runs/log-batch` requests within
//! MLflow's limits (1000 metrics, 100 params, 100 tags, 1000 items in all). Each request carries
//! the number of events that are fully sent once it succeeds, so a replay resumes after the last
//! complete event; the part of an event sent before a crash is sent again, which log-batch
//! tolerates (identical metric rows are de-duplicated, an equal param value is accepted).
//!
//! Names are spelled as MLflow accepts them ([`mlflow_name`]): it refuses a whole log-batch with
//! 400 when one metric, param or tag key holds a character outside letters, digits, `_ - . : /`
//! and space — `pass@1` is sent as `pass_at_1`. The local run directory keeps the original names.

use std::time::Duration;

use super::{Event, Metric, RunSpec, RunStatus};

/// Metrics per log-batch (MLflow's limit).
pub const MAX_METRICS: usize = 1000;
/// Params per log-batch.
pub const MAX_PARAMS: usize = 100;
/// Tags per log-batch.
pub const MAX_TAGS: usize = 100;
/// Items of all kinds per log-batch.
pub const MAX_ITEMS: usize = 1000;
/// MLflow silently truncates longer param values; truncating here keeps a replay consistent.
pub const MAX_PARAM_VALUE: usize = 6000;

/// The body of one `runs/log-batch` call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogBatch {
    /// Metric points.
    pub metrics: Vec<Metric>,
    /// Params (no key twice).
    pub params: Vec<(String, String)>,
    /// Tags (no key twice; the last value wins).
    pub tags: Vec<(String, String)>,
}

impl LogBatch {
    fn items(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }

    fn is_empty(&self) -> bool {
        self.items() == 0
    }
}

/// One request to MLflow.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `runs/create` (or finding the run created before a crash).
    Create(RunSpec),
    /// `runs/log-batch`.
    Batch(LogBatch),
    /// An artifact upload of the run directory's `artifacts/<path>`.
    Artifact(String),
    /// `runs/update` with the final status.
    End {
        /// How the run ended.
        status: RunStatus,
        /// Milliseconds since the Unix epoch.
        end_time: i64,
    },
}

/// A request and the number of events (from the start of the planned slice) that are completely
/// sent once it succeeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The request.
    pub request: Request,
    /// Events acknowledged after it.
    pub acked: usize,
}

/// A key as MLflow accepts it: `@` becomes `_at_` (`pass@1` → `pass_at_1`), any other character
/// outside letters, digits, `_ - . : /` and space becomes `_`.
pub fn mlflow_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '@' => out.push_str("_at_"),
            c if c.is_ascii_alphanumeric() || "_-.:/ ".contains(c) => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

/// Plans the requests that send `events` (the not yet acknowledged tail of a run's log).
pub fn plan(events: &[Event]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut batch = LogBatch::default();
    let flush = |batch: &mut LogBatch, steps: &mut Vec<Step>, acked: usize| {
        if !batch.is_empty() {
            steps.push(Step {
                request: Request::Batch(std::mem::take(batch)),
                acked,
            });
        }
    };
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Params { params } => {
                for (k, v) in params {
                    let v = truncate(v, MAX_PARAM_VALUE);
                    let k = &mlflow_name(k);
                    if batch.params.iter().any(|(bk, bv)| bk == k && *bv == v) {
                        continue;
                    }
                    if batch.params.iter().any(|(bk, _)| bk == k)
                        || batch.params.len() == MAX_PARAMS
                        || batch.items() == MAX_ITEMS
                    {
                        flush(&mut batch, &mut steps, i);
                    }
                    batch.params.push((k.clone(), v));
                }
            }
            Event::Tags { tags } => {
                for (k, v) in tags {
                    let k = &mlflow_name(k);
                    if let Some(slot) = batch.tags.iter_mut().find(|(bk, _)| bk == k) {
                        slot.1.clone_from(v);
                        continue;
                    }
                    if batch.tags.len() == MAX_TAGS || batch.items() == MAX_ITEMS {
                        flush(&mut batch, &mut steps, i);
                    }
                    batch.tags.push((k.clone(), v.clone()));
                }
            }
            Event::Metrics { metrics } => {
                for m in metrics {
                    if batch.metrics.len() == MAX_METRICS || batch.items() == MAX_ITEMS {
                        flush(&mut batch, &mut steps, i);
                    }
                    let mut m = m.clone();
                    m.key = mlflow_name(&m.key);
                    batch.metrics.push(m);
                }
            }
            Event::Start(spec) => {
                flush(&mut batch, &mut steps, i);
                steps.push(Step {
                    request: Request::Create(spec.clone()),
                    acked: i + 1,
                });
            }
            Event::Artifact { path } => {
                flush(&mut batch, &mut steps, i);
                steps.push(Step {
                    request: Request::Artifact(path.clone()),
                    acked: i + 1,
                });
            }
            Event::End { status, end_time } => {
                flush(&mut batch, &mut steps, i);
                steps.push(Step {
                    request: Request::End {
                        status: *status,
                        end_time: *end_time,
                    },
                    acked: i + 1,
                });
            }
        }
    }
    flush(&mut batch, &mut steps, events.len());
    steps
}

/// `s` cut to at most `max` characters (on a character boundary).
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => s[..cut].to_string(),
        None => s.to_string(),
    }
}

/// Whether a failed request is worth retrying: transport failures (no status), 429 and 5xx are
/// the server being away or busy; any other 4xx is MLflow refusing the request, which a retry
/// cannot change.
pub fn is_retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 429 || s >= 500,
    }
}

/// How long to wait before retry number `attempt` (0-based): 250 ms doubling, at most 30 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms.min(30_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MetricValue, RunId};

    #[test]
    fn names_mlflow_refuses_are_respelled_and_others_kept() {
        // Measured against MLflow 3.17.2: `pass@1` in a log-batch is a 400 for the whole batch.
        assert_eq!(mlflow_name("pass@1"), "pass_at_1");
        assert_eq!(mlflow_name("pass@1/MEDIUM_HARD"), "pass_at_1/MEDIUM_HARD");
        assert_eq!(mlflow_name("valley.unit.pass@10"), "valley.unit.pass_at_10");
        assert_eq!(mlflow_name("train/loss: a-b c.d"), "train/loss: a-b c.d");
        assert_eq!(mlflow_name("é(x)"), "__x_");
        let events = [Event::Metrics {
            metrics: vec![Metric {
                key: "pass@1".into(),
                value: MetricValue(0.5),
                step: 0,
                timestamp: 1,
                unit: String::new(),
                direction: valley_plugin_api::Direction::HigherIsBetter,
            }],
        }];
        let steps = plan(&events);
        let Request::Batch(batch) = &steps[0].request else {
            panic!("{steps:?}")
        };
        assert_eq!(batch.metrics[0].key, "pass_at_1");
    }

    fn metrics(n: usize, start: u64) -> Event {
        Event::Metrics {
            metrics: (0..n)
                .map(|i| Metric {
                    key: "loss".into(),
                    value: MetricValue(i as f64),
                    step: start + i as u64,
                    timestamp: 1,
                    unit: String::new(),
                    direction: valley_plugin_api::Direction::Neutral,
                })
                .collect(),
        }
    }

    fn params(n: usize, tag: &str) -> Event {
        Event::Params {
            params: (0..n).map(|i| (format!("{tag}{i}"), "v".into())).collect(),
        }
    }

    fn start() -> Event {
        Event::Start(RunSpec {
            experiment: "e".into(),
            name: "r".into(),
            parent: None::<RunId>,
            tags: Default::default(),
            start_time: 0,
        })
    }

    fn shape(steps: &[Step]) -> Vec<(String, usize)> {
        steps
            .iter()
            .map(|s| {
                let what = match &s.request {
                    Request::Create(_) => "create".to_string(),
                    Request::Batch(b) => {
                        format!("m{} p{} t{}", b.metrics.len(), b.params.len(), b.tags.len())
                    }
                    Request::Artifact(p) => format!("artifact {p}"),
                    Request::End { status, .. } => format!("end {}", status.as_str()),
                };
                (what, s.acked)
            })
            .collect()
    }

    #[test]
    fn consecutive_events_merge_into_one_batch_and_acks_follow_events() {
        let events = [
            start(),
            params(3, "a"),
            metrics(5, 0),
            Event::Tags {
                tags: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
            },
            Event::Artifact {
                path: "config.json".into(),
            },
            metrics(2, 5),
            Event::End {
                status: RunStatus::Finished,
                end_time: 3,
            },
        ];
        let steps = plan(&events);
        assert_eq!(
            shape(&steps),
            [
                ("create".to_string(), 1),
                ("m5 p3 t1".to_string(), 4),
                ("artifact config.json".to_string(), 5),
                ("m2 p0 t0".to_string(), 6),
                ("end FINISHED".to_string(), 7),
            ]
        );
        // The last value of a tag set twice in one batch wins.
        let Request::Batch(b) = &steps[1].request else {
            panic!()
        };
        assert_eq!(b.tags, [("k".to_string(), "2".to_string())]);
    }

    #[test]
    fn metrics_split_at_1000_and_a_split_event_is_acked_only_when_complete() {
        // 2500 points in one event: 1000 + 1000 + 500; the first two batches hold part of event
        // 0 only, so they acknowledge nothing (a replay resends them; MLflow de-duplicates).
        let steps = plan(&[metrics(2500, 0), metrics(10, 2500)]);
        assert_eq!(
            shape(&steps),
            [
                ("m1000 p0 t0".to_string(), 0),
                ("m1000 p0 t0".to_string(), 0),
                ("m510 p0 t0".to_string(), 2),
            ]
        );
    }

    #[test]
    fn params_split_at_100_tags_at_100_and_all_items_at_1000() {
        let steps = plan(&[params(250, "p")]);
        assert_eq!(
            shape(&steps),
            [
                ("m0 p100 t0".to_string(), 0),
                ("m0 p100 t0".to_string(), 0),
                ("m0 p50 t0".to_string(), 1),
            ]
        );
        let tags = Event::Tags {
            tags: (0..150).map(|i| (format!("t{i}"), "v".into())).collect(),
        };
        assert_eq!(
            shape(&plan(&[tags])),
            [("m0 p0 t100".to_string(), 0), ("m0 p0 t50".to_string(), 1)]
        );
        // 950 metrics + 80 params: the params fit their own limit but not the total of 1000.
        let steps = plan(&[metrics(950, 0), params(80, "p")]);
        assert_eq!(
            shape(&steps),
            [("m950 p50 t0".to_string(), 1), ("m0 p30 t0".to_string(), 2)]
        );
        for s in plan(&[metrics(999, 0), params(99, "p"), metrics(1500, 999)]) {
            let Request::Batch(b) = s.request else {
                panic!()
            };
            assert!(b.metrics.len() <= MAX_METRICS && b.params.len() <= MAX_PARAMS);
            assert!(b.items() <= MAX_ITEMS);
        }
    }

    #[test]
    fn a_param_repeated_with_the_same_value_is_sent_once_and_another_value_goes_alone() {
        let steps = plan(&[
            Event::Params {
                params: vec![("a".into(), "1".into())],
            },
            Event::Params {
                params: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            },
        ]);
        // The conflicting value goes in its own request, so MLflow's refusal names it.
        assert_eq!(
            shape(&steps),
            [("m0 p1 t0".to_string(), 1), ("m0 p1 t0".to_string(), 2)]
        );
    }

    #[test]
    fn replanning_from_an_ack_resumes_after_the_last_complete_event() {
        let events = [start(), metrics(1500, 0), params(2, "p"), metrics(3, 1500)];
        let steps = plan(&events);
        // Suppose the server died after step 1 (create + first 1000 points): acked = 1.
        let acked = steps[1].acked;
        assert_eq!(acked, 1);
        let resumed = plan(&events[acked..]);
        let sent_again: usize = resumed
            .iter()
            .map(|s| match &s.request {
                Request::Batch(b) => b.metrics.len(),
                _ => 0,
            })
            .sum();
        // Every point of the unacknowledged events, the 1000 already sent included (MLflow
        // drops identical rows), and no create again.
        assert_eq!(sent_again, 1503);
        assert!(!resumed
            .iter()
            .any(|s| matches!(s.request, Request::Create(_))));
        assert_eq!(resumed.last().unwrap().acked, events.len() - acked);
    }

    #[test]
    fn long_param_values_are_cut_at_6000_characters() {
        let long = "é".repeat(7000);
        let steps = plan(&[Event::Params {
            params: vec![("long".into(), long)],
        }]);
        let Request::Batch(b) = &steps[0].request else {
            panic!()
        };
        assert_eq!(b.params[0].1.chars().count(), MAX_PARAM_VALUE);
    }

    #[test]
    fn retry_policy_retries_transport_429_and_5xx_only() {
        assert!(is_retryable(None));
        assert!(is_retryable(Some(429)));
        assert!(is_retryable(Some(500)));
        assert!(is_retryable(Some(503)));
        assert!(!is_retryable(Some(400)));
        assert!(!is_retryable(Some(404)));
    }

    #[test]
    fn backoff_doubles_from_250_ms_and_caps_at_30_s() {
        let waits: Vec<u64> = (0..10).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
    }
}
