"""A scriptable milter on pymilter (Debian's python3-milter, over Sendmail's libmilter).

    /usr/bin/python3 script_milter.py SOCKET SCRIPT.json LOG.jsonl

SOCKET is pymilter's spelling ("inet:PORT@127.0.0.1" or "unix:/path"). SCRIPT is re-read at every
negotiation, so a test changes what the next session gets by rewriting it:
  {"connect": ACTION, "helo": ACTION, "mail": ACTION, "data": ACTION, "eoh": ACTION, "eom": ACTION,
   "header": {"Name": ACTION}, "rcpt": {"addr": ACTION}, "body": ACTION,
   "edits": [["add", name, value], ["ins", idx, name, value], ["chg", name, idx, value],
             ["body", text], ["quarantine", reason]],
   "progress": N (SMFIR_PROGRESS N times at eom, one second apart),
   "protocol": ["nohdrs", "nobody", "nr_rcpt", "nomail", "leadspc", ...] (steps to skip / leave unanswered),
   "symlist": {"mail": ["{mail_addr}"], ...} (SMFIR_SETSYMLIST: the macros wanted per stage)}
ACTION is "continue" (default), "accept", "reject", "tempfail", "discard", "skip" or
"reply:550 5.7.0 text". Every callback is appended to LOG as one JSON object per line.
"""
import itertools
import json
import os
import sys
import time

import Milter

SOCKET, SCRIPT, LOG = sys.argv[1], sys.argv[2], sys.argv[3]

CIDS = itertools.count(1)
PROTOCOL = {"noconnect": Milter.P_NOCONNECT, "nohelo": Milter.P_NOHELO, "nomail": Milter.P_NOMAIL,
            "norcpt": Milter.P_NORCPT, "nobody": Milter.P_NOBODY, "nohdrs": Milter.P_NOHDRS,
            "noeoh": Milter.P_NOEOH, "nodata": Milter.P_NODATA, "nr_rcpt": Milter.P_NR_RCPT,
            "nr_mail": Milter.P_NR_MAIL, "nr_hdr": Milter.P_NR_HDR, "nr_body": Milter.P_NR_BODY,
            "nr_eoh": Milter.P_NR_EOH, "nr_data": Milter.P_NR_DATA, "nr_conn": Milter.P_NR_CONN,
            "nr_helo": Milter.P_NR_HELO, "leadspc": Milter.P_HDR_LEADSPC}
MACROS = ("j", "{daemon_name}", "i", "{client_addr}", "{client_name}", "{auth_authen}", "{tls_version}",
          "{mail_addr}", "{rcpt_addr}")


def log(**kw):
    kw["pid"] = os.getpid()
    with open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\n")


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


class ScriptMilter(Milter.Base):
    def __init__(self):
        self.cid = "%d-%d" % (os.getpid(), next(CIDS))
        self.script = {}
        self.body_bytes = 0
        self.chunks = []

    def macros(self):
        out = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                out[m] = v
        return out

    def act(self, action):
        action = action or "continue"
        if action.startswith("reply:"):
            code, xcode, msg = (action[6:].split(" ", 2) + ["", ""])[:3]
            self.setreply(code, xcode or None, msg or None)
            return Milter.REJECT if code.startswith("5") else Milter.TEMPFAIL
        return {"continue": Milter.CONTINUE, "accept": Milter.ACCEPT, "reject": Milter.REJECT,
                "tempfail": Milter.TEMPFAIL, "discard": Milter.DISCARD, "skip": Milter.SKIP}[action]

    def negotiate(self, opts):
        with open(SCRIPT) as f:
            self.script = json.load(f)
        rc = Milter.Base.negotiate(self, opts)
        stages = {"connect": Milter.M_CONNECT, "helo": Milter.M_HELO, "mail": Milter.M_ENVFROM,
                  "rcpt": Milter.M_ENVRCPT, "data": Milter.M_DATA, "eoh": Milter.M_EOH, "eom": Milter.M_EOM}
        for stage, names in self.script.get("symlist", {}).items():
            # Milter.Base.setsymlist hands libmilter bytes, which Debian's python3 binding refuses
            self._ctx.setsymlist(stages[stage], " ".join(names))
        for p in self.script.get("protocol", []):
            opts[1] |= PROTOCOL[p]
        self._protocol = opts[1]
        log(cid=self.cid, ev="negotiate", actions=opts[0], protocol=opts[1])
        return rc

    def connect(self, hostname, family, hostaddr):
        log(cid=self.cid, ev="connect", hostname=hostname, family=family, addr=list(hostaddr) if hostaddr else None,
            macros=self.macros())
        return self.act(self.script.get("connect"))

    def hello(self, name):
        log(cid=self.cid, ev="helo", name=name, macros=self.macros())
        return self.act(self.script.get("helo"))

    def envfrom(self, addr, *params):
        log(cid=self.cid, ev="mail", addr=addr, params=list(params), macros=self.macros())
        return self.act(self.script.get("mail"))

    def envrcpt(self, addr, *params):
        log(cid=self.cid, ev="rcpt", addr=addr, params=list(params), macros=self.macros())
        return self.act(self.script.get("rcpt", {}).get(addr.strip("<>")))

    def data(self):
        log(cid=self.cid, ev="data", macros=self.macros())
        return self.act(self.script.get("data"))

    def header(self, name, value):
        log(cid=self.cid, ev="header", name=name, value=value)
        return self.act(self.script.get("header", {}).get(name))

    def eoh(self):
        log(cid=self.cid, ev="eoh", macros=self.macros())
        return self.act(self.script.get("eoh"))

    def body(self, chunk):
        self.body_bytes += len(chunk)
        self.chunks.append(len(chunk))
        if len(self.chunks) == 1:
            self.first = bytes(chunk[:200])
        return self.act(self.script.get("body"))

    def eom(self):
        log(cid=self.cid, ev="eom", body_bytes=self.body_bytes, chunks=self.chunks, macros=self.macros(),
            head=text(getattr(self, "first", b"")))
        for _ in range(self.script.get("progress", 0)):
            self.progress()
            time.sleep(1)
        for e in self.script.get("edits", []):
            if e[0] == "add":
                self.addheader(e[1], e[2])
            elif e[0] == "ins":
                self.addheader(e[2], e[3], e[1])
            elif e[0] == "chg":
                self.chgheader(e[1], e[2], e[3])
            elif e[0] == "body":
                self.replacebody(e[1].encode())
            elif e[0] == "quarantine":
                self.quarantine(e[1])
        self.body_bytes = 0
        self.chunks = []
        return self.act(self.script.get("eom"))

    def abort(self):
        log(cid=self.cid, ev="abort")
        self.body_bytes = 0
        self.chunks = []
        return Milter.CONTINUE

    def close(self):
        log(cid=self.cid, ev="close")
        return Milter.CONTINUE


Milter.factory = ScriptMilter
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.QUARANTINE | Milter.SETSYMLIST)
log(ev="start", cid=0)
Milter.runmilter("scriptmilter", SOCKET, 240)
