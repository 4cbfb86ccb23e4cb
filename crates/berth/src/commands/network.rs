//! `berth network create|ls|inspect|rm|prune` and `berth port`.

use anyhow::{anyhow, Result};
use berth_engine::network::parse_publish;
use berth_engine::Engine;
use serde_json::json;

use crate::cli::{NetworkCommand, PortArgs};
use crate::output;

/// Dispatches the network subcommands.
pub fn network(engine: &mut Engine, cmd: &NetworkCommand) -> Result<i32> {
    match cmd {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                return Err(anyhow!(
                    "network driver {:?} is not supported (only \"bridge\")",
                    a.driver
                ));
            }
            let labels = a
                .label
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .unwrap_or((l.clone(), String::new()))
                })
                .collect();
            let n = engine.network_create(
                &a.name,
                a.subnet.as_deref(),
                a.gateway.as_deref(),
                a.internal,
                labels,
            )?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls(a) => {
            let nets = engine.networks()?;
            if a.quiet {
                nets.iter().for_each(|n| println!("{}", n.name));
                return Ok(0);
            }
            if let Some(f) = &a.format {
                let items: Vec<_> = nets
                    .iter()
                    .map(|n| json!({"ID": &n.id[..12], "Name": n.name, "Driver": n.driver, "Scope": "local", "Subnet": n.subnet.to_string(), "Internal": n.internal}))
                    .collect();
                if output::formatted(f, &items) {
                    return Ok(0);
                }
            }
            let rows: Vec<Vec<String>> = nets
                .iter()
                .map(|n| {
                    vec![
                        n.id[..12].to_string(),
                        n.name.clone(),
                        n.driver.clone(),
                        "local".into(),
                        n.subnet.to_string(),
                    ]
                })
                .collect();
            output::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET"], &rows);
        }
        NetworkCommand::Inspect(a) => {
            let mut items = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match engine.network(n) {
                    Ok(net) => items.push(engine.network_json(&net)),
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
        NetworkCommand::Rm(a) => {
            return Ok(crate::commands::each(&a.names, |n| {
                engine.network_remove(n).map(drop).map_err(Into::into)
            }));
        }
        NetworkCommand::Connect(a) => {
            engine.network_connect(&a.network, &a.container, a.alias.clone(), a.ip)?;
        }
        NetworkCommand::Disconnect(a) => {
            engine.network_disconnect(&a.network, &a.container)?;
        }
        NetworkCommand::Prune(_) => {
            let removed = engine.network_prune()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                removed.iter().for_each(|n| println!("{n}"));
            }
        }
    }
    Ok(0)
}

/// `berth port CONTAINER [PORT]`: "80/tcp -> 0.0.0.0:8080".
pub fn port(engine: &mut Engine, a: &PortArgs) -> Result<i32> {
    let rec = engine.container(&a.container)?;
    for p in &rec.config.publish {
        let (ip, host, ctr, proto) = parse_publish(p)?;
        let proto = format!("{proto:?}").to_lowercase();
        let key = format!("{ctr}/{proto}");
        if a.port
            .as_deref()
            .is_some_and(|want| want != key && want != ctr.to_string())
        {
            continue;
        }
        let ip = ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
        println!("{key} -> {ip}:{host}");
    }
    Ok(0)
}
