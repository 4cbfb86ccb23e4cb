# Networking section of scripts/bench.sh (sourced by it, not run alone): uses its helpers (time_once, stats,
# podman_, say, free_port) and variables ($berth, $broot, $work, $samples, $seq_no, $errlog).
#
# 1. Start-up with networking, interleaved like the start-up section: berth on its default bridge network, berth
#    --network none, berth -p 127.0.0.1:P:80; podman on its default network (netavark bridge), --network none,
#    -p 127.0.0.1:P:80. berth's network setup cost = bridge - none (medians), podman's likewise.
# 2. `network create NAME` (the `network rm` after it untimed), berth vs podman, interleaved.
# 3. HTTP requests/s through a published port on 127.0.0.1 vs to the container's own address on berth's
#    bridge (busybox httpd serving a 1 KiB file), with wrk, interleaved rounds.
# 4. Where the time goes: one traced run of each berth command, syscalls by kind (net_trace.py).
#
# Traffic goes only to 127.0.0.1 and to the address of the container this script started, checked to be
# routed through the bridge of the bench's own berth root.

NET_N=${BENCH_NET_N:-$N}
WRK_SECS=${BENCH_WRK_SECS:-2}
WRK_ROUNDS=${BENCH_WRK_ROUNDS:-5}
for n in NET_N WRK_SECS WRK_ROUNDS; do
    [[ ${!n} =~ ^[0-9]+$ && ${!n} -ge 1 ]] || die "BENCH_$n must be a positive integer"
done

# The contenders. Ports are picked in net_run.
net_port_berth="" net_port_podman=""
netc_bridge() { "$berth" --root "$broot" run --rm busybox true; }
netc_none() { "$berth" --root "$broot" run --rm --network none busybox true; }
netc_publish() { "$berth" --root "$broot" run --rm -p "127.0.0.1:$net_port_berth:80" busybox true; }
netc_podman() { podman_ run --rm busybox true; }
netc_podmannone() { podman_ run --rm --network none busybox true; }
netc_podmanpublish() { podman_ run --rm -p "127.0.0.1:$net_port_podman:80" busybox true; }
netcr_berth() { "$berth" --root "$broot" network create "bench-net-$seq_no"; }
netcr_podman() { podman_ network create "bench-net-$seq_no"; }
after_netcr_berth() { "$berth" --root "$broot" network rm "bench-net-$seq_no" >/dev/null 2>>"$errlog" || true; }
after_netcr_podman() { podman_ network rm -f "bench-net-$seq_no" >/dev/null 2>>"$errlog" || true; }
net_all=(bridge none publish podman podmannone podmanpublish)
net_cr_all=(berth podman)
declare -A net_label=(
    [bridge]="berth run --rm busybox true (default bridge network)"
    [none]="berth run --rm --network none busybox true"
    [publish]="berth run --rm -p 127.0.0.1:P:80 busybox true"
    [podman]="podman run --rm busybox true (default network: netavark bridge)"
    [podmannone]="podman run --rm --network none busybox true"
    [podmanpublish]="podman run --rm -p 127.0.0.1:P:80 busybox true"
)
declare -A net_unavail=() net_cr_unavail=() net_fail=()
declare -A net_med=() net_p90=() net_min=() net_cnt=()
declare -A netcr_med=() netcr_p90=() netcr_min=() netcr_cnt=()
net_ran=0
net_skip_reason=""

# Bookkeeping of what the tools may leave outside the temp dir: netavark's bridge and its iptables-nft tables.
net_nft_before=$(nft list tables 2>/dev/null || true)
net_podman0_before=0
[[ -e /sys/class/net/podman0 ]] && net_podman0_before=1

