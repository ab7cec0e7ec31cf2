"""The pytest plugin, run in a pytester sandbox: items, -k, skips, diffs, expectations."""

import textwrap

from conftest import ROOT

ARGS = ["-p", "no:cacheprovider", "--dmaconf-root", str(ROOT)]


def test_one_item_per_vector_named_by_id(pytester):
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "--collect-only", "-q", *ARGS)
    out = r.stdout.str()
    assert "dmaconf::link-page-by-page[semantic]" in out
    assert "[linux]" not in out
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "--dmaconf-profile", "both",
                           "--collect-only", "-q", *ARGS)
    assert "dmaconf::link-page-by-page[linux]" in r.stdout.str()


def test_k_selects_and_a_failure_shows_the_diff(pytester):
    r = pytester.runpytest("--dmaconf-impl", "faulty:Wrong", "-k", "link-page-by-page", *ARGS)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*FAIL semantic::link-page-by-page (*link*.yaml:*)", "*expected*actual*"])


def test_not_supported_is_skipped_with_the_reason(pytester):
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "-k", "iova-exhaust-32bit-max32-reset",
                           "-rs", *ARGS)
    r.assert_outcomes(skipped=1)
    r.stdout.fnmatch_lines(["*requires linux_exact*"])


def test_a_wrong_class_is_one_harness_error(pytester):
    r = pytester.runpytest("--dmaconf-impl", "faulty:Incomplete", *ARGS)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*HARNESS_ERROR*unknown capabilities teleport*"])
    r = pytester.runpytest("--dmaconf-impl", "no_such_module:X", *ARGS)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*cannot import no_such_module*"])


def expectations(pytester, body):
    return pytester.makefile(".yaml", expectations="format: 1\nexpectations:\n" + textwrap.dedent(body))


def test_expectations_waive_and_stale_entries_fail(pytester):
    f = expectations(pytester, """\
        - id: link-page-by-page
          profile: semantic
          result: fail
          reason: "links claim success (the test's Wrong class)"
        - id: link-kmalloc-no-pool-no-bounce
          profile: linux
          result: fail
          reason: "never happens"
    """)
    r = pytester.runpytest("--dmaconf-impl", "faulty:Wrong", "-k", "link-page-by-page", "-rx",
                           "--dmaconf-expectations", str(f), *ARGS)
    r.assert_outcomes(xfailed=1)
    r.stdout.fnmatch_lines(["*waived (*expectations.yaml:3: links claim success*"])
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "-k", "link-page-by-page",
                           "--dmaconf-expectations", str(f), *ARGS)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*expectations.yaml:3: stale expectation: link-page-by-page (semantic) is listed as fail but passes*"])


def test_expectations_with_unknown_ids_or_bad_fields_are_errors(pytester):
    f = expectations(pytester, """\
        - id: no-such-vector
          profile: semantic
          result: fail
          reason: "x"
    """)
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "--dmaconf-expectations", str(f), *ARGS)
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*expectations.yaml:3: unknown vector `no-such-vector`*"])
    f = expectations(pytester, """\
        - id: link-page-by-page
          profile: exact
          result: fail
          reason: "x"
    """)
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "--dmaconf-expectations", str(f), *ARGS)
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*expectations.yaml:4:*"])


def test_expectations_need_a_reason(pytester):
    f = expectations(pytester, """\
        - id: link-page-by-page
          profile: semantic
          result: fail
          reason: "TODO: why"
    """)
    r = pytester.runpytest("--dmaconf-impl", "simple_dma:SimpleDma", "--dmaconf-expectations", str(f), *ARGS)
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*expectations.yaml:3:3: link-page-by-page (semantic): the reason is not filled in*"])
