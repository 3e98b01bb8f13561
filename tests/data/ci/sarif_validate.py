"""Test data for tests/ci_reports.rs: validates a SARIF file against the official
SARIF 2.1.0 JSON schema (sarif-2.1.0-rtm.5.json, as shipped in the npm package
@microsoft/jest-sarif) with the `jsonschema` package from PyPI. Prints each error;
exits 1 if there is any."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = list(cls(schema).iter_errors(doc))
for e in errors:
    print("/".join(str(p) for p in e.absolute_path), e.message)
sys.exit(1 if errors else 0)
