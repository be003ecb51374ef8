"""etc/examples/*.toml are complete configs that `--check-config --strict` accepts (their files under
/etc/smtp-gateway made in a temporary folder), and the sample config too."""
import os
import subprocess

from gwtest import BUILD

BIN = os.path.join(BUILD, "smtp-gateway")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_files(root):
    """What the examples point at: a TLS key pair, a users file, DKIM keys (mode 0600)."""
    (root / "tls").mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mx.example.org",
                    "-keyout", str(root / "tls" / "key.pem"), "-out", str(root / "tls" / "cert.pem")],
                   check=True, capture_output=True)
    (root / "users").write_text("alice:{SHA512-CRYPT}$6$saltsalt$" + "x" * 86 + "\n")
    (root / "dkim").mkdir()
    for sel, alg in (("s2026", "rsa-sha256"), ("e2026", "ed25519-sha256")):
        r = subprocess.run([BIN, "dkim-keygen", "--domain", "example.org", "--selector", sel, "--algorithm", alg,
                            "--out", str(root / "dkim")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def check_example(tmp_path, name, files_root):
    text = open(os.path.join(REPO, "etc", "examples", name)).read()
    text = text.replace("/etc/smtp-gateway/", str(files_root) + "/").replace("/var/lib/smtp-gateway/", str(tmp_path) + "/")
    p = tmp_path / name
    p.write_text(text)
    return subprocess.run([BIN, "--check-config", "--strict", "--config", str(p)], capture_output=True, text=True, timeout=60)


def test_examples_pass_strict_check(tmp_path):
    root = tmp_path / "etc"
    make_files(root)
    for name in ("inbound-mx.toml", "submission.toml"):
        r = check_example(tmp_path, name, root)
        assert r.returncode == 0 and r.stderr == "", (name, r.stderr)
        assert "configuration OK" in r.stdout


def test_example_key_with_group_bits_fails_strict(tmp_path):
    root = tmp_path / "etc"
    make_files(root)
    os.chmod(root / "dkim" / "example.org.s2026.key", 0o640)
    r = check_example(tmp_path, "submission.toml", root)
    assert r.returncode == 1 and "warning:" in r.stderr and "example.org.s2026.key" in r.stderr


def test_sample_config_passes_strict_check():
    r = subprocess.run([BIN, "--check-config", "--strict", "--config", "etc/smtp-gateway.toml"], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_troubleshooting_lists_every_log_event():
    import re
    events = set()
    for top in ("gateway", "plugins", "lua"):
        for d, _, names in os.walk(os.path.join(REPO, top)):
            for n in names:
                if n.endswith((".cpp", ".hpp")):
                    text = open(os.path.join(d, n), errors="replace").read()
                    events |= set(re.findall(r'log::(?:debug|info|warn|error)\(\s*"([a-z_]+)"', text))
                    events |= set(re.findall(r'log::write\([^,]+,\s*"([a-z_]+)"', text))
    assert len(events) > 30
    page = open(os.path.join(REPO, "docs", "troubleshooting.md")).read()
    missing = sorted(e for e in events if "`%s`" % e not in page)
    assert missing == [], missing
