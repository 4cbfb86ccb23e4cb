//! `berth stats`: one sample with `--no-stream`, else a refreshing table until interrupted.

use std::time::Duration;

use anyhow::Result;
use berth_engine::{util, Engine};
use serde_json::json;

use crate::cli::StatsArgs;
use crate::output;

/// Prints usage of running (or the named) containers.
pub fn stats(engine: &mut Engine, a: &StatsArgs) -> Result<i32> {
    loop {
        let usage = engine.stats(
            &a.containers,
            Duration::from_millis(if a.no_stream { 300 } else { 1000 }),
        )?;
        if let Some(f) = &a.format {
            let items: Vec<_> = usage
                .iter()
                .map(|u| json!({"ID": &u.id[..12], "Name": u.name, "CPUPerc": format!("{:.2}%", u.cpu_percent), "MemUsage": format!("{} / {}", util::human_size(u.memory_usage), util::human_size(u.memory_limit)), "MemPerc": format!("{:.2}%", pct(u.memory_usage, u.memory_limit)), "PIDs": u.pids.to_string()}))
                .collect();
            output::formatted(f, &items);
        } else {
            if !a.no_stream {
                print!("\x1b[2J\x1b[H");
            }
            let rows: Vec<Vec<String>> = usage
                .iter()
                .map(|u| {
                    vec![
                        if a.no_trunc {
                            u.id.clone()
                        } else {
                            u.id[..12].to_string()
                        },
                        u.name.clone(),
                        format!("{:.2}%", u.cpu_percent),
                        format!(
                            "{} / {}",
                            util::human_size(u.memory_usage),
                            util::human_size(u.memory_limit)
                        ),
                        format!("{:.2}%", pct(u.memory_usage, u.memory_limit)),
                        u.pids.to_string(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "PIDS",
                ],
                &rows,
            );
        }
        if a.no_stream {
            return Ok(0);
        }
    }
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}
