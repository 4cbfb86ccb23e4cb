#!/usr/bin/env python3
"""Summarise `strace -f -tt -T -o FILE berth run --rm --network none busybox true` as Markdown: where the time goes.

Usage: strace_report.py TRACE [UNTRACED_MEDIAN_MS]

Prints, from one traced run:
  - milestones of the run (CLI start, database, bundle, monitor fork, cgroup, clone3 of the namespaces, overlay
    mount, pivot_root, execve of the container process, exit, cleanup, CLI exit) and the time between them;
  - the slowest single syscalls that do real work (waits for another process are left out);
  - the biggest gaps between two syscalls of one process (user-space work or time spent runnable);
  - totals per kind of work (fsync, mount, cgroupfs, process creation).
Timestamps under strace are inflated (every syscall stops the tracee twice); the shares are what matter.
"""

import re
import sys
from collections import defaultdict

LINE = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(.*)$")
DUR = re.compile(r"<(\d+\.\d+)>\s*$")
CALL = re.compile(r"^([a-z_0-9]+)\(")
RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>")
RET = re.compile(r"\)\s+=\s+(-?\d+)")

# Syscalls that block waiting for another process or for time; their duration is someone else's work.
WAITS = {
    "read", "readv", "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "recvmsg", "recvfrom",
    "wait4", "waitid", "futex", "nanosleep", "clock_nanosleep", "rt_sigtimedwait", "accept", "accept4",
}


class Call:
    __slots__ = ("pid", "name", "start", "end", "text", "ret")

    def __init__(self, pid, name, start, text):
        self.pid, self.name, self.start, self.end, self.text, self.ret = pid, name, start, start, text, None


def parse(path):
    calls, exits, pending = [], {}, {}
    day = 0.0
    last = None
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid = int(m[1])
            t = int(m[2]) * 3600 + int(m[3]) * 60 + float(m[4]) + day
            if last is not None and t < last - 43200:  # crossed midnight
                day += 86400
                t += 86400
            last = t
            rest = m[5]
            if rest.startswith("+++"):
                exits[pid] = t
                continue
            if rest.startswith("---"):
                continue
            d = DUR.search(rest)
            r = RESUMED.match(rest)
            if r:
                c = pending.pop(pid, None)
                if c is None:
                    continue
                c.text += " " + rest[r.end():]
            else:
                cm = CALL.match(rest)
                if not cm:
                    continue
                c = Call(pid, cm[1], t, rest)
                if rest.endswith("<unfinished ...>"):
                    c.text = rest[: -len("<unfinished ...>")].rstrip()
                    pending[pid] = c
                    calls.append(c)
                    continue
                calls.append(c)
            if d:
                c.end = c.start + float(d[1])
            else:
                c.end = t
            rm = RET.search(c.text)
            if rm:
                c.ret = int(rm[1])
    calls.sort(key=lambda c: c.start)
    return calls, exits


def ms(x):
    return "%.2f" % (x * 1000.0)


