"""`shouwang faults --quick` in CI: poison, worker crashes and a database outage against a
private Kafka and PostgreSQL (started by the harness, stopped at its end).

Every check must hold except the poison scenario's open findings below, which are real
problems reported in services/faults/README.md; when one is fixed this test says so, and the
entry must go.
"""

import io
import random

import pytest

from services.faults.commands import run_scenarios, scenarios

pytestmark = pytest.mark.integration

# Valid Avro, impossible in the domain: a decision for a household not (yet) registered is
# applied, not dead-lettered, because late-syncing registries are normal (README "Findings" 2).
KNOWN_FINDINGS = {
    "poison": ("decision-for-unknown-household:",),
}
# Open and intermittent (they depend on the kill moment): after a kill -9 the monitoring worker
# may re-send an assessment under the same id with another chain hash, and `replay --verify`
# then reports chain and read-model differences (README "Findings" 6). Tolerated here so CI
# keeps checking loss and doubling; `make faults` still prints them as FAIL.
# Also open and intermittent (1 in 4 fresh-clone CI runs, 2026-11-29): after the kill -9 the
# restarted monitoring worker sometimes has not caught up within the harness's 240 s on a
# loaded 2-core machine (slow recovery or a stall: not yet diagnosed). Loss and doubling in the
# log and the read model are still checked below; `make faults` prints it as FAIL.
INTERMITTENT_FINDINGS = {
    "crashes": (
        "RiskAssessed ids carry different assessments",
        "shouwang replay --verify",
        "timed out after 240 s waiting for monitoring state",
        "monitoring state lacks",
    ),
    # It reads the whole household.risk topic, so it sees the crash scenario's copies too.
    "db-outage": ("RiskAssessed ids carry different assessments",),
}


@pytest.mark.timeout(900)
async def test_quick_fault_scenarios(stack_tmp_dir):
    out = io.StringIO()
    seed = random.SystemRandom().randrange(1 << 30)
    run_dir = stack_tmp_dir / "faults"
    results = await run_scenarios(list(scenarios()), True, seed, run_dir, out=out)
    report = f"seed {seed}\n{out.getvalue()}"
    assert [r.name for r in results] == list(scenarios()), report
    for result in results:
        known = KNOWN_FINDINGS.get(result.name, ())
        tolerated = known + INTERMITTENT_FINDINGS.get(result.name, ())
        unexpected = [f for f in result.failures if not f.startswith(tolerated)]
        assert not unexpected, f"{result.name} failed:\n{report}"
        for finding in known:
            assert any(f.startswith(finding) for f in result.failures), (
                f"{finding} no longer fails: remove it from KNOWN_FINDINGS and the README\n"
                + report
            )
