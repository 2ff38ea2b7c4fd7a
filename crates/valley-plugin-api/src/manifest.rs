//! What a plugin says about itself before it is constructed.

use std::fmt;

use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

/// The three kinds of plugin. A plugin in a slot of another kind is refused by the host.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Chooses and orders training records.
    Sampler,
    /// Turns an ordered training file into a checkpoint.
    Trainer,
    /// Scores a checkpoint on an evaluation set.
    Evaluator,
}

impl PluginKind {
    /// The lowercase name used in experiment files and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sampler => "sampler",
            Self::Trainer => "trainer",
            Self::Evaluator => "evaluator",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage of a sampler pipeline a sampler can fill: filters run first, then the subset of the
/// cell's size is taken, then the order is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SamplerRole {
    /// Keeps some records and drops the rest; the host keeps the pool's order.
    Filter,
    /// Takes exactly the cell's target size out of the filtered pool.
    Subset,
    /// Returns a permutation of its input: the training order.
    Order,
}

impl SamplerRole {
    /// The capability string of this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Subset => "subset",
            Self::Order => "order",
        }
    }
}

impl fmt::Display for SamplerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability a plugin advertises. Capabilities travel as strings so that a host meeting a
/// capability it does not know keeps it as [`Capability::Unknown`] instead of failing to load.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// A sampler that can fill this pipeline stage.
    Role(SamplerRole),
    /// Same inputs and seed give the same output.
    Deterministic,
    /// A trainer that can resume from a checkpoint.
    Resume,
    /// Can run on a CUDA device.
    Cuda,
    /// A capability this host does not know.
    Unknown(String),
}

impl Capability {
    /// Parses the wire form; never fails.
    pub fn parse(s: &str) -> Self {
        match s {
            "filter" => Self::Role(SamplerRole::Filter),
            "subset" => Self::Role(SamplerRole::Subset),
            "order" => Self::Role(SamplerRole::Order),
            "deterministic" => Self::Deterministic,
            "resume" => Self::Resume,
            "cuda" => Self::Cuda,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Role(role) => role.as_str(),
            Self::Deterministic => "deterministic",
            Self::Resume => "resume",
            Self::Cuda => "cuda",
            Self::Unknown(s) => s,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The self-description every plugin library exports.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Manifest {
    /// Sampler, trainer or evaluator.
    pub kind: PluginKind,
    /// The name experiment files use, e.g. `easy-first`.
    pub name: RString,
    /// The plugin's own version (its crate version).
    pub version: RString,
    /// One line for listings.
    pub description: RString,
    /// A valid configuration, as JSON, that `valley plugins list` can show.
    pub example_config: RString,
    /// Capabilities in wire form; read them with [`Manifest::capabilities`].
    pub capabilities: RVec<RString>,
}

impl Manifest {
    /// The advertised capabilities, unknown ones kept as [`Capability::Unknown`].
    pub fn capabilities(&self) -> Vec<Capability> {
        self.capabilities
            .iter()
            .map(|c| Capability::parse(c))
            .collect()
    }

    /// Whether a sampler advertises the given pipeline role.
    pub fn has_role(&self, role: SamplerRole) -> bool {
        self.capabilities().contains(&Capability::Role(role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_round_trip_and_unknown_is_kept() {
        for s in [
            "filter",
            "subset",
            "order",
            "deterministic",
            "resume",
            "cuda",
            "telepathy",
        ] {
            assert_eq!(Capability::parse(s).as_str(), s);
        }
        assert_eq!(
            Capability::parse("telepathy"),
            Capability::Unknown("telepathy".into())
        );
    }
}
