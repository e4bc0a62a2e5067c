"""What reusing compressed rows saves: the figures behind deflate.py, zipout.py and un-numbered rows.

    .venv/bin/python bench/segments.py [--shops 100] [--rows 1000] [--repeat 3]

Prints a Markdown table: median seconds of `repeat` runs (one process, on this machine), for
(1) row_xml on 10,000 rows x 41 columns, and (2) writing the 全部投诉
part of shops x rows rows into a zip on disk, by zipfile and by ZipOut, from whole bytes,
from per-shop pieces compressed on the spot, and from per-shop segments compressed earlier
(the render after one shop saved: 99 copied, 1 made afresh). Every written zip is checked
afterwards with zipfile's CRC test and against the expected content.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import rows_for  # noqa: E402
from complaint_core.merged.deflate import Segment, Spool, compress  # noqa: E402
from complaint_core.merged.rowxml import row_xml  # noqa: E402
from complaint_core.merged.zipout import ZipOut  # noqa: E402

STYLES = {"datetime": 5, "date": 6}
HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.'
        b'openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr">'
        b'<is><t>header</t></is></c></row>')
TAIL = b"</sheetData></worksheet>"
PART = "xl/worksheets/sheet1.xml"


def shop_rows(shops: int, rows: int) -> list[list[list[Any]]]:
    """Each shop's rows as the merged sheet shows them: 38 schema columns + file, row, status."""
    return [[[*r, f"S{k:03d}/投诉台账.xlsx", i + 2, "正常"] for i, r in enumerate(rows_for(rows, shop=f"S{k:03d}", seed=k))]
            for k in range(shops)]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=100)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    results: list[tuple[str, int, tuple[float, float, float], str]] = []

    # (1) row_xml on 10,000 rows x 41 columns
    sample = [r for shop in shop_rows(10, 1000) for r in shop]
    number_styles: list[int | None] = [None] * len(sample[0])
    results.append(("row_xml (no r, <c/> for gaps)", len(sample), timed(
        lambda: sum(len(b) for b in row_xml(sample, number_styles, STYLES)), max(args.repeat, 5)), ""))

    # (2) the 全部投诉 part of shops x rows rows
    shops = shop_rows(args.shops, args.rows)
    total = sum(len(s) for s in shops)
    pieces = [b"".join(row_xml(s, number_styles, STYLES)) for s in shops]
    xml_bare = HEAD + b"".join(pieces) + TAIL
    segments = [compress([p]) for p in pieces]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        spool = Spool(dir=tmp)
        for seg in segments:
            spool.add(seg)

        def zipfile_level(level: int) -> Callable[[], None]:
            def run() -> None:
                with zipfile.ZipFile(out / f"zf{level}.xlsx", "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
                    z.writestr(PART, xml_bare)
            return run

        def zipout(name: str, parts: Callable[[], list[bytes | Segment | Spool]]) -> Callable[[], None]:
            def run() -> None:
                with ZipOut(out / f"{name}.xlsx") as z:
                    z.write_parts(PART, parts())
            return run

        def one_shop_saved() -> list[bytes | Segment | Spool]:
            # the shop that saved is encoded and compressed afresh; the other shops are copied
            fresh = compress(row_xml(shops[0], number_styles, STYLES))
            return [HEAD, fresh, *segments[1:], TAIL]

        def whole() -> None:
            with ZipOut(out / "zo_whole.xlsx") as z:
                z.write(PART, xml_bare)

        def encode_and_compress_all() -> None:
            fresh = [compress(row_xml(s, number_styles, STYLES)) for s in shops]
            with ZipOut(out / "zo_all_fresh.xlsx") as z:
                z.write_parts(PART, [HEAD, *fresh, TAIL])

        cases: list[tuple[str, Callable[[], None], str, bytes]] = [
            ("zipfile writestr, level 1 (whole sheet bytes)", zipfile_level(1), "zf1", xml_bare),
            ("zipfile writestr, level 6 (XlsxWriter's level)", zipfile_level(6), "zf6", xml_bare),
            ("ZipOut.write, level 1 (whole sheet bytes)", whole, "zo_whole", xml_bare),
            (f"ZipOut.write_parts, {len(pieces)} shops' bytes compressed on the spot",
             zipout("zo_bytes", lambda: [HEAD, *pieces, TAIL]), "zo_bytes", xml_bare),
            (f"ZipOut.write_parts, {len(segments)} precompressed segments copied",
             zipout("zo_segments", lambda: [HEAD, *segments, TAIL]), "zo_segments", xml_bare),
            ("ZipOut.write_parts, one Spool on disk holding the segments",
             zipout("zo_spool", lambda: [HEAD, spool, TAIL]), "zo_spool", xml_bare),
            (f"one shop saved: 1 shop encoded + compressed, {len(segments) - 1} segments copied",
             zipout("zo_one", one_shop_saved), "zo_one", xml_bare),
            ("every shop encoded (row_xml) + compressed, then written", encode_and_compress_all,
             "zo_all_fresh", xml_bare),
        ]
        for label, run, name, expected in cases:
            results.append((label, total, timed(run, args.repeat), ""))
            path = out / f"{name}.xlsx"
            with zipfile.ZipFile(path) as z:
                assert z.testzip() is None, path
                assert z.read(PART) == expected, path
            results[-1] = (*results[-1][:3], f"{path.stat().st_size / 1e6:.1f} MB")
        spool.close()
        sizes = f"sheet XML: {len(xml_bare) / 1e6:.1f} MB; " \
                f"compressed segments {sum(len(s.data) for s in segments) / 1e6:.1f} MB"

    print(f"## Reusing compressed rows ({args.shops} shops x {args.rows} rows, median of {args.repeat})\n")
    print("| what | rows | median s | min-max s | zip on disk |")
    print("|---|---|---|---|---|")
    for label, rows, (med, lo, hi), size in results:
        print(f"| {label} | {rows:,} | {med:.3f} | {lo:.3f}-{hi:.3f} | {size} |")
    print(f"\n{sizes}")


if __name__ == "__main__":
    main()