# interleave PREFIX ROUNDS WARMUP SAMPLE_PREFIX CONTENDER...: every round runs each contender once in a fresh
# random order: PREFIX_C timed, then after_PREFIX_C (if defined) untimed.
interleave() {
    local prefix=$1 rounds=$2 warm=$3 sp=$4 round k j c f
    shift 4
    local -a order
    for ((round = 0; round < warm + rounds; round++)); do
        order=("$@")
        for ((k = ${#order[@]} - 1; k > 0; k--)); do
            j=$((RANDOM % (k + 1)))
            c=${order[k]} order[k]=${order[j]} order[j]=$c
        done
        for c in "${order[@]}"; do
            seq_no=$((seq_no + 1))
            f=$samples/$sp-$c.txt
            ((round < warm)) && f=$samples/warmup.txt
            time_once "$f" "${prefix}_$c" || net_fail[$sp-$c]=$((${net_fail[$sp-$c]:-0} + 1))
            if declare -F "after_${prefix}_$c" >/dev/null; then "after_${prefix}_$c"; fi
        done
    done
}

# preflight PREFIX UNAVAIL_ARRAY C: one untimed run; prints nothing, returns 1 (and records why) on failure.
preflight() {
    local prefix=$1 c=$3 before
    local -n un=$2
    seq_no=$((seq_no + 1))
    before=$(wc -l <"$errlog")
    if "${prefix}_$c" >/dev/null 2>>"$errlog"; then
        if declare -F "after_${prefix}_$c" >/dev/null; then "after_${prefix}_$c"; fi
        return 0
    fi
    un[$c]="failed: $(tail -n +"$((before + 1))" "$errlog" | grep -v '^$' | head -1 | cut -c1-150)"
    if declare -F "after_${prefix}_$c" >/dev/null; then "after_${prefix}_$c"; fi
    return 1
}

# wrk_parse FILE: "requests seconds req_per_s socket_errors non2xx"
wrk_parse() {
    awk '/requests in/ { r = $1; s = $4; sub(/s,?$/, "", s) }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); e = $4 + $6 + $8 + $10 }
        /Non-2xx/ { x = $NF }
        END { printf "%s %s %s %d %d\n", (r == "" ? "-" : r), (s == "" ? "-" : s), (rps == "" ? "-" : rps), e, x }' "$1"
}
# median of a file of numbers (floats), "-" when empty
fmedian() { [[ -s $1 ]] || { echo -; return; }; sort -g "$1" | awk '{ a[NR] = $1 } END { n = NR; printf "%.0f\n", (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.3f", a - b }'; }

net_run() {
    local c
    if [[ $podman_ready -ne 1 ]]; then
        net_unavail[podman]="podman missing or its setup failed"
        net_unavail[podmannone]=${net_unavail[podman]} net_unavail[podmanpublish]=${net_unavail[podman]}
        net_cr_unavail[podman]=${net_unavail[podman]}
    fi
    free_port net_port_berth && free_port net_port_podman ||
        { net_skip_reason="no free TCP port found on 127.0.0.1"; return 0; }

    # Preflight (the first bridge run creates berth's default network, untimed).
    local -a live=() live_cr=()
    for c in "${net_all[@]}"; do
        [[ -n ${net_unavail[$c]:-} ]] && continue
        if preflight netc net_unavail "$c"; then live+=("$c"); fi
    done
    if [[ -n ${net_unavail[bridge]:-} ]]; then say "berth on the bridge network failed: ${net_unavail[bridge]}"; fi
    say "networking: ${#live[@]} contenders x ($WARMUP warmup + $NET_N timed) rounds, interleaved"
    if [[ ${#live[@]} -gt 0 ]]; then interleave netc "$NET_N" "$WARMUP" net "${live[@]}"; fi
    for c in "${net_all[@]}"; do
        read -r net_med[$c] net_p90[$c] net_min[$c] net_cnt[$c] < <(stats "$samples/net-$c.txt")
    done

    for c in "${net_cr_all[@]}"; do
        [[ -n ${net_cr_unavail[$c]:-} ]] && continue
        if preflight netcr net_cr_unavail "$c"; then live_cr+=("$c"); fi
    done
    say "network create: ${#live_cr[@]} contenders x ($WARMUP warmup + $NET_N timed) rounds, interleaved"
    if [[ ${#live_cr[@]} -gt 0 ]]; then interleave netcr "$NET_N" "$WARMUP" netcr "${live_cr[@]}"; fi
    for c in "${net_cr_all[@]}"; do
        read -r netcr_med[$c] netcr_p90[$c] netcr_min[$c] netcr_cnt[$c] < <(stats "$samples/netcr-$c.txt")
    done
    net_ran=1
    net_http
    net_trace
}

# --- HTTP through a published port vs direct --------------------------------------------------------------------
# busybox httpd answers with Connection: close and wrk closes each connection first, so at thousands of
# connections a second the host's ports toward one destination pile up in TIME_WAIT (and their conntrack
# entries linger for 2 minutes). Reusing a port then either makes connect() crawl through a range full of
# TIME_WAIT sockets (Linux's tcp_tw_reuse=2 lets only loopback reuse them) or hits a lingering conntrack entry
# (its SYN is taken for part of the old connection and retransmitted a second later): artifacts that hit the
# two paths differently and had nothing to do with forwarding. So every round of each path goes to a
# destination of its own: the container runs one httpd per round and path (container ports 80+i direct,
# 100+i published as 127.0.0.1:P_i), and no destination sees more connections than it has free ports.
wrk_pub_rps=- wrk_direct_rps=- wrk_note="" http_ip="" http_ports=()
declare -A wrk_req=([pub]=0 [direct]=0) wrk_err=([pub]=0 [direct]=0) wrk_non2xx=([pub]=0 [direct]=0) wrk_secs=([pub]=0 [direct]=0)
net_http() {
    if ! have wrk; then wrk_note="wrk missing"; return 0; fi
    if [[ -n ${net_unavail[bridge]:-} ]]; then wrk_note="berth's bridge network failed"; return 0; fi
    local www=$work/www br ip route r i order w url out req secs rps err non cports="" hport
    local -a pubs=()
    mkdir -p "$www"
    head -c 768 /dev/urandom | base64 -w 64 | head -c 1023 >"$www/index.html"
    echo >>"$www/index.html" # 1024 bytes
    # Round 0 is the warm-up; ports 80+i (direct) and 100+i (published) for i = 0..WRK_ROUNDS.
    for ((i = 0; i <= WRK_ROUNDS; i++)); do
        free_port hport || { wrk_note="no free TCP port on 127.0.0.1"; return 0; }
        http_ports[i]=$hport
        pubs+=(-p "127.0.0.1:$hport:$((100 + i))")
        cports+=" $((80 + i)) $((100 + i))"
    done
    # shellcheck disable=SC2016
    if ! "$berth" --root "$broot" run -d --name bench-httpd "${pubs[@]}" -v "$www:/www:ro" busybox sh -c \
        'for p in $0; do httpd -p "$p" -h /www || exit 1; done; exec httpd -f -p 79 -h /www' "${cports# }" \
        >/dev/null 2>>"$errlog"; then
        wrk_note="berth run -d httpd failed: $(tail -1 "$errlog" | cut -c1-150)"
        return 0
    fi
    ip=$("$berth" --root "$broot" inspect -f '{{.NetworkSettings.IPAddress}}' bench-httpd 2>>"$errlog" || true)
    br=$("$berth" --root "$broot" network inspect bridge 2>/dev/null |
        sed -n 's/.*"com.docker.network.bridge.name": "\([^"]*\)".*/\1/p' | head -1)
    route=$(ip -o route get "$ip" 2>/dev/null || true)
    # Only an address on the bench root's own bridge is a target.
    if [[ ! $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || -z $br || " $route " != *" dev $br "* ]]; then
        wrk_note="the container's address ($ip) is not routed through the bench's bridge ($br); not measured"
        "$berth" --root "$broot" rm -f bench-httpd >/dev/null 2>&1 || true
        return 0
    fi
    http_ip=$ip
    for ((r = 0; r < 50; r++)); do # until the last httpd answers through its published port
        (exec 3<>"/dev/tcp/127.0.0.1/${http_ports[WRK_ROUNDS]}") 2>/dev/null && break
        sleep 0.05
    done
    say "HTTP: wrk -t2 -c20, $WRK_ROUNDS x ${WRK_SECS} s each way, interleaved"
    wrk -t2 -c20 -d1s "http://127.0.0.1:${http_ports[0]}/" >/dev/null 2>&1 || true # warm-up
    wrk -t2 -c20 -d1s "http://$ip:80/" >/dev/null 2>&1 || true
    for ((r = 1; r <= WRK_ROUNDS; r++)); do
        order=(pub direct)
        ((RANDOM % 2)) && order=(direct pub)
        for w in "${order[@]}"; do
            if [[ $w == pub ]]; then url="http://127.0.0.1:${http_ports[r]}/"; else url="http://$ip:$((80 + r))/"; fi
            out=$work/wrk-$w-$r.txt
            wrk -t2 -c20 -d"${WRK_SECS}s" "$url" >"$out" 2>&1 || echo "wrk $url failed" >>"$errlog"
            read -r req secs rps err non < <(wrk_parse "$out")
            [[ $rps == - ]] && continue
            echo "$rps" >>"$samples/wrk-$w.txt"
            wrk_secs[$w]=$(awk -v a="${wrk_secs[$w]:-0}" -v b="$secs" 'BEGIN { print a + b }')
            wrk_req[$w]=$((${wrk_req[$w]:-0} + req))
            wrk_err[$w]=$((${wrk_err[$w]:-0} + err))
            wrk_non2xx[$w]=$((${wrk_non2xx[$w]:-0} + non))
        done
    done
    wrk_pub_rps=$(fmedian "$samples/wrk-pub.txt")
    wrk_direct_rps=$(fmedian "$samples/wrk-direct.txt")
    "$berth" --root "$broot" rm -f bench-httpd >/dev/null 2>>"$errlog" || true
}

# --- where the time goes: one traced run of each berth command, syscalls by kind (scripts/bench/net_trace.py) ---
net_trace_md=""
net_trace() {
    have strace && have python3 || return 0
    local what t args=()
    for what in create none bridge publish; do
        t=$work/strace-net-$what.txt
        seq_no=$((seq_no + 1))
        case $what in
            create) strace -f -tt -T -o "$t" "$berth" --root "$broot" network create "bench-net-$seq_no" ;;
            none) strace -f -tt -T -o "$t" "$berth" --root "$broot" run --rm --network none busybox true ;;
            bridge) strace -f -tt -T -o "$t" "$berth" --root "$broot" run --rm busybox true ;;
            publish) strace -f -tt -T -o "$t" "$berth" --root "$broot" run --rm -p "127.0.0.1:$net_port_berth:80" busybox true ;;
        esac >/dev/null 2>>"$errlog" || continue
        case $what in
            create) after_netcr_berth; args+=("\`network create NAME\`=$t") ;;
            none) args+=("\`run --rm --network none\`=$t") ;;
            bridge) args+=("\`run --rm\` (bridge)=$t") ;;
            publish) args+=("\`run --rm -p 127.0.0.1:P:80\`=$t") ;;
        esac
    done
    [[ ${#args[@]} -gt 0 ]] || return 0
    net_trace_md=$(python3 scripts/bench/net_trace.py "${args[@]}" 2>>"$errlog") || net_trace_md=""
}

# --- report -------------------------------------------------------------------------------------------------------
net_setup_berth=- net_setup_podman=- net_pub_berth=- net_pub_podman=- r_net_podman=- r_http=-
net_derive() {
    net_setup_berth=$(diff_ms "${net_med[bridge]:--}" "${net_med[none]:--}")
    net_setup_podman=$(diff_ms "${net_med[podman]:--}" "${net_med[podmannone]:--}")
    net_pub_berth=$(diff_ms "${net_med[publish]:--}" "${net_med[bridge]:--}")
    net_pub_podman=$(diff_ms "${net_med[podmanpublish]:--}" "${net_med[podman]:--}")
    r_net_podman=$(ratio "${net_med[podman]:--}" "${net_med[bridge]:--}")
    r_http=$(ratio "$wrk_pub_rps" "$wrk_direct_rps")
}
rps_all() { awk -v r="${wrk_req[$1]}" -v s="${wrk_secs[$1]}" 'BEGIN { if (s == 0) print "-"; else printf "%.0f", r / s }'; }
fmt_dms() { [[ $1 == - ]] && { echo n/a; return; }; awk -v x="$1" 'BEGIN { printf "%+.1f ms", x }'; }

net_report_md() {
    local c fl
    echo "## Networking"
    echo
    if [[ $net_ran -ne 1 ]]; then
        echo "_Not measured: ${net_skip_reason:-BENCH_NET=0}._"
        echo
        return
    fi
    echo "Start-up with networking, $NET_N interleaved rounds after $WARMUP warmup rounds (every round runs each"
    echo "contender once, in a fresh random order). berth's default network (\`bridge\`, created on its first use,"
    echo "untimed) vs podman's (\`podman\`, a netavark bridge), and both with \`--network none\`. Ports published on"
    echo "127.0.0.1: $net_port_berth for berth, $net_port_podman for podman."
    echo
    echo "| | median | p90 | min | runs | vs berth bridge |"
    echo "|---|---:|---:|---:|---:|---:|"
    for c in "${net_all[@]}"; do
        if [[ -n ${net_unavail[$c]:-} ]]; then
            echo "| ${net_label[$c]} | n/a | | | 0 | ${net_unavail[$c]//|/\\|} |"
            continue
        fi
        fl=""
        [[ -n ${net_fail[net-$c]:-} ]] && fl=" (${net_fail[net-$c]} failed)"
        echo "| ${net_label[$c]} | $(fmt_ms "${net_med[$c]}") | $(fmt_ms "${net_p90[$c]}") | $(fmt_ms "${net_min[$c]}") | ${net_cnt[$c]}$fl | $(ratio "${net_med[$c]}" "${net_med[bridge]}")× |"
    done
    echo
    echo "| cost of (difference of medians) | berth | podman |"
    echo "|---|---:|---:|"
    echo "| network setup: bridge − none | $(fmt_dms "$net_setup_berth") | $(fmt_dms "$net_setup_podman") |"
    echo "| publishing a port: -p − bridge | $(fmt_dms "$net_pub_berth") | $(fmt_dms "$net_pub_podman") |"
    echo
    echo "\`network create NAME\` ($NET_N interleaved rounds after $WARMUP warmup rounds; the \`network rm\` after each"
    echo "untimed). berth makes the bridge, its address and the root's nft table right away; podman only writes the"
    echo "network's JSON file (netavark makes the bridge when the first container joins)."
    echo
    echo "| | median | p90 | min | runs |"
    echo "|---|---:|---:|---:|---:|"
    for c in "${net_cr_all[@]}"; do
        if [[ -n ${net_cr_unavail[$c]:-} ]]; then
            echo "| $c network create | n/a | | | 0 (${net_cr_unavail[$c]//|/\\|}) |"
            continue
        fi
        fl=""
        [[ -n ${net_fail[netcr-$c]:-} ]] && fl=" (${net_fail[netcr-$c]} failed)"
        echo "| $c network create | $(fmt_ms "${netcr_med[$c]}") | $(fmt_ms "${netcr_p90[$c]}") | $(fmt_ms "${netcr_min[$c]}") | ${netcr_cnt[$c]}$fl |"
    done
    echo
    echo "HTTP through a published port vs to the container directly: \`berth run -d -p 127.0.0.1:P:100 … -v DIR:/www:ro"
    echo "busybox sh -c '…httpd -p PORT -h /www…'\` serving a 1 KiB index.html, and \`wrk -t2 -c20 -d${WRK_SECS}s\` against"
    echo "\`http://127.0.0.1:P/\` (nft DNAT in the output hook, masquerade onto the bridge) and against"
    echo "\`http://${http_ip:-CONTAINER_IP}:PORT/\` (routed to the bridge); $WRK_ROUNDS rounds each way, interleaved, after a 1 s warm-up"
    echo "each. busybox httpd forks a process per request and closes every connection, so it is the bottleneck (and"
    echo "wrk shares the 2 CPUs with it): the ratio is the point, not the absolute rate. Every round of each path"
    echo "goes to a destination of its own (one httpd per round and path in the container, each published on its"
    echo "own port): with a new connection per request, a destination that sees more connections than the host"
    echo "has free ports for it runs into TIME_WAIT sockets and lingering conntrack entries, which hit the two"
    echo "paths differently and have nothing to do with forwarding."
    echo
    if [[ -n $wrk_note ]]; then
        echo "_Not measured: ${wrk_note}._"
    else
        echo "| | requests/s (median of rounds) | requests/s (all rounds) | requests | socket errors | non-2xx |"
        echo "|---|---:|---:|---:|---:|---:|"
        echo "| published ports 127.0.0.1:${http_ports[1]:-P}… | $wrk_pub_rps | $(rps_all pub) | ${wrk_req[pub]} | ${wrk_err[pub]} | ${wrk_non2xx[pub]} |"
        echo "| container address $http_ip:81… | $wrk_direct_rps | $(rps_all direct) | ${wrk_req[direct]} | ${wrk_err[direct]} | ${wrk_non2xx[direct]} |"
        echo "| published / direct | ${r_http}× | $(ratio "$(rps_all pub)" "$(rps_all direct)")× | | | |"
    fi
    echo
    if [[ -n $net_trace_md ]]; then
        echo "Where berth's networking time goes: one run of each command under \`strace -f -tt -T\`, the time inside"
        echo "syscalls by what they work on, summed over the CLI, the monitor and their children (waits for another"
        echo "process left out), and the CLI's time outside syscalls. strace stops the process twice per syscall, which"
        echo "inflates everything (most of all the time outside syscalls): compare the rows, not the absolute numbers."
        echo
        echo "$net_trace_md"
    fi
}

net_targets_md() {
    [[ $net_ran -eq 1 ]] || return 0
    echo "| podman run (its bridge) / berth run (bridge) ≥ 10 × | ${r_net_podman}× | $(verdict "$(cmp_ge "$r_net_podman" 10)") |"
    echo "| berth network setup (bridge − none) < 10 ms | $(fmt_dms "$net_setup_berth") | $(verdict "$(cmp_lt "$net_setup_berth" 10)") |"
    echo "| berth network create < 10 ms | $(fmt_ms "${netcr_med[berth]:--}") | $(verdict "$(cmp_lt "${netcr_med[berth]:--}" 10)") |"
    echo "| published-port HTTP within 10 % of direct (≥ 0.90 ×) | ${r_http}× | $(verdict "$(cmp_ge "$r_http" 0.9)") |"
}

net_table() {
    [[ $net_ran -eq 1 ]] || { echo "networking: not measured (${net_skip_reason:-BENCH_NET=0})"; return 0; }
    local c
    row "start-up with networking" "median" "p90" ""
    for c in "${net_all[@]}"; do
        if [[ -n ${net_unavail[$c]:-} ]]; then
            row "${net_label[$c]:0:64}" "n/a" "" "${net_unavail[$c]:0:60}"
        else
            row "${net_label[$c]:0:64}" "$(fmt_ms "${net_med[$c]}")" "$(fmt_ms "${net_p90[$c]}")" "$(ratio "${net_med[$c]}" "${net_med[bridge]}")x berth bridge"
        fi
    done
    row "network setup, bridge - none (berth / podman)" "$(fmt_dms "$net_setup_berth")" "$(fmt_dms "$net_setup_podman")" ""
    row "network create (berth / podman), median" "$(fmt_ms "${netcr_med[berth]:--}")" "$(fmt_ms "${netcr_med[podman]:--}")" ""
    if [[ -z $wrk_note ]]; then
        row "HTTP req/s: published port / container address" "$wrk_pub_rps" "$wrk_direct_rps" "${r_http}x"
    else
        row "HTTP req/s" "n/a" "" "$wrk_note"
    fi
}

net_targets_line() {
    [[ $net_ran -eq 1 ]] || return 0
    echo "targets (networking): podman/berth bridge ${r_net_podman}x (>= 10), network setup $(fmt_dms "$net_setup_berth") (< 10)," \
        "network create $(fmt_ms "${netcr_med[berth]:--}") (< 10), published/direct HTTP ${r_http}x (>= 0.90)"
}

# Cleanup of what podman/netavark made outside the temp dir (berth's networks go with `network prune` on the
# bench's roots, in bench.sh's cleanup). Runs after the containers are gone.
net_cleanup() {
    local t chains
    if [[ $net_podman0_before -eq 0 && -d /sys/class/net/podman0/brif ]] && [[ -z $(ls /sys/class/net/podman0/brif) ]]; then
        ip link del podman0 2>/dev/null
    fi
    # netavark's iptables-nft tables, when they did not exist before and hold nothing but its chains.
    for t in nat filter; do
        grep -qx "table ip $t" <<<"$net_nft_before" && continue
        nft list table ip "$t" >/dev/null 2>&1 || continue
        chains=$(nft list table ip "$t" 2>/dev/null | awk '$1 == "chain" { print $2 }' |
            grep -Ev '^(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING|NETAVARK.*)$' || true)
        [[ -z $chains ]] && nft delete table ip "$t" 2>/dev/null
    done
    return 0
}
