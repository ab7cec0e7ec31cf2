"""`python -m dmaconf.serve pkg.mod:Class`: serves a Python implementation over the wire of
spec/9-wire.md (JSON lines on stdin/stdout), so `dmaconf run --impl py:pkg.mod:Class` runs it in
a child process, isolated like a C plug-in: an exception costs one vector (`crash` with the
traceback), a hang is that vector's `timeout`.

Pure Python on purpose: the child needs neither the extension module nor a wheel, only this
package on `sys.path`."""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import api
from .api import DMA_ATTR_MMIO, DMA_MAPPING_ERROR, IovaState, SgEntry

PROTOCOL = 1


class WireFault(Exception):
    """An error answer to send for the call being served (`code`, `message`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Lost(Exception):
    """The runner went away (end of input) while a callback waited for its answer."""


class WirePlatform:
    """`api.Platform` over the pipe: answered callbacks wait for the runner, the others are
    written and left (spec/9-wire.md § "Callbacks")."""

    def __init__(self, session: "Session", facts: api.Facts, regions: List[api.Region]) -> None:
        self._s = session
        self._facts = facts
        self._regions = regions
        self.cpu = 0
        self.now = 0

    @property
    def facts(self) -> api.Facts:
        return self._facts

    def reserved_regions(self) -> List[api.Region]:
        return list(self._regions)

    def current_cpu(self) -> int:
        return self.cpu

    def now_ns(self) -> int:
        return self.now

    def iommu_map(self, iova: int, phys: int, len: int, prot: int) -> int:
        return self._s.ask({"call": "iommu_map", "iova": iova, "phys": phys, "len": len, "prot": prot})["ret"]

    def iotlb_sync_map(self, iova: int, len: int) -> int:
        return self._s.ask({"call": "iotlb_sync_map", "iova": iova, "len": len})["ret"]

    def iommu_unmap(self, iova: int, len: int) -> int:
        return self._s.ask({"call": "iommu_unmap", "iova": iova, "len": len})["ret"]

    def iotlb_sync(self, iova: int, len: int) -> None:
        self._s.tell({"call": "iotlb_sync", "iova": iova, "len": len})

    def flush_iotlb_all(self) -> None:
        self._s.tell({"call": "flush_iotlb_all"})

    def iova_to_phys(self, iova: int) -> int:
        return self._s.ask({"call": "iova_to_phys", "iova": iova})["ret"]

    def sync_for_device(self, phys: int, len: int, dir: int) -> None:
        self._s.tell({"call": "sync_for_device", "phys": phys, "len": len, "dir": dir})

    def sync_for_cpu(self, phys: int, len: int, dir: int) -> None:
        self._s.tell({"call": "sync_for_cpu", "phys": phys, "len": len, "dir": dir})

    def sync_barrier(self) -> None:
        self._s.tell({"call": "sync_barrier"})

    def bounce_alloc(self, orig: int, len: int, alloc_align_mask: int, min_align_mask: int) -> Tuple[int, int]:
        a = self._s.ask(
            {
                "call": "bounce_alloc",
                "orig": orig,
                "len": len,
                "alloc_align_mask": alloc_align_mask,
                "min_align_mask": min_align_mask,
            }
        )
        return (a["ret"], a.get("slot", 0) if a["ret"] == 0 else 0)

    def bounce_free(self, slot: int, len: int) -> None:
        self._s.tell({"call": "bounce_free", "slot": slot, "len": len})

    def is_bounce(self, phys: int) -> bool:
        return self._s.ask({"call": "is_bounce", "phys": phys})["ret"]

    def bounce_orig(self, phys: int) -> int:
        return self._s.ask({"call": "bounce_orig", "phys": phys})["ret"]

    def copy(self, dst: int, src: int, len: int) -> None:
        self._s.tell({"call": "copy", "dst": dst, "src": src, "len": len})

    def fill(self, dst: int, byte: int, len: int) -> None:
        self._s.tell({"call": "fill", "dst": dst, "byte": byte, "len": len})

    def p2p_type(self, phys: int) -> int:
        return self._s.ask({"call": "p2p_type", "phys": phys})["ret"]

    def p2p_bus_offset(self, phys: int) -> int:
        return self._s.ask({"call": "p2p_bus_offset", "phys": phys})["ret"]

    def warn(self, code: Any) -> None:
        number = api.WARN_CODES.get(code) if isinstance(code, str) else code
        if not isinstance(number, int):
            raise ValueError(f"warn({code!r}): not a WARN code of spec/2-outcomes.md ({', '.join(api.WARN_CODES)})")
        self._s.tell({"call": "warn", "code": number})


def _typed(call: str, value: Any, kind: str) -> Any:
    """Checks a return value's type; a wrong one names the call and the type."""
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "none": value is None,
    }[kind]
    if not ok:
        want = {"int": "an int", "bool": "a bool", "none": "None"}[kind]
        raise WireFault(
            "bad_return",
            f"{call} returned {type(value).__name__} ({value!r}), expected {want}",
        )
    return value


