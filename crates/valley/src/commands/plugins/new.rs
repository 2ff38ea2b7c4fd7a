//! `valley plugins new`: writes a plugin crate that builds and loads as generated, inside the
//! workspace (added to its members) or anywhere else (a standalone crate that depends on
//! `valley-plugin-api` by path).

use std::path::{Path, PathBuf};

use valley_plugin_api::PluginKind;

use anyhow::{anyhow, Result};
use valley_experiment::Error;
use valley_plugin_host::workspace_root;

use super::super::Outcome;
use crate::cli::NewArgs;

/// The interface crate, relative to the root of the valley checkout.
const API_CRATE: &str = "crates/valley-plugin-api";

/// Creates the plugin crate and prints where it is and what to do next.
///
/// # Errors
/// As [`scaffold`].
pub fn run(args: &NewArgs, out: &mut dyn std::io::Write) -> anyhow::Result<Outcome> {
    let kind = args.kind.into();
    let dir = scaffold(&args.name, kind, args.dir.as_deref())?;
    writeln!(out, "created {}", dir.display())?;
    writeln!(out, "{}", next_steps(&args.name, kind, &dir))?;
    Ok(Outcome::Passed)
}

/// The directory of the workspace where plugins of `kind` live: `plugins/samplers`,
/// `plugins/trainers`, `plugins/evaluators`.
fn kind_dir(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Sampler => "plugins/samplers",
        PluginKind::Trainer => "plugins/trainers",
        PluginKind::Evaluator => "plugins/evaluators",
    }
}

/// Creates the crate `name` under `parent` (default: `plugins/<kind>s/` of the workspace around
/// the current directory, else the current directory) and returns its directory.
///
/// # Errors
/// an error for a bad name, an existing directory, or when `valley-plugin-api` cannot be
/// found; I/O errors naming the path.
pub fn scaffold(name: &str, kind: PluginKind, parent: Option<&Path>) -> Result<PathBuf> {
    if !(name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(anyhow!(
            "plugin name `{name}`: use lowercase letters, digits and `-`, starting with a letter"
        ));
    }
    let valley_root = find_valley_root().ok_or_else(|| {
        anyhow!("cannot find the valley checkout (crates/valley-plugin-api/Cargo.toml): run `valley plugins new` from inside it, or the valley binary built in it")
    })?;
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let parent = match parent {
        Some(p) => std::path::absolute(p).map_err(|e| Error::io(p, e))?,
        None if workspace_root(&cwd).as_deref() == Some(valley_root.as_path()) => {
            valley_root.join(kind_dir(kind))
        }
        None => cwd,
    };
    let dir = parent.join(name);
    if dir.exists() {
        return Err(anyhow!("{}: already exists", dir.display()));
    }
    let inside = dir.starts_with(&valley_root);
    let manifest = if inside {
        workspace_manifest(name)
    } else {
        standalone_manifest(name, &valley_root.join(API_CRATE))
    };
    std::fs::create_dir_all(dir.join("src")).map_err(|e| Error::io(&dir, e))?;
    let write = |rel: &str, text: String| {
        let p = dir.join(rel);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    write("Cargo.toml", manifest)?;
    write("src/lib.rs", source(name, kind))?;
    if inside {
        if !matched_by_members(&valley_root, &dir) {
            add_member(&valley_root, &dir)?;
        }
    } else {
        write(".gitignore", "/target\n".into())?;
    }
    Ok(dir)
}

/// What to do after scaffolding: build, check, and name the plugin in an experiment.
pub fn next_steps(name: &str, kind: PluginKind, dir: &Path) -> String {
    let lib = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let inside = find_valley_root().is_some_and(|root| dir.starts_with(root));
    let (build, library, path_key) = if inside {
        (
            format!("cargo build -p {name}"),
            format!("target/debug/{lib}"),
            String::new(),
        )
    } else {
        let library = dir
            .join("target")
            .join("release")
            .join(&lib)
            .display()
            .to_string();
        let build = format!(
            "cargo build --release --manifest-path {}",
            dir.join("Cargo.toml").display()
        );
        (build, library.clone(), format!(", path = \"{library}\""))
    };
    let spec = format!("{{ plugin = \"{name}\"{path_key} }}");
    let table_lines = format!(
        "plugin = \"{name}\"{}",
        path_key.replace(", path", "\n  path")
    );
    let snippet = match kind {
        PluginKind::Sampler => format!("[arms.{name}]\n  order = {spec}"),
        PluginKind::Trainer => format!("[trainer]\n  {table_lines}"),
        PluginKind::Evaluator => format!("[evaluator]\n  {table_lines}"),
    };
    format!("next:\n  {build}\n  valley plugins check {library}\nthen, in an experiment file:\n  {snippet}")
}

fn find_valley_root() -> Option<PathBuf> {
    let is_valley = |root: &Path| root.join(API_CRATE).join("Cargo.toml").is_file();
    let from_cwd = std::env::current_dir()
        .ok()
        .as_deref()
        .and_then(workspace_root)
        .filter(|r| is_valley(r));
    from_cwd.or_else(|| {
        let exe = std::env::current_exe().ok()?;
        workspace_root(exe.parent()?).filter(|r| is_valley(r))
    })
}

/// Whether the workspace's member globs (`crates/*`, `plugins/*/*`) already take `dir`.
fn matched_by_members(root: &Path, dir: &Path) -> bool {
    let Ok(rel) = dir.strip_prefix(root) else {
        return false;
    };
    let parts: Vec<_> = rel.components().collect();
    match parts.as_slice() {
        [first, _] => first.as_os_str() == "crates",
        [first, _, _] => first.as_os_str() == "plugins",
        _ => false,
    }
}

fn add_member(root: &Path, dir: &Path) -> Result<()> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| Error::io(&manifest, e))?;
    let rel = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let Some(at) = text.find("members = [\n") else {
        return Err(anyhow!(
            "{}: no `members = [` list to add {rel} to; add it by hand",
            manifest.display()
        ));
    };
    let insert_at = at + "members = [\n".len();
    let updated = format!(
        "{}    \"{rel}\",\n{}",
        &text[..insert_at],
        &text[insert_at..]
    );
    Ok(std::fs::write(&manifest, updated).map_err(|e| Error::io(&manifest, e))?)
}

