//! Command-line arguments of `berth`: clap derive structs only, no behaviour.
//!
//! Flags are spelled exactly as docker spells them (long and short), so that muscle memory and scripts carry
//! over. Values that need interpretation (memory sizes such as "64m", "K=V" pairs, port specs, ulimits) stay
//! strings here; the engine parses them and reports errors with context.
//!
//! Two docker habits shape the positional arguments of `run`/`create` and `exec`: flags may come before the
//! image or container, and everything after the image (or after the exec command) belongs to the container,
//! hyphens included. `berth run postgres -c shared_buffers=256MB` passes `-c` to postgres, not to berth.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

const GLOBAL: &str = "Global options";
const RESOURCES: &str = "Resources";
const SECURITY: &str = "Security";
const NETWORK: &str = "Network";

const LONG_ABOUT: &str = "\
berth runs OCI containers the way docker does, without a daemon: every command is a short-lived process \
working on the state under --root, and each running container is watched by its own small monitor process.";

const TOUR: &str = "\
Quick tour:
  berth import busybox.tar busybox              load a root filesystem tarball as image \"busybox\"
  berth run --rm -ti busybox sh                 interactive shell, removed on exit
  berth run -d --name web -m 64m --cpus 0.5 busybox httpd -f -p 8080
  berth ps -a                                   list all containers
  berth logs -f web                             follow a container's output
  berth exec -ti web sh                         a second process inside a running container
  berth stop web && berth rm web                stop (SIGTERM, then SIGKILL) and remove
  berth system prune -f                         remove stopped, dangling and crash leftovers";

/// A daemonless, Docker-compatible container engine.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A daemonless, Docker-compatible container engine",
    long_about = LONG_ABOUT,
    after_help = TOUR,
    max_term_width = 110
)]
pub struct Cli {
    /// Directory holding berth's state: images, containers, volumes
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    #[arg(help_heading = GLOBAL)]
    pub root: PathBuf,

    /// Log filter: error, warn, info, debug, trace, or a directive such as "berth_engine=debug"
    #[arg(long, global = true, env = "BERTH_LOG", value_name = "LEVEL")]
    #[arg(help_heading = GLOBAL)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// Every top-level command, one variant each, named as in docker.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start a container from an image
    #[command(override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Create a container without starting it
    #[command(override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    #[command(after_help = START_EXAMPLES)]
    Start(StartArgs),
    /// Stop running containers: the stop signal, then SIGKILL after the timeout
    #[command(after_help = STOP_EXAMPLES)]
    Stop(StopArgs),
    /// Restart one or more containers
    #[command(after_help = RESTART_EXAMPLES)]
    Restart(RestartArgs),
    /// Send a signal to running containers (SIGKILL by default)
    #[command(after_help = KILL_EXAMPLES)]
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(after_help = RM_EXAMPLES)]
    Rm(RmArgs),
    /// List containers
    #[command(after_help = PS_EXAMPLES)]
    Ps(PsArgs),
    /// Show the output of a container
    #[command(after_help = LOGS_EXAMPLES)]
    Logs(LogsArgs),
    /// Run a command in a running container
    #[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Show low-level information on containers, images or volumes as JSON
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Block until containers stop, then print their exit codes
    #[command(after_help = WAIT_EXAMPLES)]
    Wait(WaitArgs),
    /// Show live resource usage of containers
    #[command(after_help = STATS_EXAMPLES)]
    Stats(StatsArgs),
    /// Create a new image from a container's changes
    #[command(after_help = COMMIT_EXAMPLES)]
    Commit(CommitArgs),
    /// Write a container's filesystem as a tar archive
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Create an image from a root filesystem tarball
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// List images
    #[command(after_help = IMAGES_EXAMPLES)]
    Images(ImagesArgs),
    /// Remove one or more images
    #[command(after_help = RMI_EXAMPLES)]
    Rmi(RmiArgs),
    /// Give an image a new name (TARGET refers to SOURCE)
    #[command(after_help = TAG_EXAMPLES)]
    Tag(TagArgs),
    /// Download an image from a registry
    #[command(after_help = PULL_EXAMPLES)]
    Pull(PullArgs),
    /// Upload an image to a registry
    #[command(after_help = PUSH_EXAMPLES)]
    Push(PushArgs),
    /// Store credentials for a registry
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(LoginArgs),
    /// Remove stored credentials for a registry
    #[command(after_help = LOGOUT_EXAMPLES)]
    Logout(LogoutArgs),
    /// Write images to a tar archive (docker-archive or oci-archive)
    #[command(after_help = SAVE_EXAMPLES)]
    Save(SaveArgs),
    /// Load images from a tar archive written by save, docker, podman or skopeo
    #[command(after_help = LOAD_EXAMPLES)]
    Load(LoadArgs),
    /// Show the history of an image
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Manage volumes
    #[command(subcommand, after_help = VOLUME_EXAMPLES)]
    Volume(VolumeCommand),
    /// Manage bridge networks
    #[command(subcommand, after_help = NETWORK_EXAMPLES)]
    Network(NetworkCommand),
    /// List a container's published ports
    #[command(after_help = "Examples:\n  berth port web\n  berth port web 80/tcp")]
    Port(PortArgs),
    /// Manage images
    #[command(subcommand, after_help = IMAGE_EXAMPLES)]
    Image(ImageCommand),
    /// Manage containers
    #[command(subcommand, after_help = CONTAINER_EXAMPLES)]
    Container(ContainerCommand),
    /// Manage berth itself
    #[command(subcommand, after_help = SYSTEM_EXAMPLES)]
    System(SystemCommand),
    /// Print a shell completion script
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
    /// Show version information
    #[command(after_help = VERSION_EXAMPLES)]
    Version(VersionArgs),
}

