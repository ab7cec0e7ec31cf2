"""dmaconf.run: the suite in process through the extension, and its fault classes."""

import pytest

import dmaconf
import faulty
import simple_dma

LINK = "link-page-by-page"


def one(impl, vid=LINK, profile="semantic"):
    (r,) = dmaconf.run(impl, vectors=vid, profile=profile)
    assert r.id == vid and r.profile == profile
    return r


def test_example_passes_a_vector_with_a_trace():
    r = one(simple_dma.SimpleDma)
    assert r.cls == "pass", r.report()
    assert r.diff == ""
    steps = [s for run in r.trace["runs"] for s in run["steps"]]
    assert steps[0]["action"] == "dma_iova_try_alloc"
    assert any(e["event"] == "iommu.map" for s in steps for e in s.get("events", [])), r.trace


def test_a_wrong_result_is_a_fail_with_the_diff():
    r = one(faulty.Wrong)
    assert r.cls == "fail"
    assert "expected" in r.diff and "actual" in r.diff
    assert r.report().startswith(f"FAIL semantic::{LINK} (")


def test_an_exception_is_a_crash_with_the_python_traceback():
    r = one(faulty.Raises)
    assert r.cls == "crash"
    assert "iova_link raised" in r.reason
    assert "Traceback (most recent call last)" in r.reason
    assert "ZeroDivisionError" in r.reason and "faulty.py" in r.reason


def test_not_implemented_is_not_supported():
    r = one(faulty.NotImplemented_)
    assert r.cls == "not_supported"
    assert "links are for later" in r.reason


def test_a_wrong_return_type_names_the_call_and_the_type():
    r = one(faulty.WrongType)
    assert r.cls == "harness_error"
    assert "iova_link returned str" in r.reason and "expected an int" in r.reason


def test_a_platform_kept_past_its_call_cannot_be_used():
    assert one(faulty.KeepsPlatform).cls == "pass"
    kept = faulty.KEPT[-1]
    assert kept.facts.granule == 4096  # facts stay readable
    with pytest.raises(RuntimeError, match="outside the call it was handed to"):
        kept.iova_to_phys(0)


@pytest.mark.parametrize(
    "impl, words",
    [
        (faulty.NoCapabilities, ["declares no `capabilities`"]),
        (faulty.Incomplete, ["unknown capabilities teleport", "iova_try_alloc", "map_phys"]),
        (simple_dma.SimpleDma(), ["is not a class"]),
    ],
)
def test_a_wrong_implementation_is_one_clear_error_before_any_vector(impl, words):
    with pytest.raises(dmaconf.ImplementationError) as e:
        dmaconf.run(impl)
    for w in words:
        assert w in str(e.value)


def test_selection_and_profiles():
    rs = dmaconf.run(simple_dma.SimpleDma, vectors=["link-*"], profile=["semantic", "linux"])
    ids = {r.id for r in rs}
    assert ids and all(i.startswith("link-") for i in ids)
    assert {r.profile for r in rs} == {"semantic", "linux"}
    with pytest.raises(ValueError):
        dmaconf.run(simple_dma.SimpleDma, profile="exact")


def test_example_passes_both_profiles_with_its_expectations():
    from conftest import EXAMPLES

    rs = dmaconf.run(
        simple_dma.SimpleDma,
        profile=["semantic", "linux"],
        trace=False,
        expectations=EXAMPLES / "simple_dma.expectations.yaml",
    )
    assert all(r.ok for r in rs), "\n".join(r.report() for r in rs if not r.ok)
    semantic = [r for r in rs if r.profile == "semantic"]
    assert sum(r.cls == "pass" for r in semantic) > 150
    # What the file waives under semantic is a handful of vector issues, each with a reason.
    waived = [r for r in semantic if r.cls == "waived"]
    assert 0 < len(waived) <= 5 and all("vector issue" in r.waived for r in waived)


def test_a_stale_expectation_is_an_error_on_its_result(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text(
        "format: 1\nexpectations:\n  - id: link-page-by-page\n    profile: semantic\n"
        "    result: fail\n    reason: \"was broken\"\n"
    )
    (r,) = dmaconf.run(simple_dma.SimpleDma, vectors="link-page-by-page", expectations=f)
    assert r.cls == "pass" and not r.ok
    assert "stale expectation" in r.errors[0] and "e.yaml:3" in r.errors[0]
    f.write_text("format: 1\nexpectations:\n  - id: nothing-like-this\n    profile: semantic\n"
                 "    result: fail\n    reason: x\n")
    with pytest.raises(ValueError, match="unknown vector `nothing-like-this`"):
        dmaconf.run(simple_dma.SimpleDma, expectations=f)
