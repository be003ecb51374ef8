"""etc/smtp-gateway.service: a unit systemd accepts, with the hardening the docs promise."""
import os
import re
import shutil
import subprocess

import pytest

from gwtest import BUILD, ROOT

UNIT = os.path.join(ROOT, "etc", "smtp-gateway.service")


def settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
            if m:
                out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_unit_hardening():
    s = settings()
    assert s["Type"] == ["simple"]
    assert s["User"] == ["smtp-gateway"]
    assert s["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert s["KillSignal"] == ["SIGTERM"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                       ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"), ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
                       ("ProtectHome", "yes"), ("MemoryDenyWriteExecute", "yes")):
        assert s.get(key) == [value], key
    assert "/var/lib/smtp-gateway" in s["ReadWritePaths"][0]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_unit_verifies(tmp_path):
    unit = tmp_path / "smtp-gateway.service"
    with open(UNIT) as f:
        unit.write_text(f.read().replace("/usr/local/bin/smtp-gateway", os.path.join(BUILD, "smtp-gateway")))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, cwd=str(tmp_path))
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr.decode()