fn workspace_manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version.workspace = true
edition.workspace = true
license.workspace = true
publish.workspace = true

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
valley-plugin-api.workspace = true
serde.workspace = true

[lints]
workspace = true
"#
    )
}

fn standalone_manifest(name: &str, api: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
valley-plugin-api = {{ path = "{}" }}
serde = {{ version = "1", features = ["derive"] }}

# A workspace of its own, so it builds wherever it is.
[workspace]
"#,
        api.display()
    )
}

fn source(name: &str, kind: PluginKind) -> String {
    let template = match kind {
        PluginKind::Sampler => SAMPLER,
        PluginKind::Trainer => TRAINER,
        PluginKind::Evaluator => EVALUATOR,
    };
    template.replace("{name}", name)
}

/// The sampler template; the README's plugin page shows the same code.
pub const SAMPLER: &str = r#"//! {name}: a valley sampler. Orders the pool shortest first (token count), ties in a seeded
//! random order; `reverse = true` gives longest first. Edit `select` to make your curriculum.
use valley_plugin_api::prelude::*;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub reverse: bool,
}

pub struct Plugin(Config);

impl SamplerPlugin for Plugin {
    type Config = Config;
    const NAME: &'static str = "{name}";
    const DESCRIPTION: &'static str = "Shortest records first, ties in seeded order.";
    const ROLES: &'static [SamplerRole] = &[SamplerRole::Order];

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Plugin(config))
    }

    fn select(&self, pool: &[Candidate], ctx: &SampleContext, _host: &Host<'_>)
        -> Result<Selection, PluginError> {
        let mut order: Vec<&Candidate> = pool.iter().collect();
        SeedRng::derive(ctx.seed, Self::NAME).shuffle(&mut order);
        order.sort_by_key(|c| c.token_count); // stable: ties keep the seeded order
        if self.0.reverse {
            order.reverse();
        }
        Ok(Selection::new(order.iter().map(|c| c.index).collect()))
    }
}

