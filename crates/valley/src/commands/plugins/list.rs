//! `valley plugins list`: every plugin found, in precedence order, and the libraries that failed.

use std::io::Write;

use valley_plugin_host::PluginSearch;

use super::super::{out_err, Outcome};
use crate::cli::ListArgs;

/// Lists the plugins `search` finds on `out`, and the libraries that failed on `err`.
///
/// # Errors
/// Only output errors; a library that fails to load is reported and skipped.
pub fn run(
    args: &ListArgs,
    search: &PluginSearch,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let json = args.json;
    let discovery = search.discover();
    if json {
        let rows: Vec<_> = discovery
            .plugins
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({
                    "name": p.name(), "kind": p.kind().as_str(), "version": p.manifest.version.as_str(),
                    "path": p.path, "capabilities": p.manifest.capabilities().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "description": p.manifest.description.as_str(), "example_config": serde_json::from_str::<serde_json::Value>(&p.manifest.example_config).unwrap_or_default(),
                    "shadowed": discovery.is_shadowed(i),
                })
            })
            .collect();
        let failures: Vec<String> = discovery.failures.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "plugins": rows, "failures": failures })
        )
        .map_err(out_err)?;
    } else {
        writeln!(
            out,
            "{:<18} {:<10} {:<8} {:<28} PATH",
            "NAME", "KIND", "VERSION", "CAPABILITIES"
        )
        .map_err(out_err)?;
        for (i, p) in discovery.plugins.iter().enumerate() {
            let caps: Vec<String> = p
                .manifest
                .capabilities()
                .iter()
                .map(|c| c.to_string())
                .collect();
            let shadowed = if discovery.is_shadowed(i) {
                "  (shadowed by an earlier one)"
            } else {
                ""
            };
            writeln!(
                out,
                "{:<18} {:<10} {:<8} {:<28} {}{shadowed}",
                p.name(),
                p.kind().as_str(),
                p.manifest.version.as_str(),
                caps.join(", "),
                p.path.display()
            )
            .map_err(out_err)?;
        }
        if discovery.plugins.is_empty() {
            let dirs: Vec<String> = search
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            writeln!(
                out,
                "no plugins found in: {} (run `cargo build --workspace` or set VALLEY_PLUGIN_PATH)",
                dirs.join(", ")
            )
            .map_err(out_err)?;
        }
    }
    for failure in &discovery.failures {
        writeln!(err, "warning: {failure}").map_err(out_err)?;
    }
    Ok(Outcome::Passed)
}
