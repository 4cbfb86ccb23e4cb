//! The `berth` command line: parse flags, call the engine, print, and exit with docker's codes
//! (125 berth failed, 126 cannot invoke, 127 not found, else the container's own).

mod cli;
mod commands;
mod output;
mod terminal;

use std::io::Write;

use anyhow::Result;
use berth_engine::Engine;
use clap::{CommandFactory, Parser};

use cli::{Cli, Command, ContainerCommand, ImageCommand, InspectType, SystemCommand};
use commands::{containers, exec, images, logs, network, run, stats, transfer, volume};

fn main() {
    // Like any Unix filter: `berth ps | head -1` ends quietly when the reader goes away. (Monitors forked from
    // us ignore SIGPIPE again: they must outlive a vanished terminal.)
    // SAFETY: restoring the default disposition of one signal at startup.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match dispatch(&cli) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("berth: error: {e:#}");
            e.downcast_ref::<berth_engine::Error>()
                .map(|x| x.exit_code())
                .unwrap_or(125)
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn dispatch(cli: &Cli) -> Result<i32> {
    match &cli.command {
        Command::Completion(a) => {
            clap_complete::generate(a.shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Version(a) => {
            let v = serde_json::json!({"Version": env!("CARGO_PKG_VERSION"), "Os": "linux", "Arch": std::env::consts::ARCH});
            match &a.format {
                Some(f) => println!("{}", output::template(f, &v)),
                None => println!("berth version {}", env!("CARGO_PKG_VERSION")),
            }
            return Ok(0);
        }
        // Credentials only: no state root needed.
        Command::Login(a) => return transfer::login(a),
        Command::Logout(a) => return transfer::logout(a),
        _ => {}
    }
    let mut engine = Engine::open(&cli.root)?;
    let e = &mut engine;
    match &cli.command {
        Command::Run(a) => run::run(e, a),
        Command::Create(a) => run::create(e, a),
        Command::Start(a) => run::start(e, a),
        Command::Stop(a) => containers::stop(e, a),
        Command::Restart(a) => containers::restart(e, a),
        Command::Kill(a) => containers::kill(e, a),
        Command::Rm(a) => containers::rm(e, a),
        Command::Ps(a) => containers::ps(e, a),
        Command::Logs(a) => logs::logs(e, a),
        Command::Exec(a) => exec::exec(e, a),
        Command::Inspect(a) => containers::inspect(e, a, None),
        Command::Wait(a) => containers::wait(e, a),
        Command::Stats(a) => stats::stats(e, a),
        Command::Commit(a) => images::commit(e, a),
        Command::Export(a) => images::export(e, a),
        Command::Import(a) => images::import(e, a),
        Command::Images(a) => images::images(e, a),
        Command::Rmi(a) => images::rmi(e, a),
        Command::Tag(a) => images::tag(e, a),
        Command::Pull(a) => transfer::pull(e, a),
        Command::Push(a) => transfer::push(e, a),
        Command::Save(a) => transfer::save(e, a),
        Command::Load(a) => transfer::load(e, a),
        Command::History(a) => transfer::history(e, a),
        Command::Volume(v) => volume::volume(e, v),
        Command::Network(n) => network::network(e, n),
        Command::Port(a) => network::port(e, a),
        Command::Image(c) => match c {
            ImageCommand::Ls(a) => images::images(e, a),
            ImageCommand::Rm(a) => images::rmi(e, a),
            ImageCommand::Inspect(a) => containers::inspect(e, a, Some(InspectType::Image)),
            ImageCommand::Tag(a) => images::tag(e, a),
            ImageCommand::Import(a) => images::import(e, a),
            ImageCommand::Prune(a) => images::prune(e, a),
            ImageCommand::Pull(a) => transfer::pull(e, a),
            ImageCommand::Push(a) => transfer::push(e, a),
            ImageCommand::Save(a) => transfer::save(e, a),
            ImageCommand::Load(a) => transfer::load(e, a),
            ImageCommand::History(a) => transfer::history(e, a),
        },
        Command::Container(c) => match c {
            ContainerCommand::Ls(a) => containers::ps(e, a),
            ContainerCommand::Run(a) => run::run(e, a),
            ContainerCommand::Create(a) => run::create(e, a),
            ContainerCommand::Start(a) => run::start(e, a),
            ContainerCommand::Stop(a) => containers::stop(e, a),
            ContainerCommand::Restart(a) => containers::restart(e, a),
            ContainerCommand::Kill(a) => containers::kill(e, a),
            ContainerCommand::Rm(a) => containers::rm(e, a),
            ContainerCommand::Logs(a) => logs::logs(e, a),
            ContainerCommand::Exec(a) => exec::exec(e, a),
            ContainerCommand::Inspect(a) => containers::inspect(e, a, Some(InspectType::Container)),
            ContainerCommand::Wait(a) => containers::wait(e, a),
            ContainerCommand::Stats(a) => stats::stats(e, a),
            ContainerCommand::Commit(a) => images::commit(e, a),
            ContainerCommand::Export(a) => images::export(e, a),
            ContainerCommand::Prune(a) => containers::prune(e, a),
        },
        Command::System(SystemCommand::Prune(a)) => {
            containers::prune(
                e,
                &cli::ContainerPruneArgs {
                    force: true,
                    filter: vec![],
                },
            )?;
            images::prune(
                e,
                &cli::ImagePruneArgs {
                    all: a.all,
                    force: true,
                    filter: vec![],
                },
            )?;
            // Leftovers of interrupted imports and pulls, and this root's empty cgroup parents.
            let (store, conn) = e.images_and_conn();
            store.sweep(conn)?;
            e.prune_cgroup_parents();
            let networks = e.network_prune()?;
            if !networks.is_empty() {
                println!("Deleted Networks:");
                networks.iter().for_each(|n| println!("{n}"));
            }
            if a.volumes {
                let removed = e.volume_prune(false)?;
                println!("Deleted Volumes:");
                removed.iter().for_each(|n| println!("{n}"));
            }
            Ok(0)
        }
        Command::Completion(_) | Command::Version(_) | Command::Login(_) | Command::Logout(_) => Ok(0),
    }
}
