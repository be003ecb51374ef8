"""Config errors are PATH:LINE:COL: message and exit 1; --check-config, --version, --help."""
import os
import re
import subprocess

from gwtest import BUILD

BIN = os.path.join(BUILD, "smtp-gateway")


def run(*args, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, cwd=cwd)


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return str(p)


GOOD = """
[server]
hostname = "gw.test"
[[listener]]
address = "127.0.0.1:2525"
[upstream]
servers = ["127.0.0.1:10025"]
"""


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("smtp-gateway ")
    r = run("--help")
    assert r.returncode == 0 and "--check-config" in r.stdout


def test_check_config_ok(tmp_path):
    r = run("--check-config", "--config", write(tmp_path, GOOD))
    assert r.returncode == 0, r.stderr


def check_error(tmp_path, text, line, pattern):
    path = write(tmp_path, text)
    r = run("--check-config", "--config", path)
    assert r.returncode == 1
    m = re.match(r"^(.*):(\d+):(\d+): (.*)$", r.stderr.strip().splitlines()[0])
    assert m, r.stderr
    assert m.group(1) == path
    assert int(m.group(2)) == line, r.stderr
    assert re.search(pattern, m.group(4)), r.stderr
    # running (not only checking) fails the same way
    r2 = run("--config", path)
    assert r2.returncode == 1 and r.stderr.strip().splitlines()[0] in r2.stderr.splitlines()


def test_errors_have_locations(tmp_path):
    check_error(tmp_path, GOOD.replace('hostname = "gw.test"', 'hostname = "gw.test"\nbogus = 1'), 4, "unknown key 'server.bogus'")
    check_error(tmp_path, GOOD + "\n[dns]\ntimeout = \"5 parsecs\"\n", 10, "duration")
    check_error(tmp_path, GOOD.replace("[server]", "[server]\nmax_message_size = \"lots\""), 3, "size")
    check_error(tmp_path, GOOD.replace('"127.0.0.1:2525"', '"127.0.0.1"'), 5, "host:port")
    check_error(tmp_path, 'pipeline = ["nope"]\n' + GOOD, 1, 'unknown plugin "nope"')
    check_error(tmp_path, GOOD + "\n[plugins.nope]\nx = 1\n", 9, "unknown key 'plugins.nope'")
    check_error(tmp_path, GOOD.replace("[[listener]]", "[[listener]]\nrole = \"outbound\""), 5, "role.*inbound")
    check_error(tmp_path, "[server\n", 1, ".")
    check_error(tmp_path, GOOD + '\n[trusted]\nnetworks = ["10.0.0.0/33"]\n', 10, "IP network")


def test_missing_upstream_and_listener(tmp_path):
    r = run("--check-config", "--config", write(tmp_path, '[server]\nhostname = "x"\n[upstream]\nservers = ["127.0.0.1:25"]\n'))
    assert r.returncode == 1 and "listener" in r.stderr
    r = run("--check-config", "--config", write(tmp_path, '[[listener]]\naddress = "127.0.0.1:2525"\n'))
    assert r.returncode == 1 and "upstream" in r.stderr


def test_missing_file():
    r = run("--check-config", "--config", "/nonexistent/x.toml")
    assert r.returncode == 1 and "/nonexistent/x.toml" in r.stderr


def test_shipped_sample_config_checks(tmp_path):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    r = run("--check-config", "--config", os.path.join(root, "etc", "smtp-gateway.toml"), cwd=root)
    assert r.returncode == 0, r.stderr
