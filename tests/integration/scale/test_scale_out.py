"""The scale-out suite (issue 16): monitoring workers 1 → 2 → 3 → 2 and support workers 1 → 2 → 1
joining and leaving under load, a kill -9 during a rebalance, a worker restarted after its
session expired; then every input partition committed to its end, every household's state the
one-worker state of the same log, no pool over capacity, no assessment id with two contents.

The steps and checks are the fault harness's `scale-out` scenario
(`services/tools/faults/scaleout.py`), run here on its own private broker and PostgreSQL, as
`make faults FAULTS_ARGS="--scenario scale-out"` runs them. The quick form takes about 100 s on
a 2-core machine; the full form (four times the load, faust's default 60 s session; 151 s here)
runs when SHOUWANG_FULL_SCALE_OUT=1.

The quick form runs in CI. It was out of it for one stop: it failed once in a fresh-clone CI
run ("timed out after 240 s waiting for both groups to commit"), and looped 27 times on this
2-core machine at load average 10–24 it failed twice, both the same way, made visible by a
commit timeout that names each lagging partition: the restarted monitoring worker's table
recovery waited minutes for two changelog partitions that gave it no record ("No event received
for active tp … since recovery start"), so it never processed or committed its inputs. Fixed on
the way: a one-offset hole at the commit point was committed over (a loss), and a
never-committed partition had no lost-record check. A recovery now also fetches such a
partition again after 30 s (`BatchRecovery.refetch_stalled`, which logs "fetching again from
offset"). Since those changes the quick form passed 68 times in a row at load average 8–24 (the
guard never had to act), so the stall's own cause is not proven; the guard would recover it.
"""

import io
import os
import random

import pytest

from services.tools.faults.harness import run_scenarios

pytestmark = pytest.mark.integration


async def scale_out(stack_tmp_dir, quick: bool) -> None:
    out = io.StringIO()
    seed = random.SystemRandom().randrange(1 << 30)
    results = await run_scenarios(["scale-out"], quick, seed, stack_tmp_dir / "scale", out=out)
    (result,) = results
    assert result.passed, f"seed {seed}\n{out.getvalue()}"
    print(result.render())


@pytest.mark.timeout(900)
async def test_scale_out_quick(stack_tmp_dir):
    await scale_out(stack_tmp_dir, quick=True)


@pytest.mark.timeout(2400)
@pytest.mark.skipif(
    os.environ.get("SHOUWANG_FULL_SCALE_OUT") != "1",
    reason="the full scale-out (~3 minutes here) runs with SHOUWANG_FULL_SCALE_OUT=1",
)
async def test_scale_out_full(stack_tmp_dir):
    await scale_out(stack_tmp_dir, quick=False)
