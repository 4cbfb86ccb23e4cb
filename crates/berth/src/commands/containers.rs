//! ps, stop, kill, restart, rm, wait, inspect, container prune.

use anyhow::{bail, Result};
use berth_engine::{spec, util, Engine, Record};
use serde_json::{json, Value};

use crate::cli::{
    ContainerPruneArgs, InspectArgs, InspectType, KillArgs, PsArgs, RestartArgs, RmArgs, StopArgs, WaitArgs,
};
use crate::commands::each;
use crate::output;

/// Image configs by id, so listing many containers of one image parses its config once.
#[derive(Default)]
struct ImageCache(std::collections::HashMap<String, Option<berth_image::Image>>);

impl ImageCache {
    fn command_line(&mut self, engine: &Engine, r: &Record) -> String {
        let img = self
            .0
            .entry(r.image_id.clone())
            .or_insert_with(|| engine.image(&r.image_id).ok());
        let args = match img {
            Some(i) => spec::command(&r.config, &i.config),
            None => r.config.cmd.clone(),
        };
        args.join(" ")
    }
}

fn ps_json(engine: &Engine, images: &mut ImageCache, r: &Record) -> Value {
    let labels: Vec<String> = r.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "Command": format!("\"{}\"", images.command_line(engine, r)),
        "CreatedAt": r.created,
        "ID": r.short_id(),
        "Image": r.image_ref,
        "Labels": labels.join(","),
        "LocalVolumes": r.config.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
        "Mounts": r.config.mounts.iter().map(|m| m.destination.clone()).collect::<Vec<_>>().join(","),
        "Names": r.name,
        "Networks": networks_column(r),
        "Ports": ports_column(&r.config.publish),
        "RunningFor": util::parse_time(&r.created).map(util::ago).unwrap_or_default(),
        "Size": "",
        "State": if r.is_running() { "running" } else { r.status.as_str() },
        "Status": r.status_line(),
    })
}

