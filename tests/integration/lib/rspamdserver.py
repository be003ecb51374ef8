"""Debian's real rspamd, started privately for the tests: its own config, dbdir, rundir and log in a
temporary folder, only the normal worker, on a free loopback port, in the foreground (-f).

Nothing leaves the machine: the modules that look things up on the network (fuzzy_check, RBLs, SURBL,
ASN, phishing feeds, DKIM/SPF/DMARC, hfilter, the update check) are disabled, rspamd's DNS goes to the
test's own DNS server (which knows no names), and no redis is configured. The URL suffix list is a
five-line file instead of the public suffix list (compiling that one takes a minute on a busy machine).
milter_headers adds its extended headers (X-Spamd-Result, X-Rspamd-Queue-Id, ...) for every client.
"""
import grp
import os
import pwd
import shutil
import signal
import subprocess
import time

from gwtest import free_port, http_get

CONF = """.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}
logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "info";
}
worker "normal" {
    bind_socket = "127.0.0.1:%(port)d";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}
"""

OPTIONS = """filters = "regexp";
disable_hyperscan = true;
url_tld = "%(dir)s/tld.dat";
dns {
  nameserver = ["%(dns)s"];
  timeout = 1s;
  retransmits = 1;
}
"""

NETWORK_MODULES = ["fuzzy_check", "rbl", "surbl", "asn", "phishing", "emails", "dkim", "spf", "dmarc", "hfilter",
                   "reputation", "rspamd_update", "neural", "url_redirector", "bimi", "mx_check"]


def rspamd_path():
    return shutil.which("rspamd") or "/usr/bin/rspamd"


class RspamdServer:
    def __init__(self, directory, dns_address):
        self.dir = str(directory)
        self.dns = dns_address
        self.port = free_port()
        self.proc = None
        for d in ("local/override.d", "db", "run", "log"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        with open(os.path.join(self.dir, "rspamd.conf"), "w") as f:
            f.write(CONF % {"port": self.port})
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("com\nnet\norg\ntest\nexample\n")
        override = os.path.join(self.dir, "local", "override.d")
        with open(os.path.join(override, "options.inc"), "w") as f:
            f.write(OPTIONS % {"dir": self.dir, "dns": self.dns})
        for m in NETWORK_MODULES:
            with open(os.path.join(override, m + ".conf"), "w") as f:
                f.write("enabled = false;\n")
        with open(os.path.join(override, "milter_headers.conf"), "w") as f:
            f.write("extended_spam_headers = true;\nskip_local = false;\nskip_authenticated = false;\n")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(os.path.join(self.dir, "log", "rspamd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def ping(self):
        try:
            data = http_get(self.port, "/ping", timeout=2)
            return data.endswith(b"pong\r\n") or data.endswith(b"pong")
        except OSError:
            return False

    def start(self, timeout=120):
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        v = lambda k, p: ["--var", "%s=%s" % (k, os.path.join(self.dir, p))]
        cmd = ([rspamd_path(), "-f", "-i", "-u", user, "-g", group, "-c", os.path.join(self.dir, "rspamd.conf")]
               + v("LOCAL_CONFDIR", "local") + v("DBDIR", "db") + v("RUNDIR", "run") + v("LOGDIR", "log"))
        self.out = open(os.path.join(self.dir, "stdout.log"), "ab")
        # its own process group: stop() ends the main process and every worker it forked, and nothing else
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("rspamd exited with %s:\n%s" % (self.proc.returncode, self.log()[-4000:]))
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("rspamd did not answer /ping in %ds:\n%s" % (timeout, self.log()[-4000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pause(self):
        """SIGSTOP to the whole group: rspamd still accepts connections (the kernel's backlog) but never answers."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if not self.proc:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGCONT)
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)  # workers that outlived the main process
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait()
        self.proc = None
        self.out.close()
