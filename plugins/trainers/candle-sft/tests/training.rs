//! The trainer on real data: the loss falls and train-set token accuracy rises within a small
//! budget, and a run killed mid-way (SIGKILL, a real process) resumes to bitwise the same final
//! weights as an uninterrupted run.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use valley_plugin_api::{host::RecordingHost, Host, PluginError};
use valley_trainer_candle_sft::{SftConfig, TrainSummary};

mod common;
use common::{assert_same_weights, finished, fixture, losses};

/// [`valley_trainer_candle_sft::train`] for runs that are not interrupted: the summary of the
/// finished run.
fn train(
    cfg: &SftConfig,
    data: &Path,
    out: &Path,
    resume: Option<&Path>,
    host: &Host<'_>,
) -> Result<TrainSummary, PluginError> {
    valley_trainer_candle_sft::train(cfg, data, out, resume, host).map(finished)
}

fn small(epochs: u64, lr: f64) -> SftConfig {
    SftConfig {
        epochs,
        lr,
        micro_batch: 4,
        global_batch: 8,
        max_length: 192,
        warmup_ratio: 0.1,
        ..SftConfig::default()
    }
}

#[test]
fn loss_falls_and_token_accuracy_rises() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture(dir.path(), 32);
    // Baseline: the same run with a zero learning rate leaves the initial weights in place.
    let rec0 = RecordingHost::default();
    let before = train(
        &small(1, 0.0),
        &data,
        &dir.path().join("lr0"),
        None,
        &rec0.host(),
    )
    .unwrap();
    let rec = RecordingHost::default();
    let after = train(
        &small(4, 3e-3),
        &data,
        &dir.path().join("run"),
        None,
        &rec.host(),
    )
    .unwrap();
    let l = losses(&rec);
    assert_eq!(l.len(), 16, "4 epochs of 32 records at 8 per step");
    let (first, last) = (
        l[..2].iter().sum::<f64>() / 2.0,
        l[l.len() - 2..].iter().sum::<f64>() / 2.0,
    );
    assert!(last < 0.7 * first, "loss did not fall enough: {l:?}");
    assert!(
        after.train_token_accuracy > before.train_token_accuracy + 0.1,
        "token accuracy {} -> {}",
        before.train_token_accuracy,
        after.train_token_accuracy
    );
    for name in [
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_s",
        "train/tokens_seen",
        "train/token_accuracy",
    ] {
        assert!(
            rec.metrics
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.name.as_str() == name),
            "{name} not streamed"
        );
    }
    assert!(
        after.checkpoint.join("model.safetensors").is_file()
            && after.checkpoint.join("config.json").is_file()
    );
}

fn resumable() -> SftConfig {
    SftConfig {
        epochs: 3,
        micro_batch: 2,
        global_batch: 4,
        max_length: 128,
        checkpoint_every: 1,
        keep_checkpoints: 2,
        ..small(3, 2e-3)
    }
}

/// When the test binary is started with this variable, it trains (the process the parent kills).
const CHILD: &str = "VALLEY_SFT_KILL_CHILD";