/// docker's NETWORKS column: the bridge networks, else the mode.
fn networks_column(r: &Record) -> String {
    let eps = &r.config.endpoints;
    if eps.is_empty() {
        return r.config.network.clone();
    }
    eps.iter()
        .map(|e| e.network.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// docker's PORTS column: "127.0.0.1:8080->80/tcp, 0.0.0.0:5353->53/udp".
fn ports_column(publish: &[String]) -> String {
    publish
        .iter()
        .filter_map(|p| berth_engine::network::parse_publish(p).ok())
        .map(|(ip, h, c, proto)| {
            let ip = ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
            format!("{ip}:{h}->{c}/{}", format!("{proto:?}").to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn matches_filter(r: &Record, f: &str) -> Result<bool> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
    Ok(match k {
        "name" => r.name.contains(v),
        "id" => r.id.starts_with(v),
        "status" => r.status == v || (v == "running" && r.is_running()),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => r.config.labels.iter().any(|(a, b)| a == lk && b == lv),
            None => r.config.labels.iter().any(|(a, _)| a == v),
        },
        "ancestor" => r.image_ref == v || r.image_id.contains(v),
        "exited" => r.status == "exited" && r.exit_code.to_string() == v,
        _ => bail!("invalid filter '{k}'"),
    })
}

/// `berth ps`.
pub fn ps(engine: &mut Engine, a: &PsArgs) -> Result<i32> {
    let mut list: Vec<Record> = engine.containers()?;
    let show_all = a.all || a.last.is_some() || a.latest || a.filter.iter().any(|f| f.starts_with("status="));
    if !show_all {
        list.retain(|r| r.is_running());
    }
    for f in &a.filter {
        let mut keep = Vec::new();
        for r in list {
            if matches_filter(&r, f)? {
                keep.push(r);
            }
        }
        list = keep;
    }
    if a.latest {
        list.truncate(1);
    }
    if let Some(n) = a.last {
        list.truncate(n);
    }
    if a.quiet {
        for r in &list {
            println!("{}", if a.no_trunc { &r.id } else { r.short_id() });
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let mut images = ImageCache::default();
        let items: Vec<Value> = list.iter().map(|r| ps_json(engine, &mut images, r)).collect();
        if output::formatted(f, &items) {
            return Ok(0);
        }
    }
    let mut images = ImageCache::default();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let mut cmd = format!("\"{}\"", images.command_line(engine, r));
            if !a.no_trunc && cmd.chars().count() > 22 {
                cmd = format!("{}…\"", cmd.chars().take(20).collect::<String>());
            }
            vec![
                if a.no_trunc {
                    r.id.clone()
                } else {
                    r.short_id().to_string()
                },
                r.image_ref.clone(),
                cmd,
                util::parse_time(&r.created).map(util::ago).unwrap_or_default(),
                r.status_line(),
                ports_column(&r.config.publish),
                r.name.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
    );
    Ok(0)
}

/// `berth stop`.
pub fn stop(engine: &mut Engine, a: &StopArgs) -> Result<i32> {
    Ok(each(&a.containers, |c| {
        engine.stop(c, a.time.map(i64::from), a.signal.as_deref())?;
        Ok(())
    }))
}

/// `berth restart`.
pub fn restart(engine: &mut Engine, a: &RestartArgs) -> Result<i32> {
    Ok(each(&a.containers, |c| {
        if let Some(s) = &a.signal {
            engine.stop(c, a.time.map(i64::from), Some(s))?;
        }
        engine.restart(c, a.time.map(i64::from))?;
        Ok(())
    }))
}

/// `berth kill`.
pub fn kill(engine: &mut Engine, a: &KillArgs) -> Result<i32> {
    Ok(each(&a.containers, |c| {
        engine.kill(c, &a.signal)?;
        Ok(())
    }))
}

/// `berth rm`.
pub fn rm(engine: &mut Engine, a: &RmArgs) -> Result<i32> {
    Ok(each(&a.containers, |c| {
        engine.remove(c, a.force, a.volumes)?;
        Ok(())
    }))
}

/// `berth wait`: prints each exit code.
pub fn wait(engine: &mut Engine, a: &WaitArgs) -> Result<i32> {
    let mut code = 0;
    for c in &a.containers {
        match engine.wait(c) {
            Ok(x) => println!("{x}"),
            Err(e) => {
                eprintln!("berth: error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `berth container prune`.
pub fn prune(engine: &mut Engine, _a: &ContainerPruneArgs) -> Result<i32> {
    println!("Deleted Containers:");
    for r in engine.containers()? {
        if !r.is_running() {
            engine.remove(&r.id, false, false)?;
            println!("{}", r.id);
        }
    }
    Ok(0)
}

/// `berth inspect`: containers, images or volumes, as a JSON array (or one `-f` line each).
pub fn inspect(engine: &mut Engine, a: &InspectArgs, only: Option<InspectType>) -> Result<i32> {
    let kind = a.kind.or(only);
    let mut items = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let found = lookup(engine, n, kind);
        match found {
            Some(v) => items.push(v),
            None => {
                eprintln!("berth: error: no such object: {n}");
                code = 1;
            }
        }
    }
    match &a.format {
        Some(f) => {
            for i in &items {
                println!("{}", output::template(f, i));
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(items)).unwrap_or_default()
        ),
    }
    Ok(code)
}

fn lookup(engine: &mut Engine, n: &str, kind: Option<InspectType>) -> Option<Value> {
    if matches!(kind, None | Some(InspectType::Container)) {
        if let Ok(r) = engine.container(n) {
            return Some(engine.inspect_container(&r));
        }
    }
    if matches!(kind, None | Some(InspectType::Image)) {
        if let Some(v) = crate::commands::images::inspect_json(engine, n) {
            return Some(v);
        }
    }
    if matches!(kind, None | Some(InspectType::Volume)) {
        if let Ok(v) = engine.volume(n) {
            return Some(v.to_json());
        }
    }
    None
}
