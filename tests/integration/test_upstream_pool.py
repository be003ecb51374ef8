"""The upstream connection pool: a client that has not sent MAIL holds no upstream connection of its
own; a few ready connections (greeted and EHLO'd) are kept per process, checked before use, returned
after each transaction, never shared once they carried XCLIENT, and closed when idle too long."""
import os
import shutil
import socket
import threading
import time

import pytest

from gwtest import Client, open_session, send_message, transaction
from edgetest import PostfixInstance, gateway_config, start_gateway, wait_log


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def pool_gateway(tmp_path, ports, upstream="", threads=2):
    config = gateway_config([{}], upstream=upstream, trusted=["127.0.0.0/8"])
    return start_gateway(tmp_path, config, ports, threads=threads)


def rx_queue(local_port):
    """Unread bytes in the receive queue of the loopback socket bound to local_port (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":%04X" % local_port):
                return int(fields[4].split(":")[1], 16)
    return 0


def established(server_port):
    """ESTABLISHED loopback connections whose local (server) side is server_port."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":%04X" % server_port) and fields[3] == "01":
                n += 1
    return n


def quits(sink):
    return sum(1 for c in sink.commands if c.upper() == "QUIT")


def test_idle_clients_hold_at_most_pool_size_upstream_connections(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 3\n")
    try:
        clients = [open_session(gw.port, helo="idle%d.test" % i) for i in range(25)]
        # the EHLOs warmed the pool: it fills up to its size and no further
        assert _wait(lambda: sink.connections == 3), sink.connections
        for c in clients[:5]:  # more EHLOs, more NOOPs: still no connection of their own
            assert c.cmd("NOOP")[0] == 250
            assert c.cmd("EHLO again.test")[0] == 250
        time.sleep(0.5)  # an observation window (never on the success path): nothing more opens
        assert sink.connections == 3, sink.connections
        assert gw.metric("smtpgw_upstream_pool_connections") == 3
        # a real client takes a pooled connection: no new one for its transaction
        code, lines = send_message(gw.port)
        assert code == 250, lines
        assert sink.wait_count(1)
        assert sink.connections <= 4, sink.connections
        assert gw.metric('smtpgw_upstream_pool_takes_total{result="hit"}') == 1
        for c in clients:
            c.close()
    finally:
        gw.stop()


def test_a_pooled_connection_the_upstream_closed_is_not_used(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 2\n", threads=1)
    try:
        c = open_session(gw.port)
        assert wait_log(gw, "upstream_pool_keep"), "the warmed connection is in the pool"
        assert sink.connections == 1 and len(sink.active) == 1
        # the upstream closes the idle pooled connection (as Postfix does after smtpd_timeout)
        with sink.lock:
            for s in list(sink.active):
                s.shutdown(socket.SHUT_RDWR)
        assert _wait(lambda: len(sink.active) == 0)
        code, lines = transaction(c)
        assert code == 250, lines
        assert sink.wait_count(1)
        assert sink.connections == 2, "a fresh connection replaced the dead pooled one"
        c.close()
    finally:
        gw.stop()


def test_a_pooled_connection_with_unread_bytes_is_not_used(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 1\n", threads=1)
    try:
        c = open_session(gw.port)
        assert wait_log(gw, "upstream_pool_keep"), "the warmed connection is in the pool"
        with sink.lock:  # an unsolicited reply on the idle connection
            for s in list(sink.active):
                s.sendall(b"421 4.4.2 going away soon\r\n")
                gateway_port = s.getpeername()[1]
        # the check only looks, it never waits: be sure the bytes sit in the gateway's socket first
        assert _wait(lambda: rx_queue(gateway_port) > 0)
        code, lines = transaction(c)
        assert code == 250, lines
        assert sink.wait_count(1) and sink.connections == 2
        c.close()
    finally:
        gw.stop()


def test_connections_go_back_to_the_pool_between_sessions_and_transactions(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 2\n", threads=1)
    try:
        for i in range(6):
            code, lines = send_message(gw.port, sender="s%d@sender.test" % i)
            assert code == 250, lines
        c = open_session(gw.port)
        for i in range(3):
            code, lines = transaction(c, sender="m%d@sender.test" % i)
            assert code == 250, lines
        assert c.cmd("MAIL FROM:<r@sender.test>")[0] == 250
        assert c.cmd("RSET")[0] == 250
        c.cmd("QUIT")
        assert sink.wait_count(9)
        assert sink.connections <= 2, sink.connections
        assert "RSET" in sink.commands  # the aborted transaction was reset upstream before pooling
    finally:
        gw.stop()


def test_pool_size_zero_connects_at_mail_and_closes_after_the_transaction(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 0\n")
    try:
        c = open_session(gw.port)
        time.sleep(0.3)  # observation window
        assert sink.connections == 0, "no pool: nothing upstream before MAIL"
        code, lines = transaction(c)
        assert code == 250, lines
        assert sink.connections == 1
        assert _wait(lambda: quits(sink) == 1), "closed with QUIT once the transaction ended"
        assert c.cmd("NOOP")[0] == 250
        c.close()
    finally:
        gw.stop()


def test_connect_at_mail_does_not_warm_the_pool_but_reuses_it(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream='connect_at = "mail"\npool_size = 2\n', threads=1)
    try:
        c = open_session(gw.port)
        time.sleep(0.3)  # observation window
        assert sink.connections == 0
        assert transaction(c)[0] == 250
        assert transaction(c)[0] == 250
        assert sink.connections == 1
        c.close()
    finally:
        gw.stop()


def test_a_connection_that_carried_xclient_never_goes_back_to_the_pool(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 2\nxclient = true\n", threads=1)
    try:
        c = open_session(gw.port, helo="first.test")
        assert _wait(lambda: sink.connections == 1)
        assert transaction(c)[0] == 250
        assert transaction(c, sender="second@sender.test")[0] == 250
        assert sink.wait_count(2)
        msgs = sink.messages
        assert all(m.xclient and "HELO=first.test" in m.xclient for m in msgs), [m.xclient for m in msgs]
        cmds = sink.commands
        assert sum(1 for x in cmds if x.startswith("XCLIENT")) == 2
        # each XCLIENT'd connection was closed after its transaction, never pooled for another client
        assert _wait(lambda: quits(sink) >= 2)
        c2 = open_session(gw.port, helo="other.test")
        assert transaction(c2, sender="third@sender.test")[0] == 250
        assert sink.wait_count(3)
        assert "HELO=other.test" in sink.messages[2].xclient
        c.close()
        c2.close()
    finally:
        gw.stop()


def test_idle_pooled_connections_are_closed_after_pool_idle_timeout(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream='pool_size = 2\npool_idle_timeout = "1s"\n', threads=1)
    try:
        c = open_session(gw.port)
        assert _wait(lambda: sink.connections == 1)
        assert _wait(lambda: quits(sink) == 1 and len(sink.active) == 0, timeout=15)
        # the pool is empty now, the next MAIL still works (a fresh connection)
        assert transaction(c)[0] == 250
        assert sink.wait_count(1)
        c.close()
    finally:
        gw.stop()


def test_connections_returned_to_a_full_pool_serve_the_next_transactions_then_close(tmp_path, sink):
    """Four transactions at once with pool_size = 1: the four upstream connections they used are all
    kept when they end (one in the pool, three beyond it for 2 s), so the next four transactions open
    none; two seconds later the three extra ones are closed with QUIT and the pool holds one again."""
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 1\n", threads=1)
    try:
        clients = [open_session(gw.port, helo="c%d.test" % i) for i in range(4)]
        assert _wait(lambda: sink.connections == 1)  # the EHLOs warmed the pool to its size

        def round_of_four(n):
            for i, c in enumerate(clients):  # four transactions open at once: MAIL on each first
                assert c.cmd("MAIL FROM:<r%di%d@sender.test>" % (n, i))[0] == 250
            for c in clients:
                assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
                assert c.cmd("DATA")[0] == 354
                c.send(b"Subject: t\r\n\r\nhello\r\n.\r\n")
                assert c.reply()[0] == 250

        round_of_four(1)
        assert sink.wait_count(4)
        assert sink.connections == 4, sink.connections  # one pooled, three opened for the round
        round_of_four(2)
        assert sink.wait_count(8)
        assert sink.connections == 4, sink.connections  # the second round opened none
        assert gw.metric('smtpgw_upstream_pool_takes_total{result="hit"}') >= 5
        # the three kept beyond pool_size close after their 2 s; the pooled one stays
        assert _wait(lambda: len(sink.active) == 1, timeout=15), len(sink.active)
        assert quits(sink) == 3
        assert gw.metric("smtpgw_upstream_pool_connections") == 1
        for c in clients:
            c.close()
    finally:
        gw.stop()


def test_sent_received_acknowledged_under_load_with_the_pool(tmp_path, sink):
    gw = pool_gateway(tmp_path, [sink.port], upstream="pool_size = 4\n")
    acked = []
    lock = threading.Lock()

    def worker(w):
        for i in range(8):
            sender = "w%di%d@sender.test" % (w, i)
            code, lines = send_message(gw.port, sender=sender)
            if code == 250:
                with lock:
                    acked.append(sender)

    try:
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(acked) == 96, len(acked)
        assert sink.wait_count(96)
        received = sorted(m.mail_from for m in sink.messages)
        assert received == sorted(acked)
        # far fewer upstream connections than sessions: the pool carried them
        assert sink.connections < 96, sink.connections
    finally:
        gw.stop()


@pytest.mark.skipif(not shutil.which("postfix") or os.geteuid() != 0,
                    reason="needs Debian's postfix and root to start a private instance")
def test_fifty_idle_clients_leave_a_postfix_with_ten_smtpd_free(tmp_path, sink):
    pf = PostfixInstance(tmp_path, sink.port)
    with open(os.path.join(pf.etc, "main.cf"), "a") as f:
        f.write("default_process_limit = 10\n")
    pf.start()
    gw = pool_gateway(tmp_path, [pf.port])  # the default pool_size
    try:
        idle = [open_session(gw.port, helo="idle%d.test" % i) for i in range(50)]
        for c in idle:
            assert c.cmd("NOOP")[0] == 250
        # Postfix serves the gateway with at most pool_size (8) smtpd processes, not 50
        assert established(pf.port) <= 8, established(pf.port)
        c = open_session(gw.port, helo="real.test")
        code, lines = transaction(c, rcpts=("bob@example.test",))
        assert code == 250, (lines, pf.maillog()[-2000:])
        assert sink.wait_count(1)
        assert "process limit" not in pf.maillog(), pf.maillog()[-2000:]
        for x in idle + [c]:
            x.close()
    finally:
        gw.stop()
        pf.stop()


def test_pool_keys_are_checked(tmp_path):
    import subprocess
    from gwtest import BUILD
    for bad, message in (("pool_size = -1", "pool_size: must be between 0 and 1000"),
                         ('pool_idle_timeout = "10m"', "pool_idle_timeout: must be above 0 and at most 290s")):
        path = tmp_path / "bad.toml"
        path.write_text('[[listener]]\naddress = "127.0.0.1:2525"\n[upstream]\nservers = ["127.0.0.1:25"]\n%s\n' % bad)
        r = subprocess.run([os.path.join(BUILD, "smtp-gateway"), "--check-config", "--config", str(path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        assert str(path) + ":5:" in r.stderr and message in r.stderr, r.stderr


def test_a_pooled_connection_to_a_backup_server_yields_to_the_recovered_first(tmp_path, sink):
    from gwtest import RecordingSink, free_port
    first_port = free_port()
    gw = pool_gateway(tmp_path, [first_port, sink.port], upstream='connect_at = "mail"\npool_size = 2\n', threads=1)
    first = None
    try:
        assert send_message(gw.port)[0] == 250  # the first server is down: the second, then pooled
        assert sink.wait_count(1)
        assert wait_log(gw, "upstream_pool_keep")
        first = RecordingSink(port=first_port)
        first.start()
        time.sleep(1.2)  # the failover rule's own second: a failed server is skipped for at most 1 s
        assert send_message(gw.port, sender="back@sender.test")[0] == 250
        assert first.count() == 1, "the recovered first server is used, not the pooled backup connection"
        assert sink.count() == 1
    finally:
        if first:
            first.stop()
        gw.stop()


# --- MAIL sent while the MAIL-stage plugins run -------------------------------------------------------

DENY_SCRIPT = """
function on_mail_from(tx, addr)
  if addr == "bad@sender.test" then return gateway.reject(550, "5.7.1", "Sender refused by policy") end
end
"""


def _policy_gateway(gateway_factory, sink, tmp_path, pool_size, script=DENY_SCRIPT, extra="", **kw):
    path = tmp_path / "mail_policy.lua"
    path.write_text(script)
    body = '\n[plugins.lua]\nscripts = ["%s"]\n' % path + extra
    # one worker thread: the pool is per thread, and the sessions must share it
    return gateway_factory(body, upstream_ports=[sink.port], pipeline=["lua"], pool_size=pool_size, threads=1, **kw)


def _after(commands, command):
    """The command that followed the first `command` in what the sink heard (None at the end)."""
    i = commands.index(command)
    return commands[i + 1] if i + 1 < len(commands) else None


def _refused_then_delivered(port, sender):
    """One session: bad@sender.test gets the policy's 550 at MAIL, then `sender`'s message is delivered."""
    c = open_session(port)
    try:
        code, lines = c.cmd("MAIL FROM:<bad@sender.test>")
        assert (code, lines[-1]) == (550, "550 5.7.1 Sender refused by policy")
        assert transaction(c, sender=sender)[0] == 250
    finally:
        c.close()


def test_mail_refused_by_a_plugin_while_the_upstream_answered_is_reset(gateway_factory, sink, tmp_path):
    """With a ready pooled connection, MAIL goes to the upstream before the MAIL plugins decide (they run
    while it answers). A sender a plugin refuses gets the plugin's reply; the upstream hears RSET right
    after that MAIL, on the same connection, and nothing from that sender is delivered."""
    gw = _policy_gateway(gateway_factory, sink, tmp_path, pool_size=1)
    assert send_message(gw.port, sender="good@sender.test")[0] == 250
    assert _wait(lambda: sink.count() == 1)
    _refused_then_delivered(gw.port, "good2@sender.test")
    assert _wait(lambda: sink.count() == 2)
    commands = sink.commands
    assert "MAIL FROM:<bad@sender.test>" in commands, commands  # the early MAIL did go out
    assert _after(commands, "MAIL FROM:<bad@sender.test>") == "RSET", commands
    assert [m.mail_from for m in sink.messages] == ["good@sender.test", "good2@sender.test"]
    assert sink.connections == 1, "the refused MAIL, its RSET and the next transaction share one connection"


def test_without_a_ready_connection_a_refused_sender_never_reaches_the_upstream(gateway_factory, sink, tmp_path):
    """No pooled connection: the MAIL plugins decide first, so a refused sender costs the upstream neither
    a connection nor a command."""
    gw = _policy_gateway(gateway_factory, sink, tmp_path, pool_size=0)
    _refused_then_delivered(gw.port, "good@sender.test")
    assert _wait(lambda: sink.count() == 1)
    assert "MAIL FROM:<bad@sender.test>" not in sink.commands, sink.commands
    assert [m.mail_from for m in sink.messages] == ["good@sender.test"]


def test_mail_plugins_slower_than_the_upstream_timeout_still_get_its_reply(gateway_factory, sink, tmp_path):
    """The upstream's MAIL reply waits in the socket while the plugins run: plugins slower than
    upstream.command_timeout (a DNS lookup answered after 1.5 s; the timeout 1 s) do not turn the
    upstream's 250 into a timeout."""
    from dnsserver import DnsServer
    zone = {"%s.slow.test" % n: [("A", "192.0.2.7")] for n in ("first", "second")}
    dns = DnsServer(zone, delay=1.5).start()
    try:
        script = """
function on_mail_from(tx, addr)
  local r = gateway.dns.lookup(addr:match("^(.-)@") .. ".slow.test", "A")
  if r.status ~= "ok" then return gateway.tempfail(451, "4.4.3", "lookup " .. r.status) end
end
"""
        extra = '\n[dns]\nnameservers = ["%s"]\ntimeout = "4s"\n' % dns.address
        gw = _policy_gateway(gateway_factory, sink, tmp_path, pool_size=1, script=script, extra=extra,
                             upstream_timeout="1s")
        assert send_message(gw.port, sender="first@sender.test")[0] == 250  # leaves a pooled connection
        c = open_session(gw.port)
        try:
            started = time.monotonic()
            code, lines = c.cmd("MAIL FROM:<second@sender.test>")
            assert code == 250, lines
            assert time.monotonic() - started >= 1.4  # the plugin did outlast the upstream's timeout
            assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: slow\r\n\r\nhello\r\n.\r\n")
            assert c.reply()[0] == 250
        finally:
            c.close()
    finally:
        dns.stop()
    assert [m.mail_from for m in sink.messages] == ["first@sender.test", "second@sender.test"]
    assert sink.connections == 1, "the second MAIL went out on the pooled connection, before the plugin"
    assert "upstream_failure" not in gw.log()
