"""Test data for tests/ci_reports.rs: reads a JUnit XML file with junitparser (a
real JUnit reader, from PyPI) and prints what it found as JSON."""
import json
import sys

from junitparser import Failure, JUnitXml, Skipped

xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = []
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        failure = next((r for r in case.result if isinstance(r, Failure)), None)
        cases.append({
            "name": case.name,
            "classname": case.classname,
            "results": kinds,
            "skipped": any(isinstance(r, Skipped) for r in case.result),
            "message": failure.message if failure is not None else None,
            "text": failure.text if failure is not None else None,
        })
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures, "cases": cases})
print(json.dumps(suites))
