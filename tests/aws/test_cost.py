"""bench/cost.py: Airdock's mw1.small 24x7 costs at most half of MWAA's price."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_cost_model_ends_with_one_summary_line_under_half_of_mwaa() -> None:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "cost.py")], capture_output=True, text=True, check=True)
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"cost: mw1\.small airdock \$([\d.]+)/month vs mwaa \$([\d.]+)/month, ratio ([\d.]+)", last)
    assert match, last
    airdock, mwaa, ratio = map(float, match.groups())
    assert mwaa == round(0.49 * 730, 2)
    assert ratio <= 0.5 and abs(airdock / mwaa - ratio) < 0.01
