"""Shared fixtures: the real gateway binary, a recording upstream sink, raw SMTP clients."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))

import pytest  # noqa: E402

import gwtest  # noqa: E402
from gwtest import Gateway, RecordingSink  # noqa: E402


@pytest.fixture
def sink():
    s = RecordingSink()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def gateway_factory(tmp_path):
    started = []

    def make(config_body, binary="smtp-gateway", **kw):
        g = Gateway(tmp_path, config_body, binary=binary, **kw)
        g.start()
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()


@pytest.fixture(autouse=True)
def stop_leftover_gateways():
    """No gateway outlives its test, however it was started."""
    yield
    while gwtest.RUNNING:
        g = gwtest.RUNNING.pop()
        if g.proc and g.proc.poll() is None:
            g.stop()
