//! Files from the Hugging Face hub through its standard cache, without the `hf-hub` crate
//! (1.0 is 236 crates and ignores `HF_HUB_OFFLINE`, docs/design.md section 9): a reader of the cache
//! layout the Python `huggingface_hub` writes, plus a plain HTTPS download into that layout.
//!
//! The cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`; a repository
//! lives in `datasets--org--name` (or `models--…`) with `refs/<branch>` holding a commit hash,
//! `snapshots/<commit>/<path>` (links into `blobs/`). A revision is a branch or tag (looked up in
//! `refs/`) or a 40-hex commit (a pin: used as is). With `HF_HUB_OFFLINE=1` nothing is downloaded
//! and a missing file is an error saying what to set.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

/// Model or dataset repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// `models--org--name`, URL `/{repo}/resolve/…`.
    Model,
    /// `datasets--org--name`, URL `/datasets/{repo}/resolve/…`.
    Dataset,
}

/// A file of a hub repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Model or dataset.
    pub kind: RepoKind,
    /// `org/name`.
    pub repo: String,
    /// Branch, tag, or a 40-hex commit (a pin).
    pub revision: String,
    /// Path inside the repository.
    pub path: String,
}

impl HubFile {
    fn label(&self) -> String {
        let prefix = match self.kind {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
        };
        format!("{prefix}{}@{}: {}", self.repo, self.revision, self.path)
    }

    fn folder(&self) -> String {
        let kind = match self.kind {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        };
        format!("{kind}--{}", self.repo.replace('/', "--"))
    }

    /// The download URL under `endpoint`.
    pub fn url(&self, endpoint: &str) -> String {
        let prefix = match self.kind {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
        };
        format!(
            "{}/{prefix}{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            self.revision,
            self.path
        )
    }
}

impl std::str::FromStr for HubFile {
    type Err = String;

    /// `hf://datasets/org/name@revision/path/in/repo` (a model without `datasets/`; the revision
    /// defaults to `main`).
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix("hf://").ok_or_else(|| {
            format!("`{s}`: a hub file is written hf://datasets/org/name@revision/path")
        })?;
        let (kind, rest) = match rest.strip_prefix("datasets/") {
            Some(r) => (RepoKind::Dataset, r),
            None => (
                RepoKind::Model,
                rest.strip_prefix("models/").unwrap_or(rest),
            ),
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(org), Some(name), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{s}`: expected hf://datasets/org/name@revision/path"
            ));
        };
        let (name, revision) = name.split_once('@').unwrap_or((name, "main"));
        if org.is_empty() || name.is_empty() || path.is_empty() || revision.is_empty() {
            return Err(format!(
                "`{s}`: expected hf://datasets/org/name@revision/path"
            ));
        }
        Ok(Self {
            kind,
            repo: format!("{org}/{name}"),
            revision: revision.to_string(),
            path: path.to_string(),
        })
    }
}

/// Why a hub file is not available.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Offline and not cached.
    #[error("{file} is not in the Hugging Face cache {cache} and HF_HUB_OFFLINE is set, so it is not downloaded: unset HF_HUB_OFFLINE on a machine with network, or set HF_HOME (or HF_HUB_CACHE) to a cache that holds it (`{fill}` fills one)")]
    NotCached {
        /// The file, as `repo@revision: path`.
        file: String,
        /// The cache searched.
        cache: PathBuf,
        /// The `huggingface-cli download …` command that fetches it.
        fill: String,
    },
    /// The download failed.
    #[error("{file}: download from {url} failed: {message}; on a machine without network set HF_HUB_OFFLINE=1 and HF_HOME to a cache that holds the file")]
    Download {
        /// The file.
        file: String,
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The cache could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The cache and the network policy.
#[derive(Debug, Clone)]
pub struct HubCache {
    /// The hub cache directory.
    pub root: PathBuf,
    /// `HF_HUB_OFFLINE`: never download.
    pub offline: bool,
    /// `HF_ENDPOINT`, default `https://huggingface.co`.
    pub endpoint: String,
    /// `HF_TOKEN`, sent as a bearer token.
    pub token: Option<String>,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl HubCache {
    /// The cache and policy from the environment, as `huggingface_hub` reads them.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`HubCache::from_env`] with explicit variables (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let root = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .or_else(|| var("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
            .unwrap_or_else(|| {
                PathBuf::from(var("HOME").unwrap_or_else(|| ".".into()))
                    .join(".cache/huggingface/hub")
            });
        Self {
            root,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()),
            token: var("HF_TOKEN"),
        }
    }

    /// The commit a revision resolves to in the cache: a 40-hex revision is its own commit,
    /// anything else is looked up in `refs/`.
    pub fn commit(&self, file: &HubFile) -> Option<String> {
        if file.revision.len() == 40 && file.revision.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(file.revision.to_ascii_lowercase());
        }
        let refs = self
            .root
            .join(file.folder())
            .join("refs")
            .join(&file.revision);
        std::fs::read_to_string(refs)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The cached file (or directory of shards), when the cache holds it.
    pub fn cached(&self, file: &HubFile) -> Option<PathBuf> {
        let commit = self.commit(file)?;
        let p = self
            .root
            .join(file.folder())
            .join("snapshots")
            .join(commit)
            .join(&file.path);
        // A directory of shards counts too: `valley` reads every shard in it.
        p.exists().then_some(p)
    }

