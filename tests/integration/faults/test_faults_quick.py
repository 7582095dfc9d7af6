"""`shouwang faults --quick` in CI: poison, worker crashes, a database outage, overload, hostile
clients (a slow-body flood by one token while another writes) and the loss of one broker of
three, against a
private Kafka and PostgreSQL (started by the harness, stopped at its end). The `scale-out`
scenario's quick form runs in tests/integration/scale/ (its own test, on its own stack).

Every check of every scenario must hold: nothing acknowledged lost, nothing applied twice,
every copy of an assessment identical, replay --verify clean, no personal data in logs.
"""

import io
import random

import pytest

from services.tools.faults.harness import run_scenarios, scenarios

pytestmark = pytest.mark.integration
ELSEWHERE = {"scale-out"}  # tests/integration/scale/test_scale_out.py


@pytest.mark.timeout(1800)
async def test_quick_fault_scenarios(stack_tmp_dir):
    out = io.StringIO()
    seed = random.SystemRandom().randrange(1 << 30)
    run_dir = stack_tmp_dir / "faults"
    names = [name for name in scenarios() if name not in ELSEWHERE]
    results = await run_scenarios(names, True, seed, run_dir, out=out)
    report = f"seed {seed}\n{out.getvalue()}"
    assert [r.name for r in results] == names, report
    failed = [r.name for r in results if not r.passed]
    assert not failed, f"{', '.join(failed)} failed:\n{report}"