/// `berth run`: everything `create` takes, plus detaching.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    pub detach: bool,

    #[command(flatten)]
    pub create: CreateArgs,
}

/// `berth create` (and the container part of `berth run`).
///
/// `-h` is `--hostname`, as in docker, so help is `--help` only.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    #[allow(dead_code)] // clap acts on it; nobody reads it
    help: Option<bool>,

    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,

    /// Keep stdin open and attached
    #[arg(short, long)]
    pub interactive: bool,

    /// Remove the container (and its anonymous volumes) when it exits
    #[arg(long)]
    pub rm: bool,

    /// Name of the container (default: a generated one)
    #[arg(long)]
    pub name: Option<String>,

    /// Set an environment variable: KEY=VALUE, or KEY to copy it from berth's environment
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file, one KEY=VALUE or KEY per line
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Bind mount or volume: SRC:DEST[:OPTS] (SRC a host path or volume name) or DEST for an anonymous volume
    #[arg(short, long, value_name = "[SRC:]DEST[:OPTS]")]
    pub volume: Vec<String>,

    /// Mount in long form: type=bind|volume|tmpfs,source=...,target=...[,readonly]
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,

    /// Mount an empty tmpfs: DEST[:OPTS], e.g. /run:size=64m
    #[arg(long, value_name = "DEST[:OPTS]")]
    pub tmpfs: Vec<String>,

    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// User to run as: name|uid[:group|gid]
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Override the image's entrypoint ("" clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,

    /// Set a metadata label: KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Read labels from a file, one KEY=VALUE per line
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,

    /// Signal that `stop` sends first (default: the image's, else SIGTERM)
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Seconds `stop` waits before SIGKILL (default 10; -1 waits forever)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub stop_timeout: Option<i32>,

    /// Restart policy: no, always, unless-stopped, on-failure[:N] (stored)
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,

    /// Platform of the image, e.g. linux/amd64
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,

    /// When to pull the image
    #[arg(long, value_name = "WHEN", default_value = "missing")]
    #[arg(value_parser = ["always", "missing", "never"])]
    pub pull: String,

    /// Do not print pull progress
    #[arg(short, long)]
    pub quiet: bool,

    /// Memory limit: bytes or a size such as 512k, 64m, 1g
    #[arg(short, long, value_name = "SIZE", help_heading = RESOURCES)]
    pub memory: Option<String>,

    /// Memory plus swap limit ("-1" for unlimited swap)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true, help_heading = RESOURCES)]
    pub memory_swap: Option<String>,

    /// Soft memory limit
    #[arg(long, value_name = "SIZE", help_heading = RESOURCES)]
    pub memory_reservation: Option<String>,

    /// Number of CPUs, e.g. 0.5 or 2
    #[arg(long, value_name = "N", help_heading = RESOURCES)]
    pub cpus: Option<f64>,

    /// Relative CPU weight (default 1024)
    #[arg(short = 'c', long, value_name = "N", help_heading = RESOURCES)]
    pub cpu_shares: Option<u64>,

    /// CFS period in microseconds
    #[arg(long, value_name = "USEC", help_heading = RESOURCES)]
    pub cpu_period: Option<u64>,

    /// CFS quota in microseconds per period (-1 for none)
    #[arg(long, value_name = "USEC", allow_negative_numbers = true, help_heading = RESOURCES)]
    pub cpu_quota: Option<i64>,

    /// CPUs the container may run on, e.g. 0-3 or 0,2
    #[arg(long, value_name = "LIST", help_heading = RESOURCES)]
    pub cpuset_cpus: Option<String>,

    /// Memory nodes the container may use, e.g. 0-1
    #[arg(long, value_name = "LIST", help_heading = RESOURCES)]
    pub cpuset_mems: Option<String>,

    /// Maximum number of processes (-1 for unlimited)
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = RESOURCES)]
    pub pids_limit: Option<i64>,

    /// Resource limit: NAME=SOFT[:HARD], e.g. nofile=1024:2048
    #[arg(long, value_name = "NAME=SOFT[:HARD]", help_heading = RESOURCES)]
    pub ulimit: Vec<String>,

    /// Size of /dev/shm (default 64m)
    #[arg(long, value_name = "SIZE", help_heading = RESOURCES)]
    pub shm_size: Option<String>,

    /// Give the container all capabilities and devices
    #[arg(long, help_heading = SECURITY)]
    pub privileged: bool,

    /// Add a Linux capability, e.g. NET_ADMIN (or ALL)
    #[arg(long, value_name = "CAP", help_heading = SECURITY)]
    pub cap_add: Vec<String>,

    /// Drop a Linux capability, e.g. CHOWN (or ALL)
    #[arg(long, value_name = "CAP", help_heading = SECURITY)]
    pub cap_drop: Vec<String>,

    /// Mount the container's root filesystem read-only
    #[arg(long, help_heading = SECURITY)]
    pub read_only: bool,

    /// Set a namespaced kernel parameter: NAME=VALUE, e.g. net.ipv4.ip_forward=1
    #[arg(long, value_name = "NAME=VALUE", help_heading = SECURITY)]
    pub sysctl: Vec<String>,

    /// Network to join: none, host, bridge or a network name
    #[arg(long, alias = "net", value_name = "NETWORK", default_value = "bridge", help_heading = NETWORK)]
    pub network: String,

    /// Another name the container has on its (user-defined) network
    #[arg(long, alias = "net-alias", value_name = "NAME", help_heading = NETWORK)]
    pub network_alias: Vec<String>,

    /// Fixed IPv4 address on a user-defined network, e.g. 192.168.10.50
    #[arg(long, value_name = "IPV4", help_heading = NETWORK)]
    pub ip: Option<std::net::Ipv4Addr>,

    /// Container hostname (default: the short container ID)
    #[arg(short, long, value_name = "NAME", help_heading = NETWORK)]
    pub hostname: Option<String>,

    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO] (no HOST_PORT: a random one)
    #[arg(short, long, value_name = "PORTS", help_heading = NETWORK)]
    pub publish: Vec<String>,

    /// Publish every port the image exposes to a random host port
    #[arg(short = 'P', long, help_heading = NETWORK)]
    pub publish_all: bool,

    /// DNS server for /etc/resolv.conf
    #[arg(long, value_name = "IP", help_heading = NETWORK)]
    pub dns: Vec<String>,

    /// Extra /etc/hosts entry: HOST:IP
    #[arg(long, value_name = "HOST:IP", help_heading = NETWORK)]
    pub add_host: Vec<String>,

    /// The image, then the command and its arguments (default: the image's entrypoint and command);
    /// everything after the image goes to the container, hyphens included
    // One positional, not two: with `image` separate, clap would still parse a berth flag right after the
    // image (`berth run postgres -c x` would set --cpu-shares). Read it through `image()` and `command()`.
    #[arg(value_names = ["IMAGE", "COMMAND"], required = true, num_args = 1.., trailing_var_arg = true)]
    pub image_and_command: Vec<String>,
}

