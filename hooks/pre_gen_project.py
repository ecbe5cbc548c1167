"""Refuse answers that kairos-init or AuroraBoot would refuse: the replayed bake's check.

A prompted or --no-input bake is checked in-process before any directory
exists (cookiecutter.json's `__checked`, local_extensions.check_answers); a
replayed bake (--replay, cruft) skips prompting, so this hook runs the same
check. The answers reach this script as JSON data, never pasted into code.
"""

import json
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# Absolute, from local_extensions.py: `_repo_dir` is relative to where
# cookiecutter was started (`cookiecutter .`), not to where hooks run.
TEMPLATE = json.loads(r"""[{{ template_dir | tojson }}]""")[0]

sys.dont_write_bytecode = True  # a .pyc in the template would be baked too
sys.path.insert(0, TEMPLATE)
from local_extensions import refusal  # noqa: E402

line = refusal(ANSWERS)
if line:
    print(f"ERROR: {line}", file=sys.stderr)
    sys.exit(1)