def _u64(call: str, value: int) -> int:
    if not 0 <= value < 1 << 64:
        raise WireFault("bad_return", f"{call} returned {value}, not an unsigned 64-bit value")
    return value


class Device:
    def __init__(self, impl: Any, platform: WirePlatform) -> None:
        self.impl = impl
        self.platform = platform


class Session:
    def __init__(self, factory: Callable[[], Any], name: str, caps: List[str], inp: Any, out: Any) -> None:
        self.factory = factory
        self.name = name
        self.caps = caps
        self.inp = inp
        self.out = out
        self.devices: Dict[int, Device] = {}
        self.next_dev = 1
        self.next_cb = 1

    # -- the pipe ------------------------------------------------------------------------
    def write(self, msg: Dict[str, Any]) -> None:
        self.out.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def tell(self, msg: Dict[str, Any]) -> None:
        self.write(msg)

    def ask(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        cb = self.next_cb
        self.next_cb += 1
        msg["id"] = cb
        self.write(msg)
        self.out.flush()
        line = self.inp.readline()
        if not line:
            raise _Lost()
        answer = json.loads(line)
        if "error" in answer:
            e = answer["error"]
            raise WireFault("panic", f"the runner refused callback {msg['call']}: {e.get('message')}")
        if answer.get("id") != cb or "ret" not in answer:
            raise WireFault("panic", f"unexpected answer to callback {msg['call']}: {line[:200]!r}")
        return answer

    # -- requests ------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            line = self.inp.readline()
            if not line:
                return
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                self.write({"error": {"code": "malformed", "message": f"{e}: {line[:120]!r}"}})
                self.out.flush()
                continue
            rid = msg.get("id")
            try:
                if "call" not in msg:
                    raise WireFault("malformed", "a request has no `call`")
                answer = self.handle(msg)
            except WireFault as f:
                answer = {"error": {"code": f.code, "message": f.message}}
            except _Lost:
                return
            if rid is not None:
                answer["id"] = rid
            self.write(answer)
            self.out.flush()
            if msg.get("call") == "shutdown":
                return

    def handle(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        call = msg["call"]
        if call == "hello":
            if msg.get("protocol") != PROTOCOL:
                raise WireFault("version", f"this server speaks protocol {PROTOCOL}, not {msg.get('protocol')}")
            return {"protocol": PROTOCOL, "name": self.name, "version": _version(), "capabilities": self.caps}
        if call == "shutdown":
            return {}
        if call == "create":
            return self.create(msg)
        if call == "destroy":
            self.devices.pop(self.device(msg), None)
            return {}
        handler = _CALLS.get(call)
        if handler is None:
            raise WireFault("unknown_method", f"unknown call `{call}`")
        dev = self.devices[self.device(msg)]
        dev.platform.cpu = msg.get("cpu", 0)
        dev.platform.now = msg.get("now_ns", 0)
        try:
            return handler(dev, msg)
        except (WireFault, _Lost):
            raise
        except KeyError as e:
            raise WireFault("bad_request", f"`{call}` needs the field {e}") from None
        except NotImplementedError as e:
            raise WireFault("not_supported", f"{call}: NotImplementedError {e}".rstrip()) from None
        except Exception:
            raise WireFault("panic", f"{call} raised:\n{traceback.format_exc()}") from None

    def device(self, msg: Dict[str, Any]) -> int:
        dev = msg.get("dev")
        if dev not in self.devices:
            raise WireFault("bad_request", f"`dev` {dev!r} names no live device")
        return dev

    def create(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        facts = msg.get("facts")
        if not isinstance(facts, dict):
            raise WireFault("bad_request", "`create` needs `facts`")
        missing = [f for f in api.FACT_FIELDS if f not in facts]
        if missing:
            raise WireFault("malformed", "`facts` lacks " + ", ".join(missing))
        f = api.Facts(**{k: facts[k] for k in api.FACT_FIELDS})
        regions = [api.Region(r["start"], r["end"], r["kind"]) for r in msg.get("reserved", [])]
        try:
            impl = self.factory()
        except Exception:
            raise WireFault("panic", f"{self.name}() raised:\n{traceback.format_exc()}") from None
        dev = self.next_dev
        self.next_dev += 1
        self.devices[dev] = Device(impl, WirePlatform(self, f, regions))
        return {"dev": dev}


def _version() -> str:
    from . import __version__

    return __version__


def _state(m: Dict[str, Any]) -> IovaState:
    s = m["state"]
    return IovaState(s["addr"], s["size"])


def _st(s: IovaState) -> Dict[str, int]:
    return {"addr": _u64("state.addr", s.addr), "size": _u64("state.size", s.size)}


def _segs(m: Dict[str, Any]) -> List[SgEntry]:
    return [SgEntry(e["phys"], e["len"], e["dma_address"], e["dma_len"], e["flags"]) for e in m["segs"]]


def _segs_out(segs: List[SgEntry]) -> List[Dict[str, int]]:
    return [
        {"phys": e.phys, "len": e.len, "dma_address": e.dma_address, "dma_len": e.dma_len, "flags": e.flags}
        for e in segs
    ]


def _map(name: str, fallback: Optional[Callable[[Device, Dict[str, Any]], int]] = None) -> Any:
    def run(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
        f = getattr(d.impl, name, None)
        if f is None and fallback is not None:
            return {"ret": _u64(name, fallback(d, m))}
        if f is None:
            raise NotImplementedError(name)
        ret = _typed(name, f(d.platform, m["phys"], m["size"], m["dir"], m["attrs"]), "int")
        return {"ret": _u64(name, ret)}

    return run


def _unmap(name: str, fallback: Optional[Callable[[Device, Dict[str, Any]], None]] = None) -> Any:
    def run(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
        f = getattr(d.impl, name, None)
        if f is None and fallback is not None:
            fallback(d, m)
            return {}
        if f is None:
            raise NotImplementedError(name)
        _typed(name, f(d.platform, m["addr"], m["size"], m["dir"], m["attrs"]), "none")
        return {}

    return run


def _need(d: Device, name: str) -> Any:
    f = getattr(d.impl, name, None)
    if f is None:
        raise NotImplementedError(name)
    return f


# STREAM-14: the page and resource entry points in terms of map_phys / unmap_phys, for an
# implementation that has no own version.
def _page_map(d: Device, m: Dict[str, Any]) -> int:
    if m["attrs"] & DMA_ATTR_MMIO:
        return DMA_MAPPING_ERROR
    return _typed("map_phys", _need(d, "map_phys")(d.platform, m["phys"], m["size"], m["dir"], m["attrs"]), "int")


def _page_unmap(d: Device, m: Dict[str, Any]) -> None:
    if not m["attrs"] & DMA_ATTR_MMIO:
        _typed("unmap_phys", _need(d, "unmap_phys")(d.platform, m["addr"], m["size"], m["dir"], m["attrs"]), "none")


def _resource_map(d: Device, m: Dict[str, Any]) -> int:
    f = _need(d, "map_phys")
    return _typed("map_phys", f(d.platform, m["phys"], m["size"], m["dir"], m["attrs"] | DMA_ATTR_MMIO), "int")


def _resource_unmap(d: Device, m: Dict[str, Any]) -> None:
    f = _need(d, "unmap_phys")
    _typed("unmap_phys", f(d.platform, m["addr"], m["size"], m["dir"], m["attrs"] | DMA_ATTR_MMIO), "none")


def _try_alloc(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    s = _state(m)
    ret = _typed("iova_try_alloc", d.impl.iova_try_alloc(d.platform, s, m["phys"], m["size"]), "bool")
    return {"ret": ret, "state": _st(s)}


def _link(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    s = _state(m)
    ret = _typed(
        "iova_link",
        d.impl.iova_link(d.platform, s, m["phys"], m["offset"], m["size"], m["dir"], m["attrs"]),
        "int",
    )
    return {"ret": ret, "state": _st(s)}


def _use_iova(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    f = getattr(d.impl, "use_iova", None)
    s = _state(m)
    return {"ret": _typed("use_iova", f(s), "bool") if f else api.dma_use_iova(s)}


def _iova_size(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    f = getattr(d.impl, "iova_size", None)
    s = _state(m)
    return {"ret": _u64("iova_size", _typed("iova_size", f(s), "int")) if f else api.dma_iova_size(s)}


def _map_sg(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    segs = _segs(m)
    ret = _typed("map_sg", _need(d, "map_sg")(d.platform, segs, m["dir"], m["attrs"]), "int")
    return {"ret": ret, "segs": _segs_out(segs)}


def _unmap_sg(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    segs = _segs(m)
    _typed("unmap_sg", _need(d, "unmap_sg")(d.platform, segs, m["dir"], m["attrs"]), "none")
    return {"segs": _segs_out(segs)}


def _sync_single(name: str) -> Any:
    def run(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
        _typed(name, _need(d, name)(d.platform, m["addr"], m["size"], m["dir"]), "none")
        return {}

    return run


def _advance(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
    f = getattr(d.impl, "advance_time", None)
    if f is not None:
        _typed("advance_time", f(d.platform, m["now_ns"]), "none")
    return {}


def _void(name: str, call: Callable[[Device, Dict[str, Any]], Any]) -> Any:
    """A call without a result: its return value must be None."""

    def run(d: Device, m: Dict[str, Any]) -> Dict[str, Any]:
        _typed(name, call(d, m), "none")
        return {}

    return run


_CALLS: Dict[str, Callable[[Device, Dict[str, Any]], Dict[str, Any]]] = {
    "probe": lambda d, m: {"ret": _typed("probe", d.impl.probe(d.platform), "int")},
    "iova_try_alloc": _try_alloc,
    "iova_link": _link,
    "iova_sync": lambda d, m: {
        "ret": _typed("iova_sync", d.impl.iova_sync(d.platform, _state(m), m["offset"], m["size"]), "int")
    },
    "iova_unlink": _void(
        "iova_unlink", lambda d, m: d.impl.iova_unlink(d.platform, _state(m), m["offset"], m["size"], m["dir"], m["attrs"])
    ),
    "iova_destroy": _void(
        "iova_destroy", lambda d, m: d.impl.iova_destroy(d.platform, _state(m), m["mapped_len"], m["dir"], m["attrs"])
    ),
    "iova_free": _void("iova_free", lambda d, m: d.impl.iova_free(d.platform, _state(m))),
    "use_iova": _use_iova,
    "iova_size": _iova_size,
    "map_phys": _map("map_phys"),
    "map_page_attrs": _map("map_page_attrs", _page_map),
    "map_resource": _map("map_resource", _resource_map),
    "unmap_phys": _unmap("unmap_phys"),
    "unmap_page_attrs": _unmap("unmap_page_attrs", _page_unmap),
    "unmap_resource": _unmap("unmap_resource", _resource_unmap),
    "sync_single_for_cpu": _sync_single("sync_single_for_cpu"),
    "sync_single_for_device": _sync_single("sync_single_for_device"),
    "map_sg": _map_sg,
    "unmap_sg": _unmap_sg,
    "need_unmap": lambda d, m: {"ret": _typed("need_unmap", _need(d, "need_unmap")(d.platform), "bool")},
    "need_sync": lambda d, m: {"ret": _typed("need_sync", _need(d, "need_sync")(d.platform, m["addr"]), "bool")},
    "advance_time": _advance,
}


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The protocol keeps a private copy of descriptor 1; the implementation's own printing goes
    # to standard error (spec/9-wire.md, Transport 2).
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    if len(args) != 1:
        reason = "usage: python -m dmaconf.serve pkg.mod:Class"
        print(reason, file=sys.stderr)
        _refuse(inp, out, reason)
        return 2
    try:
        factory = api.load(args[0])
        name, caps = api.check(factory)
    except api.ImplementationError as e:
        # The runner reports the message (spec/9-wire.md, `unavailable`); no second copy here.
        _refuse(inp, out, str(e))
        return 0
    Session(factory, name, caps, inp, out).serve()
    return 0


def _refuse(inp: Any, out: Any, reason: str) -> None:
    """Answers every request with `unavailable` (spec/9-wire.md § "Errors") until shutdown."""
    for line in inp:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        answer: Dict[str, Any] = {"error": {"code": "unavailable", "message": reason}}
        if isinstance(msg, dict) and "id" in msg:
            answer["id"] = msg["id"]
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()
        if isinstance(msg, dict) and msg.get("call") == "shutdown":
            return


if __name__ == "__main__":
    sys.exit(main())
