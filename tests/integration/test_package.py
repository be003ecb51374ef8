"""The Debian package, end to end on this machine: built from the existing build tree
(scripts/build-deb.sh), installed with dpkg -i, its config and both example configs pass
`--check-config --strict`, the man pages are clean under `man --warnings`, the unit passes
`systemd-analyze verify`, the unit's ExecStart line starts the gateway (no systemd in the container:
the command is run directly, with a test config pointing at a recording sink) and a message goes
through; then the package is purged and nothing it installed is left. Purged in a finally."""
import os
import shlex
import shutil
import subprocess

import pytest

from gwtest import BUILD, free_port, send_message, wait_port
from test_ops_examples import make_files

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dpkg-deb") or not shutil.which("scdoc"),
                                reason="needs root, dpkg-deb and scdoc (installs a package)")


def sh(*args, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def installed():
    return sh("dpkg-query", "-W", "-f=${Status}", "smtp-gateway").stdout.startswith("install ok installed")


def exec_start(unit_text):
    for line in unit_text.splitlines():
        if line.startswith("ExecStart="):
            return line[len("ExecStart="):]
    raise AssertionError("no ExecStart in the unit")


def test_package_install_run_purge(tmp_path, sink):
    if installed():
        pytest.skip("smtp-gateway is already installed on this machine")
    r = sh("bash", os.path.join(REPO, "scripts", "build-deb.sh"), BUILD, str(tmp_path / "deb"), timeout=900)
    assert r.returncode == 0, r.stderr
    deb = r.stdout.strip().splitlines()[-1]
    assert deb.endswith(".deb") and os.path.exists(deb)
    proc = None
    try:
        r = sh("dpkg", "-i", deb)
        assert r.returncode == 0, r.stdout + r.stderr
        files = [f for f in sh("dpkg", "-L", "smtp-gateway").stdout.splitlines() if f.strip()]
        binary = "/usr/bin/smtp-gateway"
        conf = "/etc/smtp-gateway/smtp-gateway.toml"
        unit = "/usr/lib/systemd/system/smtp-gateway.service"
        for f in (binary, conf, unit, "/usr/share/man/man8/smtp-gateway.8", "/usr/share/man/man5/smtp-gateway.toml.5",
                  "/usr/share/doc/smtp-gateway/deploy.md", "/usr/share/doc/smtp-gateway/examples/inbound-mx.toml",
                  "/usr/share/doc/smtp-gateway/policies/access_lists.lua", "/usr/share/doc/smtp-gateway/LICENSE"):
            assert f in files, f
        assert sh("getent", "passwd", "smtp-gateway").returncode == 0
        assert os.path.isdir("/var/lib/smtp-gateway")
        conffiles = sh("dpkg-query", "-W", "-f=${Conffiles}", "smtp-gateway").stdout
        assert conf in conffiles

        # an upgrade (here: the same package again) keeps the admin's edits of the config
        with open(conf, "a") as f:
            f.write("# edited by the admin\n")
        r = sh("dpkg", "-i", "--force-confold", deb)
        assert r.returncode == 0, r.stdout + r.stderr
        assert open(conf).read().endswith("# edited by the admin\n")

        # the installed config, from the unit's working directory
        r = sh(binary, "--check-config", "--strict", "--config", conf, cwd="/var/lib/smtp-gateway")
        assert r.returncode == 0 and r.stderr == "", r.stderr
        # both example configs, their files made under a temporary folder
        root = tmp_path / "etc"
        make_files(root)
        for name in ("inbound-mx.toml", "submission.toml"):
            text = open("/usr/share/doc/smtp-gateway/examples/" + name).read()
            p = tmp_path / name
            p.write_text(text.replace("/etc/smtp-gateway/", str(root) + "/").replace("/var/lib/smtp-gateway/", str(tmp_path) + "/"))
            r = sh(binary, "--check-config", "--strict", "--config", str(p))
            assert r.returncode == 0 and r.stderr == "", (name, r.stderr)

        for page in ("/usr/share/man/man8/smtp-gateway.8", "/usr/share/man/man5/smtp-gateway.toml.5"):
            r = sh("man", "--warnings", "-l", page, env=dict(os.environ, LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat"))
            assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        if shutil.which("systemd-analyze"):
            r = sh("systemd-analyze", "verify", unit)
            assert r.returncode == 0 and r.stderr == "", r.stderr

        # start it as the unit would: the ExecStart line, ${CONFIG} = a test config
        port, mport = free_port(), free_port()
        test_conf = tmp_path / "run.toml"
        test_conf.write_text('[server]\nhostname = "pkg.test"\n[[listener]]\naddress = "127.0.0.1:%d"\n'
                             '[upstream]\nservers = ["127.0.0.1:%d"]\n[relay]\ndomains = ["example.test"]\n'
                             '[store]\npath = "%s"\n[metrics]\nlisten = "127.0.0.1:%d"\n'
                             % (port, sink.port, tmp_path / "state", mport))
        unit_text = open(unit).read()
        cmd = exec_start(unit_text).replace("${CONFIG}", str(test_conf))
        argv = shlex.split(cmd)
        assert argv[0] == binary
        log = open(tmp_path / "gw.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
        assert wait_port(port), open(tmp_path / "gw.log").read()
        code, lines = send_message(port)
        assert code == 250, lines
        assert sink.wait_count(1)
        proc.terminate()
        assert proc.wait(30) == 0
        proc = None
    finally:
        if proc:
            proc.kill()
            proc.wait()
        files = [f for f in sh("dpkg", "-L", "smtp-gateway").stdout.splitlines() if f.strip()] if installed() else []
        r = sh("dpkg", "--purge", "smtp-gateway")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not installed()
    left = [f for f in files if os.path.isfile(f) or os.path.islink(f)]
    assert left == [], left
    for d in ("/etc/smtp-gateway", "/usr/share/doc/smtp-gateway", "/var/lib/smtp-gateway"):
        assert not os.path.exists(d), d
    assert sh("getent", "passwd", "smtp-gateway").returncode != 0
