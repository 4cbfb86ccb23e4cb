//! Token authentication against a real registry: Debian's `docker-registry` configured with `auth:
//! token:` trusting a self-signed cert, and a token server in this process that checks one user's
//! password and signs RS256 JWTs with `openssl`. Also cross-repository blob mounts (which need a token
//! for both repositories) and chunked uploads. Only loopback is ever contacted.

use std::process::Command;

#[path = "common/registry.rs"]
mod registry;
use registry::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";

/// The registry and its token server, or `None` (skip) when a peer is missing.
fn token_registry() -> Option<(TokenServer, Registry)> {
    if !is_root() {
        return None;
    }
    let tokens = TokenServer::start(USER, PASSWORD)?;
    let registry = Registry::start_with(&tokens.registry_config())?;
    Some((tokens, registry))
}

/// A failed berth command: exit 125, one line on stderr containing `want`.
fn assert_fails(out: &Out, want: &str) {
    assert_eq!(out.code, 125, "{out:?}");
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {line:?}");
    assert!(line.contains(want), "want {want:?} in {line:?}");
}

#[test]
fn token_auth_login_push_pull_run() {
    let Some((tokens, reg)) = token_registry() else {
        return;
    };
    let host = reg.host();
    let b = Berth::new();
    let id = b.id("busybox");
    let target = format!("{host}/team/app:1");

    // Without credentials the registry refuses, and berth says how to fix it.
    let out = b.run(&["push", "busybox", &target]);
    assert_fails(&out, "authentication required");
    assert!(out.stderr.contains(&format!("berth login {host}")), "{out:?}");
    let fresh = Berth::empty();
    let out = fresh.run(&["pull", &target]);
    assert_fails(&out, "authentication required");
    assert!(fresh.image_ids().trim().is_empty());
    fresh.assert_no_leftovers();

    // A wrong password: refused, and nothing is stored.
    let out = b.login(&host, USER, "wrong");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("incorrect username or password"), "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    let auth_file = b.dir.path().join("config/auth.json");
    let stored = std::fs::read_to_string(&auth_file).unwrap_or_default();
    assert!(
        !stored.contains(&host),
        "credentials stored after a failed login: {stored}"
    );

    let out = b.login(&host, USER, PASSWORD).ok();
    assert!(out.stdout.contains("Login Succeeded"), "{out:?}");
    // Login proves the credentials with a token that names no repository, as docker's does.
    assert!(
        tokens.scopes().contains(&"-".to_string()),
        "{:?}",
        tokens.scopes()
    );

    let out = b.ok(&["push", "busybox", &target]);
    assert!(out.stdout.contains("1: digest: sha256:"), "{out:?}");
    assert!(
        tokens
            .scopes()
            .iter()
            .any(|s| s == "repository:team/app:pull,push"),
        "push asks for pull,push: {:?}",
        tokens.scopes()
    );

    b.ok(&["tag", "busybox", &target]);
    b.ok(&["rmi", "-f", &id]);
    assert!(b.image_ids().trim().is_empty());
    let out = b.ok(&["pull", &target]);
    assert!(out.stdout.contains("Downloaded newer image"), "{out:?}");
    assert_eq!(b.id(&target), id);
    let out = b.run(&["run", "--rm", &target, "cat", "/etc/hostname"]);
    assert_eq!(out.code, 0, "run of the pulled image: {out:?}");

    // Stored credentials that are no longer right: a clear error, nothing stored.
    let stale = Berth::empty();
    std::fs::create_dir_all(stale.dir.path().join("config")).unwrap();
    let auth = base64(format!("{USER}:old-password").as_bytes(), false);
    std::fs::write(
        stale.dir.path().join("config/auth.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let out = stale.run(&["pull", &target]);
    assert_fails(&out, "incorrect username or password");
    assert!(stale.image_ids().trim().is_empty());
    stale.assert_no_leftovers();
}

#[test]
fn push_mounts_from_a_sibling_repository_and_chunks_large_blobs() {
    let Some((tokens, reg)) = token_registry() else {
        return;
    };
    let host = reg.host();
    let b = Berth::new();
    b.login(&host, USER, PASSWORD).ok();
    let id = b.id("busybox");

    // Chunked: a 256 KiB chunk size splits the ~2 MiB layer into PATCHes and an empty final PUT.
    let base = format!("{host}/team/base:1");
    let mut cmd = b.cmd(&["push", "busybox", &base]);
    cmd.env("BERTH_PUSH_CHUNK_SIZE", "262144");
    let out = run_cmd(&mut cmd, None).ok();
    assert!(out.stdout.contains("Pushed"), "{out:?}");
    let patches = reg
        .access_log()
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/team/base/blobs/uploads/"))
        .count();
    assert!(
        patches >= 4,
        "expected chunked upload, saw {patches} PATCHes:\n{}",
        reg.access_log()
    );

    // Another root pulls team/base, then pushes the image to team/copy: the registry links the
    // blobs from team/base, and no byte of them is sent again.
    let other = Berth::empty();
    other.login(&host, USER, PASSWORD).ok();
    other.ok(&["pull", &base]);
    assert_eq!(other.id(&base), id);
    let copy = format!("{host}/team/copy:1");
    let out = other.ok(&["push", &base, &copy]);
    assert!(out.stdout.contains("Mounted from team/base"), "{out:?}");
    let log = reg.access_log();
    let uploads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/v2/team/copy/blobs/uploads/") && !l.contains("mount="))
        .collect();
    assert!(uploads.is_empty(), "blob bytes were sent again: {uploads:?}");
    assert!(
        tokens
            .scopes()
            .iter()
            .any(|s| s == "repository:team/copy:pull,push repository:team/base:pull"),
        "the push token covers both repositories: {:?}",
        tokens.scopes()
    );

    // What the mount made is a complete image: skopeo reads it, a third root pulls it.
    let out = run_cmd(
        Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                &format!("{USER}:{PASSWORD}"),
            ])
            .arg(format!("docker://{copy}")),
        None,
    );
    assert_eq!(out.code, 0, "skopeo inspect: {out:?}");
    let third = Berth::empty();
    third.login(&host, USER, PASSWORD).ok();
    third.ok(&["pull", &copy]);
    assert_eq!(third.id(&copy), id);

    // A source the user may no longer read: the registry refuses the mount, berth uploads instead.
    tokens.deny("team/base");
    let out = other.ok(&["push", &base, &format!("{host}/team/third:1")]);
    assert!(
        out.stdout.contains("Pushed") && !out.stdout.contains("Mounted"),
        "{out:?}"
    );
}