impl CreateArgs {
    /// The image reference: the first positional argument.
    pub fn image(&self) -> &str {
        &self.image_and_command[0] // clap guarantees at least one value
    }

    /// The command and its arguments, empty when the image's default is wanted.
    pub fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

/// `berth start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output (and forward signals) until it exits
    #[arg(short, long)]
    pub attach: bool,

    /// Attach the container's stdin
    #[arg(short, long)]
    pub interactive: bool,

    /// Containers to start, by name or (prefix of) ID
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10)
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub time: Option<i32>,

    /// Signal to send first (default: the container's --stop-signal, else SIGTERM)
    #[arg(short, long, value_name = "SIGNAL")]
    pub signal: Option<String>,

    /// Containers to stop
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Seconds to wait for the stop before SIGKILL
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub time: Option<i32>,

    /// Signal to send first when stopping
    #[arg(short, long, value_name = "SIGNAL")]
    pub signal: Option<String>,

    /// Containers to restart
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send: a name (KILL, SIGHUP) or a number
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,

    /// Containers to signal
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers
    #[arg(short, long)]
    pub force: bool,

    /// Also remove the containers' anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,

    /// Containers to remove
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth ps`, also `berth container ls`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,

    /// Print IDs only
    #[arg(short, long)]
    pub quiet: bool,

    /// Show the N most recently created containers, in any state
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,

    /// Show the most recently created container, in any state
    #[arg(short, long)]
    pub latest: bool,

    /// Do not truncate IDs and commands
    #[arg(long)]
    pub no_trunc: bool,

    /// Show the size of each container's writable layer
    #[arg(short, long)]
    pub size: bool,

    /// Filter: KEY=VALUE with KEY one of id, name, label, status, exited, ancestor
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Output format: table (default), json, or a template such as "{{.ID}} {{.Names}}"
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops
    #[arg(short, long)]
    pub follow: bool,

    /// Number of lines to show from the end, or "all"
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,

    /// Prefix each line with its RFC 3339 timestamp
    #[arg(short, long)]
    pub timestamps: bool,

    /// Only lines after this time: RFC 3339 (2024-05-01T10:00:00Z) or relative (42m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only lines before this time: RFC 3339 or relative
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// The container whose output to show
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth exec`.
///
/// `-h` stays help here (exec has no --hostname), unlike run/create.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,

    /// Keep stdin open and attached
    #[arg(short, long)]
    pub interactive: bool,

    /// Run the command in the background
    #[arg(short, long)]
    pub detach: bool,

    /// Set an environment variable: KEY=VALUE, or KEY to copy it from berth's environment
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// User to run as: name|uid[:group|gid]
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Give the command all capabilities
    #[arg(long)]
    pub privileged: bool,

    /// The running container
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// The command and its arguments; everything here goes to the container, hyphens included
    #[arg(value_name = "COMMAND", required = true, num_args = 1..)]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// What `inspect --type` restricts the lookup to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectType {
    Container,
    Image,
    Volume,
}

/// `berth inspect`, also `image inspect` and `container inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a template such as "{{.State.Pid}}" (default: JSON)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,

    /// Only look for objects of this type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<InspectType>,

    /// Include container sizes
    #[arg(short, long)]
    pub size: bool,

    /// Names or IDs of the objects
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

