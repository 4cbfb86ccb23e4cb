//! `inspect` JSON in docker's shape, so scripts written for `docker inspect -f` keep working.

use serde_json::{json, Value};

use crate::record::Record;
use crate::spec;
use crate::Engine;

impl Engine {
    /// `NetworkSettings`: the container's address on its network while it runs, and its published ports.
    fn network_settings(&self, r: &Record) -> Value {
        let c = &r.config;
        let mut ports = serde_json::Map::new();
        for p in &c.publish {
            if let Ok((ip, host, ctr, proto)) = crate::network::parse_publish(p) {
                let key = format!("{ctr}/{}", format!("{proto:?}").to_lowercase());
                let ip = ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
                let entry = ports.entry(key).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    list.push(json!({"HostIp": ip, "HostPort": host.to_string()}));
                }
            }
        }
        let allocs = berth_network::ipam::container_allocations(&self.conn, &r.id).unwrap_or_default();
        let mut networks = serde_json::Map::new();
        let mut primary = None;
        for ep in &c.endpoints {
            let net = self.network(&ep.network).ok();
            let alloc = allocs.iter().find(|a| a.network == ep.network);
            let (ip, gw, prefix, mac) = match (alloc, &net) {
                (Some(a), Some(n)) => (
                    a.address.to_string(),
                    n.gateway.to_string(),
                    n.subnet.prefix_len(),
                    crate::network::mac_string(a.address),
                ),
                _ => (String::new(), String::new(), 0, String::new()),
            };
            let entry = json!({"IPAddress": ip, "Gateway": gw, "IPPrefixLen": prefix, "MacAddress": mac,
                    "Aliases": ep.aliases, "NetworkID": net.map(|n| n.id).unwrap_or_default(),
                    "IPAMConfig": ep.ip.map(|i| json!({"IPv4Address": i.to_string()}))});
            primary.get_or_insert_with(|| entry.clone());
            networks.insert(ep.network.clone(), entry);
        }
        if networks.is_empty() && !c.network.starts_with("container:") {
            let mode = if c.network.is_empty() { "none" } else { &c.network };
            networks.insert(
                mode.to_string(),
                json!({"IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "MacAddress": ""}),
            );
        }
        // The top-level fields describe the first network (networks is a sorted map).
        let first =
            primary.unwrap_or(json!({"IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "MacAddress": ""}));
        json!({
            "IPAddress": first["IPAddress"], "Gateway": first["Gateway"], "IPPrefixLen": first["IPPrefixLen"],
            "MacAddress": first["MacAddress"], "Ports": ports, "Networks": networks,
        })
    }

    /// docker-shaped JSON for one container.
    pub fn inspect_container(&self, r: &Record) -> Value {
        let c = &r.config;
        let dir = self.container_dir(&r.id);
        let image = self.images.resolve(&self.conn, &r.image_id).ok();
        let args = image
            .as_ref()
            .map(|i| spec::command(c, &i.config))
            .unwrap_or_default();
        let ic = image
            .as_ref()
            .and_then(|i| i.config.config().clone())
            .unwrap_or_default();
        let running = r.is_running();
        let status = if r.status == "running" && !running {
            "exited"
        } else {
            r.status.as_str()
        };
        let mounts: Vec<Value> = c
            .mounts
            .iter()
            .map(|m| {
                let source = if m.kind == "volume" { self.root.join("volumes").join(&m.source).join("_data").display().to_string() } else { m.source.clone() };
                json!({
                    "Type": m.kind, "Name": if m.kind == "volume" { m.source.clone() } else { String::new() },
                    "Source": source, "Destination": m.destination,
                    "Mode": if m.read_only { "ro" } else { "" }, "RW": !m.read_only, "Propagation": "rprivate",
                })
            })
            .collect();
        let binds: Vec<String> = c
            .mounts
            .iter()
            .filter(|m| m.kind != "tmpfs")
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.destination,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        let tmpfs: serde_json::Map<String, Value> = c
            .mounts
            .iter()
            .filter(|m| m.kind == "tmpfs")
            .map(|m| (m.destination.clone(), json!(m.options)))
            .collect();
        let labels: serde_json::Map<String, Value> =
            c.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let lowers: Vec<String> = image
            .as_ref()
            .map(|i| {
                i.lower_dirs(&self.images)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let env = spec::merge_env(&[&ic.env().clone().unwrap_or_default(), &c.env]);
        json!({
            "Id": r.id,
            "Created": r.created,
            "Path": args.first().cloned().unwrap_or_default(),
            "Args": args.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": status,
                "Running": running,
                "Paused": false,
                "Restarting": false,
                "OOMKilled": r.oom_killed,
                "Dead": false,
                "Pid": if running { r.pid } else { 0 },
                "ExitCode": r.exit_code,
                "Error": r.error,
                "StartedAt": if r.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &r.started_at },
                "FinishedAt": if r.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &r.finished_at },
            },
            "Image": r.image_id,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": dir.join("container.log"),
            "Name": format!("/{}", r.name),
            "RestartCount": r.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "HostConfig": {
                "Binds": binds,
                "NetworkMode": c.network,
                "AutoRemove": c.auto_remove,
                "CapAdd": c.cap_add,
                "CapDrop": c.cap_drop,
                "Privileged": c.privileged,
                "ReadonlyRootfs": c.read_only,
                "Tmpfs": tmpfs,
                "Memory": c.memory.unwrap_or(0),
                "MemorySwap": c.memory_swap.unwrap_or(0),
                "MemoryReservation": c.memory_reservation.unwrap_or(0),
                "NanoCpus": c.nano_cpus.unwrap_or(0),
                "CpuShares": c.cpu_shares.unwrap_or(0),
                "CpuPeriod": c.cpu_period.unwrap_or(0),
                "CpuQuota": c.cpu_quota.unwrap_or(0),
                "CpusetCpus": c.cpuset_cpus.clone().unwrap_or_default(),
                "CpusetMems": c.cpuset_mems.clone().unwrap_or_default(),
                "PidsLimit": c.pids_limit,
                "ShmSize": c.shm_size.unwrap_or(64 << 20),
                "Dns": c.dns,
                "ExtraHosts": c.extra_hosts,
                "CgroupParent": format!("berth/{}", crate::root_tag(&self.root)),
            },
            "GraphDriver": {
                "Name": "overlay",
                "Data": {"LowerDir": lowers.join(":"), "UpperDir": dir.join("upper"), "WorkDir": dir.join("work"), "MergedDir": dir.join("rootfs")},
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": c.hostname.clone().unwrap_or_else(|| r.id[..12].to_string()),
                "User": c.user.clone().or_else(|| ic.user().clone()).unwrap_or_default(),
                "Tty": c.tty,
                "OpenStdin": c.interactive,
                "AttachStdin": c.interactive,
                "Env": env,
                "Cmd": if c.cmd.is_empty() { ic.cmd().clone().unwrap_or_default() } else { c.cmd.clone() },
                "Image": r.image_ref,
                "WorkingDir": c.workdir.clone().or_else(|| ic.working_dir().clone()).unwrap_or_default(),
                "Entrypoint": match &c.entrypoint { Some(e) if e.is_empty() => vec![], Some(e) => vec![e.clone()], None => ic.entrypoint().clone().unwrap_or_default() },
                "Labels": labels,
                "StopSignal": c.stop_signal.clone().or_else(|| ic.stop_signal().clone()).unwrap_or_else(|| "SIGTERM".into()),
                "StopTimeout": c.stop_timeout,
            },
            "NetworkSettings": self.network_settings(r),
        })
    }
}
