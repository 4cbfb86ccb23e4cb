//! One repository on one registry, over the OCI distribution API.
//!
//! HTTPS by default. Plain HTTP only for loopback registries (`localhost`, 127.0.0.0/8, `::1`) and
//! those listed in `BERTH_INSECURE_REGISTRIES` (comma- or space-separated `host[:port]`), and even
//! then only after HTTPS failed at the transport level, as docker does for insecure registries.
//!
//! Authentication is lazy: a request that gets `401` reads the `WWW-Authenticate` challenge, gets a
//! bearer token from the realm it names (with the stored credentials, if any) or uses basic auth, and
//! is sent once more. The resulting header is shared by every thread using the client.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::auth::{self, Credentials};
use crate::digest::sha256_digest;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{ACCEPT_MANIFESTS, MAX_JSON_SIZE};
use crate::reference::DEFAULT_DOMAIN;

/// Where `docker.io` names really live.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Environment variable listing registries that may be reached over plain HTTP.
pub const INSECURE_ENV: &str = "BERTH_INSECURE_REGISTRIES";
/// Environment variable overriding the seconds a registry may stay silent (default 120).
pub const TIMEOUT_ENV: &str = "BERTH_REGISTRY_TIMEOUT";
/// Environment variable overriding the push chunk size in bytes (default [`DEFAULT_CHUNK`]).
pub const CHUNK_ENV: &str = "BERTH_PUSH_CHUNK_SIZE";
/// Blobs larger than this are pushed in `PATCH` chunks of this size: proxies in front of registries
/// often cap request bodies, and a failed chunk costs less than a failed multi-gigabyte `PUT`.
const DEFAULT_CHUNK: u64 = 64 << 20;

/// What a client may do in the repository; decides the token scope asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read manifests and blobs.
    Pull,
    /// Also upload.
    Push,
}

/// A request body that can be sent again after an authentication round trip.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`; `on_bytes` sees every chunk as it goes out.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        on_bytes: Option<&'a OnBytes<'a>>,
    },
}

/// A progress callback for bytes sent.
pub(crate) type OnBytes<'a> = dyn Fn(u64) + Send + Sync + 'a;

/// An upload the registry has opened: where its bytes go, and the smallest chunk it takes.
#[derive(Debug)]
pub(crate) struct Session {
    location: String,
    min_chunk: u64,
}

/// How a cross-repository mount request ended.
#[derive(Debug)]
pub(crate) enum Mount {
    /// The registry linked the blob from the other repository; nothing needs sending.
    Mounted,
    /// Not mountable (the source lacks the blob, or the registry does not mount): the registry
    /// opened an upload instead, which may carry any blob.
    Declined(Session),
    /// Refused outright: the token lacks `pull` on the source.
    Refused,
}

/// A client for one repository.
pub struct Client {
    agent: Agent,
    /// `scheme://host[:port]` of the API.
    base: String,
    /// The registry as the user names it (`docker.io`, `localhost:5000`), the key for credentials.
    registry: String,
    repository: String,
    /// Token scopes asked for: this repository with its access, then `pull` on mount sources.
    scopes: Vec<String>,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

impl Client {
    /// A client for `repository` on `registry`, using the stored credentials for the registry.
    pub fn new(registry: &str, repository: &str, access: Access) -> Result<Client> {
        let credentials = auth::credentials(registry)?;
        Client::with_credentials(registry, repository, access, credentials)
    }

