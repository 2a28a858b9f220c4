"""Audit the locked dependencies with pip-audit: ``make audit`` (strict) and ``make test`` (report only).

Fails (exit 1) when a pinned package has a known vulnerability with a fixed
release, or when a package could not be audited at all (strict mode only):
"no known vulnerabilities" is not claimed for packages nobody looked up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pip_audit() -> dict:
    pip_audit = str(Path(sys.executable).parent / "pip-audit")
    options = ["--no-deps", "--disable-pip", "--progress-spinner", "off", "-f", "json"]
    argv = [pip_audit, "-r", str(ROOT / "constraints.txt"), *options]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"pip-audit failed: {result.stderr.strip()[-500:]}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true", help="print findings, always exit 0")
    args = parser.parse_args(argv)
    deps = run_pip_audit()["dependencies"]
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [(d, v) for d in deps for v in d.get("vulns", [])]
    fixable = [(d, v) for d, v in vulnerable if v.get("fix_versions")]
    for dep, vuln in vulnerable:
        fix = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fix})")
    print(
        f"audited {len(deps) - len(skipped)} of {len(deps)} pinned packages: "
        f"{len(vulnerable)} known vulnerabilities, {len(fixable)} with a fix"
    )
    if skipped:
        print(f"could not audit {len(skipped)} packages (e.g. {skipped[0]['skip_reason']})")
    if args.report_only:
        return 0
    return 1 if fixable or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