/// `berth wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers to wait for
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,

    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Output format: table (default), json, or a template such as "{{.Name}} {{.MemUsage}}"
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Containers to watch (default: all running)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author of the new image, e.g. "Jane Doe <jane@example.com>"
    #[arg(short, long)]
    pub author: Option<String>,

    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,

    /// Apply a Dockerfile instruction to the image config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
    /// VOLUME, WORKDIR, STOPSIGNAL
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,

    /// Pause the container while committing (--pause=false to not)
    #[arg(
        short,
        long,
        value_name = "BOOL",
        default_value_t = true,
        require_equals = true
    )]
    #[arg(action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,

    /// The container to commit
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Name of the new image: REPOSITORY[:TAG] (default: untagged)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The container to export
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth import`, also `image import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image config (CMD, ENV, WORKDIR, ...)
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,

    /// Commit message for the image history
    #[arg(short, long)]
    pub message: Option<String>,

    /// Platform to record in the image config, e.g. linux/amd64
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,

    /// Tarball to read (plain, gzip or zstd), or "-" for stdin
    #[arg(value_name = "FILE|-")]
    pub file: String,

    /// Name of the new image: REPOSITORY[:TAG] (default: untagged)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth images`, also `image ls`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images, including intermediate ones
    #[arg(short, long)]
    pub all: bool,

    /// Print IDs only
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Show digests
    #[arg(long)]
    pub digests: bool,

    /// Filter: KEY=VALUE with KEY one of dangling, label, reference, before, since
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Output format: table (default), json, or a template such as "{{.Repository}}:{{.Tag}}"
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Only images of this repository, optionally REPOSITORY:TAG
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

/// `berth rmi`, also `image rm`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove the image even if it has several tags or stopped containers use it
    #[arg(short, long)]
    pub force: bool,

    /// Do not remove untagged parent images
    #[arg(long)]
    pub no_prune: bool,

    /// Images to remove, by reference or (prefix of) ID
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `berth tag`, also `image tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image: reference or ID
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,

    /// New name for it
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `berth pull`, also `image pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform of a multi-platform image: OS/ARCH[/VARIANT] (default: this machine's)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,

    /// Print only the image reference
    #[arg(short, long)]
    pub quiet: bool,

    /// The image: NAME[:TAG] or NAME@DIGEST (short names are docker.io/library/NAME:latest)
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

/// `berth push`, also `image push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Print only the digest
    #[arg(short, long)]
    pub quiet: bool,

    /// The local image: NAME[:TAG] (or an ID when a TARGET is given)
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// Where to push it, if not to the image's own name: [REGISTRY/]NAME[:TAG]
    #[arg(value_name = "TARGET")]
    pub target: Option<String>,
}

/// `berth login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,

    /// Password (visible in the process list: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,

    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,

    /// The registry, e.g. localhost:5000 (default: docker.io)
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

/// `berth logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (default: docker.io)
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

/// The formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaveFormat {
    /// docker save's format (manifest.json), for docker load and podman load
    DockerArchive,
    /// an OCI image layout in a tar (index.json)
    OciArchive,
}

/// `berth save`, also `image save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Archive format
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: SaveFormat,

    /// Images to save, by reference or ID
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `berth load`, also `image load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file instead of standard input (plain, gzip or zstd)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// `berth history`, also `image history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,

    /// Print IDs only
    #[arg(short, long)]
    pub quiet: bool,

    /// Sizes and dates in human-readable form
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub human: bool,

    /// Output format: table (default), json, or a template such as "{{.CreatedBy}}"
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// `berth image prune`.
#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove all images no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Filter: until=TIME, label=KEY[=VALUE]
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// `berth container prune`.
#[derive(Debug, Args)]
pub struct ContainerPruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Filter: until=TIME, label=KEY[=VALUE]
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

const NETWORK_EXAMPLES: &str = "\
Examples:
  berth network create --subnet 192.168.10.0/24 testbridge
  berth run -d --name db --network testbridge busybox httpd -f -p 80
  berth run --rm --network testbridge busybox wget -qO- http://db/
  berth network ls
  berth network rm testbridge";

/// `berth network ...`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Show networks as JSON
    Inspect(NetworkInspectArgs),
    /// Remove networks (refused while containers use them)
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove every network no container uses
    Prune(NetworkPruneArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

/// `berth network connect`.
#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Another name for the container on this network
    #[arg(long, value_name = "NAME")]
    pub alias: Vec<String>,
    /// Fixed IPv4 address on the network
    #[arg(long, value_name = "IPV4")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Network
    pub network: String,
    /// Container
    pub container: String,
}

/// `berth network disconnect`.
#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Accepted for docker compatibility (disconnecting never needs force)
    #[arg(short, long)]
    pub force: bool,
    /// Network
    pub network: String,
    /// Container
    pub container: String,
}

/// `berth network create`.
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Network driver (only "bridge")
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form, e.g. 192.168.10.0/24 (default: a free one)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address (default: the first address of the subnet)
    #[arg(long)]
    pub gateway: Option<String>,
    /// No route out of the host
    #[arg(long)]
    pub internal: bool,
    /// Set metadata: KEY=VALUE
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Network name
    pub name: String,
}

/// `berth network ls`.
#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only names
    #[arg(short, long)]
    pub quiet: bool,
    /// "json", "table" or a template such as "{{.Name}}"
    #[arg(long)]
    pub format: Option<String>,
}

/// `berth network inspect`.
#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Go-like template, e.g. "{{.IPAM}}"
    #[arg(short, long)]
    pub format: Option<String>,
    /// Networks
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `berth network rm`.
#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Networks
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `berth network prune`.
#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `berth port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// Container
    pub container: String,
    /// Only this port, e.g. 80/tcp
    pub port: Option<String>,
}