    /// A client using `credentials` instead of the stored ones (login checks new credentials).
    pub fn with_credentials(
        registry: &str,
        repository: &str,
        access: Access,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(120);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(timeout.min(30))))
            .timeout_recv_response(Some(Duration::from_secs(timeout)))
            .timeout_per_read(Some(Duration::from_secs(timeout)))
            .timeout_per_write(Some(Duration::from_secs(timeout)))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(8)
            .build();
        let agent: Agent = config.into();
        let host = if registry == DEFAULT_DOMAIN {
            DOCKER_HUB_API
        } else {
            registry
        };
        let base = if is_insecure(registry) {
            probe_scheme(&agent, host)
        } else {
            format!("https://{host}")
        };
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        // Without a repository (login) the token proves the credentials and grants nothing, as docker asks.
        let scopes = if repository.is_empty() {
            Vec::new()
        } else {
            vec![format!("repository:{repository}:{actions}")]
        };
        Ok(Client {
            agent,
            base,
            registry: registry.to_string(),
            repository: repository.to_string(),
            scopes,
            credentials,
            authorization: Mutex::new(None),
        })
    }

    /// Also asks for `pull` on `repository` of the same registry, so blobs can be mounted from it.
    /// Call before the first request: a token only carries the scopes asked for when it was issued.
    pub(crate) fn add_mount_source(&mut self, repository: &str) {
        let scope = format!("repository:{repository}:pull");
        if !self.scopes.contains(&scope) {
            self.scopes.push(scope);
        }
    }

    /// The registry as the user names it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repository)
    }

    /// Checks that the registry answers and accepts the credentials (`GET /v2/`).
    pub fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let response = self.request("GET", &url, &[], Payload::Empty)?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(self.error_from(response, &format!("registry {}: login", self.registry))),
        }
    }

    /// Sends a request, authenticating and sending it again on `401`.
    pub(crate) fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let response = self.send(method, url, headers, &payload)?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some(challenge) = challenge else {
            return Ok(response);
        };
        self.authenticate(&challenge)?;
        self.send(method, url, headers, &payload)
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
    ) -> Result<Response<Body>> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        let authorization = self.authorization.lock().ok().and_then(|a| a.clone());
        if let Some(auth) = authorization {
            builder = builder.header("Authorization", auth);
        }
        let invalid = |e: ureq::http::Error| Error::Registry {
            message: format!("{}: invalid request {url}: {e}", self.registry),
        };
        let result = match payload {
            Payload::Empty => self.agent.run(builder.body(()).map_err(invalid)?),
            Payload::Bytes(bytes) => self.agent.run(builder.body(*bytes).map_err(invalid)?),
            Payload::File {
                path,
                offset,
                len,
                on_bytes,
            } => {
                let context = || format!("reading {}", path.display());
                let mut file = File::open(path).io_context(context)?;
                file.seek(SeekFrom::Start(*offset)).io_context(context)?;
                let mut reader = Reporting {
                    inner: file.take(*len),
                    on_bytes: *on_bytes,
                };
                // A set Content-Length makes ureq send exactly that many bytes, not chunked encoding.
                let builder = builder.header("Content-Length", len.to_string());
                let body = ureq::SendBody::from_reader(&mut reader);
                self.agent.run(builder.body(body).map_err(invalid)?)
            }
        };
        result.map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: ureq::Error) -> Error {
        let detail = match &e {
            ureq::Error::Timeout(_) => format!("no answer in time ({e}); set {TIMEOUT_ENV} to wait longer"),
            _ => e.to_string(),
        };
        Error::Registry {
            message: format!("registry {}: {detail}", self.registry),
        }
    }

    /// Answers a `WWW-Authenticate` challenge: sets the header later requests carry.
    fn authenticate(&self, challenge: &str) -> Result<()> {
        let (scheme, params) = parse_challenge(challenge);
        let header = match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.credentials {
                Some(c) => basic(c),
                None => {
                    return Err(Error::Registry {
                        message: format!(
                            "registry {}: authentication required; run `berth login {}`",
                            self.registry, self.registry
                        ),
                    })
                }
            },
            "bearer" => format!("Bearer {}", self.fetch_token(&params)?),
            other => {
                return Err(Error::Registry {
                    message: format!(
                        "registry {}: unsupported authentication scheme \"{other}\"",
                        self.registry
                    ),
                })
            }
        };
        if let Ok(mut auth) = self.authorization.lock() {
            *auth = Some(header);
        }
        Ok(())
    }

    /// The bearer token flow: `GET realm?service=…&scope=…`, with basic credentials if we have any.
    fn fetch_token(&self, params: &[(String, String)]) -> Result<String> {
        let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let realm = param("realm").ok_or_else(|| Error::Registry {
            message: format!("registry {}: bearer challenge without a realm", self.registry),
        })?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(Error::Registry {
                message: format!(
                    "registry {}: token realm \"{realm}\" is not an HTTP URL",
                    self.registry
                ),
            });
        }
        // Docker's form: one `scope` parameter per repository, `service` as the challenge names it.
        let mut query: Vec<String> = self
            .scopes
            .iter()
            .map(|sc| format!("scope={}", encode(sc)))
            .collect();
        if let Some(service) = param("service") {
            query.push(format!("service={}", encode(service)));
        }
        if let Some(c) = &self.credentials {
            query.push(format!("account={}", encode(&c.username)));
        }
        let mut url = realm.to_string();
        if !query.is_empty() {
            url.push(if realm.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        let mut builder = ureq::http::Request::builder().method("GET").uri(&url);
        if let Some(c) = &self.credentials {
            builder = builder.header("Authorization", basic(c));
        }
        let request = builder.body(()).map_err(|e| Error::Registry {
            message: format!("registry {}: invalid token URL {url}: {e}", self.registry),
        })?;
        let response = self.agent.run(request).map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let reason = match (status, &self.credentials) {
                (401 | 403, None) => format!(
                    "authentication required; log in with `berth login {}`",
                    self.registry
                ),
                (401 | 403, Some(_)) => "unauthorized: incorrect username or password".to_string(),
                _ => format!("HTTP {status}"),
            };
            return Err(Error::Registry {
                message: format!("registry {}: getting a token: {reason}", self.registry),
            });
        }
        let body = read_limited(response, 1 << 20).map_err(|e| self.transport_error(e))?;
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::Registry {
            message: format!("registry {}: token answer is not JSON: {e}", self.registry),
        })?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::Registry {
                message: format!("registry {}: token answer has no token", self.registry),
            })
    }

    /// A manifest or index by tag or digest: its bytes and media type. A digest reference is checked.
    pub(crate) fn get_manifest(&self, reference: &str, what: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = self.url(&format!("manifests/{reference}"));
        let response = self.request("GET", &url, &[("Accept", ACCEPT_MANIFESTS)], Payload::Empty)?;
        if response.status().as_u16() != 200 {
            return Err(self.error_from(response, what));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(response, MAX_JSON_SIZE).map_err(|e| self.transport_error(e))?;
        if reference.starts_with("sha256:") {
            let actual = sha256_digest(&bytes);
            if actual != reference {
                return Err(Error::DigestMismatch {
                    expected: reference.to_string(),
                    actual,
                });
            }
        }
        Ok((bytes, content_type))
    }

    /// A blob as a stream (the caller verifies it while reading).
    pub(crate) fn get_blob(&self, digest: &str) -> Result<impl Read + Send + 'static> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.request("GET", &url, &[], Payload::Empty)?;
        if response.status().as_u16() != 200 {
            return Err(self.error_from(response, &self.what(&format!("blob {digest}"))));
        }
        Ok(response.into_body().into_reader())
    }

    /// A small blob (a config) read whole and verified.
    pub(crate) fn get_small_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.request("GET", &url, &[], Payload::Empty)?;
        if response.status().as_u16() != 200 {
            return Err(self.error_from(response, &self.what(&format!("blob {digest}"))));
        }
        let bytes = read_limited(response, MAX_JSON_SIZE).map_err(|e| self.transport_error(e))?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Whether the repository has the blob already (`HEAD`).
    pub(crate) fn blob_exists(&self, digest: &str) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.request("HEAD", &url, &[], Payload::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.error_from(response, &self.what(&format!("checking blob {digest}")))),
        }
    }

    /// Asks the registry to link the blob `digest` from its repository `from` into this one.
    pub(crate) fn mount_blob(&self, digest: &str, from: &str) -> Result<Mount> {
        let what = self.what(&format!("mounting blob {digest} from {from}"));
        let url = format!(
            "{}?mount={}&from={}",
            self.url("blobs/uploads/"),
            encode(digest),
            encode(from)
        );
        let response = self.request("POST", &url, &[], Payload::Empty)?;
        match response.status().as_u16() {
            201 => Ok(Mount::Mounted),
            202 => Ok(Mount::Declined(self.session(&response, &what)?)),
            401 | 403 => Ok(Mount::Refused),
            _ => Err(self.error_from(response, &what)),
        }
    }

    /// Opens an upload (`POST …/blobs/uploads/`).
    pub(crate) fn start_upload(&self) -> Result<Session> {
        let what = self.what("starting an upload");
        let response = self.request("POST", &self.url("blobs/uploads/"), &[], Payload::Empty)?;
        match response.status().as_u16() {
            202 => self.session(&response, &what),
            _ => Err(self.error_from(response, &what)),
        }
    }

    /// Gives up an upload nothing was sent to; best effort, the registry expires it anyway.
    pub(crate) fn cancel_upload(&self, session: Session) {
        let _ = self.request("DELETE", &session.location, &[], Payload::Empty);
    }

    /// Sends the blob `digest` through an open upload: one `PUT …?digest=`, or for a blob above the
    /// chunk size `PATCH` chunks and an empty final `PUT`.
    pub(crate) fn send_blob(&self, session: Session, digest: &str, payload: Payload<'_>) -> Result<()> {
        let what = self.what(&format!("uploading blob {digest}"));
        let mut location = session.location;
        let chunk = std::env::var(CHUNK_ENV)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_CHUNK)
            .max(session.min_chunk);
        let final_payload = match payload {
            Payload::File {
                path,
                offset,
                len,
                on_bytes,
            } if len > chunk => {
                let mut sent = 0;
                while sent < len {
                    let n = chunk.min(len - sent);
                    let range = format!("{sent}-{}", sent + n - 1);
                    let part = Payload::File {
                        path,
                        offset: offset + sent,
                        len: n,
                        on_bytes,
                    };
                    let headers = [
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", range.as_str()),
                    ];
                    let response = self.request("PATCH", &location, &headers, part)?;
                    if response.status().as_u16() != 202 {
                        return Err(self.error_from(response, &what));
                    }
                    location = self.location(&response, &what)?;
                    sent += n;
                }
                Payload::Empty
            }
            other => other,
        };
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str(&format!("digest={}", encode(digest)));
        let response = self.request(
            "PUT",
            &location,
            &[("Content-Type", "application/octet-stream")],
            final_payload,
        )?;
        match response.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(self.error_from(response, &what)),
        }
    }

    /// The upload a `202` answer opened.
    fn session(&self, response: &Response<Body>, what: &str) -> Result<Session> {
        let min_chunk = response
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Session {
            location: self.location(response, what)?,
            min_chunk,
        })
    }

    /// The absolute URL an upload continues at (`Location` may be relative to the registry).
    fn location(&self, response: &Response<Body>, what: &str) -> Result<String> {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Registry {
                message: format!("{what}: no upload location"),
            })?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else {
                format!("{}{location}", self.base)
            },
        )
    }

    /// Stores a manifest under `reference` (a tag).
    pub(crate) fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let url = self.url(&format!("manifests/{reference}"));
        let response = self.request(
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            Payload::Bytes(bytes),
        )?;
        match response.status().as_u16() {
            200 | 201 | 204 => Ok(()),
            _ => Err(self.error_from(response, &self.what("pushing the manifest"))),
        }
    }

    /// `registry/repository: what`, for error messages.
    fn what(&self, what: &str) -> String {
        format!("{}/{}: {what}", self.registry, self.repository)
    }

    /// A registry's error answer as one line: `WHAT: <message from the body> (HTTP n)`.
    pub(crate) fn error_from(&self, response: Response<Body>, what: &str) -> Error {
        let status = response.status().as_u16();
        let body = read_limited(response, 64 << 10).unwrap_or_default();
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let errors = v.get("errors")?.as_array()?.clone();
                let messages: Vec<String> = errors
                    .iter()
                    .filter_map(|e| {
                        let message = e.get("message").and_then(|m| m.as_str());
                        let code = e.get("code").and_then(|m| m.as_str());
                        message.or(code).map(|m| m.to_lowercase())
                    })
                    .collect();
                (!messages.is_empty()).then(|| messages.join("; "))
            })
            .unwrap_or_else(|| match status {
                401 => "authentication required".into(),
                403 => "access denied".into(),
                404 => "not found".into(),
                _ => "unexpected answer".into(),
            });
        // A 401 that survived the token round trip: the token lacks the scope.
        let hint = match (status, &self.credentials) {
            (401, None) => format!("; log in with `berth login {}`", self.registry),
            (401, Some(c)) => format!("; user \"{}\" may not do this", c.username),
            _ => String::new(),
        };
        Error::Registry {
            message: format!("{what}: {detail}{hint} (HTTP {status})"),
        }
    }
}

