"""Screenshots of the HTML reports in headless Chromium, to see a page the way a sponsor will open it.

Chromium is a system dependency (Debian: `apt-get install -y --no-install-recommends chromium`, about 10 s
and 400 MB here; scripts/setup.sh installs it when it can). Missing, `screenshot` raises rather than
pretending: a report nobody can look at is not checked.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with `apt-get install -y --no-install-recommends chromium` (Debian/Ubuntu)"


class BrowserMissing(RuntimeError):
    """No Chromium on PATH."""


def find_chromium() -> str:
    """The first Chromium-family binary on PATH, or BrowserMissing naming the package to install."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserMissing(f"no Chromium on PATH (looked for {', '.join(CANDIDATES)}): {INSTALL_HINT}")


def screenshot(
    html_file: Path, png: Path | None = None, window: tuple[int, int] = (1280, 900), timeout_s: float = 90
) -> Path:
    """Render `html_file` from disk (file://) in headless Chromium and write a PNG of the window's size.

    Each call has its own throwaway profile folder, so calls can run side by side. Returns the PNG's path
    (`html_file` with .png by default); raises CalledProcessError / RuntimeError when Chromium fails or
    writes no picture, with its output.
    """
    html_file = Path(html_file).resolve()
    png = Path(png).resolve() if png is not None else html_file.with_suffix(".png")
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="tagsmith-chromium-") as profile:
        cmd = [
            find_chromium(),
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={window[0]},{window[1]}",
            html_file.as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium exited {done.returncode} without {png}: {done.stderr[-2000:]}")
    return png
