"""
Compare an irctest run (pytest's JUnit XML) with the failures this project
expects (C{expected-failures.txt} beside this file), for C{.ci/irctest}.

Prints the counts (passed, failed, skipped and why), then:
  - every test that failed and is not expected to: a regression, exit 1;
  - every expected failure that passed: the list is out of date (exit 0,
    but said, so that the list is trimmed).

Usage: python compare.py JUNIT.xml [EXPECTED.txt]

A test is named C{module.Class::test[param]} as irctest's pytest reports it
in the XML (C{classname} and C{name}), e.g.
C{irctest.server_tests.who.WhoTestCase::testWhoStar}. In the expected file,
a line is a test name, blank, or a C{#} comment (the reasons).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def results(junit: Path) -> tuple[dict[str, str], Counter[str]]:
    """
    The outcome of each test (C{passed}, C{failed} or C{skipped}) and the
    skip reasons with their counts.
    """
    outcomes: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif (skipped := case.find("skipped")) is not None:
            outcomes[name] = "skipped"
            reasons[(skipped.get("message") or "").strip()] += 1
        else:
            outcomes[name] = "passed"
    return outcomes, reasons


def expected(path: Path) -> set[str]:
    """The test names of the expected-failures file."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line)
    return names


def main(argv: list[str]) -> int:
    junit = Path(argv[1])
    listed = Path(argv[2]) if len(argv) > 2 else Path(__file__).with_name("expected-failures.txt")
    outcomes, reasons = results(junit)
    counts = Counter(outcomes.values())
    print(
        f"irctest: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        f" (of {len(outcomes)} run)"
    )
    print("irctest: skipped, by reason:")
    for reason, count in reasons.most_common():
        print(f"  {count:4d}  {reason}")
    known = expected(listed)
    regressions = sorted(n for n, outcome in outcomes.items() if outcome == "failed" and n not in known)
    fixed = sorted(n for n in known if outcomes.get(n) == "passed")
    if fixed:
        print(f"irctest: {len(fixed)} expected failures now pass; remove them from {listed.name}:")
        for name in fixed:
            print(f"  {name}")
    if regressions:
        print(f"irctest: {len(regressions)} tests failed that are not in {listed.name}:")
        for name in regressions:
            print(f"  {name}")
        return 1
    print(f"irctest: every failure is an expected one ({listed.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
