//! The loader against real plugin libraries built in the workspace (`cargo build --workspace`
//! first; `just test` does): two samplers of one root-module type load as two, and each failure
//! fixture gives its own error while the others keep loading.

use std::{
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use valley_plugin_api::{
    abi_stable::std_types::{ROption, RVec},
    Candidate, PluginKind, SampleContext, SamplerRole,
};
use valley_plugin_host::{CallServices, HostError as Error, LoadError, PluginLibrary};

/// `target/<profile>/`: this test binary lives in `target/<profile>/deps/`.
fn lib(stem: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

fn pool() -> Vec<Candidate> {
    (0..30u64)
        .map(|i| Candidate {
            index: i,
            id: format!("r{i}").into(),
            difficulty: ["EASY", "MEDIUM", "HARD"][i as usize % 3].into(),
            difficulty_rank: (i % 3) as f64,
            correct: ROption::RSome(true),
            token_count: 1,
            source: "t".into(),
            tags: RVec::new(),
        })
        .collect()
}

fn order_of(lib: &PluginLibrary, config: serde_json::Value) -> Vec<u64> {
    let sampler = lib.sampler("test", SamplerRole::Order, &config).unwrap();
    let ctx = SampleContext {
        seed: 9,
        target_size: 30,
        arm: "a".into(),
        stage: "order".into(),
    };
    let services = CallServices::new("test", Arc::new(AtomicBool::new(false)));
    sampler
        .select(&pool(), &ctx, &services)
        .unwrap()
        .indices
        .into_vec()
}

#[test]
fn two_samplers_in_one_process_are_two() {
    // RootModule::load_from_file would hand back the first library for the second path.
    let random = PluginLibrary::load(&lib("valley_sampler_random")).unwrap();
    let easy = PluginLibrary::load(&lib("valley_sampler_easy_first")).unwrap();
    assert_eq!(random.name(), "random");
    assert_eq!(easy.name(), "easy-first");
    let easy_order = order_of(&easy, serde_json::json!({}));
    let ranks: Vec<u64> = easy_order.iter().map(|i| i % 3).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "easy-first did not sort: {ranks:?}"
    );
    assert_ne!(order_of(&random, serde_json::json!({})), easy_order);
    // Loading the same library again is harmless and gives the same plugin.
    assert_eq!(
        PluginLibrary::load(&lib("valley_sampler_random"))
            .unwrap()
            .name(),
        "random"
    );
}

#[test]
fn each_loading_failure_has_its_own_error() {
    let missing = PluginLibrary::load(&PathBuf::from("/nonexistent/libnothing.so")).unwrap_err();
    assert!(matches!(missing, LoadError::Missing { .. }), "{missing}");

    let not_plugin = PluginLibrary::load(&lib("valley_fixture_not_a_plugin")).unwrap_err();
    assert!(
        matches!(not_plugin, LoadError::NotAPlugin { .. }),
        "{not_plugin}"
    );
    assert!(
        not_plugin
            .to_string()
            .contains("exports no abi_stable root module"),
        "{not_plugin}"
    );

    let old = PluginLibrary::load(&lib("valley_fixture_old_interface")).unwrap_err();
    match &old {
        LoadError::IncompatibleVersion {
            found, expected, ..
        } => {
            assert_eq!(found, "0.0.1");
            assert_eq!(expected, valley_plugin_api::INTERFACE_VERSION);
        }
        other => panic!("expected a version error, got {other}"),
    }

    let layout = PluginLibrary::load(&lib("valley_fixture_changed_layout")).unwrap_err();
    assert!(
        matches!(layout, LoadError::LayoutMismatch { .. }),
        "{layout}"
    );
    // One line, not abi_stable's thousand-line report.
    assert_eq!(layout.to_string().lines().count(), 1, "{layout}");

    // After all of that, a good plugin still loads.
    assert!(PluginLibrary::load(&lib("valley_sampler_nested_size")).is_ok());
}

#[test]
fn wrong_kind_and_wrong_role_are_refused_naming_the_slot() {
    let trainer = PluginLibrary::load(&lib("valley_fixture_wrong_kind")).unwrap();
    assert_eq!(trainer.kind(), PluginKind::Trainer);
    let err = trainer
        .sampler("arms.a.order", SamplerRole::Order, &serde_json::json!({}))
        .err()
        .expect("a trainer must not fill a sampler slot");
    assert!(matches!(err, Error::WrongKind { .. }));
    assert!(
        err.to_string()
            .starts_with("arms.a.order: plugin `wrong-kind`"),
        "{err}"
    );

    let filter = PluginLibrary::load(&lib("valley_sampler_correctness")).unwrap();
    let err = filter
        .sampler(
            "arms.a.order",
            SamplerRole::Order,
            &serde_json::json!({"keep": "all"}),
        )
        .err()
        .expect("a filter must not fill an order slot");
    assert!(
        err.to_string().contains("needs a sampler order stage"),
        "{err}"
    );
}

#[test]
fn a_panic_inside_a_plugin_is_an_error_and_the_host_goes_on() {
    let lib_ = PluginLibrary::load(&lib("valley_fixture_panicking_sampler")).unwrap();
    let sampler = lib_
        .sampler("arms.bad.order", SamplerRole::Order, &serde_json::json!({}))
        .unwrap();
    let ctx = SampleContext {
        seed: 1,
        target_size: 30,
        arm: "bad".into(),
        stage: "order".into(),
    };
    let services = CallServices::new("test", Arc::new(AtomicBool::new(false)));
    for _ in 0..2 {
        let err = sampler.select(&pool(), &ctx, &services).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("panicked: fixture panic with 30 candidates"),
            "{text}"
        );
        assert!(
            text.contains("panicking-sampler/src/lib.rs"),
            "the location is reported: {text}"
        );
    }
    // The process is alive and other plugins work.
    let random = PluginLibrary::load(&lib("valley_sampler_random")).unwrap();
    assert_eq!(order_of(&random, serde_json::json!({})).len(), 30);
}

#[test]
fn a_bad_config_names_plugin_slot_and_field() {
    let easy = PluginLibrary::load(&lib("valley_sampler_easy_first")).unwrap();
    let err = easy
        .sampler(
            "arms.e.order",
            SamplerRole::Order,
            &serde_json::json!({"mode": "bucket"}),
        )
        .err()
        .expect("bad mode must be refused");
    let text = err.to_string();
    assert!(
        text.contains("plugin `easy-first`") && text.contains("`arms.e.order`"),
        "{text}"
    );
    assert!(text.contains("field `mode`"), "{text}");
}
