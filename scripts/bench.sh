#!/usr/bin/env bash
# Benchmarks berth against the kernel floor, crun, runc and podman (`make bench`); prints a table and writes
# BENCHMARKS.md. Needs root. Everything it creates (containers, podman storage, bundles, berth roots, cgroups,
# berth's and podman's networks, bridges and nft tables, a local registry) lives under one temp dir or is named
# after it, and is removed at the end, on failure and on Ctrl-C. Sections: start-up, idle monitor memory, many
# containers, networking (scripts/bench/net.sh), images: pull, save, load (scripts/bench/images.sh).
#
# Environment:
#   BERTH_BIN          berth binary (default target/release/berth; built with `cargo build --release` if missing)
#   BERTH_TEST_IMAGE   busybox rootfs tar to use (default: made with scripts/mkimage.sh)
#   BENCH_N            timed runs per start-up measurement (default 30); BENCH_WARMUP untimed ones first (3)
#   BENCH_MANY         containers in the many-containers test (default 50); BENCH_REPS ps/exec samples (20)
#   BENCH_PODMAN_MANY  0 skips podman's many-containers run (the slowest part, ~15 s)
#   BENCH_NET          0 skips the networking section (~75 s); BENCH_NET_N timed rounds there (default BENCH_N)
#   BENCH_WRK_ROUNDS   wrk rounds each way in the HTTP test (default 5); BENCH_WRK_SECS seconds per round (2)
#   BENCH_PULL         0 skips the images section (pull, save, load; ~45 s)
#   BENCH_PULL_REPS    reps per pull/save/load contender (default 5); BENCH_PULL_MIB size of the big layer (100)
#   BENCH_OUT          report file (default BENCHMARKS.md at the repo root)
#   BENCH_TMPDIR       where the temp dir goes (default /var/tmp: a disk, like /var/lib/berth)
#   BENCH_NICE         niceness for the whole run (default -10, so other load on a shared machine disturbs less;
#                      every contender inherits it alike); empty or 0 leaves it alone
#
# Method: wall-clock time of each command, taken by bash ($EPOCHREALTIME) around a plain fork+exec, output to
# /dev/null. The start-up measurements run interleaved (every round runs each contender once, in a fresh random
# order), so a noisy neighbour or a drifting CPU clock hits every contender alike.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME with a '.', sort -n, printf %f

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
N=${BENCH_N:-30}
WARMUP=${BENCH_WARMUP:-3}
MANY=${BENCH_MANY:-50}
REPS=${BENCH_REPS:-20}
PODMAN_MANY=${BENCH_PODMAN_MANY:-1}
NET=${BENCH_NET:-1}
PULL=${BENCH_PULL:-1}
out_md=${BENCH_OUT:-$repo/BENCHMARKS.md}
berth=${BERTH_BIN:-target/release/berth}
[[ $berth == /* ]] || berth=$repo/$berth

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (containers, cgroups, mounts)"
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 (\$EPOCHREALTIME)"
for n in N WARMUP MANY REPS; do
    [[ ${!n} =~ ^[0-9]+$ && ${!n} -ge 1 ]] || die "BENCH_$n must be a positive integer"
done

nice_to=${BENCH_NICE--10}
if [[ -n $nice_to && $nice_to != 0 ]]; then
    renice -n "$nice_to" -p $$ >/dev/null || say "renice $nice_to failed; running at the default priority"
fi
nice_now=$(awk '{ print $19 }' /proc/$$/stat)

if [[ ! -x $berth ]]; then
    say "building berth (cargo build --release)"
    cargo build --release >&2
    [[ -x $berth ]] || die "$berth still missing after the build (set BERTH_BIN?)"
fi

# --- peers -------------------------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
install_missing() {
    local missing=() p want=(crun runc podman conmon strace)
    [[ $NET != 0 ]] && want+=(wrk)
    [[ $PULL != 0 ]] && want+=(docker-registry skopeo)
    for p in "${want[@]}"; do
        if [[ $p == conmon ]]; then
            have conmon || [[ -x /usr/libexec/podman/conmon ]] || missing+=(conmon)
        else
            have "$p" || missing+=("$p")
        fi
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    if ! have apt-get; then
        say "not a Debian system; missing peers skipped: ${missing[*]}"
        return 0
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } ||
        say "could not install ${missing[*]}; continuing without what is missing"
}
install_missing

# crun 1.8 refuses hybrid cgroup hosts; the shared wrapper hides the v2 mount from it. Plain crun elsewhere.
crun_hybrid=$repo/../shared/tools/crun-hybrid
if [[ -x $crun_hybrid ]]; then
    crun_cmd=("$(realpath "$crun_hybrid")")
    crun_label="crun run (via ../shared/tools/crun-hybrid)"
else
    crun_cmd=(crun)
    crun_label="crun run"
fi

# --- temp state and cleanup ----------------------------------------------------------------------------------
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/berth-bench.XXXXXX")
work=$(realpath "$work")
broot=$work/berth
# A second berth root on tmpfs, for a diagnostic run without disk I/O (fsync, ext4 journal): set up later.
shm_work=""
shmroot=""
bundle=$work/bundle
samples=$work/samples
errlog=$work/errors.log # stderr of the measured commands
setuplog=$work/setup.log
nfail=0
idp=berth-bench-$$ # crun/runc container ids
podman_ready=0
acct_cg="" acct_base="" acct_orig="" # this run's CPU accounting cgroup: set up below
mkdir -p "$samples" "$bundle/rootfs"
: >"$errlog"

# cgroup hierarchies (v1 controllers, and the v2 mount: unified or /sys/fs/cgroup itself).
mapfile -t cg_roots < <(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts)
# Things created outside $work by the tools: removed at the end only if they did not exist before.
declare -A preexisting=()
note_preexisting() {
    local p
    for p in "$@"; do [[ -e $p ]] && preexisting[$p]=1; done
    return 0
}
for r in "${cg_roots[@]}"; do note_preexisting "$r/berth" "$r/libpod_parent"; done
note_preexisting /var/lib/containers /var/lib/containers/cache /var/lib/containers/cache/blob-info-cache-v1.boltdb \
    /run/containers /run/containers/networks /run/containers/networks/ipam.db /run/netns

podman_() { CONTAINERS_CONF=$work/podman/containers.conf podman --root "$work/podman/root" \
    --runroot "$work/podman/runroot" --tmpdir "$work/podman/tmp" "$@"; }

# Kills, by pid, the processes in the given cgroup dirs (relative to every hierarchy).
kill_cgroup_procs() {
    local rel r f pid
    for rel in "$@"; do
        for r in "${cg_roots[@]}"; do
            for f in "$r/$rel"/cgroup.procs "$r/$rel"/*/cgroup.procs; do
                [[ -r $f ]] || continue
                while read -r pid; do [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; done <"$f"
            done
        done
    done
}

# rmdir (never rm -r) of cgroup dirs, children first.
rmdir_cgroups() {
    local rel r d
    for rel in "$@"; do
        for r in "${cg_roots[@]}"; do
            [[ -d $r/$rel ]] || continue
            for d in "$r/$rel"/*/; do [[ -d $d ]] && rmdir "$d" 2>/dev/null; done
            rmdir "$r/$rel" 2>/dev/null
        done
    done
    return 0
}

cleanup() {
    local rc=$? i pid r p tags tag ids
    set +e
    trap - EXIT INT TERM
    say "cleaning up"
    for r in "$broot" "$shmroot"; do
        [[ -n $r && -d $r ]] || continue
        ids=$("$berth" --root "$r" ps -aq 2>/dev/null)
        [[ -n $ids ]] && "$berth" --root "$r" rm -f $ids >/dev/null 2>&1
        "$berth" --root "$r" network prune >/dev/null 2>&1
        # Should prune have failed: the default network's bridge and the root's nft table are named after it.
        tag=$(printf '%s' "$r" | sha256sum | cut -c1-8)
        [[ -e /sys/class/net/berth$tag ]] && ip link del "berth$tag" 2>/dev/null
        nft list table ip "berth-$tag" >/dev/null 2>&1 && nft delete table ip "berth-$tag" 2>/dev/null
    done
    if [[ $podman_ready -eq 1 ]]; then
        podman_ rm -f -a -t 0 >/dev/null 2>&1
        podman_ network prune -f >/dev/null 2>&1
    fi
    declare -F img_cleanup >/dev/null && img_cleanup
    # crun/runc containers of ours that `run` left behind (normally none).
    for i in $(runc list -q 2>/dev/null | grep "^$idp-"); do runc delete -f "$i" >/dev/null 2>&1; done
    for i in $(crun list -q 2>/dev/null | grep "^$idp-"); do "${crun_cmd[@]}" delete -f "$i" >/dev/null 2>&1; done
    # Whatever still runs: processes naming our temp dir (monitors, conmon), and those in our cgroups.
    for p in "$work" "$shm_work"; do
        [[ -n $p ]] || continue
        for pid in $(pgrep -f -- "$p/" 2>/dev/null); do
            [[ $pid -eq $$ || $pid -eq $BASHPID ]] || kill -9 "$pid" 2>/dev/null
        done
    done
    tags=()
    for r in "$broot" "$shmroot"; do
        [[ -n $r ]] && tags+=("berth/$(printf '%s' "$r" | sha256sum | cut -c1-8)")
    done
    kill_cgroup_procs "${tags[@]}"
    [[ -z ${preexisting[${cg_roots[0]}/libpod_parent]:-} ]] && kill_cgroup_procs libpod_parent
    sleep 0.2
    # Mounts under the temp dir (podman's overlay storage), deepest first, then the dir itself.
    for i in 1 2 3; do
        mapfile -t mnts < <(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
        [[ ${#mnts[@]} -eq 0 ]] && break
        for p in "${mnts[@]}"; do umount -l "$p" 2>/dev/null; done
    done
    rm -rf "$work"
    [[ -n $shm_work ]] && rm -rf "$shm_work"
    rmdir_cgroups "${tags[@]}"
    for r in "${cg_roots[@]}"; do
        [[ -z ${preexisting[$r/berth]:-} ]] && rmdir "$r/berth" 2>/dev/null
        [[ -z ${preexisting[$r/libpod_parent]:-} ]] && rmdir_cgroups libpod_parent
    done
    [[ -z ${preexisting[/var/lib/containers/cache/blob-info-cache-v1.boltdb]:-} ]] &&
        rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    # netavark's address database, its bridge and iptables-nft tables (when podman's bridge network ran).
    [[ -z ${preexisting[/run/containers/networks/ipam.db]:-} ]] && rm -f /run/containers/networks/ipam.db
    declare -F net_cleanup >/dev/null && net_cleanup
    for p in /var/lib/containers/cache /var/lib/containers /run/containers/networks /run/containers /run/netns; do
        [[ -z ${preexisting[$p]:-} ]] && rmdir "$p" 2>/dev/null
    done
    if [[ -n $acct_cg ]]; then # back to where this shell came from; then the accounting cgroup goes
        echo $$ >"$acct_base$acct_orig/cgroup.procs" 2>/dev/null
        kill_cgroup_procs "berth-bench-$$"
        sleep 0.1
        rmdir_cgroups "berth-bench-$$"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- timing ---------------------------------------------------------------------------------------------------
# time_once FILE CMD...: runs CMD (output discarded, errors to the log) and appends its wall time in µs to FILE.
time_once() {
    local file=$1 t0 t1 rc=0
    shift
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>>"$errlog" || rc=$?
    t1=$EPOCHREALTIME
    if [[ $rc -ne 0 ]]; then
        echo "exit $rc: $*" >>"$errlog"
        nfail=$((nfail + 1))
        return "$rc"
    fi
    echo $((${t1/./} - ${t0/./})) >>"$file"
}

# stats FILE: "median p90 min n" in ms (p90 by nearest rank), or "- - - 0" with no samples.
stats() {
    if [[ ! -s $1 ]]; then
        echo "- - - 0"
        return
    fi
    sort -n "$1" | awk '{ a[NR] = $1 } END {
        n = NR; med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        k = int(0.9 * n); if (k < 0.9 * n) k++; if (k < 1) k = 1
        printf "%.3f %.3f %.3f %d\n", med / 1000, a[k] / 1000, a[1] / 1000, n }'
}

# fmt_ms X: 1 decimal from 10 ms up, 2 below; "n/a" for "-".
fmt_ms() {
    [[ $1 == - ]] && { echo "n/a"; return; }
    awk -v x="$1" 'BEGIN { if (x >= 10) printf "%.1f ms", x; else printf "%.2f ms", x }'
}
secs() { if [[ $1 == - ]]; then echo "n/a"; else echo "$1 s"; fi; }
per_run() { awk -v t="$1" -v n="$MANY" 'BEGIN { if (t == "-") print "-"; else printf "%.3f", t * 1000 / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "-") print "n/a"; else printf "%.2f MiB", k / 1024 }'; }

# free_port VAR: sets VAR (not named p or i) to a TCP port on 127.0.0.1 that nobody listens on and this run has not handed out,
# below the ephemeral range (so no client socket takes it meanwhile).
declare -A ports_given=()
free_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${ports_given[$p]:-} ]] && continue
        [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]] || continue
        ports_given[$p]=1
        printf -v "$1" '%s' "$p"
        return 0
    done
    return 1
}

# --- setup ----------------------------------------------------------------------------------------------------
machine_kernel=$(uname -r)
machine_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine_cpu=${machine_cpu:-$(uname -m)}
machine_nproc=$(nproc)
machine_mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
    machine_cg="v2 (unified), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
else
    v1=$(awk '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] !~ /^(rw|ro|relatime|nosuid|nodev|noexec)$/) printf "%s ", o[i] }' /proc/self/mounts)
    v2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
    if [[ -n $v2 ]]; then
        v2c=$(cat "$v2/cgroup.controllers" 2>/dev/null)
        machine_cg="hybrid: v1 controllers ${v1% }; v2 at $v2 (controllers: ${v2c:-none})"
    else
        machine_cg="v1: ${v1% }"
    fi
fi
machine_fs=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# CPU pressure: the share of time some runnable task waited for a CPU (PSI), when the kernel has it.
cpu_psi() { awk '/^some/ { sub("avg60=", "", $3); print $3 "%"; exit }' /proc/pressure/cpu 2>/dev/null || echo "n/a"; }
psi_before=$(cpu_psi)
# How much CPU other work took during the run: the machine's busy time (/proc/stat: user nice system irq softirq
# steal) minus the bench's own, which is this shell's accounting cgroup (every process it starts, the ones that
# outlive their parent too: berth monitors, conmon, the registry) plus the containers' cgroups (berth/<root tag>,
# libpod_parent). The load average after the run is no guide: the HTTP and pull tests keep both CPUs busy.
cpu_busy_s() { awk -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat; }
acct_kind=""
if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
    acct_base=/sys/fs/cgroup acct_kind=v2
    acct_orig=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
else
    acct_base=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpuacct(,|$)/ { print $2; exit }' /proc/self/mounts)
    [[ -n $acct_base ]] && acct_kind=v1 &&
        acct_orig=$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3 }' /proc/self/cgroup)
fi
acct_cg=""
if [[ -n $acct_kind && -n $acct_orig ]] && mkdir "$acct_base/berth-bench-$$" 2>/dev/null; then
    acct_cg=$acct_base/berth-bench-$$
    echo $$ >"$acct_cg/cgroup.procs" 2>/dev/null || { rmdir "$acct_cg"; acct_cg=""; }
fi
# cg_cpu_s DIR: CPU seconds used in the cgroup DIR and below, 0 if it does not exist.
cg_cpu_s() {
    if [[ $acct_kind == v1 && -r $1/cpuacct.usage ]]; then
        awk '{ printf "%.3f\n", $1 / 1e9 }' "$1/cpuacct.usage"
    elif [[ $acct_kind == v2 && -r $1/cpu.stat ]]; then
        awk '$1 == "usage_usec" { printf "%.3f\n", $2 / 1e6 }' "$1/cpu.stat"
    else
        echo 0
    fi
}
busy_s_before=$(cpu_busy_s)
libpod_s_before=$(cg_cpu_s "$acct_base/libpod_parent")
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
t_script0=$EPOCHREALTIME

image=${BERTH_TEST_IMAGE:-}
if [[ -z $image || ! -s $image ]]; then
    image=$work/busybox.tar
    scripts/mkimage.sh "$image" 2>>"$setuplog"
fi
say "berth root $broot"
"$berth" --root "$broot" import "$image" busybox >/dev/null
if [[ $(df -PT /dev/shm 2>/dev/null | awk 'NR == 2 { print $2 }') == tmpfs ]]; then
    shm_work=$(realpath "$(mktemp -d /dev/shm/berth-bench.XXXXXX)")
    shmroot=$shm_work/berth
    "$berth" --root "$shmroot" import "$image" busybox >/dev/null
fi
berth_version=$("$berth" --version 2>/dev/null | head -1)
berth_built=$(date -u -r "$berth" '+%Y-%m-%d %H:%M UTC')

# OCI bundle for crun and runc: the same rootfs, /bin/true, no terminal, the default namespaces (network too,
# like the --network none berth and podman run with here).
tar -xf "$image" -C "$bundle/rootfs"
oci_ok=0
if have runc || have crun; then
    if have runc; then (cd "$bundle" && runc spec); else (cd "$bundle" && crun spec); fi
    sed -i -e 's/"terminal": true/"terminal": false/' -e 's/^\([[:space:]]*\)"sh"$/\1"\/bin\/true"/' "$bundle/config.json"
    if grep -q '"/bin/true"' "$bundle/config.json" && grep -q '"terminal": false' "$bundle/config.json"; then
        oci_ok=1
    else
        say "could not adjust the bundle's config.json; skipping crun and runc"
    fi
fi

# podman: own storage, cgroupfs (no systemd), file events and locks, ulimits this host allows (no
# CAP_SYS_RESOURCE: podman's defaults for nofile and nproc would be refused).
podman_note=""
if have podman; then
    mkdir -p "$work/podman/root" "$work/podman/runroot" "$work/podman/tmp" "$work/podman/networks"
    nofile=$(ulimit -Hn)
    [[ $nofile == unlimited ]] && nofile=1048576
    nproc_lim=$(ulimit -Hu)
    [[ $nproc_lim == unlimited || $nproc_lim -gt 32768 ]] && nproc_lim=32768 # podman caps its own at 32768
    {
        echo "[containers]"
        echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc_lim:$nproc_lim\"]"
        echo "[engine]"
        echo "cgroup_manager = \"cgroupfs\""
        echo "events_logger = \"file\""
        echo "lock_type = \"file\"" # locks in --tmpdir, not the host-wide /dev/shm/libpod_lock
        if [[ ${crun_cmd[0]} != crun ]] && have crun; then
            echo "runtime = \"crun\""
            echo "[engine.runtimes]"
            echo "crun = [\"${crun_cmd[0]}\"]"
        fi
        echo "[network]"
        echo "network_config_dir = \"$work/podman/networks\"" # `network create` writes here, not /etc/containers
    } >"$work/podman/containers.conf"
    [[ ${crun_cmd[0]} != crun ]] && podman_note=" (its crun through crun-hybrid)"
    if podman_ import "$image" busybox >/dev/null 2>>"$setuplog"; then
        podman_ready=1
    else
        say "podman import failed; skipping podman:"
        tail -5 "$setuplog" >&2
    fi
fi

# --- contenders for the start-up measurements -----------------------------------------------------------------
seq_no=0
case_kernel() { unshare --fork --pid --mount --uts --ipc --net chroot "$bundle/rootfs" /bin/true; }
case_crun() { "${crun_cmd[@]}" run -b "$bundle" "$idp-crun-$seq_no"; }
case_runc() { runc run -b "$bundle" "$idp-runc-$seq_no"; }
# berth with --network none like podman, and like crun and runc with their empty network namespace (berth's
# default is its bridge network now: that costs more, and is measured in the networking section).
case_berth() { "$berth" --root "$broot" run --rm --network none busybox true; }
case_berthtmpfs() { "$berth" --root "$shmroot" run --rm --network none busybox true; }
case_podman() { podman_ run --rm --network none busybox true; }
# After a crun/runc run (untimed): delete the container if `run` did not.
after_crun() { [[ -d /run/crun/$idp-crun-$seq_no ]] && "${crun_cmd[@]}" delete -f "$idp-crun-$seq_no" >/dev/null 2>&1; return 0; }
after_runc() { [[ -d /run/runc/$idp-runc-$seq_no ]] && runc delete -f "$idp-runc-$seq_no" >/dev/null 2>&1; return 0; }
after_kernel() { :; }
after_berth() { :; }
after_berthtmpfs() { :; }
after_podman() { :; }

declare -A label=(
    [kernel]="kernel lower bound (unshare + chroot)"
    [crun]="$crun_label"
    [runc]="runc run"
    [berth]="berth run --rm --network none busybox true"
    [berthtmpfs]="berth run --rm, root on tmpfs (diagnostic)"
    [podman]="podman run --rm --network none$podman_note"
)
declare -A unavailable=()
declare -A failures=()
cases=()
try_case() { # preflight: one untimed run; a contender that fails is reported, not timed
    local c=$1 why=$2
    if [[ -n $why ]]; then
        unavailable[$c]=$why
        return
    fi
    seq_no=$((seq_no + 1))
    local before
    before=$(wc -l <"$errlog")
    if "case_$c" >/dev/null 2>>"$errlog"; then
        cases+=("$c")
    else
        unavailable[$c]="failed: $(tail -n +"$((before + 1))" "$errlog" | grep -v '^$' | head -1 | cut -c1-150)"
    fi
    "after_$c"
}
if have unshare && have chroot; then try_case kernel ""; else try_case kernel "unshare or chroot missing"; fi
if [[ $oci_ok -eq 1 ]] && have crun; then try_case crun ""; else try_case crun "crun or the bundle missing"; fi
if [[ $oci_ok -eq 1 ]] && have runc; then try_case runc ""; else try_case runc "runc or the bundle missing"; fi
try_case berth ""
[[ -n ${unavailable[berth]:-} ]] && die "berth run does not work: ${unavailable[berth]}"
if [[ $podman_ready -eq 1 ]]; then try_case podman ""; else try_case podman "podman missing or its setup failed"; fi
if [[ -n $shmroot ]]; then try_case berthtmpfs ""; else try_case berthtmpfs "/dev/shm is not a tmpfs"; fi

say "start-up: ${#cases[@]} contenders x ($WARMUP warmup + $N timed) rounds, interleaved"
for ((round = 0; round < WARMUP + N; round++)); do
    order=("${cases[@]}") # a fresh random order every round (Fisher-Yates)
    for ((k = ${#order[@]} - 1; k > 0; k--)); do
        j=$((RANDOM % (k + 1)))
        c=${order[k]} order[k]=${order[j]} order[j]=$c
    done
    for c in "${order[@]}"; do
        seq_no=$((seq_no + 1))
        f=$samples/$c.txt
        ((round < WARMUP)) && f=$samples/warmup.txt
        time_once "$f" "case_$c" || failures[$c]=$((${failures[$c]:-0} + 1))
        "after_$c"
    done
done
declare -A med=() p90=() mn=() cnt=()
all_cases=(kernel crun runc berth podman berthtmpfs)
for c in "${all_cases[@]}"; do
    read -r med[$c] p90[$c] mn[$c] cnt[$c] < <(stats "$samples/$c.txt")
done

# --- idle monitor memory --------------------------------------------------------------------------------------
# pss_rss PID: "PSS_KiB RSS_KiB" from smaps_rollup.
pss_rss() { awk '/^Pss:/ { p = $2 } /^Rss:/ { r = $2 } END { print (p == "" ? "-" : p), (r == "" ? "-" : r) }' "/proc/$1/smaps_rollup" 2>/dev/null || echo "- -"; }
ppid_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
settle=${BENCH_SETTLE:-1}

say "idle monitor memory"
mem_berth_pss=- mem_berth_rss=- mem_berth_comm=? mem_conmon_pss=- mem_conmon_rss=- mem_conmon_comm=?
"$berth" --root "$broot" run -d --network none --name bench-mem busybox sleep 1000 >/dev/null
pid=$("$berth" --root "$broot" inspect -f '{{.State.Pid}}' bench-mem)
mon=$(ppid_of "$pid")
sleep "$settle"
read -r mem_berth_pss mem_berth_rss < <(pss_rss "$mon")
mem_berth_comm=$(comm_of "$mon")
"$berth" --root "$broot" rm -f bench-mem >/dev/null
if [[ -n ${cnt[podman]:-} && ${cnt[podman]} -gt 0 ]]; then
    podman_ run -d --network none --name bench-mem busybox sleep 1000 >/dev/null
    pid=$(podman_ inspect -f '{{.State.Pid}}' bench-mem)
    mon=$(ppid_of "$pid")
    sleep "$settle"
    read -r mem_conmon_pss mem_conmon_rss < <(pss_rss "$mon")
    mem_conmon_comm=$(comm_of "$mon")
    podman_ rm -f -t 0 bench-mem >/dev/null
fi

# --- many detached containers ---------------------------------------------------------------------------------
# many ENGINE: runs $MANY detached sleeps one after another, then times ps and exec, sums the monitors' memory
# and removes them all. Sets many_<engine>_{total,ps,exec,rm,pss,rss,running}.
many() {
    local eng=$1 i t0 t1 pids pid mon p r sp=0 sr=0 nmon=0
    local -a cli
    if [[ $eng == berth ]]; then cli=("$berth" --root "$broot"); else cli=(podman_); fi
    local run_extra=(--network none)
    say "$eng: $MANY detached containers"
    t0=$EPOCHREALTIME
    for ((i = 1; i <= MANY; i++)); do
        "${cli[@]}" run -d "${run_extra[@]}" --name "bench-many-$i" busybox sleep 1000 >/dev/null 2>>"$errlog" ||
            { echo "$eng run -d #$i failed" >>"$errlog"; nfail=$((nfail + 1)); break; }
    done
    t1=$EPOCHREALTIME
    printf -v "many_${eng}_total" '%s' "$(awk -v d=$((${t1/./} - ${t0/./})) 'BEGIN { printf "%.3f", d / 1e6 }')"
    printf -v "many_${eng}_running" '%s' "$("${cli[@]}" ps -q 2>/dev/null | wc -l)"

    for ((i = 0; i < 2; i++)); do time_once "$samples/warmup.txt" "${cli[@]}" ps || true; done
    for ((i = 0; i < REPS; i++)); do time_once "$samples/ps-$eng.txt" "${cli[@]}" ps || true; done
    for ((i = 0; i < 2; i++)); do time_once "$samples/warmup.txt" "${cli[@]}" exec bench-many-1 true || true; done
    for ((i = 0; i < REPS; i++)); do
        time_once "$samples/exec-$eng.txt" "${cli[@]}" exec "bench-many-$((i % MANY + 1))" true || true
    done

    # Memory of all the monitors together (text pages are shared between them).
    for ((i = 1; i <= MANY; i++)); do
        pid=$("${cli[@]}" inspect -f '{{.State.Pid}}' "bench-many-$i" 2>/dev/null) || continue
        [[ $pid =~ ^[0-9]+$ && $pid -gt 0 ]] || continue
        mon=$(ppid_of "$pid")
        [[ -n $mon ]] || continue
        read -r p r < <(pss_rss "$mon")
        [[ $p == - ]] && continue
        sp=$((sp + p)) sr=$((sr + r)) nmon=$((nmon + 1))
    done
    if [[ $nmon -gt 0 ]]; then
        printf -v "many_${eng}_pss" '%s' $((sp / nmon))
        printf -v "many_${eng}_rss" '%s' $((sr / nmon))
    fi

    t0=$EPOCHREALTIME
    if [[ $eng == berth ]]; then
        # shellcheck disable=SC2046
        "${cli[@]}" rm -f $("${cli[@]}" ps -aq) >/dev/null 2>>"$errlog" || true
    else
        "${cli[@]}" rm -f -t 0 -a >/dev/null 2>>"$errlog" || true
    fi
    t1=$EPOCHREALTIME
    printf -v "many_${eng}_rm" '%s' "$(awk -v d=$((${t1/./} - ${t0/./})) 'BEGIN { printf "%.3f", d / 1e6 }')"
}
many_berth_total=- many_berth_running=0 many_berth_pss=- many_berth_rss=- many_berth_rm=-
many_podman_total=- many_podman_running=0 many_podman_pss=- many_podman_rss=- many_podman_rm=-
many berth
if [[ $PODMAN_MANY != 0 && -n ${cnt[podman]:-} && ${cnt[podman]} -gt 0 ]]; then many podman; fi
for e in berth podman; do
    read -r m p _ n < <(stats "$samples/ps-$e.txt")
    printf -v "ps_${e}_med" '%s' "$m"
    printf -v "ps_${e}_p90" '%s' "$p"
    read -r m p _ n < <(stats "$samples/exec-$e.txt")
    printf -v "exec_${e}_med" '%s' "$m"
    printf -v "exec_${e}_p90" '%s' "$p"
done

# --- networking and images (scripts/bench/net.sh, scripts/bench/images.sh) ------------------------------------
# shellcheck source=bench/net.sh
source scripts/bench/net.sh
# shellcheck source=bench/images.sh
source scripts/bench/images.sh
if [[ $NET != 0 ]]; then net_run; else net_skip_reason="BENCH_NET=0"; fi
if [[ $PULL != 0 ]]; then img_run; else img_skip_reason="BENCH_PULL=0"; fi

# --- where the time goes --------------------------------------------------------------------------------------
trace_md=""
if have strace && have python3; then
    say "tracing one berth run --rm"
    if strace -f -tt -T -o "$work/strace.txt" "$berth" --root "$broot" run --rm --network none busybox true >/dev/null 2>>"$errlog"; then
        trace_md=$(python3 scripts/bench/strace_report.py "$work/strace.txt" "${med[berth]}" 2>>"$errlog") || trace_md=""
    fi
fi
[[ -n $trace_md ]] || trace_md="_Not available: strace or python3 missing, or the traced run failed._"

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
psi_after=$(cpu_psi)
# Other work during the run: the machine's busy CPU time minus this script's own and its children's (bash's
# `times`; the registry added separately; berth monitors and conmon, which outlive their CLI and are nobody's
# waited-for child here, and kernel threads doing the bench's I/O count as other work: it is an upper bound).
# The load average after the run is no guide any more: the HTTP and pull tests keep both CPUs busy themselves.
own_s=0
other_pct=-
if [[ -n $acct_cg ]]; then
    for d in "$acct_cg" "$acct_base/berth/$(printf '%s' "$broot" | sha256sum | cut -c1-8)" \
        ${shmroot:+"$acct_base/berth/$(printf '%s' "$shmroot" | sha256sum | cut -c1-8)"}; do
        own_s=$(awk -v a="$own_s" -v b="$(cg_cpu_s "$d")" 'BEGIN { print a + b }')
    done
    own_s=$(awk -v a="$own_s" -v b="$(cg_cpu_s "$acct_base/libpod_parent")" -v b0="$libpod_s_before" 'BEGIN { print a + b - b0 }')
    other_pct=$(awk -v b0="$busy_s_before" -v b1="$(cpu_busy_s)" -v own="$own_s" -v n="$machine_nproc" \
        -v t0="$t_script0" -v t1="$EPOCHREALTIME" \
        'BEGIN { o = b1 - b0 - own; if (o < 0) o = 0; printf "%.0f", 100 * o / ((t1 - t0) * n) }')
fi
# Busy: a 1-minute load above 0.75 per CPU before the start, or other work taking over 20% of the CPU time during.
busy=$(awk -v a="${load_before%% *}" -v o="$other_pct" -v n="$machine_nproc" 'BEGIN { print (a > 0.75 * n || (o != "-" && o > 20)) ? 1 : 0 }')
elapsed=$(awk -v d=$((${EPOCHREALTIME/./} - ${t_script0/./})) 'BEGIN { printf "%.0f", d / 1e6 }')

# --- report ---------------------------------------------------------------------------------------------------
ver() { "$@" 2>/dev/null | head -1 | sed 's/^[^0-9]*//'; }
crun_v=$(have crun && ver crun --version || echo -)
runc_v=$(have runc && ver runc --version || echo -)
podman_v=$(have podman && ver podman --version || echo -)
conmon_bin=$(command -v conmon || echo /usr/libexec/podman/conmon)
conmon_v=$([[ -x $conmon_bin ]] && ver "$conmon_bin" --version || echo -)
netavark_v=$([[ -x /usr/lib/podman/netavark ]] && ver /usr/lib/podman/netavark --version || echo -)
skopeo_v=$(have skopeo && ver skopeo --version | cut -d' ' -f1 || echo -)
registry_v=$(have docker-registry && docker-registry --version 2>/dev/null | awk '{ print $NF }' || echo -)
wrk_v=$(if have wrk; then { wrk -v 2>&1 || true; } | awk 'NR == 1 { sub("^debian/", "", $2); print $2 }'; else echo -; fi)
nft_v=$(have nft && ver nft --version | cut -d' ' -f1 || echo -)

verdict() { # verdict OK?: "met" / "missed" / "n/a"
    case $1 in 1) echo "met" ;; 0) echo "**missed**" ;; *) echo "n/a" ;; esac
}
cmp_le() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else print (a <= b) ? 1 : 0 }'; }
cmp_ge() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else print (a >= b) ? 1 : 0 }'; }
cmp_lt() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else print (a < b) ? 1 : 0 }'; }