    /// The file: from the cache, else downloaded into it (unless offline).
    ///
    /// # Errors
    /// [`HubError::NotCached`] offline, [`HubError::Download`] when the hub cannot be reached,
    /// [`HubError::Io`] when the cache cannot be written.
    pub fn get(&self, file: &HubFile) -> Result<PathBuf, HubError> {
        if let Some(p) = self.cached(file) {
            return Ok(p);
        }
        if self.offline {
            return Err(HubError::NotCached {
                file: file.label(),
                cache: self.root.clone(),
                fill: format!(
                    "huggingface-cli download {} {} --revision {}{}",
                    file.repo,
                    file.path,
                    file.revision,
                    match file.kind {
                        RepoKind::Model => "",
                        RepoKind::Dataset => " --repo-type dataset",
                    }
                ),
            });
        }
        self.download(file)
    }

    fn download(&self, file: &HubFile) -> Result<PathBuf, HubError> {
        let url = file.url(&self.endpoint);
        let fail = |message: String| HubError::Download {
            file: file.label(),
            url: url.clone(),
            message,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut request = client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim_matches('"').to_string())
        };
        let commit = match header("x-repo-commit") {
            Some(c) => c,
            None if self.commit(file).is_some() => self.commit(file).unwrap_or_default(),
            None => return Err(fail("no X-Repo-Commit header in the answer".into())),
        };
        let etag = header("x-linked-etag")
            .or_else(|| header("etag"))
            .unwrap_or_else(|| commit.clone());
        let repo_dir = self.root.join(file.folder());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HubError::Io { path, source }
        };
        let blobs = repo_dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let mut bytes = Vec::new();
        response
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
        let blob = blobs.join(&etag);
        let tmp = blobs.join(format!("{etag}.incomplete"));
        std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &blob).map_err(io(&blob))?;
        let target = repo_dir.join("snapshots").join(&commit).join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if !target.exists() {
            std::fs::copy(&blob, &target).map_err(io(&target))?;
        }
        if commit != file.revision {
            let refs = repo_dir.join("refs");
            std::fs::create_dir_all(&refs).map_err(io(&refs))?;
            let r = refs.join(&file.revision);
            std::fs::write(&r, &commit).map_err(io(&r))?;
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn file(revision: &str) -> HubFile {
        HubFile {
            kind: RepoKind::Dataset,
            repo: "collinear-ai/valley-of-reasoning-data".into(),
            revision: revision.into(),
            path: "data/train_1k.parquet".into(),
        }
    }

    /// Builds the layout `huggingface_hub` writes: refs/main, a snapshot linking into blobs/.
    fn cache_with_file() -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        let repo = home
            .path()
            .join("hub/datasets--collinear-ai--valley-of-reasoning-data");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), format!("{COMMIT}\n")).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/abc123"), b"PAR1").unwrap();
        let snap = repo.join("snapshots").join(COMMIT).join("data");
        std::fs::create_dir_all(&snap).unwrap();
        std::os::unix::fs::symlink("../../../blobs/abc123", snap.join("train_1k.parquet")).unwrap();
        home
    }

    fn env<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn resolves_branches_and_pins_in_the_standard_layout() {
        let home = cache_with_file();
        let vars = [
            ("HF_HOME", home.path().display().to_string()),
            ("HF_HUB_OFFLINE", "1".to_string()),
        ];
        let cache = HubCache::from_vars(env(&vars));
        assert!(cache.offline);
        assert_eq!(cache.root, home.path().join("hub"));
        let p = cache.get(&file("main")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"PAR1");
        assert_eq!(cache.get(&file(COMMIT)).unwrap(), p, "a pinned commit");
    }

    #[test]
    fn offline_and_not_cached_says_what_to_set() {
        let home = cache_with_file();
        let vars = [
            ("HF_HOME", home.path().display().to_string()),
            ("HF_HUB_OFFLINE", "true".to_string()),
        ];
        let cache = HubCache::from_vars(env(&vars));
        for missing in [
            file("v2"),
            HubFile {
                path: "data/x.parquet".into(),
                ..file("main")
            },
        ] {
            let err = cache.get(&missing).unwrap_err().to_string();
            assert!(err.contains("HF_HUB_OFFLINE is set"), "{err}");
            assert!(err.contains("set HF_HOME"), "{err}");
            assert!(err.contains("--repo-type dataset"), "{err}");
            assert!(err.contains(&missing.revision), "{err}");
        }
    }

    #[test]
    fn hf_urls_parse_with_a_default_revision() {
        let f: HubFile = "hf://datasets/collinear-ai/valley-of-reasoning-data@v1.0/data/a.parquet"
            .parse()
            .unwrap();
        assert_eq!(
            (f.kind, f.repo.as_str()),
            (RepoKind::Dataset, "collinear-ai/valley-of-reasoning-data")
        );
        assert_eq!(
            (f.revision.as_str(), f.path.as_str()),
            ("v1.0", "data/a.parquet")
        );
        let m: HubFile = "hf://Qwen/Qwen2.5-7B-Instruct/config.json".parse().unwrap();
        assert_eq!((m.kind, m.revision.as_str()), (RepoKind::Model, "main"));
        assert!("hf://datasets/only-org".parse::<HubFile>().is_err());
    }

    #[test]
    fn cache_root_and_urls_follow_huggingface_hub() {
        let vars = [("HOME", "/home/u".to_string())];
        let c = HubCache::from_vars(env(&vars));
        assert_eq!(c.root, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert!(!c.offline);
        let vars = [
            ("HF_HUB_CACHE", "/c".to_string()),
            ("HF_HOME", "/h".to_string()),
        ];
        assert_eq!(HubCache::from_vars(env(&vars)).root, PathBuf::from("/c"));
        assert_eq!(
            file("main").url("https://huggingface.co"),
            "https://huggingface.co/datasets/collinear-ai/valley-of-reasoning-data/resolve/main/data/train_1k.parquet"
        );
    }
}
