"""The schema fuzzer, as the fuzz test and the `hostile` scenario run it: Schemathesis's CLI in
its own process against a running API's /openapi.json, with every check it has (`--checks all`)
and this project's own (`fuzz_checks.py`, loaded as Schemathesis hooks).

Two built-in checks cannot read what the visits API documents, and only there do stand-ins
take their place (see `fuzz_checks.py`): `positive_data_acceptance` (rules JSON Schema cannot
state, published in words as `x-rules-beyond-schema`) and, on the batch routes only,
`negative_data_rejection`'s idea of a refusal (a batch is judged record by record: 207, and 413
past its maximum). Schemathesis is a development dependency: `make faults` and the tests run
where it is installed (the `st` script beside the Python running this).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HOOKS = "services.tools.faults.fuzz_checks"
# The visits API's batches are judged record by record, so a 207 naming the refused records,
# or a 413 for more records than the batch's maximum, refuses a negative batch (and the check
# `batch_accepts_only_records_that_fit` proves that no accepted record broke the schema).
VISITS_OPERATIONS = """
[[operations]]
include-path-regex = ":batch$"
checks.negative_data_rejection.expected-statuses = [
    "207", "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
    "5xx",
]
"""


def command(
    url: str, token: str, config: Path, *, visits: bool, examples: int, seed: int
) -> list[str]:
    """The `st run` command line for the API whose document is at `url`."""
    st = Path(sys.executable).with_name("st")
    return [
        str(st), "--config-file", str(config), "run", url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", "all",
        # The visits API states some rules in words only (relations of two values, the
        # server's clock): positive_data_acceptance_but_stated_relations stands in for the
        # built-in there, refusing a valid record for those rules and nothing else.
        *(["--exclude-checks", "positive_data_acceptance"] if visits else []),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(examples), "--seed", str(seed),
        "--workers", "1", "--request-timeout", "30",
        "--suppress-health-check", "all",
    ]  # fmt: skip


async def fuzz(
    url: str,
    token: str,
    config: Path,
    report: Path,
    *,
    visits: bool,
    examples: int,
    seed: int,
) -> tuple[int, str]:
    """Run the fuzzer; its exit code (0: no failure) and its report's text."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": HOOKS, "NO_COLOR": "1"}
    args = command(url, token, config, visits=visits, examples=examples, seed=seed)
    with report.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *args, cwd=report.parent, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        code = await process.wait()
    text = await asyncio.to_thread(report.read_text, errors="replace")
    return code, text


def summary(text: str) -> str:
    """The report's last lines: phases, failures and how many cases were generated."""
    return text[text.rfind("SUMMARY") :] if "SUMMARY" in text else text[-2000:]