/// A request body that reports each chunk read (that is, about to be sent).
struct Reporting<'a, R> {
    inner: R,
    on_bytes: Option<&'a OnBytes<'a>>,
}

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(f) = self.on_bytes {
            f(n as u64);
        }
        Ok(n)
    }
}

/// Reads a response body, refusing more than `limit` bytes.
fn read_limited(response: Response<Body>, limit: u64) -> std::result::Result<Vec<u8>, ureq::Error> {
    response.into_body().into_with_config().limit(limit).read_to_vec()
}

fn basic(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Whether plain HTTP may be tried for `registry` (`host[:port]`).
pub fn is_insecure(registry: &str) -> bool {
    let host = host_part(registry);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_loopback() {
            return true;
        }
    }
    let listed = std::env::var(INSECURE_ENV).unwrap_or_default();
    listed
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|entry| entry == registry || entry == host)
}

/// `host` of `host[:port]`, without brackets for IPv6.
fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry)
}

/// HTTPS if the registry speaks it, else HTTP (only ever asked for insecure registries).
fn probe_scheme(agent: &Agent, host: &str) -> String {
    let https = format!("https://{host}");
    let probe = ureq::http::Request::builder()
        .method("GET")
        .uri(format!("{https}/v2/"))
        .body(());
    match probe.map(|r| agent.run(r)) {
        Ok(Ok(_)) => https,
        _ => format!("http://{host}"),
    }
}

/// Splits `Bearer realm="…",service="…",scope="…"` into the scheme and its parameters.
pub(crate) fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value));
    }
    (scheme.to_string(), params)
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".to_string(), "https://auth.example/token".to_string()),
                ("service".to_string(), "registry.example".to_string()),
                ("scope".to_string(), "repository:a/b:pull,push".to_string()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (scheme.as_str(), params[0].1.as_str()),
            ("Basic", "Registry Realm")
        );
        let (_, params) = parse_challenge("Bearer realm=https://x/t, service=s");
        assert_eq!(params[1], ("service".to_string(), "s".to_string()));
    }

    #[test]
    fn only_loopback_and_listed_registries_are_insecure() {
        assert!(is_insecure("localhost:5000"));
        assert!(is_insecure("127.0.0.1:5000"));
        assert!(is_insecure("127.1.2.3"));
        assert!(is_insecure("[::1]:5000"));
        assert!(!is_insecure("docker.io"));
        assert!(!is_insecure("10.0.0.1:5000"));
        assert!(!is_insecure("registry.example:5000"));
        assert_eq!(host_part("registry.example:5000"), "registry.example");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(encode("sha256:ab"), "sha256%3Aab");
    }
}