#[test]
fn a_killed_run_resumes_to_bitwise_equal_weights() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (data, out) = spec.split_once('|').unwrap();
        let rec = RecordingHost::default();
        train(
            &resumable(),
            Path::new(data),
            Path::new(out),
            None,
            &rec.host(),
        )
        .unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = fixture(dir.path(), 40); // 10 steps per epoch, 30 steps
    let reference = RecordingHost::default();
    let full = train(
        &resumable(),
        &data,
        &dir.path().join("full"),
        None,
        &reference.host(),
    )
    .unwrap();
    assert_eq!(full.steps, 30);

    let out = dir.path().join("killed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_run_resumes_to_bitwise_equal_weights",
            "--nocapture",
        ])
        .env(CHILD, format!("{}|{}", data.display(), out.display()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let kill_after = out.join("checkpoints").join("step-00000005");
    while !kill_after.join("state.json").is_file() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        assert!(
            Instant::now() < deadline,
            "no checkpoint at step 5 within the deadline"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !out.join("final").exists(),
        "the child was killed before finishing"
    );

    let latest = valley_trainer_candle_sft::train::latest_checkpoint(&out)
        .expect("a checkpoint survives the kill");
    let rec = RecordingHost::default();
    let resumed = train(&resumable(), &data, &out, Some(&latest), &rec.host()).unwrap();
    assert!(
        resumed.resumed_from.is_some_and(|s| (5..30).contains(&s)),
        "{:?}",
        resumed.resumed_from
    );
    assert_eq!(resumed.steps, 30);
    assert_same_weights(&full.checkpoint, &resumed.checkpoint, "after resume");
    let kept = std::fs::read_dir(out.join("checkpoints")).unwrap().count();
    assert!(kept <= 2, "retention keeps 2 checkpoints, found {kept}");
}

/// A from-scratch run with a trained BPE (`tokenizer = "bpe:N"`): the tokenizer is saved beside
/// every checkpoint, the model's vocabulary is the tokenizer's, and resuming from a middle
/// checkpoint (whose tokenizer wins over the setting) ends in bitwise the same weights.
#[test]
fn a_bpe_run_saves_its_tokenizer_and_resumes_to_bitwise_equal_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture(dir.path(), 16);
    // The BPE is trained on a separate corpus file (the first 60 fixture records).
    std::fs::create_dir_all(dir.path().join("corpus")).unwrap();
    let corpus = fixture(&dir.path().join("corpus"), 60);
    let cfg = SftConfig {
        epochs: 2,
        micro_batch: 2,
        global_batch: 4,
        max_length: 64,
        checkpoint_every: 1,
        keep_checkpoints: 100,
        tokenizer: "bpe:400".into(),
        tokenizer_corpus: Some(corpus.clone()),
        ..small(2, 2e-3)
    };
    let full = train(
        &cfg,
        &data,
        &dir.path().join("full"),
        None,
        &RecordingHost::default().host(),
    )
    .unwrap();
    assert_eq!(full.steps, 8);
    let saved = full.checkpoint.join("tokenizer.json");
    let expected =
        valley_trainer_candle_sft::tokenizer_setting::train_on_corpus(&corpus, 400, false).unwrap();
    let loaded =
        valley_lm::tokenizer::Tokenizer::from_dir(&full.checkpoint, expected.vocab_size()).unwrap();
    assert_eq!(loaded.vocab_size(), expected.vocab_size());
    assert_eq!(
        loaded.encode("<|im_start|>user\nRead n<|im_end|>"),
        expected.encode("<|im_start|>user\nRead n<|im_end|>"),
        "the saved tokenizer is the one trained on tokenizer_corpus"
    );
    assert!(saved.is_file());
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(full.checkpoint.join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["vocab_size"].as_u64().unwrap() as usize,
        expected.vocab_size()
    );

    let middle = dir.path().join("full/checkpoints/step-00000003");
    assert!(middle.join("tokenizer.json").is_file());
    // The resumed run is told `byte`: the checkpoint's own tokenizer must win.
    let resumed_cfg = SftConfig {
        tokenizer: "byte".into(),
        ..cfg.clone()
    };
    let resumed = train(
        &resumed_cfg,
        &data,
        &dir.path().join("resumed"),
        Some(&middle),
        &RecordingHost::default().host(),
    )
    .unwrap();
    assert_eq!(resumed.resumed_from, Some(3));
    assert_same_weights(&full.checkpoint, &resumed.checkpoint, "after resume");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(resumed.checkpoint.join("tokenizer.json")).unwrap()
    );

    // A checkpoint without tokenizer.json has a vocabulary bpe:N cannot replace: refused.
    let bare = dir.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(full.checkpoint.join(f), bare.join(f)).unwrap();
    }
    let err = train(
        &SftConfig {
            model: bare.display().to_string(),
            ..cfg
        },
        &data,
        &dir.path().join("refused"),
        None,
        &RecordingHost::default().host(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bpe:N"), "{err}");
}

/// A max_length that cuts every sequence before its answer is refused before any step, with the
/// length that would fit, instead of training steps that change nothing.
#[test]
fn a_max_length_that_cuts_every_answer_is_refused_with_the_length_needed() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture(dir.path(), 4);
    let cfg = SftConfig {
        max_length: 16,
        ..small(1, 1e-3)
    };
    let err = train(
        &cfg,
        &data,
        &dir.path().join("out"),
        None,
        &RecordingHost::default().host(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_length 16"), "{err}");
    assert!(err.contains("cut before its answer"), "{err}");
    assert!(err.contains("the longest sequence is"), "{err}");
    assert!(!dir.path().join("out/final").exists());
}

/// `steps` fixes the number of optimizer steps whatever the file's length, cycling through it in
/// order: 3 records at global batch 2 make 2 steps an epoch, and `steps = 7` takes 7.
#[test]
fn steps_fixes_the_number_of_optimizer_steps() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture(dir.path(), 3);
    let cfg = SftConfig {
        steps: Some(7),
        micro_batch: 1,
        global_batch: 2,
        max_length: 64,
        assistant_only: false,
        ..small(1, 1e-3)
    };
    let summary = train(
        &cfg,
        &data,
        &dir.path().join("out"),
        None,
        &RecordingHost::default().host(),
    )
    .unwrap();
    assert_eq!(summary.steps, 7);
}

/// The chat template travels with the checkpoints: a from-scratch run saves ChatML (as its Jinja
/// equivalent), a run started from a checkpoint holding Qwen2.5-Instruct's template (the
/// valley-lm fixture) trains with it and saves it into every checkpoint, intermediate and final,
/// and `chat_template = "chatml"` overrides it; an unknown value is refused naming the field.
#[test]
fn checkpoints_carry_the_chat_template_they_were_trained_with() {
    use valley_lm::chat_template::{ChatTemplate, CHATML_JINJA};
    let dir = tempfile::tempdir().unwrap();
    let data = fixture(dir.path(), 4);
    let cfg = SftConfig {
        steps: Some(2),
        micro_batch: 2,
        global_batch: 2,
        max_length: 256,
        checkpoint_every: 1,
        ..small(1, 1e-3)
    };
    let host = RecordingHost::default();
    let template_of = |d: &Path| -> String {
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("tokenizer_config.json")).unwrap(),
        )
        .unwrap();
        config["chat_template"].as_str().unwrap().to_string()
    };
    let scratch = train(&cfg, &data, &dir.path().join("scratch"), None, &host.host()).unwrap();
    assert_eq!(template_of(&scratch.checkpoint), CHATML_JINJA);

    // A starting checkpoint with Qwen2.5-Instruct's tokenizer_config.json.
    let qwen = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../crates/valley-lm/tests/fixtures/chat_templates/qwen2.5-instruct/tokenizer_config.json");
    let start = dir.path().join("start");
    std::fs::create_dir_all(&start).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(scratch.checkpoint.join(f), start.join(f)).unwrap();
    }
    std::fs::copy(&qwen, start.join("tokenizer_config.json")).unwrap();
    let qwen_template = ChatTemplate::from_dir(&start).unwrap();
    let from_qwen = SftConfig {
        model: start.display().to_string(),
        ..cfg.clone()
    };
    let out = dir.path().join("qwen");
    let summary = train(&from_qwen, &data, &out, None, &host.host()).unwrap();
    let intermediate = out.join("checkpoints/step-00000001");
    for d in [&summary.checkpoint, &intermediate] {
        assert_eq!(
            template_of(d),
            qwen_template.jinja_source(),
            "{}",
            d.display()
        );
        let back = ChatTemplate::from_dir(d).unwrap();
        assert_eq!(
            back.turns(None, "q", "a").unwrap(),
            qwen_template.turns(None, "q", "a").unwrap()
        );
        assert!(back
            .turns(None, "q", "a")
            .unwrap()
            .0
            .contains("You are Qwen, created by Alibaba Cloud."));
    }

    let chatml = SftConfig {
        chat_template: "chatml".into(),
        ..from_qwen.clone()
    };
    let forced = train(
        &chatml,
        &data,
        &dir.path().join("chatml"),
        None,
        &host.host(),
    )
    .unwrap();
    assert_eq!(template_of(&forced.checkpoint), CHATML_JINJA);

    let bad = SftConfig {
        chat_template: "qwen".into(),
        ..from_qwen
    };
    let e = train(&bad, &data, &dir.path().join("bad"), None, &host.host())
        .unwrap_err()
        .to_string();
    assert!(e.contains("chat_template `qwen`"), "{e}");
}
