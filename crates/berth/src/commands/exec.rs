//! `berth exec`.

use anyhow::Result;
use berth_engine::{Engine, ExecConfig};

use crate::cli::ExecArgs;
use crate::commands::run::env_list;
use crate::terminal::RawMode;

/// Runs the command and returns its exit code.
pub fn exec(engine: &mut Engine, a: &ExecArgs) -> Result<i32> {
    let cfg = ExecConfig {
        cmd: a.command.clone(),
        env: env_list(&a.env, &a.env_file)?,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
    };
    let _raw = if a.tty && a.interactive && !a.detach {
        RawMode::enable()
    } else {
        None
    };
    Ok(engine.exec(&a.container, &cfg)?)
}