def short(text, n=110):
    text = re.sub(r"/[^\s\"]*/containers/([0-9a-f]{12})[0-9a-f]{52}", r".../containers/\1…", text)
    text = re.sub(r"/sys/fs/cgroup/([a-z_,=]+)/[^\s\"]*/([0-9a-f]{12})[0-9a-f]{52}", r"/sys/fs/cgroup/\1/…/\2…", text)
    text = re.sub(r"\s+", " ", text)
    return (text[: n - 1] + "…") if len(text) > n else text


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    calls, exits = parse(sys.argv[1])
    untraced = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    if not calls:
        print("_The trace is empty._")
        return 0

    # Roles: the CLI is the first process, the monitor the CLI's plain fork, the container init the process
    # cloned with new namespaces.
    cli = calls[0].pid
    role = {cli: "cli"}
    for c in calls:
        if c.name in ("clone", "clone3", "fork", "vfork") and c.ret and c.ret > 0:
            child = c.ret
            if "CLONE_NEWPID" in c.text or "CLONE_NEWNS" in c.text:
                role.setdefault(child, "init")
            elif role.get(c.pid) == "cli":
                role.setdefault(child, "monitor")
            else:
                role.setdefault(child, role.get(c.pid, "?") + "-child")
    who = lambda pid: role.get(pid, str(pid))
    t0 = calls[0].start
    t_end = max([c.end for c in calls] + list(exits.values()))

    # Milestones: the first call matching each predicate (start or end of it).
    def first(pred, at="start", pid_role=None):
        for c in calls:
            if pid_role and who(c.pid) != pid_role:
                continue
            if pred(c):
                return c.start if at == "start" else c.end
        return None

    def last(pred, at="end", pid_role=None):
        found = None
        for c in calls:
            if pid_role and who(c.pid) != pid_role:
                continue
            if pred(c):
                found = c.start if at == "start" else c.end
        return found

    init_pid = next((p for p, r in role.items() if r == "init"), None)
    mon_pid = next((p for p, r in role.items() if r == "monitor"), None)
    cg = lambda c: "/sys/fs/cgroup/" in c.text
    stones = [
        ("CLI execve", t0),
        ("CLI opens the database", first(lambda c: c.name in ("openat", "open") and "berth.db\"" in c.text, pid_role="cli")),
        ("container dir created", first(lambda c: c.name == "mkdir" and "/containers/" in c.text and c.ret == 0, pid_role="cli")),
        ("config.json written", first(lambda c: c.name == "rename" and "config" in c.text, "end", pid_role="cli")),
        ("monitor forked", first(lambda c: c.name in ("clone", "fork", "vfork", "clone3") and who(c.ret or 0) == "monitor", "end")),
        ("monitor opened the database", first(lambda c: c.name in ("openat", "open") and "berth.db\"" in c.text, "end", pid_role="monitor")),
        ("cgroup mkdir starts", first(lambda c: c.name == "mkdir" and cg(c), pid_role="monitor")),
        ("clone3 of the namespaces returns", first(lambda c: c.name in ("clone", "clone3") and "CLONE_NEW" in c.text, "end")),
        ("init joined its cgroups", last(lambda c: c.name == "write" and cg(c) is False and c.ret and c.ret > 0 and re.search(r'write\(\d+, "\d{2,}", \d+', c.text) is not None, "end", pid_role="monitor")),
        ("overlay mounted", first(lambda c: c.name == "mount" and "\"overlay\"" in c.text, "end", pid_role="init")),
        ("pivot_root done", first(lambda c: c.name == "pivot_root", "end", pid_role="init")),
        ("execve of the container process", first(lambda c: c.name == "execve" and c.pid == init_pid, pid_role="init")),
        ("container process exits", exits.get(init_pid) if init_pid else None),
        ("cgroups removed", last(lambda c: c.name == "rmdir" and cg(c), "end", pid_role="monitor")),
        ("container dir removed", last(lambda c: c.name in ("unlinkat", "rmdir") and "/containers/" in c.text and "AT_REMOVEDIR" in c.text, "end", pid_role="monitor")),
        ("CLI exits", exits.get(cli)),
        ("monitor exits", exits.get(mon_pid) if mon_pid else None),
    ]
    stones = [(n, t) for n, t in stones if t is not None]
    stones.sort(key=lambda s: s[1])

    total = (t_end - t0)
    print("One `berth run --rm --network none busybox true` under `strace -f -tt -T`: %s ms traced%s; %d syscalls by %d processes."
          % (ms(total), (" (untraced median %.1f ms: strace stretches every syscall)" % untraced) if untraced else "",
             len(calls), len({c.pid for c in calls})))
    print()
    print("| at (ms) | milestone | since previous (ms) |")
    print("|---:|---|---:|")
    prev = t0
    for n, t in stones:
        print("| %s | %s | %s |" % (ms(t - t0), n, ms(t - prev)))
        prev = t
    print()

    # Slowest single syscalls doing work.
    work = [c for c in calls if c.name not in WAITS]
    work.sort(key=lambda c: c.end - c.start, reverse=True)
    print("Slowest syscalls (waits for another process left out):")
    print()
    print("| ms | process | at (ms) | syscall |")
    print("|---:|---|---:|---|")
    for c in work[:10]:
        print("| %s | %s | %s | `%s` |" % (ms(c.end - c.start), who(c.pid), ms(c.start - t0), short(c.text).replace("|", "\\|").replace("`", "'")))
    print()

    # Gaps between consecutive syscalls of one process: user-space work (or waiting for a CPU).
    by_pid = defaultdict(list)
    for c in calls:
        by_pid[c.pid].append(c)
    gaps = []
    for pid, cs in by_pid.items():
        for a, b in zip(cs, cs[1:]):
            g = b.start - a.end
            if g > 0:
                gaps.append((g, pid, a, b))
    gaps.sort(key=lambda x: x[0], reverse=True)
    print("Biggest gaps between two syscalls of one process (user-space work, or runnable but not running):")
    print()
    print("| ms | process | at (ms) | after | before |")
    print("|---:|---|---:|---|---|")
    for g, pid, a, b in gaps[:8]:
        print("| %s | %s | %s | `%s` | `%s` |" % (ms(g), who(pid), ms(a.end - t0), short(a.text, 60).replace("|", "\\|").replace("`", "'"),
                                                short(b.text, 60).replace("|", "\\|").replace("`", "'")))
    print()

    # Totals per kind.
    kinds = [
        ("fsync/fdatasync (SQLite commits, log)", lambda c: c.name in ("fsync", "fdatasync")),
        ("SQLite file locking and I/O on berth.db*", lambda c: c.name in ("fcntl", "pread64", "pwrite64", "ftruncate") and c.pid in by_pid),
        ("cgroupfs (mkdir, writes, rmdir under /sys/fs/cgroup)", lambda c: cg(c) or (c.name == "write" and re.search(r'write\(\d+, "\d{2,}", \d+', c.text) and who(c.pid) == "monitor")),
        ("mount/umount/pivot_root", lambda c: c.name in ("mount", "umount2", "pivot_root", "mount_setattr", "open_tree", "move_mount", "fsopen", "fsmount", "fsconfig")),
        ("clone/clone3/fork", lambda c: c.name in ("clone", "clone3", "fork", "vfork")),
        ("execve", lambda c: c.name == "execve"),
        ("unlink/rmdir of the container dir", lambda c: c.name in ("unlinkat", "unlink", "rmdir") and "/sys/fs/cgroup/" not in c.text),
    ]
    print("Time inside syscalls by kind (sum over all processes, waits left out):")
    print()
    print("| kind | calls | ms |")
    print("|---|---:|---:|")
    for name, pred in kinds:
        sel = [c for c in work if pred(c)]
        print("| %s | %d | %s |" % (name, len(sel), ms(sum(c.end - c.start for c in sel))))
    print()

    # Plain-words notes on what the user waits for (everything before the CLI exits).
    notes = []
    cli_end = exits.get(cli, t_end)
    moves = [c for c in work if c.name == "write" and who(c.pid) == "monitor" and re.search(r'write\(\d+, "\d{2,}", \d+', c.text)]
    if moves:
        slow = max(moves, key=lambda c: c.end - c.start)
        share = (slow.end - slow.start) / max(cli_end - t0, 1e-9) * 100
        notes.append(
            "Moving the container's init into its cgroups (a pid written to `cgroup.procs`, %d writes) took %s ms, "
            "%.0f%% of the traced run, almost all in the first write: a cgroup migration takes the global threadgroup "
            "lock for writing, which waits for an RCU grace period. crun and runc pay the same here; "
            "`clone3(CLONE_INTO_CGROUP)` (cgroup v2 only) creates the process in its cgroup instead, and "
            "favordynmods (a v2 mount option; `cgroup_favordynmods=true` on the kernel command line for v1) makes "
            "migrations cheap at the expense of fork and exit." % (len(moves), ms(sum(c.end - c.start for c in moves)), share))
    syncs = [c for c in work if c.name in ("fsync", "fdatasync") and c.start < cli_end]
    if syncs:
        notes.append(
            "%d fsync/fdatasync calls (%s ms) come before the CLI exits: each SQLite connection that writes and "
            "then closes checkpoints its WAL (fsync of the WAL and of the database) and deletes it, so the next "
            "command recreates it (and syncs the directory). They cost little on an idle disk and a journal "
            "commit each (waiting for the jbd2 thread) when the machine is busy." % (len(syncs), ms(sum(c.end - c.start for c in syncs))))
    if notes:
        print("Notes:")
        print()
        for n in notes:
            print("- " + n)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