/// `berth volume ...`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    #[command(after_help = VOLUME_CREATE_EXAMPLES)]
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list", after_help = VOLUME_LS_EXAMPLES)]
    Ls(VolumeLsArgs),
    /// Show volumes as JSON
    #[command(after_help = VOLUME_INSPECT_EXAMPLES)]
    Inspect(VolumeInspectArgs),
    /// Remove volumes
    #[command(visible_alias = "remove", after_help = VOLUME_RM_EXAMPLES)]
    Rm(VolumeRmArgs),
    /// Remove volumes no container uses
    #[command(after_help = VOLUME_PRUNE_EXAMPLES)]
    Prune(VolumePruneArgs),
}

/// `berth volume create`.
#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Volume driver (only "local")
    #[arg(short, long, value_name = "DRIVER", default_value = "local")]
    pub driver: String,

    /// Set a metadata label: KEY=VALUE
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Driver option: KEY=VALUE, e.g. type=tmpfs, device=tmpfs, o=size=64m
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub opt: Vec<String>,

    /// Name of the volume (default: a generated one)
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

/// `berth volume ls`.
#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Print names only
    #[arg(short, long)]
    pub quiet: bool,

    /// Filter: KEY=VALUE with KEY one of name, label, dangling, driver
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Output format: table (default), json, or a template such as "{{.Name}}"
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `berth volume inspect`.
#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format the output with a template such as "{{.Mountpoint}}" (default: JSON)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,

    /// Volumes to show
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

/// `berth volume rm`.
#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Remove even if containers use them, and ignore missing ones
    #[arg(short, long)]
    pub force: bool,

    /// Volumes to remove
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

/// `berth volume prune`.
#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Remove named unused volumes too, not only anonymous ones
    #[arg(short, long)]
    pub all: bool,

    /// Filter: label=KEY[=VALUE]
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// `berth image ...`: the image commands under one roof, same arguments as the top-level ones.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list", after_help = IMAGE_LS_EXAMPLES)]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove", visible_alias = "rmi", after_help = IMAGE_RM_EXAMPLES)]
    Rm(RmiArgs),
    /// Show images as JSON
    #[command(after_help = IMAGE_INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Give an image a new name
    #[command(after_help = IMAGE_TAG_EXAMPLES)]
    Tag(TagArgs),
    /// Create an image from a root filesystem tarball
    #[command(after_help = IMAGE_IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Remove unused images
    #[command(after_help = IMAGE_PRUNE_EXAMPLES)]
    Prune(ImagePruneArgs),
    /// Download an image from a registry
    #[command(after_help = PULL_EXAMPLES)]
    Pull(PullArgs),
    /// Upload an image to a registry
    #[command(after_help = PUSH_EXAMPLES)]
    Push(PushArgs),
    /// Write images to a tar archive
    #[command(after_help = SAVE_EXAMPLES)]
    Save(SaveArgs),
    /// Load images from a tar archive
    #[command(after_help = LOAD_EXAMPLES)]
    Load(LoadArgs),
    /// Show the history of an image
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
}

/// `berth container ...`: the container commands under one roof, same arguments as the top-level ones.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_alias = "list", visible_alias = "ps", after_help = CONTAINER_LS_EXAMPLES)]
    Ls(PsArgs),
    /// Create and start a container from an image
    #[command(override_usage = "berth container run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Create a container without starting it
    #[command(override_usage = "berth container create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// Start one or more stopped containers
    #[command(after_help = START_EXAMPLES)]
    Start(StartArgs),
    /// Stop running containers
    #[command(after_help = STOP_EXAMPLES)]
    Stop(StopArgs),
    /// Restart one or more containers
    #[command(after_help = RESTART_EXAMPLES)]
    Restart(RestartArgs),
    /// Send a signal to running containers
    #[command(after_help = KILL_EXAMPLES)]
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove", after_help = CONTAINER_RM_EXAMPLES)]
    Rm(RmArgs),
    /// Show the output of a container
    #[command(after_help = LOGS_EXAMPLES)]
    Logs(LogsArgs),
    /// Run a command in a running container
    #[command(override_usage = "berth container exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Show containers as JSON
    #[command(after_help = CONTAINER_INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Block until containers stop, then print their exit codes
    #[command(after_help = WAIT_EXAMPLES)]
    Wait(WaitArgs),
    /// Show live resource usage of containers
    #[command(after_help = STATS_EXAMPLES)]
    Stats(StatsArgs),
    /// Create a new image from a container's changes
    #[command(after_help = COMMIT_EXAMPLES)]
    Commit(CommitArgs),
    /// Write a container's filesystem as a tar archive
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Remove all stopped containers
    #[command(after_help = CONTAINER_PRUNE_EXAMPLES)]
    Prune(ContainerPruneArgs),
}

/// `berth system ...`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Remove stopped containers, dangling images and what a crash left behind
    #[command(after_help = SYSTEM_PRUNE_EXAMPLES)]
    Prune(SystemPruneArgs),
}

/// `berth system prune`.
#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Remove all unused images, not only dangling ones
    #[arg(short, long)]
    pub all: bool,

    /// Remove unused anonymous volumes too
    #[arg(long)]
    pub volumes: bool,
}

/// `berth completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to generate the script for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `berth version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format: json, or a template such as "{{.Version}}"
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

const RUN_EXAMPLES: &str = "\
Examples:
  berth run --rm -ti busybox sh
  berth run -d --name web -m 64m --cpus 0.5 busybox httpd -f -p 8080
  berth run --rm -e GREETING=hi -v data:/data -w /data busybox sh -c 'echo $GREETING > msg'
  berth run --rm --read-only --cap-drop ALL -u 1000:1000 --pids-limit 64 busybox id";

