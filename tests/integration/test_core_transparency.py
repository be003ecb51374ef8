"""The body arrives byte for byte; smuggling payloads never make a second transaction."""
import random

from gwtest import open_session, send_message

SMUGGLING = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\r", b"\r\n.\n", b"\n.\r"]


def test_smuggling_payloads_give_exactly_one_message(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    for i, eod in enumerate(SMUGGLING):
        c = open_session(gw.port)
        assert c.cmd("MAIL FROM:<real@sender.test>")[0] == 250
        assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        payload = (b"Subject: smuggle %d\r\n\r\nhello" % i + eod +
                   b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
                   b"Subject: injected\r\n\r\nowned\r\n.\r\n")
        c.send(payload)
        code, lines = c.reply()
        assert code == 250, lines
        c.cmd("QUIT")
        c.close()
        assert sink.wait_count(i + 1)
    assert sink.count() == len(SMUGGLING)
    for m in sink.messages:
        assert m.mail_from == "real@sender.test"
        assert m.rcpts == ["bob@example.test"]
        assert b"\r" not in m.data.replace(b"\r\n", b"")
        assert b"\n" not in m.data.replace(b"\r\n", b"")
    assert not any("evil@attacker.test" in c for c in sink.commands if c.startswith("MAIL"))


def test_byte_exact_dot_lines_8bit_and_998_octet_lines(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    rnd = random.Random(7)
    lines = [b"Subject: transparency", b"", b".", b"..", b".leading dot", b"...three", b"x" * 998,
             b"." + b"y" * 997, bytes(range(0x80, 0x100)), b"\t tab and space ", b""]
    for _ in range(50):
        lines.append(bytes(rnd.choice(b"abc.\t \x80\xff") for _ in range(rnd.randint(0, 80))))
    body = b"\r\n".join(lines) + b"\r\n"
    code, rl = send_message(gw.port, body=body)
    assert code == 250, rl
    assert sink.wait_count(1)
    got = sink.messages[0].data
    # the gateway prepends its Received header and must not touch a byte of the message itself
    assert got.endswith(body)
    assert got[: len(got) - len(body)].startswith(b"Received: ")


def test_ten_mebibyte_message(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_message_size=32 * 1024 * 1024)
    line = b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line) + 1)
    code, rl = send_message(gw.port, body=body)
    assert code == 250, rl
    assert sink.wait_count(1)
    assert sink.messages[0].data.endswith(body)


def test_pipelined_batch(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    c.send(b"MAIL FROM:<p@sender.test>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
           b"RCPT TO:<c@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 250, 250, 354]
    c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<q@sender.test>\r\nRCPT TO:<d@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(4)]
    assert codes == [250, 250, 250, 354]
    c.send(b"Subject: second\r\n\r\nbody2\r\n.\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 221
    assert sink.wait_count(2)
    assert sink.messages[0].rcpts == ["a@example.test", "b@example.test", "c@example.test"]
    assert sink.messages[1].rcpts == ["d@example.test"]


def test_pipelined_with_all_recipients_refused(sink, gateway_factory):
    sink.rcpt_reply = lambda a: "550 5.1.1 unknown"
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    c.send(b"MAIL FROM:<p@sender.test>\r\nRCPT TO:<a@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(3)]
    assert codes == [250, 550, 554]
    assert c.cmd("NOOP")[0] == 250
