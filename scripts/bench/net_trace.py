#!/usr/bin/env python3
"""Summarise `strace -f -tt -T` traces of berth's networking commands as one Markdown table: where the time goes.

Usage: net_trace.py LABEL=TRACE [LABEL=TRACE ...]

For each trace: the wall time from the CLI's execve to the last exit, and the time inside syscalls by what they
work on, summed over all processes (the CLI, the monitor, their children): SQLite (calls on berth.db* files),
rtnetlink (NETLINK_ROUTE sockets: bridge, veth, addresses, routes), nf_tables (NETLINK_NETFILTER sockets,
their close included), process creation (clone/fork/execve), other syscalls; waits for another process
(wait4, futex, poll, reads of pipes and sockets…) are left out. Then the CLI's own time outside syscalls
(user-space work, or runnable but not running). strace inflates every syscall, so the shares matter more than
the absolute numbers.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strace_report import WAITS, parse  # noqa: E402

FD_ARG = re.compile(r"^[a-z_0-9]+\((\d+)")
PATH_ARG = re.compile(r'"([^"]*)"')
KINDS = ["sqlite", "rtnetlink", "nftables", "process", "other"]
HEAD = {
    "sqlite": "SQLite (berth.db*)",
    "rtnetlink": "rtnetlink",
    "nftables": "nf_tables netlink",
    "process": "clone/fork/execve",
    "other": "other syscalls",
}
FD_CALLS_WAIT = {"read", "readv", "recvfrom", "recvmsg", "poll", "ppoll"}


def summarise(path):
    calls, exits = parse(path)
    if not calls:
        return None
    cli = calls[0].pid
    fds = {}  # pid -> {fd: kind}
    total = {k: 0.0 for k in KINDS}
    ncalls = {k: 0 for k in KINDS}
    cli_sys = 0.0
    for c in calls:
        table = fds.setdefault(c.pid, {})
        dur = max(0.0, c.end - c.start)
        kind = None
        m = FD_ARG.match(c.text)
        fdkind = table.get(int(m[1])) if m else None
        if c.name in ("openat", "open") and c.ret is not None and c.ret >= 0:
            p = PATH_ARG.search(c.text)
            if p and "berth.db" in p[1]:
                table[c.ret] = "sqlite"
        elif c.name == "socket" and c.ret is not None and c.ret >= 0:
            if "NETLINK_ROUTE" in c.text:
                table[c.ret] = "rtnetlink"
            elif "NETLINK_NETFILTER" in c.text:
                table[c.ret] = "nftables"
        elif c.name in ("clone", "clone3", "fork", "vfork") and c.ret and c.ret > 0:
            fds[c.ret] = dict(table)
        if c.pid == cli:
            cli_sys += dur
        if fdkind in ("rtnetlink", "nftables"):
            kind = fdkind  # a netlink reply is the kernel's work: not a wait
        elif c.name in WAITS or c.name in FD_CALLS_WAIT:
            continue
        elif fdkind == "sqlite" or (c.name in ("openat", "open", "unlink", "stat", "newfstatat") and "berth.db" in c.text):
            kind = "sqlite"
        elif c.name in ("clone", "clone3", "fork", "vfork", "execve"):
            kind = "process"
        else:
            kind = "other"
        total[kind] += dur
        ncalls[kind] += 1
        if c.name == "close" and fdkind and m:
            table.pop(int(m[1]), None)
    t0 = calls[0].start
    t_cli_end = exits.get(cli, max(c.end for c in calls))
    t_end = max([c.end for c in calls] + list(exits.values()))
    return {
        "wall": t_end - t0,
        "cli": t_cli_end - t0,
        "total": total,
        "calls": ncalls,
        "cli_user": max(0.0, (t_cli_end - t0) - cli_sys),
    }


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    rows = []
    for arg in sys.argv[1:]:
        label, _, path = arg.partition("=")
        s = summarise(path)
        if s:
            rows.append((label, s))
    if not rows:
        return 1
    print("| command (one traced run) | CLI ms | " + " | ".join(HEAD[k] + " ms (calls)" for k in KINDS) + " | CLI outside syscalls ms |")
    print("|---|---:|" + "---:|" * len(KINDS) + "---:|")
    for label, s in rows:
        cells = ["%.1f (%d)" % (s["total"][k] * 1000, s["calls"][k]) for k in KINDS]
        print("| %s | %.1f | %s | %.1f |" % (label, s["cli"] * 1000, " | ".join(cells), s["cli_user"] * 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