const CREATE_EXAMPLES: &str = "\
Examples:
  berth create --name job busybox sleep 60
  berth create -ti --name shell -h box busybox sh
  berth create --name web --restart unless-stopped -p 8080:80 busybox httpd -f -p 80";

const START_EXAMPLES: &str = "\
Examples:
  berth start job
  berth start -ai shell
  berth start web db cache";

const STOP_EXAMPLES: &str = "\
Examples:
  berth stop web
  berth stop -t 3 web db
  berth stop -s SIGINT -t 30 job";

const RESTART_EXAMPLES: &str = "\
Examples:
  berth restart web
  berth restart -t 0 web db";

const KILL_EXAMPLES: &str = "\
Examples:
  berth kill web
  berth kill -s HUP web
  berth kill --signal=SIGUSR1 web db";

const RM_EXAMPLES: &str = "\
Examples:
  berth rm job
  berth rm -f web
  berth rm -v $(berth ps -aq -f status=exited)";

const PS_EXAMPLES: &str = "\
Examples:
  berth ps
  berth ps -a --no-trunc
  berth ps -aq -f status=exited
  berth ps --format '{{.ID}} {{.Names}} {{.Status}}'";

const LOGS_EXAMPLES: &str = "\
Examples:
  berth logs web
  berth logs -f --tail 20 web
  berth logs -t --since 10m web";

const EXEC_EXAMPLES: &str = "\
Examples:
  berth exec -ti web sh
  berth exec web ls -la /var/www
  berth exec -u app -w /home/app -e DEBUG=1 web env
  berth exec -d web sh -c 'sleep 100'";

const INSPECT_EXAMPLES: &str = "\
Examples:
  berth inspect web
  berth inspect -f '{{.State.Pid}}' web
  berth inspect --type image busybox";

const WAIT_EXAMPLES: &str = "\
Examples:
  berth wait job
  berth run -d --name job busybox sh -c 'exit 3' && berth wait job";

const STATS_EXAMPLES: &str = "\
Examples:
  berth stats
  berth stats --no-stream web
  berth stats -a --format '{{.Name}} {{.MemUsage}}'";

const COMMIT_EXAMPLES: &str = "\
Examples:
  berth commit web web-snapshot
  berth commit -m 'add index' -a 'Jane <jane@example.com>' web site:v2
  berth commit -c 'CMD [\"httpd\", \"-f\"]' -c 'EXPOSE 80' web site:latest";

const EXPORT_EXAMPLES: &str = "\
Examples:
  berth export web > web.tar
  berth export -o web.tar web";

const IMPORT_EXAMPLES: &str = "\
Examples:
  berth import busybox.tar busybox
  berth import -c 'CMD [\"sh\"]' -m 'from scratch' rootfs.tar.gz mybox:1.0
  cat rootfs.tar | berth import - mybox";

const PULL_EXAMPLES: &str = "\
Examples:
  berth pull busybox                             docker.io/library/busybox:latest
  berth pull localhost:5000/team/app:1.4
  berth pull --platform linux/arm64 alpine:3.20
  berth pull alpine@sha256:<digest>

Registries on loopback addresses may use plain HTTP; list others in BERTH_INSECURE_REGISTRIES.";

const PUSH_EXAMPLES: &str = "\
Examples:
  berth push localhost:5000/me/app:dev
  berth push app:dev localhost:5000/me/app:dev

Layers the registry holds in another repository the image was pulled from or pushed to are mounted
from there, not sent again. Blobs above 64 MiB go in chunks (BERTH_PUSH_CHUNK_SIZE bytes to change).";

const LOGIN_EXAMPLES: &str = "\
Examples:
  berth login -u me localhost:5000
  echo \"$TOKEN\" | berth login -u me --password-stdin registry.example

Credentials go to $BERTH_CONFIG/auth.json, or ~/.docker/config.json when BERTH_CONFIG is unset.";

const LOGOUT_EXAMPLES: &str = "\
Examples:
  berth logout localhost:5000";

const SAVE_EXAMPLES: &str = "\
Examples:
  berth save -o busybox.tar busybox
  berth save -o apps.tar app:1.4 app:1.5 busybox
  berth save --format oci-archive -o app.oci.tar app:1.4
  berth save busybox | gzip > busybox.tar.gz";

const LOAD_EXAMPLES: &str = "\
Examples:
  berth load -i busybox.tar
  berth load < app.oci.tar
  podman save alpine | berth load";

const HISTORY_EXAMPLES: &str = "\
Examples:
  berth history busybox
  berth history --no-trunc --format '{{.CreatedBy}}' app:1.4";

const IMAGES_EXAMPLES: &str = "\
Examples:
  berth images
  berth images -q busybox
  berth images --digests --no-trunc
  berth images -f dangling=true";

const RMI_EXAMPLES: &str = "\
Examples:
  berth rmi mybox:1.0
  berth rmi -f busybox
  berth rmi $(berth images -q -f dangling=true)";

const TAG_EXAMPLES: &str = "\
Examples:
  berth tag busybox mybox:1.0
  berth tag 3f57d9401f8d registry.example.com/team/box:latest";

const VOLUME_EXAMPLES: &str = "\
Examples:
  berth volume create data
  berth volume ls
  berth run --rm -v data:/data busybox ls /data
  berth volume rm data";

