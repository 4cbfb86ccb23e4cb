# Images section of scripts/bench.sh (sourced by it, not run alone): uses its helpers (time_once, stats, podman_,
# say, free_port, have) and variables ($berth, $broot, $image, $work, $samples, $seq_no, $errlog).
#
# A two-layer image (the busybox rootfs + one layer of BENCH_PULL_MIB MiB of random data, so gzip cannot shrink
# it) is built as a docker-archive by hand and pushed with skopeo (gzip layers) to Debian's docker-registry on
# 127.0.0.1. Then, interleaved, each rep into a fresh store: berth pull, podman pull, skopeo copy to dir:
# (transfer and digest check only, nothing unpacked); then save and load, berth vs podman. Then the ceilings:
# what hashing, gunzip, the registry and the disk manage alone on this machine.

PULL_REPS=${BENCH_PULL_REPS:-5}
PULL_MIB=${BENCH_PULL_MIB:-100}
for n in PULL_REPS PULL_MIB; do
    [[ ${!n} =~ ^[0-9]+$ && ${!n} -ge 1 ]] || die "BENCH_$n must be a positive integer"
done

img_ran=0 img_skip_reason="" reg_pid="" reg_port="" big_ref="" big_bytes=- big_layers=- big_blob="" big_digest=""
img_pull_all=(berth podman skopeo)
img_xfer_all=(berthsave berthload podmansave podmanload)
declare -A img_label=(
    [berth]="berth pull"
    [podman]="podman pull --tls-verify=false"
    [skopeo]="skopeo copy docker://… dir:DIR (transfer only)"
    [berthsave]="berth save -o X.tar"
    [berthload]="berth load -i X.tar (fresh root)"
    [podmansave]="podman save -o X.tar"
    [podmanload]="podman load -i X.tar (fresh root)"
)
declare -A img_unavail=() img_med=() img_p90=() img_min=() img_cnt=() img_cpu=() img_fail=() img_store=()
declare -A img_arch=() # archive bytes, for save/load

