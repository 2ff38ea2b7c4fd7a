//! Files from the Hugging Face hub through its standard cache, without the `hf-hub` crate
//! (1.0 is 236 crates and ignores `HF_HUB_OFFLINE`, docs/design.md section 9): a reader of the cache
//! layout the Python `huggingface_hub` writes, plus a plain HTTPS download into that layout.
//!
//! The cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`; a repository
//! lives in `datasets--org--name` (or `models--…`) with `refs/<branch>` holding a commit hash,
//! `snapshots/<commit>/<path>` (links into `blobs/`). A revision is a branch or tag (looked up in
//! `refs/`) or a 40-hex commit (a pin: used as is). With `HF_HUB_OFFLINE=1` nothing is downloaded
//! and a missing file is an error saying what to set.
//!
//! A download keeps the hub's own answer: redirects are followed here, so a file stored in LFS,
//! which the hub answers with a redirect to a CDN, is named by the hub's `X-Repo-Commit` and
//! `X-Linked-Etag` (else `ETag`) headers, as `huggingface_hub` names it, not by the CDN's. Those
//! headers become cache paths, so they are checked first: the commit must be 40 hex digits, the
//! ETag (less a leading `W/` and its quotes) 40 (a git blob) or 64 (an LFS sha256) hex digits;
//! anything else is [`HubError::BadHeader`] and nothing is written. The body is streamed to
//! `blobs/<etag>.incomplete`, synced, and renamed to `blobs/<etag>`; the snapshot file is a copy
//! of that blob, and a branch or tag gets its `refs/` entry.

