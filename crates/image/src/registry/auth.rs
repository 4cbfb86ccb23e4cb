//! Registry credentials in docker's format, so `docker login` and `berth login` share them:
//! `{"auths": {"<registry>": {"auth": "<base64 of user:password>"}}}`.
//!
//! The file is `$BERTH_CONFIG/auth.json` when `BERTH_CONFIG` is set, else `$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`. It is rewritten with temp+rename, mode 0600, keeping every other
//! key (docker keeps `credsStore`, `proxies`… there).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Value};

use super::client::{Access, Client};
use crate::error::{Error, IoContext, Result};
use crate::reference::DEFAULT_DOMAIN;

/// Environment variable naming berth's own configuration directory.
pub const CONFIG_ENV: &str = "BERTH_CONFIG";
/// The key docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

/// The credentials file berth reads and writes.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("auth.json"));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The key a registry's entry has: docker's legacy URL for Docker Hub, else `host[:port]`.
pub fn registry_key(registry: &str) -> String {
    let registry = normalize_registry(registry);
    if registry == DEFAULT_DOMAIN {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry
    }
}

/// `https://host:5000/` → `host:5000`; `index.docker.io` and friends → `docker.io`.
pub fn normalize_registry(registry: &str) -> String {
    let r = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let r = r
        .strip_suffix("/v1")
        .or_else(|| r.strip_suffix("/v2"))
        .unwrap_or(r);
    match r {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "" => {
            DEFAULT_DOMAIN.to_string()
        }
        other => other.to_string(),
    }
}

fn read_config() -> Result<Value> {
    let Some(path) = config_path() else {
        return Ok(json!({}));
    };
    match fs::read(&path) {
        Ok(bytes) if bytes.iter().all(|b| b.is_ascii_whitespace()) => Ok(json!({})),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Registry {
            message: format!("credentials file {} is not valid JSON: {e}", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::Io {
            context: format!("reading {}", path.display()),
            error: e,
        }),
    }
}

fn write_config(value: &Value) -> Result<PathBuf> {
    let path = config_path().ok_or_else(|| Error::Registry {
        message: format!("no place for credentials: set {CONFIG_ENV} or HOME"),
    })?;
    let dir = path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir).io_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".auth.json.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.io_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The stored credentials for `registry`, if any.
pub fn credentials(registry: &str) -> Result<Option<Credentials>> {
    let config = read_config()?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = normalize_registry(registry);
    for (key, entry) in auths {
        if normalize_registry(key) != wanted {
            continue;
        }
        if let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| Error::Registry {
                    message: format!("credentials for {registry} are not valid base64: {e}"),
                })?;
            let text = String::from_utf8_lossy(&decoded);
            if let Some((user, pass)) = text.split_once(':') {
                return Ok(Some(Credentials {
                    username: user.to_string(),
                    password: pass.to_string(),
                }));
            }
        }
        if let (Some(user), Some(pass)) = (
            entry.get("username").and_then(|u| u.as_str()),
            entry.get("password").and_then(|p| p.as_str()),
        ) {
            return Ok(Some(Credentials {
                username: user.into(),
                password: pass.into(),
            }));
        }
    }
    Ok(None)
}

/// Checks `credentials` against the registry, then stores them. Returns the file written.
pub fn login(registry: &str, credentials: &Credentials) -> Result<PathBuf> {
    let registry = normalize_registry(registry);
    // No repository: `/v2/` answers the same for all, and a token without scopes proves the credentials.
    let client = Client::with_credentials(&registry, "", Access::Pull, Some(credentials.clone()))?;
    client.ping()?;
    store(&registry, credentials)
}

/// Stores credentials for `registry` without checking them.
pub fn store(registry: &str, credentials: &Credentials) -> Result<PathBuf> {
    let mut config = read_config()?;
    if !config.is_object() {
        config = json!({});
    }
    let wanted = normalize_registry(registry);
    let auths = config
        .as_object_mut()
        .map(|o| o.entry("auths").or_insert_with(|| json!({})))
        .and_then(|a| a.as_object_mut())
        .ok_or_else(|| Error::Registry {
            message: "credentials file: \"auths\" is not an object".into(),
        })?;
    auths.retain(|key, _| normalize_registry(key) != wanted);
    let raw = format!("{}:{}", credentials.username, credentials.password);
    auths.insert(
        registry_key(registry),
        json!({"auth": base64::engine::general_purpose::STANDARD.encode(raw)}),
    );
    write_config(&config)
}

/// Removes the credentials for `registry`; false if there were none.
pub fn logout(registry: &str) -> Result<bool> {
    let mut config = read_config()?;
    let wanted = normalize_registry(registry);
    let Some(auths) = config.get_mut("auths").and_then(|a| a.as_object_mut()) else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|key, _| normalize_registry(key) != wanted);
    if auths.len() == before {
        return Ok(false);
    }
    write_config(&config)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_normalize() {
        assert_eq!(normalize_registry("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_registry("localhost:5000"), "localhost:5000");
        assert_eq!(normalize_registry("http://localhost:5000/"), "localhost:5000");
        assert_eq!(registry_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn passwords_are_not_printed() {
        let c = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