valley_plugin_api::export_sampler!(Plugin);
"#;

const TRAINER: &str = r#"//! {name}: a valley trainer. This template only copies the ordered training file into the
//! checkpoint directory and reports how many records it saw; put your training loop in `train`.
use valley_plugin_api::prelude::*;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

pub struct Plugin;

impl TrainerPlugin for Plugin {
    type Config = Config;
    const NAME: &'static str = "{name}";
    const DESCRIPTION: &'static str = "Template trainer: copies the training file.";

    fn new(_config: Config) -> Result<Self, PluginError> {
        Ok(Plugin)
    }

    fn train(&self, job: &TrainJob, host: &Host<'_>) -> Result<TrainOutcome, PluginError> {
        let text = std::fs::read_to_string(job.train_file.as_str()).map_err(PluginError::failed)?;
        let records = text.lines().filter(|l| !l.trim().is_empty()).count();
        let dir = std::path::Path::new(job.output_dir.as_str()).join("checkpoint");
        std::fs::create_dir_all(&dir).map_err(PluginError::failed)?;
        std::fs::write(dir.join("train.jsonl"), text).map_err(PluginError::failed)?;
        host.log(MetricPoint::new("train/records", records as f64, 0).unit("records"));
        Ok(TrainOutcome {
            checkpoint_dir: dir.display().to_string().into(),
            summary_json: format!("{{\"records\": {records}}}").into(),
        })
    }
}

valley_plugin_api::export_trainer!(Plugin);
"#;

const EVALUATOR: &str = r#"//! {name}: a valley evaluator. This template only counts the problems of the evaluation set;
//! put your generation and judging in `evaluate`.
use valley_plugin_api::prelude::*;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

pub struct Plugin;

impl EvaluatorPlugin for Plugin {
    type Config = Config;
    const NAME: &'static str = "{name}";
    const DESCRIPTION: &'static str = "Template evaluator: counts problems.";

    fn new(_config: Config) -> Result<Self, PluginError> {
        Ok(Plugin)
    }

    fn evaluate(&self, job: &EvalJob, _host: &Host<'_>) -> Result<EvalOutcome, PluginError> {
        let text = std::fs::read_to_string(job.eval_set.as_str()).map_err(PluginError::failed)?;
        let problems = text.lines().filter(|l| !l.trim().is_empty()).count();
        Ok(EvalOutcome {
            metrics: vec![MetricValue {
                name: "eval/problems".into(),
                value: problems as f64,
                unit: "problems".into(),
                direction: Direction::Neutral,
            }]
            .into(),
            artifacts: Default::default(),
        })
    }
}

valley_plugin_api::export_evaluator!(Plugin);
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_template_verbatim() {
        let readme = include_str!("../../../../../README.md");
        let code = SAMPLER.replace("{name}", "shortest-first");
        assert!(
            readme.contains(code.trim_end()),
            "README's plugin page drifted from scaffold::SAMPLER"
        );
        assert!(
            code.lines().count() < 40,
            "the minimal sampler must stay under 40 lines"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "Caps", "9lives", "under_score", "spa ce"] {
            let err =
                scaffold(name, PluginKind::Sampler, Some(Path::new("/nonexistent"))).unwrap_err();
            assert!(
                err.to_string().contains("use lowercase letters"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn standalone_manifest_points_at_the_api() {
        let m = standalone_manifest("x", Path::new("/v/crates/valley-plugin-api"));
        let parsed: toml::Table = toml::from_str(&m).unwrap();
        assert_eq!(
            parsed["dependencies"]["valley-plugin-api"]["path"].as_str(),
            Some("/v/crates/valley-plugin-api")
        );
        assert_eq!(parsed["lib"]["crate-type"].as_array().unwrap().len(), 2);
        assert!(parsed.contains_key("workspace"));
    }
}
