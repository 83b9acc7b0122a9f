"""Where the knowledge tests find the bundled samples and the shared QMSum dataset."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "knowledge" / "sample"
# Outside the repository: present in the shared workspace, absent in a user's fresh clone.
QMSUM_DIR = REPO_ROOT.parent / "shared" / "datasets" / "qmsum-val"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
