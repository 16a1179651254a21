#!/usr/bin/python3
"""Validate rstwatch JSON lines against deploy/rstwatch.schema.json.

Runs under Debian's /usr/bin/python3 (python3-jsonschema); the test suites
run under whatever python3 is first on PATH and reach it through
schema.py.  Reads one JSON line per stdin line and answers, per line, one
JSON list of problems ([] if none), flushing each answer.  Beyond the schema
(whose additionalProperties lets consumers accept keys added later), every
key rstwatch writes must be one the schema documents: a key added to the
output without its schema entry is a problem here.

usage: schema_check.py [SCHEMA]  (default: the repository's)
"""
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "..", "deploy", "rstwatch.schema.json")


def undocumented(obj, schema):
    """Keys of obj that the schema does not name (verdict, evidence, counts)."""
    defs = schema["$defs"]
    if not isinstance(obj, dict):
        return []
    which = defs["summary"] if "summary" in obj else defs["verdict"]
    out = [k for k in obj if k not in which["properties"]]
    if "summary" in obj:
        item = which["properties"]["counts"]["items"]["properties"]
        for c in obj.get("counts") or []:
            out += [f"counts.{k}" for k in (c if isinstance(c, dict) else {}) if k not in item]
    elif isinstance(obj.get("evidence"), dict):
        ev = which["properties"]["evidence"]["properties"]
        out += [f"evidence.{k}" for k in obj["evidence"] if k not in ev]
    return out


def main():
    schema = json.load(open(sys.argv[1] if len(sys.argv) > 1 else SCHEMA))
    jsonschema.Draft202012Validator.check_schema(schema)
    fc = jsonschema.FormatChecker()
    whole = jsonschema.Draft202012Validator(schema, format_checker=fc)
    # the branch of the top-level oneOf that applies, for errors that say
    # what is wrong rather than that neither branch matched
    branch = {k: jsonschema.Draft202012Validator(dict(schema, oneOf=[{"$ref": f"#/$defs/{k}"}]),
                                                 format_checker=fc) for k in ("verdict", "summary")}
    for line in sys.stdin:
        try:
            obj = json.loads(line)
        except ValueError as e:
            print(json.dumps([f"not JSON: {e}"]), flush=True)
            continue
        p = []
        v = branch["summary" if isinstance(obj, dict) and "summary" in obj else "verdict"]
        for e in v.iter_errors(obj):
            for sub in (e.context or [e]):
                where = "/".join(map(str, sub.absolute_path)) or "(object)"
                p.append(f"schema: {where}: {sub.message}")
        if not p and not whole.is_valid(obj):
            p.append("schema: valid as its own kind but not under the top-level oneOf")
        p += [f"schema: key {k!r} is not in deploy/rstwatch.schema.json" for k in undocumented(obj, schema)]
        print(json.dumps(sorted(set(p))), flush=True)


if __name__ == "__main__":
    main()
