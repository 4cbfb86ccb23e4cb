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

    // Sources the user may no longer read (team/copy became one with the push above): the registry
    // refuses each mount, berth uploads instead.
    tokens.deny("team/base");
    tokens.deny("team/copy");
    let out = other.ok(&["push", &base, &format!("{host}/team/third:1")]);
    assert!(
        out.stdout.contains("Pushed") && !out.stdout.contains("Mounted"),
        "{out:?}"
    );
}

const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The registry, a berth root logged in to it that pulled `lib/src:1` (which skopeo published with
/// gzip layers), and that image's ID.
fn pulled_gzip_image() -> Option<(TokenServer, Registry, Berth, String)> {
    let (tokens, reg) = token_registry()?;
    let creds = format!("{USER}:{PASSWORD}");
    let publisher = Berth::new();
    let (archive, id) = busybox_archive(&publisher);
    let source = format!("docker-archive:{}", archive.display());
    reg.skopeo_push(&source, "lib/src:1", &["--dest-creds", &creds]);
    let layers = &reg.skopeo_inspect_as("lib/src:1", true, Some(&creds))["layers"];
    assert_eq!(layers[0]["mediaType"], DOCKER_GZIP, "{layers}");

    let b = Berth::empty();
    b.login(&reg.host(), USER, PASSWORD).ok();
    let src = format!("{}/lib/src:1", reg.host());
    b.ok(&["pull", &src]);
    assert_eq!(b.id(&src), id);
    Some((tokens, reg, b, id))
}

/// Access-log lines that sent blob bytes (`PATCH`/`PUT` of an upload) to `repository`.
fn blob_uploads(reg: &Registry, repository: &str) -> Vec<String> {
    let log = reg.access_log();
    ["PATCH", "PUT"]
        .iter()
        .flat_map(|method| {
            let needle = format!("\"{method} /v2/{repository}/blobs/uploads/");
            log.lines()
                .filter(|l| l.contains(&needle))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A fresh root pulls `reference`: the same image ID, and it runs.
fn assert_pulls_and_runs(host: &str, reference: &str, id: &str, command: &[&str]) {
    let fresh = Berth::empty();
    fresh.login(host, USER, PASSWORD).ok();
    fresh.ok(&["pull", reference]);
    assert_eq!(fresh.id(reference), id, "{reference}");
    let mut args = vec!["run", "--rm", reference];
    args.extend(command);
    let out = fresh.run(&args);
    assert_eq!(out.code, 0, "run of {reference}: {out:?}");
}

#[test]
fn push_reuses_the_compressed_blobs_a_layer_was_pulled_as() {
    let Some((tokens, reg, b, id)) = pulled_gzip_image() else {
        return;
    };
    let host = reg.host();
    let creds = format!("{USER}:{PASSWORD}");
    let src = &reg.skopeo_inspect_as("lib/src:1", true, Some(&creds))["layers"][0];

    // Another repository of the same registry: the gzip blob is mounted from lib/src, nothing sent.
    let dst = format!("{host}/lib/dst:1");
    b.ok(&["tag", &format!("{host}/lib/src:1"), &dst]);
    let out = b.ok(&["push", &dst]);
    assert_eq!(out.stdout.matches("Mounted from lib/src").count(), 1, "{out:?}");
    assert!(!out.stdout.contains("Pushed"), "{out:?}");
    let sent = blob_uploads(&reg, "lib/dst");
    assert!(sent.is_empty(), "blob bytes were sent: {sent:?}");
    assert!(
        tokens
            .scopes()
            .iter()
            .any(|s| s == "repository:lib/dst:pull,push repository:lib/src:pull"),
        "the push token covers the source: {:?}",
        tokens.scopes()
    );
    // The manifest names the compressed blob, as OCI; the config (and its diff_ids) is the original.
    let raw = reg.skopeo_inspect_as("lib/dst:1", true, Some(&creds));
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(raw["config"]["digest"].as_str(), Some(id.as_str()));
    let layer = &raw["layers"][0];
    assert_eq!(layer["mediaType"], OCI_GZIP, "{raw}");
    assert_eq!((&layer["digest"], &layer["size"]), (&src["digest"], &src["size"]));
    assert_pulls_and_runs(&host, &dst, &id, &["cat", "/etc/hostname"]);

    // Again: the repository has the blob, and the manifest comes out the same.
    let again = b.ok(&["push", &dst]);
    assert!(again.stdout.contains("Layer already exists"), "{again:?}");
    let digest = |out: &Out| out.stdout.split("digest: ").nth(1).map(|s| s[..71].to_string());
    assert_eq!(digest(&again), digest(&out));

    // A layer on top that the registry has never seen: the manifest mixes the mounted gzip blob
    // (from lib/dst now, the newest place berth knows) with the uploaded plain tar.
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(&tmp.path().join("layout"));
    let base = busybox_layer(&layout);
    let extra = layout.layer(&tar(&[Entry::File("extra", b"on top\n")]));
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let top = layout.image(arch, &[&base, &extra]);
    let mixed = format!("{host}/lib/mixed:1");
    layout.tag(&top, &mixed);
    let archive = tmp.path().join("layout.tar");
    run_cmd(
        Command::new("tar")
            .arg("-C")
            .arg(&layout.dir)
            .arg("-cf")
            .arg(&archive)
            .args(["oci-layout", "index.json", "blobs"]),
        None,
    )
    .ok();
    b.ok(&["load", "-i", archive.to_str().unwrap()]);
    let mixed_id = b.id(&mixed);
    let out = b.ok(&["push", &mixed]);
    assert!(
        out.stdout.contains("Mounted from lib/dst") && out.stdout.contains("Pushed"),
        "{out:?}"
    );
    let raw = reg.skopeo_inspect_as("lib/mixed:1", true, Some(&creds));
    let types: Vec<(&str, &str)> = raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["mediaType"].as_str().unwrap(), l["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            (OCI_GZIP, src["digest"].as_str().unwrap()),
            ("application/vnd.oci.image.layer.v1.tar", extra.digest.as_str())
        ]
    );
    assert_pulls_and_runs(&host, &mixed, &mixed_id, &["cat", "/extra"]);
}

#[test]
fn push_to_another_registry_uploads_and_rmi_forgets_the_blobs() {
    let Some((tokens, reg, b, id)) = pulled_gzip_image() else {
        return;
    };
    // The same registry under another name: berth cannot know it holds the blob, so it uploads.
    let port = reg.host().rsplit(':').next().unwrap().to_string();
    let other_host = format!("localhost:{port}");
    b.login(&other_host, USER, PASSWORD).ok();
    let far = format!("{other_host}/lib/far:1");
    let out = b.ok(&["push", &format!("{}/lib/src:1", reg.host()), &far]);
    assert!(
        out.stdout.contains("Pushed") && !out.stdout.contains("Mounted"),
        "{out:?}"
    );
    assert!(!blob_uploads(&reg, "lib/far").is_empty());
    assert_eq!(tokens.scopes().last().unwrap(), "repository:lib/far:pull,push");
    let raw = reg.skopeo_inspect_as("lib/far:1", true, Some(&format!("{USER}:{PASSWORD}")));
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_pulls_and_runs(&other_host, &far, &id, &["true"]);

    // Once the layer is gone, so is what berth knew of it: the same layer imported anew is uploaded.
    b.ok(&["rmi", "-f", &id]);
    assert!(b.image_ids().trim().is_empty());
    b.ok(&["import", image_tar().to_str().unwrap(), "again"]);
    let out = b.ok(&["push", "again", &format!("{}/lib/again:1", reg.host())]);
    assert!(
        out.stdout.contains("Pushed") && !out.stdout.contains("Mounted"),
        "{out:?}"
    );
}
