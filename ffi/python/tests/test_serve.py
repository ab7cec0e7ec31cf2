"""`python -m dmaconf.serve pkg.mod:Class`, spoken to as the runner would (spec/9-wire.md)."""

import json
import subprocess
import sys

import pytest

from conftest import EXAMPLES, HERE

FACTS = {
    "arch": 0, "domain": 2, "backend": 0, "pgsize_bitmap": 0x40201000, "aperture_start": 0,
    "aperture_end": (1 << 48) - 1, "force_aperture": True, "coherent": True, "untrusted": False,
    "pci": True, "forcedac": False, "dma_mask": (1 << 64) - 1, "bus_dma_limit": 0,
    "min_align_mask": 0, "cache_line": 64, "swiotlb": False, "kmalloc_bounce": False,
    "iommu_dma_config": True, "nr_cpus": 1, "msi_doorbell": 0, "max_seg_size": 0x10000,
    "seg_boundary_mask": 0xFFFFFFFF, "swiotlb_force": False, "dma_offset": 0, "write_only_pte": True,
}


class Server:
    def __init__(self, spec):
        env = {"PYTHONPATH": f"{EXAMPLES}:{HERE}:{':'.join(sys.path)}"}
        self.p = subprocess.Popen(
            [sys.executable, "-m", "dmaconf.serve", spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self.next = 1

    def send(self, msg):
        self.p.stdin.write(json.dumps(msg).encode() + b"\n")
        self.p.stdin.flush()

    def read(self):
        return json.loads(self.p.stdout.readline())

    def call(self, call, **fields):
        rid = self.next
        self.next += 1
        self.send({"id": rid, "call": call, **fields})
        return rid

    def close(self):
        self.call("shutdown")
        assert self.read() == {"id": self.next - 1}
        assert self.p.wait(5) == 0


def hello_create(s):
    s.call("hello", protocol=1, runner="test")
    h = s.read()
    dev_id = s.call("create", facts=FACTS, reserved=[{"start": 0xFEE00000, "end": 0xFEEFFFFF, "kind": 2}])
    d = s.read()
    assert d["id"] == dev_id
    return h, d["dev"]


def test_a_link_crosses_back_as_callbacks():
    s = Server("simple_dma:SimpleDma")
    h, dev = hello_create(s)
    assert h["protocol"] == 1 and h["name"] == "simple-dma"
    assert h["capabilities"] == ["iova_api", "streaming", "sg"]
    s.call("probe", dev=dev, cpu=0, now_ns=0)
    assert s.read() == {"id": 3, "ret": 0}
    s.call("iova_try_alloc", dev=dev, cpu=0, now_ns=0, state={"addr": 7, "size": 7}, phys=0x40000000, size=0x1000)
    a = s.read()
    assert a["ret"] is True and a["state"]["size"] == 0x1000 and a["state"]["addr"] % 4096 == 0
    state = a["state"]
    s.call("iova_link", dev=dev, cpu=0, now_ns=0, state=state, phys=0x40000000, offset=0, size=0x1000, dir=1, attrs=0)
    cb = s.read()
    assert cb == {"call": "iommu_map", "iova": state["addr"], "phys": 0x40000000, "len": 0x1000, "prot": 5, "id": 1}
    s.send({"id": 1, "ret": 0})
    assert s.read() == {"id": 5, "ret": 0, "state": state}
    s.call("use_iova", dev=dev, state=state)
    assert s.read() == {"id": 6, "ret": True}
    s.close()


@pytest.mark.parametrize(
    "cls, code, words",
    [
        ("Raises", "panic", ["Traceback", "ZeroDivisionError"]),
        ("NotImplemented_", "not_supported", ["links are for later"]),
        ("WrongType", "bad_return", ["iova_link returned str", "expected an int"]),
    ],
)
def test_faults_in_a_call_are_error_answers(cls, code, words):
    s = Server(f"faulty:{cls}")
    _, dev = hello_create(s)
    s.call("probe", dev=dev, cpu=0, now_ns=0)
    assert s.read() == {"id": 3, "ret": 0}
    s.call("iova_link", dev=dev, cpu=0, now_ns=0, state={"addr": 0x1000, "size": 0x1000}, phys=0x40000000,
           offset=0, size=0x1000, dir=1, attrs=0)
    a = s.read()
    if "call" in a:  # WrongType maps first
        s.send({"id": a["id"], "ret": 0})
        a = s.read()
    assert a["error"]["code"] == code
    for w in words:
        assert w in a["error"]["message"]
    s.close()


def test_bad_lines_get_errors_and_the_session_goes_on():
    s = Server("simple_dma:SimpleDma")
    hello_create(s)
    s.p.stdin.write(b"not json\n")
    s.p.stdin.flush()
    assert s.read()["error"]["code"] == "malformed"
    s.call("teleport", dev=1)
    assert s.read()["error"]["code"] == "unknown_method"
    s.call("probe", dev=99, cpu=0, now_ns=0)
    assert s.read()["error"]["code"] == "bad_request"
    s.close()


def test_a_class_that_cannot_serve_answers_unavailable():
    s = Server("faulty:Incomplete")
    s.call("hello", protocol=1, runner="test")
    a = s.read()
    assert a["error"]["code"] == "unavailable"
    assert "unknown capabilities teleport" in a["error"]["message"]
    s.call("shutdown")
    assert s.read()["error"]["code"] == "unavailable"
    assert s.p.wait(5) == 0


def test_printing_implementations_do_not_corrupt_the_protocol(tmp_path):
    (tmp_path / "noisy.py").write_text(
        "from simple_dma import SimpleDma\n"
        "class Noisy(SimpleDma):\n"
        "    def probe(self, p):\n"
        "        print('hello from the implementation')\n"
        "        return super().probe(p)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        s = Server("noisy:Noisy")
        _, dev = hello_create(s)
        s.call("probe", dev=dev, cpu=0, now_ns=0)
        assert s.read() == {"id": 3, "ret": 0}
        s.close()
    finally:
        sys.path.remove(str(tmp_path))
