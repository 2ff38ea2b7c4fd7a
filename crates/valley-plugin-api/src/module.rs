//! The root module every plugin library exports, and the macros that export it.
//!
//! The root module is a prefix type: fields after `instantiate` may be appended in later minor
//! versions without breaking plugins built today. The host checks the interface version and the
//! layout (abi_stable's checks) before calling anything.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::{
    error::catch_panics,
    evaluator::{EvaluatorAdapter, EvaluatorObj_TO},
    sampler::{SamplerAdapter, SamplerObj_TO},
    trainer::{TrainerAdapter, TrainerObj_TO},
    Capability, EvaluatorBox, EvaluatorPlugin, Manifest, PluginError, PluginKind, SamplerBox,
    SamplerPlugin, TrainerBox, TrainerPlugin,
};

/// The version of this interface, checked by the host when it loads a plugin.
pub const INTERFACE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A constructed plugin of one of the three kinds.
#[repr(u8)]
#[derive(StableAbi)]
pub enum PluginInstance {
    /// A sampler.
    Sampler(SamplerBox),
    /// A trainer.
    Trainer(TrainerBox),
    /// An evaluator.
    Evaluator(EvaluatorBox),
}

impl PluginInstance {
    /// The kind of the instance.
    pub fn kind(&self) -> PluginKind {
        match self {
            Self::Sampler(_) => PluginKind::Sampler,
            Self::Trainer(_) => PluginKind::Trainer,
            Self::Evaluator(_) => PluginKind::Evaluator,
        }
    }
}