use std::{
    fs::File,
    io::{BufWriter, Read},
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
    /// The hub answered with a header that cannot name a cache path (`../x`, `/abs`, not hex).
    #[error("{file}: {url} answered {header}: `{value}`, which is not {expected}; nothing was written to the cache")]
    BadHeader {
        /// The file.
        file: String,
        /// The URL requested.
        url: String,
        /// The header, as `X-Repo-Commit`, `X-Linked-Etag` or `ETag`.
        header: String,
        /// Its value, cut to 80 characters.
        value: String,
        /// What it should have been.
        expected: &'static str,
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

/// What [`commit_dir`] accepts, for [`HubError::BadHeader`].
const COMMIT_FORM: &str = "a commit of 40 hex digits";
/// What [`blob_name`] accepts, for [`HubError::BadHeader`].
const ETAG_FORM: &str =
    "an ETag of 40 (git sha1) or 64 (sha256) hex digits, optionally quoted and `W/`-prefixed";
/// Redirects followed at most, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An `X-Repo-Commit` value as the `snapshots/` directory name: exactly 40 hex digits, lowercased.
/// `None` for anything else (`../x`, `/abs`, empty, quoted, another length).
fn commit_dir(value: &str) -> Option<String> {
    (value.len() == 40 && is_hex(value)).then(|| value.to_ascii_lowercase())
}

/// An `X-Linked-Etag` or `ETag` value as the `blobs/` file name: less a leading `W/` and a pair of
/// surrounding double quotes, 40 (git blob sha1) or 64 (LFS sha256) hex digits, lowercased. `None`
/// for anything else.
fn blob_name(value: &str) -> Option<String> {
    let v = value.strip_prefix("W/").unwrap_or(value);
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    (matches!(v.len(), 40 | 64) && is_hex(v)).then(|| v.to_ascii_lowercase())
}

/// A header value as an error quotes it: at most 80 characters, then `…`.
fn shown(value: &str) -> String {
    match value.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// Counts as failed when a read fails, so that a failed copy tells the network from the disk.
struct ReadSide<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for ReadSide<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf);
        if let Err(e) = &read {
            self.failed |= e.kind() != std::io::ErrorKind::Interrupted;
        }
        read
    }
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

    /// GETs `url`, following redirects here (at most [`MAX_REDIRECTS`]) to keep the hub's own
    /// answer: the headers of the first answer that is not a redirect to the same host (for a file
    /// in LFS, the hub's redirect to its CDN, whose own answer carries neither `X-Repo-Commit` nor
    /// the hub's ETag), and the final answer, whose body is the file. As with reqwest's redirects,
    /// the token is not sent again once a redirect has left the host.
    fn fetch(
        &self,
        url: &str,
    ) -> Result<(reqwest::header::HeaderMap, reqwest::blocking::Response), String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let mut url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
        let mut hub_answer = None;
        let mut same_host = true;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = client.get(url.clone());
            if let (true, Some(token)) = (same_host, &self.token) {
                request = request.bearer_auth(token);
            }
            let response = request.send().map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_redirection() {
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
                let headers = hub_answer.unwrap_or_else(|| response.headers().clone());
                return Ok((headers, response));
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .ok_or_else(|| format!("HTTP {status} without a Location header"))?;
            let next = url
                .join(&location)
                .map_err(|e| format!("HTTP {status} to `{}`: {e}", shown(&location)))?;
            if next.host_str() != url.host_str()
                || next.port_or_known_default() != url.port_or_known_default()
            {
                hub_answer.get_or_insert_with(|| response.headers().clone());
                same_host = false;
            }
            url = next;
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    fn download(&self, file: &HubFile) -> Result<PathBuf, HubError> {
        let url = file.url(&self.endpoint);
        let fail = |message: String| HubError::Download {
            file: file.label(),
            url: url.clone(),
            message,
        };
        let bad = |header: &str, value: &str, expected| HubError::BadHeader {
            file: file.label(),
            url: url.clone(),
            header: header.to_string(),
            value: shown(value),
            expected,
        };
        let (headers, response) = self.fetch(&url).map_err(fail)?;
        // Every header that names a path is checked before any path is built.
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let commit = match header("x-repo-commit") {
            Some(c) => commit_dir(&c).ok_or_else(|| bad("X-Repo-Commit", &c, COMMIT_FORM))?,
            None => match self.commit(file).as_deref().and_then(commit_dir) {
                Some(c) => c,
                None => return Err(fail("no X-Repo-Commit header in the answer".into())),
            },
        };
        let etag = match [("X-Linked-Etag", "x-linked-etag"), ("ETag", "etag")]
            .into_iter()
            .find_map(|(shown_name, name)| Some((shown_name, header(name)?)))
        {
            Some((name, value)) => blob_name(&value).ok_or_else(|| bad(name, &value, ETAG_FORM))?,
            None => commit.clone(),
        };
        let repo_dir = self.root.join(file.folder());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HubError::Io { path, source }
        };
        let blobs = repo_dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let blob = blobs.join(&etag);
        let tmp = blobs.join(format!("{etag}.incomplete"));
        // Streamed, never whole in memory: a read error is the download's, a write error the disk's.
        let mut body = ReadSide {
            inner: response,
            failed: false,
        };
        let written = (|| {
            let mut out = BufWriter::new(File::create(&tmp)?);
            std::io::copy(&mut body, &mut out)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(if body.failed {
                fail(e.to_string())
            } else {
                io(&tmp)(e)
            });
        }
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

    const SHA1: &str = "aabbccddeeff00112233445566778899aabbccdd";
    const SHA256: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn commit_headers_must_be_40_hex_digits() {
        assert_eq!(commit_dir(COMMIT).as_deref(), Some(COMMIT));
        assert_eq!(
            commit_dir(&COMMIT.to_ascii_uppercase()).as_deref(),
            Some(COMMIT),
            "lowercased"
        );
        for bad in [
            "",
            "../x",
            "../../../../../../tmp/owned",
            "/abs",
            "/etc/passwd/0123456789abcdef0123456789abcdef",
            &COMMIT[..39],
            &format!("{COMMIT}0"),
            &format!("{}g", &COMMIT[..39]),
            &format!("{}/", &COMMIT[..39]),
            &format!("\"{COMMIT}\""),
            &format!(" {COMMIT}"),
            SHA256,
            "0123456789abcdef0123456789abcdef0123456é",
        ] {
            assert_eq!(commit_dir(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn etag_headers_must_be_a_sha1_or_sha256_in_hex() {
        for (value, name) in [
            (SHA1.to_string(), SHA1),
            (format!("\"{SHA1}\""), SHA1),
            (format!("W/\"{SHA1}\""), SHA1),
            (format!("W/{SHA1}"), SHA1),
            (SHA256.to_string(), SHA256),
            (format!("\"{}\"", SHA256.to_ascii_uppercase()), SHA256),
            (format!("W/\"{SHA256}\""), SHA256),
        ] {
            assert_eq!(blob_name(&value).as_deref(), Some(name), "{value:?}");
        }
        for bad in [
            "",
            "\"\"",
            "W/",
            "W/\"\"",
            "../x",
            "\"../../escape\"",
            "/abs",
            "\"/abs\"",
            &SHA1[..39],
            &format!("{SHA1}0"),
            &SHA256[..63],
            &format!("{SHA256}0"),
            "d41d8cd98f00b204e9800998ecf8427e",
            "\"d41d8cd98f00b204e9800998ecf8427e-3\"",
            &format!("{}z", &SHA1[..39]),
            &format!("\"{SHA1}"),
            &format!("{SHA1}\""),
            &format!("\"\"{SHA1}\"\""),
            &format!("w/\"{SHA1}\""),
            &format!("W/W/\"{SHA1}\""),
            &format!("{}/..", &SHA1[..37]),
        ] {
            assert_eq!(blob_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejected_values_are_shown_cut_to_80_characters() {
        assert_eq!(shown("../x"), "../x");
        let long = "é".repeat(200);
        assert_eq!(shown(&long), format!("{}…", "é".repeat(80)));
        assert_eq!(shown(&"a".repeat(80)), "a".repeat(80));
    }

    /// One HTTP answer: status line, headers, body (`Content-Length` and `Connection: close` added).
    fn answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut a = format!("HTTP/1.1 {status}\r\n");
        for (k, v) in headers {
            a.push_str(&format!("{k}: {v}\r\n"));
        }
        a.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut a = a.into_bytes();
        a.extend_from_slice(body);
        a
    }

    /// A listener on 127.0.0.1 and its base URL.
    fn server() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        (listener, base)
    }

    /// Gives `answers` in turn, one per connection, and returns the heads of the requests it got.
    fn serve(
        listener: std::net::TcpListener,
        answers: Vec<Vec<u8>>,
    ) -> std::thread::JoinHandle<Vec<String>> {
        use std::io::Write;
        std::thread::spawn(move || {
            let mut heads = Vec::new();
            for a in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                    head.push(byte[0]);
                }
                heads.push(String::from_utf8_lossy(&head).to_ascii_lowercase());
                conn.write_all(&a).unwrap();
            }
            heads
        })
    }

    fn online(home: &Path, endpoint: &str) -> HubCache {
        let vars = [
            ("HF_HOME", home.display().to_string()),
            ("HF_ENDPOINT", endpoint.to_string()),
            ("HF_TOKEN", "secret".to_string()),
        ];
        HubCache::from_vars(env(&vars))
    }

    /// Every file under `dir`, relative to it.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn downloads_stream_into_the_standard_layout() {
        let home = tempfile::tempdir().unwrap();
        let (listener, base) = server();
        let etag = format!("W/\"{}\"", SHA1.to_ascii_uppercase());
        let hub = serve(
            listener,
            vec![answer(
                "200 OK",
                &[("X-Repo-Commit", COMMIT), ("ETag", &etag)],
                b"PAR1 body",
            )],
        );
        let cache = online(home.path(), &base);
        let p = cache.get(&file("main")).unwrap();
        let repo = home
            .path()
            .join("hub/datasets--collinear-ai--valley-of-reasoning-data");
        assert_eq!(
            p,
            repo.join("snapshots")
                .join(COMMIT)
                .join("data/train_1k.parquet")
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"PAR1 body");
        assert_eq!(
            files(&repo),
            [
                format!("blobs/{SHA1}"),
                "refs/main".to_string(),
                format!("snapshots/{COMMIT}/data/train_1k.parquet"),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(repo.join("refs/main")).unwrap(),
            COMMIT
        );
        let heads = hub.join().unwrap();
        assert!(
            heads[0].starts_with(
                "get /datasets/collinear-ai/valley-of-reasoning-data/resolve/main/data/train_1k.parquet "
            ),
            "{heads:?}"
        );
        assert!(
            heads[0].contains("authorization: bearer secret"),
            "{heads:?}"
        );
        assert_eq!(cache.get(&file("main")).unwrap(), p, "then from the cache");
    }

    #[test]
    fn lfs_files_are_named_by_the_hub_not_by_its_cdn() {
        let home = tempfile::tempdir().unwrap();
        let (hub_listener, hub_base) = server();
        let (cdn_listener, cdn_base) = server();
        let linked = format!("\"{SHA256}\"");
        let cdn_url = format!("{cdn_base}/lfs/{SHA256}?signature=x");
        let renamed = "/datasets/collinear-ai/renamed/resolve/main/data/train_1k.parquet";
        let hub = serve(
            hub_listener,
            vec![
                // A renamed repository: a redirect on the same host, followed for the headers.
                answer("307 Temporary Redirect", &[("Location", renamed)], b""),
                answer(
                    "302 Found",
                    &[
                        ("X-Repo-Commit", COMMIT),
                        ("X-Linked-Etag", &linked),
                        ("ETag", &format!("\"{SHA1}\"")),
                        ("Location", &cdn_url),
                    ],
                    b"",
                ),
            ],
        );
        // The CDN's own ETag (an MD5 of parts) is neither used nor checked.
        let cdn = serve(
            cdn_listener,
            vec![answer(
                "200 OK",
                &[("ETag", "\"d41d8cd98f00b204e9800998ecf8427e-3\"")],
                b"PAR1 lfs",
            )],
        );
        let p = online(home.path(), &hub_base).get(&file("main")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"PAR1 lfs");
        let blobs = home
            .path()
            .join("hub/datasets--collinear-ai--valley-of-reasoning-data/blobs");
        assert_eq!(files(&blobs), [SHA256]);
        let hub_heads = hub.join().unwrap();
        assert!(
            hub_heads[1].starts_with(&format!("get {renamed} ")),
            "{hub_heads:?}"
        );
        assert!(
            hub_heads
                .iter()
                .all(|h| h.contains("authorization: bearer secret")),
            "{hub_heads:?}"
        );
        let cdn_heads = cdn.join().unwrap();
        assert!(
            cdn_heads[0].starts_with(&format!("get /lfs/{SHA256}?signature=x ")),
            "{cdn_heads:?}"
        );
        assert!(!cdn_heads[0].contains("authorization"), "{cdn_heads:?}");
    }

    /// An answer's headers, name and value.
    type Headers<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn hostile_headers_never_become_paths() {
        let quoted_sha1 = format!("\"{SHA1}\"");
        let long = format!("../{}", "a/../".repeat(40));
        let cases: [(Headers, &str, &str); 6] = [
            (
                &[
                    ("X-Repo-Commit", "../../../../escaped"),
                    ("ETag", &quoted_sha1),
                ],
                "X-Repo-Commit",
                "../../../../escaped",
            ),
            (
                &[("X-Repo-Commit", "/tmp/abs"), ("ETag", &quoted_sha1)],
                "X-Repo-Commit",
                "/tmp/abs",
            ),
            (
                &[("X-Repo-Commit", COMMIT), ("ETag", "\"../../../escaped\"")],
                "ETag",
                "\"../../../escaped\"",
            ),
            (
                &[
                    ("X-Repo-Commit", COMMIT),
                    ("X-Linked-Etag", "/tmp/abs"),
                    ("ETag", &quoted_sha1),
                ],
                "X-Linked-Etag",
                "/tmp/abs",
            ),
            (&[("X-Repo-Commit", COMMIT), ("ETag", "")], "ETag", ""),
            (
                &[("X-Repo-Commit", &long), ("ETag", &quoted_sha1)],
                "X-Repo-Commit",
                &long[..80],
            ),
        ];
        for (headers, header, shown_value) in cases {
            let home = tempfile::tempdir().unwrap();
            let (listener, base) = server();
            let hub = serve(listener, vec![answer("200 OK", headers, b"PAR1")]);
            let err = online(home.path(), &base).get(&file("main")).unwrap_err();
            assert!(matches!(err, HubError::BadHeader { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("answered {header}: `{shown_value}")),
                "{msg}"
            );
            assert!(msg.contains(&format!("{base}/datasets/collinear-ai/valley-of-reasoning-data/resolve/main/data/train_1k.parquet")), "{msg}");
            assert!(msg.contains("train_1k.parquet"), "{msg}");
            assert!(
                files(home.path()).is_empty(),
                "{header}: {:?}",
                files(home.path())
            );
            hub.join().unwrap();
        }
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
