//! `berth volume create|ls|inspect|rm|prune`.

use std::collections::BTreeMap;

use anyhow::Result;
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::cli::VolumeCommand;
use crate::output;

fn pairs(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unwrap_or((l.clone(), String::new()))
        })
        .collect()
}

/// Dispatches the volume subcommands.
pub fn volume(engine: &mut Engine, cmd: &VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create(a) => {
            let name = engine.volume_create(a.name.as_deref(), &a.driver, pairs(&a.label), pairs(&a.opt))?;
            println!("{name}");
        }
        VolumeCommand::Ls(a) => {
            let mut vols = engine.volumes()?;
            for f in &a.filter {
                match f.split_once('=') {
                    Some(("dangling", want)) => {
                        let want = matches!(want, "true" | "1");
                        let mut keep = Vec::new();
                        for v in vols {
                            if engine.volume_users(&v)?.is_empty() == want {
                                keep.push(v);
                            }
                        }
                        vols = keep;
                    }
                    Some(("name", _)) | Some(("label", _)) | Some(("driver", _)) => {}
                    _ => anyhow::bail!("invalid filter {f:?}"),
                }
            }
            let vols: Vec<_> = vols
                .into_iter()
                .filter(|v| {
                    a.filter.iter().all(|f| match f.split_once('=') {
                        Some(("name", n)) => v.name.contains(n),
                        Some(("label", l)) => match l.split_once('=') {
                            Some((k, val)) => v.labels.get(k).map(String::as_str) == Some(val),
                            None => v.labels.contains_key(l),
                        },
                        _ => true,
                    })
                })
                .collect();
            if a.quiet {
                vols.iter().for_each(|v| println!("{}", v.name));
                return Ok(0);
            }
            if let Some(f) = &a.format {
                let items: Vec<Value> = vols.iter().map(|v| json!({"Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint, "Scope": "local", "Labels": v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>().join(",")})).collect();
                if output::formatted(f, &items) {
                    return Ok(0);
                }
            }
            let rows: Vec<Vec<String>> = vols
                .iter()
                .map(|v| vec![v.driver.clone(), v.name.clone()])
                .collect();
            output::table(&["DRIVER", "VOLUME NAME"], &rows);
        }
        VolumeCommand::Inspect(a) => {
            let mut items = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match engine.volume(n) {
                    Ok(v) => items.push(v.to_json()),
                    Err(e) => {
                        eprintln!("berth: error: {e}");
                        code = 1;
                    }
                }
            }
            match &a.format {
                Some(f) => items.iter().for_each(|i| println!("{}", output::template(f, i))),
                None => println!("{}", serde_json::to_string_pretty(&items)?),
            }
            return Ok(code);
        }
        VolumeCommand::Rm(a) => {
            return Ok(crate::commands::each(&a.names, |n| {
                Ok(engine.volume_remove(n, a.force)?)
            }));
        }
        VolumeCommand::Prune(a) => {
            let removed = engine.volume_prune(a.all)?;
            println!("Deleted Volumes:");
            removed.iter().for_each(|n| println!("{n}"));
        }
    }
    Ok(0)
}