/// The root module of a plugin library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The plugin's self-description; cheap, no configuration needed.
    pub manifest: extern "C" fn() -> Manifest,
    /// Builds the plugin from its configuration (JSON).
    #[sabi(last_prefix_field)]
    pub instantiate: extern "C" fn(config_json: RStr<'_>) -> RResult<PluginInstance, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "valley_plugin";
    const NAME: &'static str = "valley plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

fn manifest(
    kind: PluginKind,
    name: &str,
    version: &str,
    description: &str,
    example_config: String,
    capabilities: Vec<Capability>,
) -> Manifest {
    Manifest {
        kind,
        name: name.into(),
        version: version.into(),
        description: description.into(),
        example_config: example_config.into(),
        capabilities: capabilities
            .iter()
            .map(|c| RString::from(c.as_str()))
            .collect::<RVec<_>>(),
    }
}

fn example_json<C: serde::Serialize>(config: &C) -> String {
    serde_json::to_string(config).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Implemented by the export macros' marker types so that one generic module builder serves every
/// plugin; the plugin's crate version comes from the macro's expansion site.
#[doc(hidden)]
pub trait PluginVersion {
    const VERSION: &'static str;
}

extern "C" fn sampler_manifest<P: SamplerPlugin, V: PluginVersion>() -> Manifest {
    let mut caps: Vec<Capability> = P::ROLES.iter().map(|r| Capability::Role(*r)).collect();
    caps.push(Capability::Deterministic);
    manifest(
        PluginKind::Sampler,
        P::NAME,
        V::VERSION,
        P::DESCRIPTION,
        example_json(&P::example_config()),
        caps,
    )
}

extern "C" fn sampler_instantiate<P: SamplerPlugin>(
    config_json: RStr<'_>,
) -> RResult<PluginInstance, PluginError> {
    catch_panics(|| {
        let plugin = P::from_json(config_json.as_str())?;
        Ok(PluginInstance::Sampler(SamplerObj_TO::from_value(
            SamplerAdapter(plugin),
            TD_Opaque,
        )))
    })
    .into()
}

extern "C" fn trainer_manifest<P: TrainerPlugin, V: PluginVersion>() -> Manifest {
    let caps = if P::RESUMES {
        vec![Capability::Resume]
    } else {
        vec![]
    };
    manifest(
        PluginKind::Trainer,
        P::NAME,
        V::VERSION,
        P::DESCRIPTION,
        example_json(&P::example_config()),
        caps,
    )
}

extern "C" fn trainer_instantiate<P: TrainerPlugin>(
    config_json: RStr<'_>,
) -> RResult<PluginInstance, PluginError> {
    catch_panics(|| {
        let plugin = P::from_json(config_json.as_str())?;
        Ok(PluginInstance::Trainer(TrainerObj_TO::from_value(
            TrainerAdapter(plugin),
            TD_Opaque,
        )))
    })
    .into()
}

extern "C" fn evaluator_manifest<P: EvaluatorPlugin, V: PluginVersion>() -> Manifest {
    manifest(
        PluginKind::Evaluator,
        P::NAME,
        V::VERSION,
        P::DESCRIPTION,
        example_json(&P::example_config()),
        vec![],
    )
}

extern "C" fn evaluator_instantiate<P: EvaluatorPlugin>(
    config_json: RStr<'_>,
) -> RResult<PluginInstance, PluginError> {
    catch_panics(|| {
        let plugin = P::from_json(config_json.as_str())?;
        Ok(PluginInstance::Evaluator(EvaluatorObj_TO::from_value(
            EvaluatorAdapter(plugin),
            TD_Opaque,
        )))
    })
    .into()
}

/// The root module of a sampler plugin (used by [`crate::export_sampler!`]).
#[doc(hidden)]
pub fn sampler_module<P: SamplerPlugin, V: PluginVersion>() -> PluginModRef {
    PluginMod {
        manifest: sampler_manifest::<P, V>,
        instantiate: sampler_instantiate::<P>,
    }
    .leak_into_prefix()
}

/// The root module of a trainer plugin (used by [`crate::export_trainer!`]).
#[doc(hidden)]
pub fn trainer_module<P: TrainerPlugin, V: PluginVersion>() -> PluginModRef {
    PluginMod {
        manifest: trainer_manifest::<P, V>,
        instantiate: trainer_instantiate::<P>,
    }
    .leak_into_prefix()
}

/// The root module of an evaluator plugin (used by [`crate::export_evaluator!`]).
#[doc(hidden)]
pub fn evaluator_module<P: EvaluatorPlugin, V: PluginVersion>() -> PluginModRef {
    PluginMod {
        manifest: evaluator_manifest::<P, V>,
        instantiate: evaluator_instantiate::<P>,
    }
    .leak_into_prefix()
}

/// Exports the library's root module. The symbol name is the one abi_stable's loader looks up
/// (`abi_stable::library::ROOT_MODULE_LOADER_NAME`, asserted in a test); the expansion only names
/// paths through this crate, so a plugin does not depend on `abi_stable` itself.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_root_module {
    ($builder:ident, $plugin:ty) => {
        #[doc(hidden)]
        pub struct __ValleyPluginVersion;
        impl $crate::module::PluginVersion for __ValleyPluginVersion {
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            extern "C" fn __valley_root_module() -> $crate::abi_stable::library::RootModuleResult {
                fn build() -> $crate::PluginModRef {
                    $crate::module::$builder::<$plugin, __ValleyPluginVersion>()
                }
                $crate::abi_stable::library::__call_root_module_loader(build)
            }
            // SAFETY: the constructor returns the root module of type `PluginModRef`, the type
            // named here, exactly as `#[export_root_module]` would generate it.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModRef>(
                    __valley_root_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// Exports a [`SamplerPlugin`] as this library's plugin. Use once per library.
#[macro_export]
macro_rules! export_sampler {
    ($plugin:ty) => {
        $crate::__export_root_module!(sampler_module, $plugin);
    };
}

/// Exports a [`TrainerPlugin`] as this library's plugin. Use once per library.
#[macro_export]
macro_rules! export_trainer {
    ($plugin:ty) => {
        $crate::__export_root_module!(trainer_module, $plugin);
    };
}

/// Exports an [`EvaluatorPlugin`] as this library's plugin. Use once per library.
#[macro_export]
macro_rules! export_evaluator {
    ($plugin:ty) => {
        $crate::__export_root_module!(evaluator_module, $plugin);
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn exported_symbol_is_the_one_the_loader_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
