//! Docker image references: `[domain[:port]/]path[:tag][@digest]`, validated by docker's grammar and
//! normalized to the short ("familiar") form docker prints: `busybox` → `busybox:latest`,
//! `docker.io/library/busybox` → `busybox:latest`, `docker.io/foo/bar` → `foo/bar:latest`.
//!
//! Tags are stored under their normalized form, so `busybox`, `busybox:latest` and
//! `docker.io/library/busybox:latest` all name the same tag.

use std::fmt;

use crate::error::{Error, Result};

/// The registry an unqualified name refers to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag an untagged, undigested name gets.
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, validated reference in canonical form (domain always present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path inside the registry, e.g. `library/busybox`.
    pub path: String,
    /// The tag; `latest` is filled in when neither tag nor digest was given.
    pub tag: Option<String>,
    /// A content digest such as `sha256:<hex>`, when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// The repository as docker prints it: no `docker.io/`, no `library/` for official images.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return format!("{}/{}", self.domain, self.path);
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The full repository name, e.g. `docker.io/library/busybox` (what a registry client needs).
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

impl fmt::Display for Reference {
    /// The familiar form with tag and/or digest: `busybox:latest`, `foo/bar@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar_name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalizes what a user typed to the familiar form with a tag: `"busybox"` → `"busybox:latest"`.
///
/// A reference with a digest keeps it (`"busybox@sha256:…"`, no tag added). Errors use docker's wording,
/// e.g. `invalid reference format: repository name must be lowercase`.
pub fn normalize(s: &str) -> Result<String> {
    Ok(parse(s)?.to_string())
}

/// Parses and validates a reference, filling in the default domain and (without a digest) tag.
pub fn parse(s: &str) -> Result<Reference> {
    let invalid = |reason: &str| Error::InvalidReference {
        reference: s.to_string(),
        reason: reason.to_string(),
    };
    if s.is_empty() {
        return Err(invalid(""));
    }
    if s.len() == 64 && crate::digest::is_hex_id_prefix(s) {
        // A full image ID is never a repository name; docker refuses it the same way.
        return Err(Error::InvalidReference {
            reference: s.to_string(),
            reason: format!("invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"),
        });
    }

    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            if !valid_digest(digest) {
                return Err(invalid(""));
            }
            (rest, Some(digest.to_string()))
        }
        None => (s, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        if !valid_tag(tag) {
            return Err(invalid(""));
        }
    }
    if name.is_empty() {
        return Err(invalid(""));
    }

    let (domain, path) = split_domain(name);
    if path.to_lowercase() != path {
        return Err(invalid("repository name must be lowercase"));
    }
    if !valid_domain(&domain) || !valid_path(&path) {
        return Err(invalid(""));
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(invalid("repository name must not be more than 255 characters"));
    }
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

/// Splits `name` into registry domain and path the way docker does: the first component is a domain
/// only if it looks like a host (has `.` or `:`, is `localhost`, or has upper case letters).
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    (domain, path)
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`.
fn valid_path(path: &str) -> bool {
    path.split('/').all(valid_path_component)
}

fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        // an alphanumeric run
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // a separator: ".", "_", "__" or one or more "-"
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &c[sep_start..i] {
            "." | "_" | "__" => {}
            s if s.bytes().all(|b| b == b'-') => {}
            _ => return false,
        }
    }
}

/// Host name components (`[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`) joined by `.`, or a
/// bracketed IPv6 address, optionally followed by `:port`.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => return !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    })
}

/// `algorithm:encoded` as the reference grammar allows; sha256 must be exactly 64 lowercase hex digits.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let algo_ok = !algorithm.is_empty()
        && algorithm.split(['-', '_', '+', '.']).all(|c| {
            let b = c.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
        });
    if !algo_ok || encoded.len() < 32 || !encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    algorithm != "sha256" || (encoded.len() == 64 && crate::digest::is_hex_id_prefix(encoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, want: &str) {
        assert_eq!(normalize(input).unwrap(), want, "normalize({input:?})");
    }

    fn bad(input: &str, want: &str) {
        let err = normalize(input).unwrap_err().to_string();
        assert_eq!(err, want, "normalize({input:?})");
    }

    #[test]
    fn familiar_forms() {
        ok("busybox", "busybox:latest");
        ok("busybox:1.36", "busybox:1.36");
        ok("library/busybox", "busybox:latest");
        ok("docker.io/library/busybox", "busybox:latest");
        ok("index.docker.io/library/busybox:musl", "busybox:musl");
        ok("docker.io/foo/bar", "foo/bar:latest");
        ok("foo/bar/baz:v1", "foo/bar/baz:v1");
        ok("localhost/x", "localhost/x:latest");
        ok("localhost:5000/x/y:tag", "localhost:5000/x/y:tag");
        ok(
            "registry.example.com/a_b/c__d/e-f--g.h:V1.2_3-x",
            "registry.example.com/a_b/c__d/e-f--g.h:V1.2_3-x",
        );
        ok("[::1]:5000/x", "[::1]:5000/x:latest");
        ok("localhost:5000", "localhost:5000");
        ok("Foo/bar", "Foo/bar:latest");
        let digest = format!("sha256:{}", "a".repeat(64));
        ok(&format!("busybox@{digest}"), &format!("busybox@{digest}"));
        ok(&format!("busybox:1@{digest}"), &format!("busybox:1@{digest}"));
    }

    #[test]
    fn invalid_forms() {
        bad(
            "Busybox",
            "invalid reference format: repository name must be lowercase",
        );
        bad(
            "docker.io/Foo/bar",
            "invalid reference format: repository name must be lowercase",
        );
        bad("", "invalid reference format");
        bad("busybox:", "invalid reference format");
        bad(":tag", "invalid reference format");
        bad("busy box", "invalid reference format");
        bad("a//b", "invalid reference format");
        bad("-a", "invalid reference format");
        bad("a-", "invalid reference format");
        bad("a..b", "invalid reference format");
        bad("a___b", "invalid reference format");
        bad("busybox:.tag", "invalid reference format");
        bad(
            &format!("busybox:{}", "t".repeat(129)),
            "invalid reference format",
        );
        bad("busybox@sha256:abc", "invalid reference format");
        bad("localhost:50a0/x", "invalid reference format");
        bad(
            &"a".repeat(256),
            "invalid reference format: repository name must not be more than 255 characters",
        );
        let id = "b".repeat(64);
        bad(&id, &format!("invalid reference format: invalid repository name ({id}), cannot specify 64-byte hexadecimal strings"));
    }

    #[test]
    fn parts() {
        let r = parse("localhost:5000/x/y:tag").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
            ("localhost:5000", "x/y", Some("tag"))
        );
        let r = parse("busybox").unwrap();
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
    }
}