const VOLUME_CREATE_EXAMPLES: &str = "\
Examples:
  berth volume create data
  berth volume create --label team=web cache
  berth volume create -o type=tmpfs -o device=tmpfs -o o=size=64m scratch";

const VOLUME_LS_EXAMPLES: &str = "\
Examples:
  berth volume ls
  berth volume ls -q -f dangling=true
  berth volume ls --format '{{.Name}} {{.Mountpoint}}'";

const VOLUME_INSPECT_EXAMPLES: &str = "\
Examples:
  berth volume inspect data
  berth volume inspect -f '{{.Mountpoint}}' data";

const VOLUME_RM_EXAMPLES: &str = "\
Examples:
  berth volume rm data
  berth volume rm -f data cache";

const VOLUME_PRUNE_EXAMPLES: &str = "\
Examples:
  berth volume prune
  berth volume prune -af";

const IMAGE_EXAMPLES: &str = "\
Examples:
  berth image ls
  berth image import busybox.tar busybox
  berth image tag busybox mybox:1.0
  berth image prune -af";

const IMAGE_LS_EXAMPLES: &str = "\
Examples:
  berth image ls
  berth image ls -q busybox
  berth image ls -f dangling=true";

const IMAGE_RM_EXAMPLES: &str = "\
Examples:
  berth image rm mybox:1.0
  berth image rm -f busybox";

const IMAGE_INSPECT_EXAMPLES: &str = "\
Examples:
  berth image inspect busybox
  berth image inspect -f '{{.Config.Cmd}}' busybox";

const IMAGE_TAG_EXAMPLES: &str = "\
Examples:
  berth image tag busybox mybox:1.0
  berth image tag mybox:1.0 mybox:latest";

const IMAGE_IMPORT_EXAMPLES: &str = "\
Examples:
  berth image import busybox.tar busybox
  cat rootfs.tar | berth image import - mybox";

const IMAGE_PRUNE_EXAMPLES: &str = "\
Examples:
  berth image prune
  berth image prune -af";

const CONTAINER_EXAMPLES: &str = "\
Examples:
  berth container ls -a
  berth container run --rm busybox echo hi
  berth container rm -f web
  berth container prune -f";

const CONTAINER_LS_EXAMPLES: &str = "\
Examples:
  berth container ls
  berth container ls -aq
  berth container ls --format json";

const CONTAINER_RM_EXAMPLES: &str = "\
Examples:
  berth container rm job
  berth container rm -fv web";

const CONTAINER_INSPECT_EXAMPLES: &str = "\
Examples:
  berth container inspect web
  berth container inspect -f '{{.State.Status}}' web";

const CONTAINER_PRUNE_EXAMPLES: &str = "\
Examples:
  berth container prune
  berth container prune -f";

const SYSTEM_EXAMPLES: &str = "\
Examples:
  berth system prune
  berth system prune -af --volumes";

const SYSTEM_PRUNE_EXAMPLES: &str = "\
Examples:
  berth system prune
  berth system prune -f
  berth system prune -af --volumes";

const COMPLETION_EXAMPLES: &str = "\
Examples:
  berth completion bash > /etc/bash_completion.d/berth
  berth completion zsh > \"${fpath[1]}/_berth\"
  berth completion fish > ~/.config/fish/completions/berth.fish";

