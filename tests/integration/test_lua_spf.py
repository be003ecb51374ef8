"""Lua policies behind the real spf plugin and resolver: tx.spf from spf, tx.client.ip from the PROXY
header, tx.client.rdns from the PTR record; spf_softfail_tag.lua end to end, dmarc_lite.lua without a dmarc plugin."""
import os

from dnsserver import DnsServer
from gwtest import Gateway
from luahelp import POLICIES, write
from spftest import spf_config, transaction

ZONE = {
    "sender.test": [("TXT", "v=spf1 ip4:192.0.2.10 ~all")],
    "hard.test": [("TXT", "v=spf1 ip4:192.0.2.10 -all")],
    "10.2.0.192.in-addr.arpa": [("PTR", "client.sender.test.")],
}

CLIENT = """
function on_data(tx, msg)
  tx:add_header("X-Client", tx.client.ip .. " " .. tostring(tx.client.rdns) .. " " .. tostring(tx.trusted) ..
                " spf=" .. tostring(tx.spf.result))
end
"""


def gateway(tmp_path, sink, dns, scripts):
    lua = "\n[plugins.lua]\nscripts = [%s]\n" % ", ".join('"%s"' % s for s in scripts)
    return Gateway(tmp_path, upstream_ports=[sink.port], threads=2,
                   **spf_config(dns, pipeline=["spf", "lua"], body=lua)).start()


def test_softfail_tagged_with_real_spf(tmp_path, sink):
    dns = DnsServer(ZONE).start()
    client = write(tmp_path, "client.lua", CLIENT)
    gw = gateway(tmp_path, sink, dns, [os.path.join(POLICIES, "spf_softfail_tag.lua"), client])
    try:
        stage, code, lines = transaction(gw.port, "192.0.2.20", "alice@sender.test", body="Subject: soft\r\n\r\nx\r\n")
        assert (stage, code) == ("done", 250), lines
        stage, code, lines = transaction(gw.port, "192.0.2.10", "alice@sender.test", body="Subject: pass\r\n\r\nx\r\n")
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(2)
        soft, ok = sink.messages
        assert soft.header("X-Spam-Flag") == ["YES"]
        assert soft.header("X-Policy-SPF") == ["softfail (sender.test)"]
        assert soft.header("X-Client") == ["192.0.2.20 nil false spf=softfail"]
        assert ok.header("X-Spam-Flag") == []
        assert ok.header("X-Client") == ["192.0.2.10 client.sender.test false spf=pass"]
    finally:
        gw.stop()
        dns.stop()


def test_dmarc_lite_without_dmarc_plugin_is_harmless(tmp_path, sink):
    """dmarc_lite.lua acts on tx.dmarc only: behind spf alone (no dmarc plugin) it refuses nothing,
    not even a From domain that SPF does not back (it does not guess any domain's policy)."""
    dns = DnsServer(ZONE).start()
    gw = gateway(tmp_path, sink, dns, [os.path.join(POLICIES, "dmarc_lite.lua")])
    try:
        ok = transaction(gw.port, "192.0.2.10", "alice@hard.test", body="From: A <alice@hard.test>\r\n\r\nx\r\n")
        assert ok[:2] == ("done", 250), ok
        unbacked = transaction(gw.port, "192.0.2.66", "alice@hard.test", body="From: A <alice@hard.test>\r\n\r\nx\r\n")
        assert unbacked[:2] == ("done", 250), unbacked
        assert sink.wait_count(2)
        assert all(m.header("X-Policy-DMARC") == [] for m in sink.messages)
        assert "lua_error" not in gw.log()
    finally:
        gw.stop()
        dns.stop()
