#!/usr/bin/env python3
"""CPU time of processes and their threads, from /proc (scripts/bench.sh).

  cpu.py snapshot PID...      -> JSON {name: seconds}: each thread of each
                                 process, grouped by the thread's name
                                 (allot-loop-0, allot-persister, ...), and
                                 a process total under its command name
  cpu.py diff BEFORE AFTER N  -> a table of microseconds of CPU per request
                                 (N requests) for each group
  cpu.py run OUT -- CMD...    -> runs CMD, writes its own CPU seconds
                                 (user + system, from wait4) to OUT

User plus system time, so the kernel's work for a thread (its sockets) is
counted with it. Ticks are read from /proc/PID/task/TID/stat (fields 14
and 15), in units of SC_CLK_TCK.
"""
import json
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(path):
    with open(path) as handle:
        text = handle.read()
    # comm is in parentheses and may hold spaces: split after the last ')'
    name = text[text.index("(") + 1:text.rindex(")")]
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): utime is field 14, stime field 15
    return name, (int(rest[11]) + int(rest[12])) / TICK


def snapshot(pids):
    groups = {}
    for pid in pids:
        try:
            process, total = stat_fields(f"/proc/{pid}/stat")
        except OSError:
            continue
        groups[f"{process} (process)"] = groups.get(f"{process} (process)", 0) + total
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                name, seconds = stat_fields(f"/proc/{pid}/task/{tid}/stat")
            except OSError:
                continue
            if name.startswith("allot-"):
                groups[name] = groups.get(name, 0) + seconds
    return groups


def main():
    command = sys.argv[1]
    if command == "snapshot":
        print(json.dumps(snapshot(sys.argv[2:])))
    elif command == "diff":
        before, after = json.loads(sys.argv[2]), json.loads(sys.argv[3])
        requests = max(1, int(float(sys.argv[4])))
        for name in sorted(after):
            spent = after[name] - before.get(name, 0)
            print(f"  {name:<32} {spent * 1e6 / requests:8.1f} µs/request")
    elif command == "run":
        out, argv = sys.argv[2], sys.argv[sys.argv.index("--") + 1:]
        child = os.fork()
        if child == 0:
            os.execvp(argv[0], argv)
        _, status, usage = os.wait4(child, 0)
        with open(out, "w") as handle:
            handle.write(str(usage.ru_utime + usage.ru_stime))
        sys.exit(os.waitstatus_to_exitcode(status))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