r_crun=$(ratio "${med[berth]}" "${med[crun]}")
r_podman=$(ratio "${med[podman]}" "${med[berth]}")
pss_mib=$(awk -v k="$mem_berth_pss" 'BEGIN { if (k == "-") print "-"; else printf "%.3f", k / 1024 }')
conmon_mib=$(awk -v k="$mem_conmon_pss" 'BEGIN { if (k == "-") print "-"; else printf "%.3f", k / 1024 }')
many_ok=$([[ $many_berth_running -eq $MANY ]] && cmp_lt "$many_berth_total" 1 || echo 0)
net_derive
img_derive

{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` (\`scripts/bench.sh\`); do not edit by hand. Measured $started_at in ${elapsed} s."
    echo "Wall-clock times of whole commands as a user runs them (fork + exec + everything until exit), median and"
    echo "p90 (nearest rank) of $N runs after $WARMUP warmup rounds. The start-up contenders run interleaved: every"
    echo "round runs each once, in a fresh random order, so load from elsewhere hits all of them alike."
    echo
    if [[ $busy -eq 1 ]]; then
        echo "> **The machine was busy** (1-minute load ${load_before%% *} before the run on $machine_nproc CPUs; other work used about"
        echo "> ${other_pct}% of the machine's CPU time during it): other work competed for the CPUs"
        echo "> and every number below is inflated, the ones that wait on kernel threads or hand over between processes"
        echo "> (fsync, multi-process start-up) the most. Rerun on a quiet machine before comparing with the targets."
        echo
    fi
    echo "## Machine"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| kernel | $machine_kernel |"
    echo "| CPU | $machine_cpu |"
    echo "| CPUs (nproc) | $machine_nproc |"
    echo "| memory | $machine_mem |"
    echo "| cgroups | $machine_cg |"
    echo "| temp dir filesystem | $machine_fs (berth root, bundle and podman storage) |"
    echo "| load average before / after | $load_before / $load_after (the bench ran at nice $nice_now; the load after includes its own) |"
    echo "| CPU used by other work during the run | about ${other_pct}% of $machine_nproc CPUs, the bench's own ${own_s%.*} CPU-s aside (the machine's busy time in /proc/stat minus the bench's cgroups: kernel threads working for the bench count as other work) |"
    echo "| CPU pressure (PSI some avg60) before / after | $psi_before / $psi_after |"
    echo "| versions | ${berth_version:-berth ?} (binary of $berth_built); crun $crun_v; runc $runc_v; podman $podman_v; conmon $conmon_v; netavark $netavark_v; skopeo $skopeo_v; docker-registry $registry_v; wrk $wrk_v; nft $nft_v |"
    echo
    echo "## Start a container that runs /bin/true"
    echo
    echo "| | median | p90 | min | runs | vs berth |"
    echo "|---|---:|---:|---:|---:|---:|"
    for c in "${all_cases[@]}"; do
        if [[ -n ${unavailable[$c]:-} ]]; then
            echo "| ${label[$c]} | n/a | | | 0 | ${unavailable[$c]//|/\\|} |"
            continue
        fi
        fl=""
        [[ -n ${failures[$c]:-} ]] && fl=" (${failures[$c]} failed)"
        echo "| ${label[$c]} | $(fmt_ms "${med[$c]}") | $(fmt_ms "${p90[$c]}") | $(fmt_ms "${mn[$c]}") | ${cnt[$c]}$fl | $(ratio "${med[$c]}" "${med[berth]}")× |"
    done
    echo
    echo "## Idle monitor memory"
    echo
    echo "The process that watches one idle \`sleep 1000\` container: the parent of the container's init ($mem_berth_comm for"
    echo "berth, $mem_conmon_comm for podman), read ${settle} s after the start from \`/proc/PID/smaps_rollup\`. With $MANY running, the"
    echo "mean over all of them (their shared pages divided between them)."
    echo
    echo "| | PSS | RSS |"
    echo "|---|---:|---:|"
    echo "| berth monitor, one container | $(mib "$mem_berth_pss") | $(mib "$mem_berth_rss") |"
    echo "| conmon, one container | $(mib "$mem_conmon_pss") | $(mib "$mem_conmon_rss") |"
    echo "| berth monitor, mean of $MANY | $(mib "$many_berth_pss") | $(mib "$many_berth_rss") |"
    echo "| conmon, mean of $MANY | $(mib "$many_podman_pss") | $(mib "$many_podman_rss") |"
    echo
    echo "## $MANY detached containers"
    echo
    echo "\`run -d busybox sleep 1000\` $MANY times one after another (total), then with all of them running \`ps\` and"
    echo "\`exec NAME true\` ($REPS samples each, after 2 warmups), then \`rm -f\` of all (one command; for information)."
    echo
    echo "| | berth | podman |"
    echo "|---|---:|---:|"
    echo "| $MANY × run -d, total | $(secs "$many_berth_total") (${many_berth_running} running) | $(secs "$many_podman_total") (${many_podman_running} running) |"
    echo "| run -d, mean of those | $(fmt_ms "$(per_run "$many_berth_total")") | $(fmt_ms "$(per_run "$many_podman_total")") |"
    echo "| ps, median / p90 | $(fmt_ms "$ps_berth_med") / $(fmt_ms "$ps_berth_p90") | $(fmt_ms "$ps_podman_med") / $(fmt_ms "$ps_podman_p90") |"
    echo "| exec NAME true, median / p90 | $(fmt_ms "$exec_berth_med") / $(fmt_ms "$exec_berth_p90") | $(fmt_ms "$exec_podman_med") / $(fmt_ms "$exec_podman_p90") |"
    echo "| rm -f all $MANY | $(secs "$many_berth_rm") | $(secs "$many_podman_rm") |"
    echo
    net_report_md
    img_report_md
    echo "## Targets"
    echo
    echo "| target | measured | |"
    echo "|---|---:|---|"
    echo "| berth run ≤ 1.5 × crun run | ${r_crun}× | $(verdict "$(cmp_le "$r_crun" 1.5)") |"
    echo "| podman run / berth run ≥ 20 × | ${r_podman}× | $(verdict "$(cmp_ge "$r_podman" 20)") |"
    echo "| idle monitor PSS ≤ 0.40 MiB (conmon's; here conmon measured ${conmon_mib} MiB) | ${pss_mib} MiB | $(verdict "$(cmp_le "$pss_mib" 0.40)") |"
    echo "| $MANY × run -d < 1 s | ${many_berth_total} s | $(verdict "$many_ok") |"
    echo "| ps with $MANY running < 10 ms | $(fmt_ms "$ps_berth_med") | $(verdict "$(cmp_lt "$ps_berth_med" 10)") |"
    echo "| exec < 10 ms | $(fmt_ms "$exec_berth_med") | $(verdict "$(cmp_lt "$exec_berth_med" 10)") |"
    net_targets_md
    img_targets_md
    echo
    echo "## Where the time goes"
    echo
    echo "$trace_md"
    echo
    echo "## How the contenders run"
    echo
    echo "- kernel lower bound: \`unshare --fork --pid --mount --uts --ipc --net chroot ROOTFS /bin/true\` (namespaces and"
    echo "  chroot only: no cgroup, no mounts, no pivot_root, no state)."
    echo "- crun and runc: \`run -b BUNDLE ID\` with a fresh id every run; the bundle is the busybox rootfs plus \`runc spec\`"
    echo "  with args \`/bin/true\` and no terminal, keeping the default namespaces (an empty network namespace included,"
    echo "  like \`--network none\`). crun 1.8 refuses hybrid cgroup hosts, so where \`../shared/tools/crun-hybrid\` exists crun"
    echo "  runs through it (\`unshare -m\` + \`sh\`, which hides the v2 mount): that adds an exec or two to crun's time."
    echo "- berth: \`berth --root TMP run --rm --network none busybox true\` on a fresh root with the image imported (its"
    echo "  default, the bridge network, is measured under Networking; the memory and many-containers tests use"
    echo "  \`--network none\` too, like podman there). The diagnostic row"
    echo "  runs the same on a second root in /dev/shm (tmpfs: fsync and unlink cost nothing there); the gap between"
    echo "  the two rows is what the disk (SQLite's fsyncs, the container dir's metadata) costs. Not a target."
    echo "- podman: own \`--root\`/\`--runroot\`/\`--tmpdir\`, a \`CONTAINERS_CONF\` with \`cgroup_manager = \"cgroupfs\"\`,"
    echo "  \`events_logger = \"file\"\`, \`lock_type = \"file\"\` and ulimits this host allows (nofile $nofile, nproc $nproc_lim: root here lacks"
    echo "  CAP_SYS_RESOURCE)${podman_note:+, crun through crun-hybrid}, \`network_config_dir\` in the temp dir; the image"
    echo "  loaded with \`podman import\`. Its default network is netavark's \`podman\` bridge (iptables-nft rules)."
    if [[ $nfail -gt 0 || ${#unavailable[@]} -gt 0 ]]; then
        echo
        echo "Errors seen during the run ($nfail failed commands; last lines of their output):"
        echo
        echo '```'
        tail -n 15 "$errlog" | cut -c1-200
        echo '```'
    fi
} >"$work/report.md"
cp "$work/report.md" "$out_md"

