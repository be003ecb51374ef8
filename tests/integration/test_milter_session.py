"""milter plugin: the session macros {tls_version} (HELO after STARTTLS) and {auth_authen} (MAIL of an
authenticated client: the milter runs for every client), and config errors at --check-config."""
import os
import subprocess

import pytest

from edgetest import crypt_hash, gateway_config, greet, make_cert, plain, start_gateway
from gwtest import BUILD
from miltertest import ScriptMilter


@pytest.fixture
def milter(tmp_path):
    m = ScriptMilter(tmp_path, {}).start()
    yield m
    m.stop()


def test_tls_and_auth_macros(tmp_path, sink, milter):
    cert, key = make_cert(tmp_path)
    users = tmp_path / "users"
    users.write_text("alice:{SHA512-CRYPT}%s\n" % crypt_hash("s3cret", "$6$"))
    config = gateway_config(
        [dict(role="submission", tls="starttls")], trusted=[], relay=["example.test"],
        pipeline=["milter"],
        body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n\n[auth]\nusers_file = "%s"\n'
             '\n[plugins.milter]\n[[plugins.milter.servers]]\nname = "m"\naddress = "%s"\n'
             % (cert, key, users, milter.address))
    gw = start_gateway(tmp_path, config, [sink.port], threads=1)
    try:
        c = greet(gw.port)
        c.starttls()
        c.ehlo("after.tls.test")
        code, lines = c.cmd("AUTH PLAIN " + plain("alice", "s3cret"))
        assert code == 235, lines
        assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 250
        assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: s\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
        c.cmd("QUIT")
        assert milter.wait_event("mail")
        s = milter.session_with("mail")
        helos = [e for e in s if e["ev"] == "helo"]
        assert [h["name"] for h in helos] == ["client.test", "after.tls.test"]
        assert "{tls_version}" not in helos[0]["macros"]
        assert helos[1]["macros"]["{tls_version}"].startswith("TLSv1")
        mail = [e for e in s if e["ev"] == "mail"][0]
        assert mail["macros"]["{auth_authen}"] == "alice"
        assert sink.wait_count(1)
    finally:
        gw.stop()


def check(tmp_path, body):
    path = tmp_path / "c.toml"
    path.write_text('pipeline = ["milter"]\n[[listener]]\naddress = "127.0.0.1:2525"\n[upstream]\n'
                    'servers = ["127.0.0.1:10025"]\n' + body)
    return subprocess.run([os.path.join(BUILD, "smtp-gateway"), "--check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("body,needle", [
    ("", "at least one"),
    ('[plugins.milter]\n[[plugins.milter.servers]]\naddress = "tcp:1.2.3.4:5"\n', "not a milter address"),
    ('[plugins.milter]\n[[plugins.milter.servers]]\naddress = "inet:127.0.0.1:8891"\non_error = "ignore"\n', "on_error"),
    ('[plugins.milter]\n[[plugins.milter.servers]]\naddress = "inet:127.0.0.1:8891"\ntimeout = "5s"\n', "timeout"),
    ('[plugins.milter]\n[[plugins.milter.servers]]\nname = "a"\naddress = "unix:/x"\n'
     '[[plugins.milter.servers]]\nname = "a"\naddress = "unix:/y"\n', "two milter servers"),
])
def test_config_errors(tmp_path, body, needle):
    r = check(tmp_path, body)
    assert r.returncode == 1, r.stdout + r.stderr
    assert needle in r.stderr and "c.toml:" in r.stderr, r.stderr


def test_config_ok(tmp_path):
    r = check(tmp_path, '[plugins.milter]\n[[plugins.milter.servers]]\nname = "clamav"\n'
                        'address = "unix:/run/clamav/clamav-milter.ctl"\nconnect_timeout = "5s"\n'
                        'command_timeout = "30s"\non_error = "accept"\n')
    assert r.returncode == 0, r.stderr
