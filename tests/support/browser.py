"""Debian's headless Chromium, driven by Playwright through its executable path (browser
drivers' own downloads cannot work here), and what the browser tests share: where
screenshots go, and an accessibility check with axe-core (from web/node_modules)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
# Screenshots are test artifacts, kept out of the repository (.gitignore).
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"


def chromium_or_fail() -> str:
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed (make test installs it: infra/test-services.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip("SKIPPING BROWSER TEST: " + message)
    return CHROMIUM


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now. The context must
    bypass the page's CSP (``bypass_csp=True``): the policy rightly refuses injected script."""
    assert AXE.exists(), f"{AXE} is missing: make assets installs it (web/package.json)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`);
    }""")
    return found