const VERSION_EXAMPLES: &str = "\
Examples:
  berth version
  berth version --format json
  berth --version";

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Command {
        let argv = std::iter::once("berth").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    fn run(args: &[&str]) -> RunArgs {
        match parse(args) {
            Command::Run(run) => run,
            other => panic!("not run: {other:?}"),
        }
    }

    fn fails(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).is_err()
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn everything_after_the_image_goes_to_the_container() {
        let r = run(&["run", "busybox", "ls", "-la", "/"]);
        assert_eq!(r.create.image(), "busybox");
        assert_eq!(r.create.command(), ["ls", "-la", "/"]);

        // Even when the first argument looks like one of berth's own flags.
        let r = run(&["run", "-d", "postgres", "-c", "shared_buffers=256MB", "--rm"]);
        assert!(r.detach);
        assert!(!r.create.rm);
        assert_eq!(r.create.cpu_shares, None);
        assert_eq!(r.create.command(), ["-c", "shared_buffers=256MB", "--rm"]);

        let r = run(&[
            "run", "-d", "--name", "web", "-m", "64m", "--cpus", "0.5", "busybox", "httpd", "-f",
        ]);
        assert_eq!(r.create.name.as_deref(), Some("web"));
        assert_eq!(r.create.memory.as_deref(), Some("64m"));
        assert_eq!(r.create.cpus, Some(0.5));
        assert_eq!(r.create.command(), ["httpd", "-f"]);
    }

    #[test]
    fn image_alone_means_default_command() {
        let r = run(&["run", "busybox"]);
        assert_eq!(r.create.image(), "busybox");
        assert!(r.create.command().is_empty());
        assert!(fails(&["run", "--rm"]), "the image is required");
    }

    #[test]
    fn repeatable_env_and_volume() {
        let r = run(&[
            "run",
            "-e",
            "A=1",
            "--env",
            "B",
            "-eC=3",
            "-v",
            "/tmp:/data",
            "--volume=v:/v:ro",
            "img",
        ]);
        assert_eq!(r.create.env, ["A=1", "B", "C=3"]);
        assert_eq!(r.create.volume, ["/tmp:/data", "v:/v:ro"]);
    }

    #[test]
    fn combined_short_flags() {
        let r = run(&["run", "-ti", "--rm", "busybox", "sh"]);
        assert!(r.create.tty && r.create.interactive && r.create.rm);
        assert!(!r.detach);
        let r = run(&["run", "-dit", "busybox"]);
        assert!(r.detach && r.create.tty && r.create.interactive);
        match parse(&["exec", "-ti", "web", "sh"]) {
            Command::Exec(e) => {
                assert!(e.tty && e.interactive);
                assert_eq!(e.container, "web");
                assert_eq!(e.command, ["sh"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_h_is_hostname_for_run() {
        let r = run(&["run", "-h", "box", "busybox"]);
        assert_eq!(r.create.hostname.as_deref(), Some("box"));
        let err = Cli::try_parse_from(["berth", "run", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn run_defaults() {
        let c = run(&["run", "busybox"]).create;
        assert_eq!(c.network, "bridge");
        assert_eq!(c.pull, "missing");
        assert_eq!(c.restart, "no");
        let c = run(&[
            "run",
            "--net",
            "host",
            "--pids-limit",
            "-1",
            "--memory-swap",
            "-1",
            "busybox",
        ])
        .create;
        assert_eq!(c.network, "host");
        assert_eq!(c.pids_limit, Some(-1));
        assert_eq!(c.memory_swap.as_deref(), Some("-1"));
    }

    #[test]
    fn exec_passes_hyphens_on() {
        match parse(&["exec", "web", "ls", "-la"]) {
            Command::Exec(e) => assert_eq!(e.command, ["ls", "-la"]),
            other => panic!("{other:?}"),
        }
        assert!(fails(&["exec", "web"]), "the command is required");
    }

    #[test]
    fn stop_time_and_alias() {
        match parse(&["stop", "-t", "3", "web", "db"]) {
            Command::Stop(s) => {
                assert_eq!(s.time, Some(3));
                assert_eq!(s.containers, ["web", "db"]);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["stop", "--timeout", "-1", "web"]) {
            Command::Stop(s) => assert_eq!(s.time, Some(-1)),
            other => panic!("{other:?}"),
        }
        assert!(fails(&["stop"]), "at least one container");
    }

    #[test]
    fn kill_signal() {
        match parse(&["kill", "-s", "HUP", "web"]) {
            Command::Kill(k) => assert_eq!(k.signal, "HUP"),
            other => panic!("{other:?}"),
        }
        match parse(&["kill", "web"]) {
            Command::Kill(k) => assert_eq!(k.signal, "KILL"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commit_pause_defaults_to_true() {
        match parse(&["commit", "web", "snap:1"]) {
            Command::Commit(c) => {
                assert!(c.pause);
                assert_eq!(c.reference.as_deref(), Some("snap:1"));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["commit", "--pause=false", "web"]) {
            Command::Commit(c) => assert!(!c.pause),
            other => panic!("{other:?}"),
        }
        match parse(&["commit", "-p", "web"]) {
            Command::Commit(c) => assert!(c.pause && c.container == "web"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nested_commands_reuse_top_level_args() {
        assert!(matches!(
            parse(&["image", "ls", "-q"]),
            Command::Image(ImageCommand::Ls(ImagesArgs { quiet: true, .. }))
        ));
        assert!(matches!(
            parse(&["image", "rm", "-f", "x"]),
            Command::Image(ImageCommand::Rm(RmiArgs { force: true, .. }))
        ));
        assert!(matches!(
            parse(&["container", "ps", "-a"]),
            Command::Container(ContainerCommand::Ls(PsArgs { all: true, .. }))
        ));
        assert!(matches!(
            parse(&["volume", "prune", "-af"]),
            Command::Volume(VolumeCommand::Prune(VolumePruneArgs {
                all: true,
                force: true,
                ..
            }))
        ));
        assert!(matches!(
            parse(&["system", "prune", "-f", "--volumes"]),
            Command::System(SystemCommand::Prune(SystemPruneArgs {
                force: true,
                volumes: true,
                ..
            }))
        ));
        assert!(matches!(
            parse(&["completion", "bash"]),
            Command::Completion(CompletionArgs { shell: Shell::Bash })
        ));
    }

    #[test]
    fn inspect_type_and_ps_options() {
        match parse(&["inspect", "--type", "image", "-f", "{{.Id}}", "busybox"]) {
            Command::Inspect(i) => assert_eq!(i.kind, Some(InspectType::Image)),
            other => panic!("{other:?}"),
        }
        match parse(&[
            "ps",
            "-aq",
            "-f",
            "status=exited",
            "-f",
            "name=web",
            "--format",
            "{{.ID}}",
        ]) {
            Command::Ps(p) => {
                assert!(p.all && p.quiet);
                assert_eq!(p.filter, ["status=exited", "name=web"]);
                assert_eq!(p.format.as_deref(), Some("{{.ID}}"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn global_flags_anywhere_before_the_image() {
        let cli = Cli::try_parse_from(["berth", "ps", "--root", "/tmp/b", "--log-level", "debug"]).unwrap();
        assert_eq!(cli.root, PathBuf::from("/tmp/b"));
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn unknown_flags_are_errors() {
        assert!(fails(&["ps", "--bogus"]));
        assert!(fails(&["run", "--bogus", "busybox"]));
        assert!(fails(&["rm", "-z", "web"]));
        assert!(fails(&["frobnicate"]));
    }

    #[test]
    fn version_flag() {
        let err = Cli::try_parse_from(["berth", "--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
