#!/usr/bin/env python3
"""The build refuses an include against the README's architecture (cmake/Layers.cmake).

For a few source files of different libraries, take the exact compile command CMake wrote into
compile_commands.json, swap the source for a probe that includes one header, and preprocess it:
a header the library may use must be found, a header against the direction must not be.
Usage: include_direction.py BUILD_DIR
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

# source file -> (headers it may include, headers it must not reach)
CASES = {
    "gateway/smtp/received.cpp": (
        ["gateway/upstream/pool.hpp", "gateway/core/transaction.hpp", "gateway/dns/resolver.hpp"],
        ["plugins/spf/spf_check.hpp", "lua/host.hpp", "plugins/lua/lua_plugin.cpp"]),
    "gateway/core/pipeline.cpp": (
        ["gateway/config/config.hpp", "gateway/observe/log.hpp"],
        ["gateway/smtp/session.hpp", "gateway/upstream/pool.hpp", "gateway/store/store.hpp"]),
    "gateway/config/config.cpp": (
        ["gateway/config/table.hpp"],
        ["gateway/observe/log.hpp", "gateway/core/transaction.hpp"]),
    "plugins/dnsbl/dnsbl.cpp": (
        ["gateway/core/plugin.hpp", "gateway/dns/resolver.hpp", "gateway/store/store.hpp"],
        ["gateway/smtp/session.hpp", "gateway/upstream/pool.hpp", "gateway/net/stream.hpp",
         "plugins/spf/spf_check.hpp", "lua/host.hpp"]),
    "lua/api.cpp": (
        ["gateway/core/transaction.hpp", "gateway/dns/resolver.hpp"],
        ["gateway/smtp/session.hpp", "plugins/spf/spf_check.hpp"]),
}


def command_for(entries, source):
    for e in entries:
        if os.path.realpath(e["file"]).endswith("/" + source):
            args = e.get("arguments") or shlex.split(e["command"])
            return args, e["directory"]
    raise SystemExit("no compile command for %s" % source)


def preprocesses(args, directory, header):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write('#include "%s"\n' % header)
        probe = f.name
    out = []
    skip = False
    for a in args:  # drop -o X, -c, the source, and ccache
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a.endswith(".cpp") or os.path.basename(a) == "ccache":
            continue
        out.append(a)
    r = subprocess.run(out + ["-E", "-o", os.devnull, probe], cwd=directory, capture_output=True, text=True)
    os.unlink(probe)
    return r.returncode == 0, r.stderr


def main():
    build = sys.argv[1]
    entries = json.load(open(os.path.join(build, "compile_commands.json")))
    failures = []
    for source, (allowed, forbidden) in CASES.items():
        args, directory = command_for(entries, source)
        for h in allowed:
            ok, err = preprocesses(args, directory, h)
            if not ok:
                failures.append("%s cannot include %s, which its library may use:\n%s" % (source, h, err))
        for h in forbidden:
            ok, _ = preprocesses(args, directory, h)
            if ok:
                failures.append("%s can include %s, against the include direction" % (source, h))
    for f in failures:
        print(f)
    print("%d sources, %d probes, %d failures" % (len(CASES), sum(len(a) + len(b) for a, b in CASES.values()), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
