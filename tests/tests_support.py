from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOT_CASES = ROOT / "cases"
