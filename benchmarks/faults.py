"""The fault suite's table: every file of the generated corpus (tagsmith/fault_corpus.py, plus a 100 MP photo
and an unreadable file), what the media asset made of it, why, how long it took and its peak memory.

Each file is inspected (`ml.inspect.inspect_media`, what the `media` asset runs on Ray) in a fresh process of
its own. Peak memory is the peak resident set (VmHWM) above the process's size just before the file: Linux
resets the peak on `echo 5 > /proc/self/clear_refs`, after the imports and a warm-up file, so the figure is
that file's own cost (Pillow's pixel buffers are not seen by tracemalloc: they are C allocations). What the
folder listing rejects (symlink loops, a broken link, a FIFO) is never read: those rows show the listing of
the whole folder, measured the same way. Run as root, the unreadable file is inspected without the power to
read every file (`setpriv` drops CAP_DAC_OVERRIDE), as a normal user would be.

Figures, not a test: `python -m benchmarks.faults` (~1 minute).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).parent / "out" / "faults.json"
ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, re, sys, time
from pathlib import Path

def status(key):
    return int(re.search(key + r':\s+(\d+)', Path('/proc/self/status').read_text()).group(1)) / 1024

mode, target, warm = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "inspect":
    from ml.inspect import inspect_media
    import ml.video, av  # noqa: F401  - loaded before the baseline, as in a warm Ray worker
    inspect_media([warm])
    run = lambda: inspect_media([target])
elif mode == "full":  # the whole-size decode inspection avoids: what the same photo costs without DCT scaling
    from ml.media import decode_image
    decode_image(Path(warm).read_bytes())
    run = lambda: [list(decode_image(Path(target).read_bytes(), draft_size=None, max_pixels=None).size)]
else:
    from resources.media_store import LocalMediaStore
    store = LocalMediaStore()
    run = lambda: [(o.uri, o.problem) for o in store.list_media(target)]
Path('/proc/self/clear_refs').write_text('5')
base = status('VmRSS')
start = time.perf_counter()
result = run()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mb": max(0.0, status('VmHWM') - base), "result": result}))
"""


def measure(mode: str, target: str, warm: str, unprivileged: bool = False) -> dict:
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if unprivileged and os.geteuid() == 0 else []
    done = subprocess.run([*drop, sys.executable, "-c", MEASURE, mode, target, warm], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {target} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-100mp", action="store_true", help="leave the 100 MP photo out (saves ~5 s)")
    args = parser.parse_args(argv)

    from PIL import Image

    from ml.media import reason_kind
    from tagsmith.fault_corpus import write_fault_corpus, write_unreadable

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "media"
        cases = write_fault_corpus(folder, hundred_mp=not args.no_100mp)
        unreadable = write_unreadable(folder)
        cases.append(unreadable)
        warm = Path(tmp) / "warm.jpg"
        Image.new("RGB", (64, 48)).save(warm)
        listing = measure("list", str(folder), str(warm))
        problems = {os.path.relpath(uri, folder): reason for uri, reason in listing["result"] if reason}
        rows = []
        for case in cases:
            if case.name in problems:
                status, reason, seconds, peak = "quarantined", problems[case.name], listing["seconds"], None
            else:
                got = measure("inspect", str(folder / case.name), str(warm), unprivileged=case is unreadable)
                (row,) = got["result"]
                status, reason, seconds, peak = row["status"], row["error"], got["seconds"], got["peak_mb"]
            expected = case.status == status and (case.reason is None or reason_kind(reason or "") == case.reason)
            rows.append({"input": case.what, "file": case.name, "outcome": status, "reason": reason,
                         "seconds": seconds, "peak_mb": peak, "as_expected": expected})
        if not args.no_100mp:
            whole = measure("full", str(folder / "photo-100mp.jpg"), str(warm))

    print("| input kind | outcome | reason | ms | peak MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        reason = (r["reason"] or "").replace("|", "/").replace("\n", " ")
        if len(reason) > 90:
            reason = reason[:87] + "..."
        peak = "listing" if r["peak_mb"] is None else f"{r['peak_mb']:.1f}"
        outcome = r["outcome"] + ("" if r["as_expected"] else " (UNEXPECTED)")
        print(f"| {r['input']} | {outcome} | {reason} | {r['seconds'] * 1000:.1f} | {peak} |")
    print(f"\nlisting the whole folder ({len(cases)} entries): {listing['seconds'] * 1000:.1f} ms, "
          f"peak {listing['peak_mb']:.1f} MB above the process before it")
    if not args.no_100mp:
        print(f"the 100 MP photo decoded whole instead (no DCT scaling): {whole['seconds'] * 1000:.0f} ms, "
              f"peak {whole['peak_mb']:.0f} MB")
    print(f"{sum(r['as_expected'] for r in rows)}/{len(rows)} files got the outcome and reason they must get")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows, "listing": {k: listing[k] for k in ("seconds", "peak_mb")}}, indent=1))


if __name__ == "__main__":
    main()