# --- table on stdout ------------------------------------------------------------------------------------------
row() { printf '%-64s %12s %12s %s\n' "$@"; }
echo
row "start a container running /bin/true" "median" "p90" ""
for c in "${all_cases[@]}"; do
    if [[ -n ${unavailable[$c]:-} ]]; then
        row "${label[$c]:0:64}" "n/a" "" "${unavailable[$c]:0:60}"
    else
        row "${label[$c]:0:64}" "$(fmt_ms "${med[$c]}")" "$(fmt_ms "${p90[$c]}")" "$(ratio "${med[$c]}" "${med[berth]}")x berth"
    fi
done
echo
row "idle monitor memory (PSS / RSS)" "PSS" "RSS" ""
row "berth monitor, one container" "$(mib "$mem_berth_pss")" "$(mib "$mem_berth_rss")" ""
row "conmon, one container" "$(mib "$mem_conmon_pss")" "$(mib "$mem_conmon_rss")" ""
row "berth monitor, mean of $MANY" "$(mib "$many_berth_pss")" "$(mib "$many_berth_rss")" ""
row "conmon, mean of $MANY" "$(mib "$many_podman_pss")" "$(mib "$many_podman_rss")" ""
echo
row "$MANY detached containers" "berth" "podman" ""
row "$MANY x run -d (total)" "$(secs "$many_berth_total")" "$(secs "$many_podman_total")" ""
row "ps with $MANY running (median)" "$(fmt_ms "$ps_berth_med")" "$(fmt_ms "$ps_podman_med")" ""
row "exec NAME true (median)" "$(fmt_ms "$exec_berth_med")" "$(fmt_ms "$exec_podman_med")" ""
row "rm -f all (one command)" "$(secs "$many_berth_rm")" "$(secs "$many_podman_rm")" ""
echo
net_table
echo
img_table
echo
echo "targets: berth/crun ${r_crun}x (<= 1.5), podman/berth ${r_podman}x (>= 20), monitor PSS ${pss_mib} MiB (<= 0.40)," \
    "$MANY x run -d ${many_berth_total} s (< 1), ps $(fmt_ms "$ps_berth_med") (< 10), exec $(fmt_ms "$exec_berth_med") (< 10)"
net_targets_line
img_targets_line
[[ $busy -eq 1 ]] && echo "warning: the machine was busy (load ${load_before%% *} before, other work ~${other_pct}% of $machine_nproc CPUs during the run): numbers inflated"
echo "report: $out_md"
