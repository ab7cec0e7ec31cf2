"""Implementations that go wrong on purpose, each in one call, on top of the example."""

from simple_dma import SimpleDma


class Raises(SimpleDma):
    def iova_link(self, p, state, phys, offset, size, dir, attrs):
        return 1 // 0


class NotImplemented_(SimpleDma):
    def iova_link(self, p, state, phys, offset, size, dir, attrs):
        raise NotImplementedError("links are for later")


class WrongType(SimpleDma):
    def iova_link(self, p, state, phys, offset, size, dir, attrs):
        super().iova_link(p, state, phys, offset, size, dir, attrs)
        return "0"


KEPT = []


class KeepsPlatform(SimpleDma):
    """Keeps its Platform, for the test to use after the run."""

    def probe(self, p):
        KEPT.append(p)
        return super().probe(p)


class Wrong(SimpleDma):
    """Lies about a result: every link claims success and maps nothing."""

    def iova_link(self, p, state, phys, offset, size, dir, attrs):
        return 0


class NoCapabilities:
    def probe(self, p):
        return 0


class Incomplete:
    capabilities = ("iova_api", "streaming", "teleport")

    def probe(self, p):
        return 0
