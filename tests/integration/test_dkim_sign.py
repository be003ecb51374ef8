"""dkim_sign and dkim-keygen through the real binary; every signature the gateway makes is checked by
independent implementations (Perl Mail::DKIM for rsa-sha256, Python dkimpy for rsa-sha256 and
ed25519-sha256) with the keys served by a real DNS server on loopback."""
import os
import re
import stat
import subprocess

import pytest

from dkimtools import dkimpy_verify_all, mail_dkim_verify
from dnsserver import DnsServer
from gwtest import BUILD, send_message, transaction

BIN = os.path.join(BUILD, "smtp-gateway")

MESSAGES = {
    "plain": (b"From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: plain\r\n"
              b"Date: Wed, 25 Nov 2026 22:00:00 +0000\r\nMessage-ID: <plain@example.test>\r\n\r\n"
              b"Hello Bob,\r\n\r\nsee you.  \r\n\r\n\r\n"),
    "multipart": (b"From: \"Alice, A.\" <alice@Example.Test>\r\nTo: bob@remote.test\r\nSubject: parts\r\n"
                  b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
                  b"preamble\r\n--XYZ\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nfirst part\r\n"
                  b"--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n--XYZ--\r\n"),
    "8bit": ("From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
             "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             "Grüße aus Köln — ünïcödé ✓\r\n\tTab line\r\n").encode("utf-8") + b"\xff\xfe raw bytes\r\n",
    "folded": (b"From: alice@example.test\r\nTo: bob@remote.test,\r\n  carol@remote.test,\r\n\tdave@remote.test\r\n"
               b"Subject: a long subject line that goes on and on " + b"and on " * 30 + b"\r\n"
               b"  and is folded\r\n\tseveral   times\r\n"
               b"X-Long: " + b"x" * 900 + b"\r\n\r\nbody\r\n"),
}


def keygen(tmp_path, domain, selector, algorithm="rsa-sha256", bits=None):
    args = [BIN, "dkim-keygen", "--domain", domain, "--selector", selector, "--algorithm", algorithm,
            "--out", str(tmp_path)]
    if bits:
        args += ["--bits", str(bits)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    path = tmp_path / ("%s.%s.key" % (domain, selector))
    txt = "".join(re.findall(r'"([^"]*)"', r.stdout))
    assert r.stdout.startswith("%s._domainkey.%s. IN TXT" % (selector, domain)), r.stdout
    return str(path), txt


@pytest.fixture
def dns():
    d = DnsServer({}).start()
    yield d
    d.stop()


@pytest.fixture
def keys(tmp_path, dns):
    rsa, rsa_txt = keygen(tmp_path, "example.test", "s1")
    ed, ed_txt = keygen(tmp_path, "example.test", "e1", "ed25519-sha256")
    dns.set("s1._domainkey.example.test", [("TXT", rsa_txt)])
    dns.set("e1._domainkey.example.test", [("TXT", ed_txt)])
    return {"rsa": rsa, "ed": ed}


def sign_config(*entries):
    out = "\n[plugins.dkim_sign]\n"
    for e in entries:
        out += "[[plugins.dkim_sign.keys]]\n" + "".join("%s = %s\n" % (k, v) for k, v in e.items())
    return out


def key_entry(path, selector="s1", algorithm="rsa-sha256", domain="example.test", **more):
    e = {"domain": '"%s"' % domain, "selector": '"%s"' % selector, "algorithm": '"%s"' % algorithm,
         "private_key": '"%s"' % path}
    e.update(more)
    return e


def test_keygen_writes_pkcs8_and_prints_record(tmp_path):
    path, txt = keygen(tmp_path, "example.test", "k1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    pem = open(path).read()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert txt.startswith("v=DKIM1; k=rsa; p=MII")
    out = subprocess.run(["openssl", "pkey", "-in", path, "-noout", "-text"], capture_output=True, text=True)
    assert "2048 bit" in out.stdout
    path, txt = keygen(tmp_path, "example.test", "k2", "ed25519-sha256")
    assert open(path).read().startswith("-----BEGIN PRIVATE KEY-----")
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", txt), txt
    # never overwrites an existing key; bad arguments are errors
    r = subprocess.run([BIN, "dkim-keygen", "--domain", "example.test", "--selector", "k1", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "k1.key" in r.stderr
    r = subprocess.run([BIN, "dkim-keygen", "--domain", "example.test", "--selector", "k3", "--bits", "512",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1
    r = subprocess.run([BIN, "dkim-keygen", "--domain", "example.test", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_signatures_verify_with_independent_implementations(name, sink, gateway_factory, keys, dns):
    gw = gateway_factory(sign_config(key_entry(keys["rsa"]), key_entry(keys["ed"], "e1", "ed25519-sha256")),
                         upstream_ports=[sink.port], pipeline=["dkim_sign"])
    code, lines = send_message(gw.port, sender="alice@example.test", rcpts=["bob@remote.test"], body=MESSAGES[name])
    assert code == 250, lines
    assert sink.wait_count(1)
    data = sink.messages[0].data
    sigs = sink.messages[0].header("DKIM-Signature")
    assert len(sigs) == 2
    assert any("a=rsa-sha256" in s for s in sigs) and any("a=ed25519-sha256" in s for s in sigs)
    assert all("c=relaxed/relaxed" in s and "d=example.test" in s for s in sigs)
    # Mail::DKIM (no ed25519 in Debian 12's version): the rsa signature passes
    rows = mail_dkim_verify(data, dns.port)
    rsa_rows = [r for r in rows if r[3] == "rsa-sha256"]
    assert rsa_rows and rsa_rows[0][0] == "pass", rows
    # dkimpy: both pass
    results = dkimpy_verify_all(data, dns.port)
    assert sorted(r[3] for r in results) == ["ed25519-sha256", "rsa-sha256"]
    assert all(r[0] for r in results), results
    assert gw.metric('smtpgw_dkim_signatures_total{algorithm="rsa-sha256"}') == 1
    assert gw.metric('smtpgw_dkim_signatures_total{algorithm="ed25519-sha256"}') == 1


def test_signature_covers_prepended_headers_and_oversigns_from(sink, gateway_factory, keys, dns):
    entry = key_entry(keys["rsa"], headers='["From", "Subject", "X-Test-Order"]')
    gw = gateway_factory(sign_config(entry) + "\n[plugins.test_a]\nheader = true\n", binary="smtp-gateway-test",
                         upstream_ports=[sink.port], pipeline=["test_a", "dkim_sign"])
    code, lines = send_message(gw.port, sender="alice@example.test", rcpts=["bob@remote.test"],
                               body=MESSAGES["plain"])
    assert code == 250, lines
    assert sink.wait_count(1)
    msg = sink.messages[0]
    assert msg.header("X-Test-Order") == ["test_a"]
    sig = re.sub(r"\s+", "", msg.header("DKIM-Signature")[0])
    h = re.search(r";h=([^;]*)", sig).group(1).lower().split(":")
    assert "x-test-order" in h and h.count("from") == 2, h  # From over-signed
    assert mail_dkim_verify(msg.data, dns.port)[0][0] == "pass"
    # the prepended header is covered: changing it breaks the signature
    tampered = msg.data.replace(b"X-Test-Order: test_a", b"X-Test-Order: test_b")
    assert tampered != msg.data
    assert mail_dkim_verify(tampered, dns.port)[0][0] == "fail"
    # so is the body
    tampered = msg.data.replace(b"see you.", b"see you!")
    assert mail_dkim_verify(tampered, dns.port)[0][0] == "fail"


def test_simple_canonicalization_and_traditional_rsa_key(tmp_path, sink, gateway_factory, dns, keys):
    path = str(tmp_path / "trad.key")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, "2048"], check=True, capture_output=True)
    assert open(path).read().startswith("-----BEGIN RSA PRIVATE KEY-----")
    pub = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    import base64
    dns.set("t1._domainkey.example.test", [("TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode())])
    gw = gateway_factory(sign_config(key_entry(path, "t1", canonicalization='"simple/simple"'),
                                     key_entry(keys["ed"], "e1", "ed25519-sha256", canonicalization='"simple/relaxed"')),
                         upstream_ports=[sink.port], pipeline=["dkim_sign"])
    for i, name in enumerate(sorted(MESSAGES)):
        code, lines = send_message(gw.port, sender="alice@example.test", rcpts=["bob@remote.test"],
                                   body=MESSAGES[name])
        assert code == 250, lines
        assert sink.wait_count(i + 1)
        msg = sink.messages[i]
        sigs = msg.header("DKIM-Signature")
        assert "c=simple/simple" in sigs[0] and "c=simple/relaxed" in sigs[1]
        rows = mail_dkim_verify(msg.data, dns.port)
        assert [r[0] for r in rows if r[3] == "rsa-sha256"] == ["pass"], (name, rows)
        results = dkimpy_verify_all(msg.data, dns.port)
        assert [r[0] for r in results] == [True, True], (name, results)


def test_untrusted_and_unknown_domains_are_not_signed(sink, gateway_factory, keys, dns):
    cfg = sign_config(key_entry(keys["rsa"]))
    gw = gateway_factory(cfg, upstream_ports=[sink.port], pipeline=["dkim_sign"])
    other = MESSAGES["plain"].replace(b"alice@example.test", b"alice@other.test")
    code, lines = send_message(gw.port, sender="alice@other.test", rcpts=["bob@remote.test"], body=other)
    assert code == 250, lines
    code, lines = send_message(gw.port, sender="alice@example.test", rcpts=["bob@remote.test"],
                               body=MESSAGES["plain"])
    assert code == 250, lines
    assert sink.wait_count(2)
    assert sink.messages[0].header("DKIM-Signature") == []
    assert len(sink.messages[1].header("DKIM-Signature")) == 1  # trusted + listed domain: signed
    # an untrusted client (no trusted networks, not authenticated) is never signed for
    gw2 = gateway_factory(cfg + "\n[trusted]\nnetworks = []\n", upstream_ports=[sink.port], pipeline=["dkim_sign"])
    code, lines = send_message(gw2.port, sender="alice@example.test", rcpts=["bob@example.test"],
                               body=MESSAGES["plain"])
    assert code == 250, lines
    assert sink.wait_count(3)
    assert sink.messages[2].header("DKIM-Signature") == []


def check_config(tmp_path, body):
    cfg = tmp_path / "check.toml"
    cfg.write_text('pipeline = ["dkim_sign"]\n[[listener]]\naddress = "127.0.0.1:1"\n[upstream]\n'
                   'servers = ["127.0.0.1:2"]\n' + body)
    return subprocess.run([BIN, "--check-config", "--config", str(cfg)], capture_output=True, text=True, timeout=30)


def test_key_errors_are_config_errors(tmp_path, keys):
    missing = str(tmp_path / "nope.key")
    r = check_config(tmp_path, sign_config(key_entry(missing)))
    assert r.returncode == 1
    assert "nope.key" in r.stderr and re.search(r"check\.toml:\d+:\d+:", r.stderr), r.stderr
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    r = check_config(tmp_path, sign_config(key_entry(str(garbage))))
    assert r.returncode == 1 and "garbage.key" in r.stderr, r.stderr
    # the algorithm must match the key
    r = check_config(tmp_path, sign_config(key_entry(keys["ed"], algorithm="rsa-sha256")))
    assert r.returncode == 1 and "not an RSA key" in r.stderr, r.stderr
    r = check_config(tmp_path, sign_config(key_entry(keys["rsa"], canonicalization='"loose"')))
    assert r.returncode == 1 and "canonicalization" in r.stderr, r.stderr
    r = check_config(tmp_path, sign_config(key_entry(keys["rsa"], "bad;sel")))
    assert r.returncode == 1 and "selector" in r.stderr, r.stderr
    r = check_config(tmp_path, sign_config(key_entry(keys["rsa"]), key_entry(keys["rsa"])))
    assert r.returncode == 1 and "already listed" in r.stderr, r.stderr
    r = check_config(tmp_path, sign_config(key_entry(keys["rsa"]), key_entry(keys["ed"], "e1", "ed25519-sha256")))
    assert r.returncode == 0, r.stderr


def test_sighup_reloads_keys_and_keeps_old_on_error(tmp_path, sink, gateway_factory, keys, dns):
    import signal
    import time
    gw = gateway_factory(sign_config(key_entry(keys["rsa"])), upstream_ports=[sink.port], pipeline=["dkim_sign"])

    def selector_of_next():
        n = sink.count()
        code, lines = send_message(gw.port, sender="alice@example.test", rcpts=["bob@remote.test"],
                                   body=MESSAGES["plain"])
        assert code == 250, lines
        assert sink.wait_count(n + 1)
        sig = re.sub(r"\s+", "", sink.messages[-1].header("DKIM-Signature")[0])
        return re.search(r";s=([^;]+);", sig).group(1)

    def reload(body, wait_for):
        with open(gw.config_path) as f:
            text = f.read()
        text = text[:text.index("\n[plugins.dkim_sign]")] + body
        with open(gw.config_path, "w") as f:
            f.write(text)
        before = gw.log().count(wait_for)
        gw.signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while time.monotonic() < end and gw.log().count(wait_for) == before:
            time.sleep(0.05)
        assert gw.log().count(wait_for) > before, gw.log()[-2000:]

    assert selector_of_next() == "s1"
    reload(sign_config(key_entry(keys["ed"], "e1", "ed25519-sha256")), "reloaded")
    assert selector_of_next() == "e1"
    # a config whose key file is gone is refused; the running keys stay
    reload(sign_config(key_entry(str(tmp_path / "gone.key"))), "reload_failed")
    assert "gone.key" in gw.log()
    assert selector_of_next() == "e1"


def test_authenticated_submission_is_signed(tmp_path, sink, keys, dns):
    from edgetest import crypt_hash, gateway_config, greet, make_cert, plain, start_gateway
    cert, key = make_cert(tmp_path)
    users = tmp_path / "users"
    users.write_text("alice:%s\n" % crypt_hash("s3cret", "$6$"))
    config = gateway_config([dict(role="submission", tls="implicit")], trusted=[], relay=["example.test"],
                            pipeline=["dkim_sign"],
                            body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n\n[auth]\nusers_file = "%s"\n'
                                 % (cert, key, users) + sign_config(key_entry(keys["rsa"])))
    gw = start_gateway(tmp_path, config, [sink.port], threads=1)
    try:
        # not authenticated, not trusted: relayed to a local domain, never signed
        c = greet(gw.port, implicit=True)
        code, lines = transaction(c, sender="alice@example.test", rcpts=["bob@example.test"], body=MESSAGES["plain"])
        assert code == 250, lines
        c.close()
        assert sink.wait_count(1)
        assert sink.messages[0].header("DKIM-Signature") == []
        # authenticated: signed, and the signature verifies
        c = greet(gw.port, implicit=True)
        code, lines = c.cmd("AUTH PLAIN " + plain("alice", "s3cret"))
        assert code == 235, lines
        code, lines = transaction(c, sender="alice@example.test", rcpts=["bob@remote.test"], body=MESSAGES["plain"])
        assert code == 250, lines
        c.close()
        assert sink.wait_count(2)
        assert len(sink.messages[1].header("DKIM-Signature")) == 1
        assert [r[0] for r in mail_dkim_verify(sink.messages[1].data, dns.port)] == ["pass"]
    finally:
        gw.stop()
