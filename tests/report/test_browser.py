"""The report in a real browser: headless Chromium opens a report of a small real run - no console
errors, every image decodes, every expected section is there, hostile suite text stays inert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> \"quoted' | pipe"
SUITE = {
    "name": "browser",
    "description": f"Browser check {HOSTILE}",
    "dataset": "digits",
    "models": [{"name": "mlp", "options": {"widths": [16]}}],
    "norms": ["bn", "ln", {"name": "gn", "options": {"num_groups": 4}}],
    "batch_sizes": [8, 32],
    "seeds": 2,  # 12 runs: ~0.3 s each on 2 cores, most of it per-run setup
    "steps": 20,
    "eval_every": 10,
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
}
# Runs inside the page after load and writes what it found into the DOM for --dump-dom to return.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || (e.target && e.target.src) || e)), true);
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { window.__errors.push(level + ": " + args.join(" ")); original.apply(console, args); };
}
window.addEventListener("load", () => {
  const images = [...document.images];
  const out = {
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    sections: [...document.querySelectorAll("section[id]")].map(s => s.id),
    scripts: document.querySelectorAll("script").length,
    injected: document.querySelectorAll("img[src='x']").length,
    title: document.title,
    description: (document.querySelector("p.description") || {}).textContent || "",
    errors: window.__errors,
  };
  const pre = document.createElement("pre");
  pre.id = "nb-browser-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=60)


def _report(tmp_path: Path) -> Path:
    """The report of a small real run."""
    from normbench.runner import run_suite

    suite = tmp_path / "browser.yaml"
    suite.write_text(yaml.safe_dump(SUITE, sort_keys=False))
    return run_suite(suite, out_dir=tmp_path / "out", executor="serial").report_path


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`)")
def test_report_opens_cleanly_in_headless_chromium(tmp_path):
    report = _report(tmp_path)
    html = report.read_text(encoding="utf-8")

    # 1. The report as shipped: a screenshot, and not a single console message.
    screenshot = tmp_path / "report.png"
    shot = _chromium(tmp_path, "--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={screenshot}",
                     report.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    console = [line for line in shot.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000

    # 2. The same page with a probe script: images decode, sections exist, nothing was injected.
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</head>", PROBE + "\n</head>", 1), encoding="utf-8")
    dump = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert dump.returncode == 0, dump.stderr[-2000:]
    found = re.search(r'<pre id="nb-browser-check">(.*?)</pre>', dump.stdout, re.S)
    assert found, f"probe did not run: {dump.stdout[-500:]}"
    check = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                       .replace("&quot;", '"'))
    assert check["errors"] == [], check["errors"]
    assert check["images"] >= 4 and check["broken"] == [], check
    sections = set(check["sections"])
    assert {"verdicts", "runs", "warnings", "methods", "reproduce", "section-1"} <= sections, sections
    assert check["scripts"] == 1 and check["injected"] == 0  # only the probe; the suite's HTML is text
    assert HOSTILE in check["description"]
    assert check["title"] == "normbench report: browser"