# podman_at DIR ARGS...: podman on its own fresh storage under DIR (short paths: podman refuses a runroot
# longer than 50 characters).
podman_at() {
    local d=$1
    shift
    mkdir -p "$d/root" "$d/rr" "$d/tmp"
    CONTAINERS_CONF=$work/podman/containers.conf podman --root "$d/root" --runroot "$d/rr" --tmpdir "$d/tmp" "$@"
}
# store_of C: the fresh store of contender C for this $seq_no.
store_of() {
    case $1 in
        podman) echo "$work/pd/$seq_no" ;;
        *) echo "$work/pull/$1-$seq_no" ;;
    esac
}
# rm_store DIR: unmounts whatever is mounted under DIR (deepest first), then removes it.
rm_store() {
    local d=$1 m i
    [[ -e $d ]] || return 0
    for i in 1 2 3; do
        mapfile -t mnts < <(awk -v w="$d/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
        [[ ${#mnts[@]} -eq 0 ]] && break
        for m in "${mnts[@]}"; do umount -l "$m" 2>/dev/null; done
    done
    rm -rf "$d"
}

# cpu_diff_us T0 T1: user+sys µs of the shell's waited-for children between two `times` outputs (second line).
cpu_diff_us() {
    awk 'FNR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        if (FILENAME == ARGV[1]) t0 = t; else t1 = t }
        END { printf "%.0f\n", (t1 - t0) * 1e6 }' "$1" "$2"
}

# The contenders; $seq_no names each one's fresh store.
pullc_berth() { "$berth" --root "$work/pull/berth-$seq_no" pull -q "$big_ref"; }
pullc_podman() { podman_at "$work/pd/$seq_no" pull -q --tls-verify=false "$big_ref"; }
pullc_skopeo() { skopeo copy -q --src-tls-verify=false "docker://$big_ref" "dir:$work/pull/skopeo-$seq_no"; }
after_pullc() { # after_pullc C: the store's size on disk, then remove it
    local d
    d=$(store_of "$1")
    [[ -d $d ]] && du -sb "$d" 2>/dev/null | awk '{ print $1 }' >>"$samples/pull-store-$1.txt"
    rm_store "$d"
}
xferc_berthsave() { "$berth" --root "$work/pull/berth-src" save -o "$work/xfer/berthsave-$seq_no.tar" "$big_ref"; }
xferc_berthload() { "$berth" --root "$work/xfer/berthload-$seq_no" load -q -i "$work/xfer/berth.tar"; }
xferc_podmansave() { podman_at "$work/pd/src" save -q -o "$work/xfer/podmansave-$seq_no.tar" "$big_ref"; }
xferc_podmanload() { podman_at "$work/pd/l$seq_no" load -q -i "$work/xfer/podman.tar"; }
after_xferc() { rm -f "$work/xfer/$1-$seq_no.tar"; rm_store "$work/xfer/$1-$seq_no"; rm_store "$work/pd/l$seq_no"; }

# time_reps PREFIX SAMPLE_PREFIX REPS C...: interleaved rounds (fresh random order), wall and children's CPU.
time_reps() {
    local prefix=$1 sp=$2 reps=$3 r k j c
    shift 3
    local -a order
    for ((r = 0; r < reps; r++)); do
        order=("$@")
        for ((k = ${#order[@]} - 1; k > 0; k--)); do
            j=$((RANDOM % (k + 1)))
            c=${order[k]} order[k]=${order[j]} order[j]=$c
        done
        for c in "${order[@]}"; do
            seq_no=$((seq_no + 1))
            times >"$work/times.0" # in this shell: children's CPU so far
            if time_once "$samples/$sp-$c.txt" "${prefix}_$c"; then
                times >"$work/times.1"
                cpu_diff_us "$work/times.0" "$work/times.1" >>"$samples/$sp-cpu-$c.txt"
            else
                img_fail[$c]=$((${img_fail[$c]:-0} + 1))
            fi
            "after_$prefix" "$c"
        done
    done
}

img_registry_up() {
    local i
    mkdir -p "$work/registry/data"
    free_port reg_port || { img_skip_reason="no free TCP port on 127.0.0.1"; return 1; }
    cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$reg_port
EOF
    docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
    reg_pid=$!
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$reg_port") 2>/dev/null && return 0
        kill -0 "$reg_pid" 2>/dev/null || break
        sleep 0.05
    done
    img_skip_reason="docker-registry did not start: $(tail -1 "$work/registry/log" | cut -c1-150)"
    return 1
}

# Builds the docker-archive by hand: layer 1 the busybox rootfs tar, layer 2 one file of random data.
img_build_and_push() {
    local s=$work/imgsrc arch d1 d2 cfg
    mkdir -p "$s/big/bench"
    case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
    cp "$image" "$s/l1.tar"
    head -c "${PULL_MIB}M" /dev/urandom >"$s/big/bench/data.bin"
    tar -C "$s/big" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$s/l2.tar" bench
    rm -rf "$s/big"
    d1=$(sha256sum "$s/l1.tar" | cut -c1-64)
    d2=$(sha256sum "$s/l2.tar" | cut -c1-64)
    printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},"history":[{"created_by":"busybox rootfs"},{"created_by":"%s MiB of random data"}]}' \
        "$arch" "$d1" "$d2" "$PULL_MIB" >"$s/config.json"
    cfg=$(sha256sum "$s/config.json" | cut -c1-64)
    mv "$s/config.json" "$s/$cfg.json"
    printf '[{"Config":"%s.json","RepoTags":["bench/big:1"],"Layers":["l1.tar","l2.tar"]}]' "$cfg" >"$s/manifest.json"
    tar -C "$s" -cf "$s/big.tar" manifest.json "$cfg.json" l1.tar l2.tar
    rm -f "$s/l1.tar" "$s/l2.tar"
    big_ref=127.0.0.1:$reg_port/bench/big:1
    if ! skopeo copy -q --dest-tls-verify=false "docker-archive:$s/big.tar" "docker://$big_ref" >/dev/null 2>>"$errlog"; then
        img_skip_reason="skopeo copy to the registry failed: $(tail -1 "$errlog" | cut -c1-150)"
        return 1
    fi
    rm -rf "$s"
    skopeo inspect --raw --tls-verify=false "docker://$big_ref" >"$work/registry/manifest.json" 2>>"$errlog" || true
    # Compressed size = the manifest's layer sizes; the biggest layer's blob in the registry's storage.
    read -r big_bytes big_layers big_digest < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
ls = m["layers"]
big = max(ls, key=lambda l: l["size"])
print(sum(l["size"] for l in ls), len(ls), big["digest"].split(":")[1])' "$work/registry/manifest.json" 2>>"$errlog" || echo "- - -")
    [[ $big_digest != - ]] &&
        big_blob=$work/registry/data/docker/registry/v2/blobs/sha256/${big_digest:0:2}/$big_digest/data
    return 0
}

img_run() {
    local c
    for c in docker-registry skopeo python3; do
        have "$c" || { img_skip_reason="$c missing"; return 0; }
    done
    say "images: registry, a ${PULL_MIB} MiB image"
    img_registry_up || return 0
    img_build_and_push || return 0
    mkdir -p "$work/pull" "$work/xfer"

    # Preflight (untimed): one pull each, kept as the sources of save; also warms the registry's page cache.
    local -a live=()
    [[ $podman_ready -eq 1 ]] || img_unavail[podman]="podman missing or its setup failed"
    "$berth" --root "$work/pull/berth-src" pull -q "$big_ref" >/dev/null 2>>"$errlog" ||
        img_unavail[berth]="failed: $(tail -1 "$errlog" | cut -c1-150)"
    if [[ -z ${img_unavail[podman]:-} ]]; then
        podman_at "$work/pd/src" pull -q --tls-verify=false "$big_ref" >/dev/null 2>>"$errlog" ||
            img_unavail[podman]="failed: $(tail -1 "$errlog" | cut -c1-150)"
    fi
    skopeo copy -q --src-tls-verify=false "docker://$big_ref" "dir:$work/pull/skopeo-src" >/dev/null 2>>"$errlog" ||
        img_unavail[skopeo]="failed: $(tail -1 "$errlog" | cut -c1-150)"
    rm -rf "$work/pull/skopeo-src"
    for c in "${img_pull_all[@]}"; do [[ -z ${img_unavail[$c]:-} ]] && live+=("$c"); done
    say "pull: ${#live[@]} contenders x $PULL_REPS reps, interleaved, each into a fresh store"
    if [[ ${#live[@]} -gt 0 ]]; then time_reps pullc pull "$PULL_REPS" "${live[@]}"; fi

    # save/load: the archives load reads are written once first (untimed).
    live=()
    if [[ -z ${img_unavail[berth]:-} ]]; then
        if "$berth" --root "$work/pull/berth-src" save -o "$work/xfer/berth.tar" "$big_ref" 2>>"$errlog"; then
            live+=(berthsave berthload)
            img_arch[berth]=$(stat -c %s "$work/xfer/berth.tar")
        else
            img_unavail[berthsave]="failed: $(tail -1 "$errlog" | cut -c1-150)"
            img_unavail[berthload]="no archive to load"
        fi
    else
        img_unavail[berthsave]="berth pull failed" img_unavail[berthload]="berth pull failed"
    fi
    if [[ -z ${img_unavail[podman]:-} ]]; then
        if podman_at "$work/pd/src" save -q -o "$work/xfer/podman.tar" "$big_ref" 2>>"$errlog"; then
            live+=(podmansave podmanload)
            img_arch[podman]=$(stat -c %s "$work/xfer/podman.tar")
        else
            img_unavail[podmansave]="failed: $(tail -1 "$errlog" | cut -c1-150)"
            img_unavail[podmanload]="no archive to load"
        fi
    else
        img_unavail[podmansave]=${img_unavail[podman]} img_unavail[podmanload]=${img_unavail[podman]}
    fi
    say "save/load: ${#live[@]} contenders x $PULL_REPS reps, interleaved"
    if [[ ${#live[@]} -gt 0 ]]; then time_reps xferc xfer "$PULL_REPS" "${live[@]}"; fi

    for c in "${img_pull_all[@]}"; do
        read -r img_med[$c] img_p90[$c] img_min[$c] img_cnt[$c] < <(stats "$samples/pull-$c.txt")
        img_cpu[$c]=$(fmedian "$samples/pull-cpu-$c.txt")
        img_store[$c]=$(fmedian "$samples/pull-store-$c.txt")
    done
    for c in "${img_xfer_all[@]}"; do
        read -r img_med[$c] img_p90[$c] img_min[$c] img_cnt[$c] < <(stats "$samples/xfer-$c.txt")
        img_cpu[$c]=$(fmedian "$samples/xfer-cpu-$c.txt")
    done
    img_ran=1
    img_ceilings
    img_pull_trace
}

# --- ceilings: what each resource manages alone on the big layer ---------------------------------------------
declare -A ceil_s=() ceil_bytes=() ceil_label=()
ceil_order=()
ceil() { # ceil KEY LABEL BYTES CMD...: median wall time of 3 runs
    local key=$1 lbl=$2 bytes=$3 i
    shift 3
    for i in 1 2 3; do time_once "$samples/ceil-$key.txt" "$@" || return 0; done
    read -r ceil_s[$key] _ _ _ < <(stats "$samples/ceil-$key.txt")
    ceil_bytes[$key]=$bytes ceil_label[$key]=$lbl
    ceil_order+=("$key")
}
gunzip_blob() { gzip -dc "$big_blob" >/dev/null; }
zlib_blob() { # zlib (the C library) through python3, 1 MiB reads
    python3 -c 'import sys, zlib
d = zlib.decompressobj(31)
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        d.decompress(b)' "$big_blob"
}
dd_fsync() { dd if=/dev/zero of="$work/dd.bin" bs=1M count="$PULL_MIB" conv=fsync status=none; rm -f "$work/dd.bin"; }
reg_get() { curl -sf -o /dev/null "http://127.0.0.1:$reg_port/v2/bench/big/blobs/sha256:$big_digest"; }
img_ceilings() {
    [[ -n $big_blob && -s $big_blob ]] || return 0
    local b
    b=$(stat -c %s "$big_blob")
    say "ceilings: hashing, gunzip, registry, disk"
    cat "$big_blob" >/dev/null
    ceil sha256sum "\`sha256sum\` (coreutils) of the layer blob" "$b" sha256sum "$big_blob"
    have openssl && ceil openssl "\`openssl dgst -sha256\` (uses SHA-NI where the CPU has it)" "$b" openssl dgst -sha256 "$big_blob"
    ceil gunzip "\`gzip -dc\` (GNU gzip) of the layer blob to /dev/null" "$b" gunzip_blob
    ceil zlib "zlib inflate of the layer blob (python3's zlib module)" "$b" zlib_blob
    have curl && ceil regget "registry: \`curl\` GET of the blob to /dev/null" "$b" reg_get
    ceil dd "disk: \`dd bs=1M conv=fsync\` of ${PULL_MIB} MiB into the temp dir" $((PULL_MIB * 1048576)) dd_fsync
}

# --- where berth's pull spends its time: one traced pull --------------------------------------------------------
pull_trace_md=""
img_pull_trace() {
    have strace || return 0
    local t=$work/strace-pull.txt d=$work/pull/berth-trace
    strace -f -tt -T -e trace=fsync,fdatasync,syncfs,sync_file_range -o "$t" "$berth" --root "$d" pull -q "$big_ref" \
        >/dev/null 2>>"$errlog" || { rm_store "$d"; return 0; }
    rm_store "$d"
    pull_trace_md=$(awk '
        function t(s, a) { split(s, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        NR == 1 { t0 = t($2) } { last = t($2) }
        match($0, /<[0-9.]+>$/) { d = substr($0, RSTART + 1, RLENGTH - 2)
            c = $3; if (c ~ /^<\.\.\./) c = $4; sub(/\(.*/, "", c)
            n[c]++; s[c] += d; if (d > mx[c]) mx[c] = d }
        END {
            printf "One `berth pull` into a fresh root under `strace -f -T -e trace=fsync,fdatasync,syncfs`: %.2f s traced.\n\n", last - t0
            print "| call | calls | seconds summed (threads overlap) | longest |"
            print "|---|---:|---:|---:|"
            for (c in n) printf "| `%s` | %d | %.3f | %.3f |\n", c, n[c], s[c], mx[c]
        }' "$t")
}

# --- report ---------------------------------------------------------------------------------------------------
mbps() { awk -v b="$1" -v ms="$2" 'BEGIN { if (b == "-" || ms == "-" || ms == 0) print "n/a"; else printf "%.0f MB/s", b / 1e6 / (ms / 1000) }'; }
secs3() { awk -v ms="$1" 'BEGIN { if (ms == "-") print "n/a"; else printf "%.2f s", ms / 1000 }'; }
cpus() { awk -v us="$1" 'BEGIN { if (us == "-") print "n/a"; else printf "%.2f s", us / 1e6 }'; }
mbytes() { awk -v b="$1" 'BEGIN { if (b == "-" || b == "") print "n/a"; else printf "%.1f MB", b / 1e6 }'; }
r_pull_podman=- r_pull_skopeo=-
img_derive() {
    # speed ratios: time of the other / time of berth
    r_pull_podman=$(ratio "${img_med[podman]:--}" "${img_med[berth]:--}")
    r_pull_skopeo=$(ratio "${img_med[skopeo]:--}" "${img_med[berth]:--}")
}

img_report_md() {
    local c fl
    echo "## Images"
    echo
    if [[ $img_ran -ne 1 ]]; then
        echo "_Not measured: ${img_skip_reason:-BENCH_PULL=0}._"
        echo
        return
    fi
    echo "A $big_layers-layer image, \`$big_ref\`: the busybox rootfs and one file of $PULL_MIB MiB of random data"
    echo "(incompressible), built as a docker-archive and pushed with \`skopeo copy\` (gzip layers) to Debian's"
    echo "docker-registry listening on 127.0.0.1. **Compressed size (sum of the manifest's layer sizes): $(mbytes "$big_bytes")**;"
    echo "MB/s below is that size (MB = 10⁶ bytes) over the median time. $PULL_REPS reps per contender, interleaved"
    echo "(every rep runs each once, in a fresh random order), each cold in the sense of a fresh, empty store (so"
    echo "each includes setting that store up: berth's SQLite schema, podman's storage and database); the"
    echo "registry's files are in the page cache (one untimed pull each went first). CPU = user + sys of the"
    echo "command and its children, median. Store = bytes on disk in the fresh store afterwards (\`du -sb\`)."
    echo
    echo "| pull | median | p90 | min | runs | MB/s | CPU | store | time vs berth |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in "${img_pull_all[@]}"; do
        if [[ -n ${img_unavail[$c]:-} ]]; then
            echo "| ${img_label[$c]} | n/a | | | 0 | | | | ${img_unavail[$c]//|/\\|} |"
            continue
        fi
        fl=""
        [[ -n ${img_fail[$c]:-} ]] && fl=" (${img_fail[$c]} failed)"
        echo "| ${img_label[$c]} | $(secs3 "${img_med[$c]}") | $(secs3 "${img_p90[$c]}") | $(secs3 "${img_min[$c]}") | ${img_cnt[$c]}$fl | $(mbps "$big_bytes" "${img_med[$c]}") | $(cpus "${img_cpu[$c]}") | $(mbytes "${img_store[$c]}") | $(ratio "${img_med[$c]}" "${img_med[berth]}")× |"
    done
    echo
    echo "save and load of that image ($PULL_REPS reps, interleaved): save from the store of the untimed pull, load"
    echo "of that engine's own archive into a fresh store. MB/s is the archive's size over the median time."
    echo
    echo "| | median | p90 | min | runs | archive | MB/s | CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for c in "${img_xfer_all[@]}"; do
        if [[ -n ${img_unavail[$c]:-} ]]; then
            echo "| ${img_label[$c]} | n/a | | | 0 | | | ${img_unavail[$c]//|/\\|} |"
            continue
        fi
        local eng=${c%save}
        eng=${eng%load}
        fl=""
        [[ -n ${img_fail[$c]:-} ]] && fl=" (${img_fail[$c]} failed)"
        echo "| ${img_label[$c]} | $(secs3 "${img_med[$c]}") | $(secs3 "${img_p90[$c]}") | $(secs3 "${img_min[$c]}") | ${img_cnt[$c]}$fl | $(mbytes "${img_arch[$eng]:--}") | $(mbps "${img_arch[$eng]:--}" "${img_med[$c]}") | $(cpus "${img_cpu[$c]}") |"
    done
    echo
    if [[ ${#ceil_order[@]} -gt 0 ]]; then
        echo "What limits a pull: each resource alone on the big layer's compressed blob ($(mbytes "${ceil_bytes[sha256sum]:-${ceil_bytes[gunzip]:--}}"), in the page cache), median of 3."
        echo "A pull has to fetch, hash the compressed stream, gunzip, hash the tar (diff_id) and write the files (berth"
        echo "also keeps the uncompressed layer tar: compare the store column above). These tools are not berth's"
        echo "code (berth uses the sha2 crate with SHA-NI and zlib-rs), so read them as orders of magnitude."
        echo
        echo "| | median | MB/s |"
        echo "|---|---:|---:|"
        local k
        for k in "${ceil_order[@]}"; do
            echo "| ${ceil_label[$k]} | $(secs3 "${ceil_s[$k]}") | $(mbps "${ceil_bytes[$k]}" "${ceil_s[$k]}") |"
        done
        echo
    fi
    if [[ -n $pull_trace_md ]]; then
        echo "$pull_trace_md"
        echo
    fi
}

img_targets_md() {
    [[ $img_ran -eq 1 ]] || return 0
    echo "| berth cold pull ≥ 1.5 × podman's speed | ${r_pull_podman}× | $(verdict "$(cmp_ge "$r_pull_podman" 1.5)") |"
    echo "| … approaching skopeo's transfer-only speed (skopeo time / berth time; for information) | ${r_pull_skopeo}× | |"
}

img_table() {
    [[ $img_ran -eq 1 ]] || { echo "images: not measured (${img_skip_reason:-BENCH_PULL=0})"; return 0; }
    local c
    row "cold pull of $(mbytes "$big_bytes") compressed ($PULL_REPS reps)" "median" "MB/s" ""
    for c in "${img_pull_all[@]}" "${img_xfer_all[@]}"; do
        if [[ -n ${img_unavail[$c]:-} ]]; then
            row "${img_label[$c]:0:64}" "n/a" "" "${img_unavail[$c]:0:60}"
            continue
        fi
        local b=$big_bytes eng=${c%save}
        eng=${eng%load}
        [[ -n ${img_arch[$eng]:-} ]] && b=${img_arch[$eng]}
        row "${img_label[$c]:0:64}" "$(secs3 "${img_med[$c]}")" "$(mbps "$b" "${img_med[$c]}")" ""
    done
    local k
    for k in "${ceil_order[@]}"; do
        row "ceiling: ${ceil_label[$k]:0:56}" "$(secs3 "${ceil_s[$k]}")" "$(mbps "${ceil_bytes[$k]}" "${ceil_s[$k]}")" ""
    done
}

img_targets_line() {
    [[ $img_ran -eq 1 ]] || return 0
    echo "targets (images): berth pull ${r_pull_podman}x podman's speed (>= 1.5), ${r_pull_skopeo}x skopeo's transfer-only speed"
}

img_cleanup() {
    if [[ -n $reg_pid ]]; then
        kill "$reg_pid" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$reg_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$reg_pid" 2>/dev/null
    fi
    return 0
}
