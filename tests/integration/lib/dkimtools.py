"""Independent DKIM implementations for the interop tests: Perl Mail::DKIM (rsa-sha256) and Python
dkimpy (rsa-sha256 and ed25519-sha256; the Mail::DKIM in Debian 12 has no ed25519). Keys are looked
up through the test DNS server (dnsserver.py) on loopback."""
import base64
import os
import subprocess

from dnslib import DNSRecord

HERE = os.path.dirname(os.path.abspath(__file__))
PERL = os.path.join(HERE, "mail_dkim.pl")


def mail_dkim_sign(msg, keyfile, domain, selector, method="relaxed", headers=None):
    args = ["perl", PERL, "sign", keyfile, domain, selector, method]
    if headers:
        args.append(headers)
    return subprocess.run(args, input=msg, capture_output=True, check=True, timeout=30).stdout


def mail_dkim_verify(msg, dns_port):
    """[(result, domain, selector, algorithm, detail)] for each signature; [("none",...)] when unsigned."""
    out = subprocess.run(["perl", PERL, "verify", str(dns_port)], input=msg, capture_output=True, check=True,
                         timeout=60).stdout.decode()
    rows = []
    for line in out.splitlines():
        parts = line.split(" ", 4)
        rows.append(tuple(parts + [""] * (5 - len(parts))))
    return rows


def dns_txt_func(port):
    def get_txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        q = DNSRecord.question(name.rstrip("."), "TXT")
        a = DNSRecord.parse(q.send("127.0.0.1", port, timeout=timeout))
        for rr in a.rr:
            if rr.rtype == 16:
                return b"".join(rr.rdata.data)
        return None
    return get_txt


def dkimpy_verify_all(msg, dns_port):
    """[(ok, domain, selector, algorithm)] for every DKIM-Signature, checked by dkimpy."""
    import dkim
    d = dkim.DKIM(msg, minkey=1024)
    out = []
    n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
    for i in range(n):
        try:
            ok = d.verify(idx=i, dnsfunc=dns_txt_func(dns_port))
        except dkim.DKIMException:
            ok = False
        sig = d.signature_fields
        out.append((bool(ok), sig.get(b"d", b"").decode(), sig.get(b"s", b"").decode(), sig.get(b"a", b"").decode()))
    return out


def ed25519_seed_b64(pem_path):
    """The raw 32-byte Ed25519 seed (what dkimpy wants) from a PKCS#8 PEM file."""
    der = base64.b64decode("".join(l for l in open(pem_path).read().splitlines() if not l.startswith("-----")))
    return base64.b64encode(der[-32:])


def dkimpy_sign(msg, domain, selector, privkey, algorithm=b"rsa-sha256", canon=(b"relaxed", b"relaxed"),
                include_headers=None):
    import dkim
    sig = dkim.sign(msg, selector.encode(), domain.encode(), privkey, signature_algorithm=algorithm,
                    canonicalize=canon, include_headers=include_headers, linesep=b"\r\n")
    return sig + msg
