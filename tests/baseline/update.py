"""Rewrite the regression baseline: ``python tests/baseline/update.py``.

The only way to change ``tests/baseline/summary_final.json``. Run it when a change of model
behaviour is intended, and say why in the commit message.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

from test_regression import BASELINE, baseline_run  # noqa: E402


def main() -> None:
    """Run the baseline configuration and store its final-year summary."""
    argparse.ArgumentParser(prog="python tests/baseline/update.py",
                            description=__doc__.split("\n", 1)[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        final = baseline_run(Path(tmp))
    BASELINE.write_text(json.dumps(final, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {BASELINE}")


if __name__ == "__main__":
    main()
