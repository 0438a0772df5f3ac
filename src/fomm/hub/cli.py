"""``fomm models`` (the published checkpoints and what is cached) and ``fomm download``.

``fomm models`` imports no torch: it is a listing.
"""

from __future__ import annotations

import sys

from fomm.models.registry import cache_dir, cached_path, registry, resolve_checkpoint

MODELS_EPILOG = """\
examples:
  fomm models              # the bundled models and the checkpoints fomm can download
  fomm models --urls       # with the mirror URLs of each

Bundled models (face-64, puppet-64) ship with fomm: use them by name, with no download
(fomm animate --checkpoint face-64 ...).
The URLs are third-party mirrors (GitHub release assets, Hugging Face) of the files the
original authors published. Set FOMM_HOME to move the cache; FOMM_MODELS adds entries (JSON).
"""

DOWNLOAD_EPILOG = """\
examples:
  fomm download vox                          # into the cache; then: --checkpoint vox works anywhere
  fomm animate --checkpoint vox --source photo.jpg --driving video.mp4 --out result.mp4
  fomm download vox-adv --out checkpoints/   # into a folder of your own
  fomm download https://example.org/files/my-cpk.pth.tar --preset vox-256 --sha256 HEX

An interrupted download resumes: run the same command again. The file is checked (sha256 when
known or given; always loaded with torch.load(weights_only=True) and every generator and keypoint
detector tensor compared with the preset) before it is moved to its final path in one rename.
"""


def register(subparsers) -> None:
    from fomm.cli_args import add_command, positive_float

    p = add_command(
        subparsers,
        "models",
        description="List the checkpoints fomm knows by name: the bundled models (no download) and the\n"
        "published FOMM checkpoints (preset, file, sha256 when known, and whether each is in the cache).",
        epilog=MODELS_EPILOG,
    )
    p.add_argument("--urls", action="store_true", help="also print the mirror URLs of each checkpoint")
    p.set_defaults(func=run_models)

    d = add_command(
        subparsers,
        "download",
        description="Download a published checkpoint (by name, see fomm models) or any checkpoint URL,\n"
        "resume an interrupted download, verify it and store it in the cache (or --out).",
        epilog=DOWNLOAD_EPILOG,
    )
    d.add_argument("name", metavar="NAME_OR_URL", help="a name from fomm models (e.g. vox) or an http(s) URL")
    d.add_argument(
        "--out",
        metavar="PATH",
        help="file or folder to save to (default: the cache, see fomm models; missing folders are created)",
    )
    d.add_argument("--sha256", metavar="HEX", help="expected sha256 of the file (default: the known one, if any)")
    d.add_argument(
        "--preset",
        metavar="CONFIG",
        help="config whose tensor shapes the file must have: a preset (e.g. vox-256) or a YAML file "
        "(default: the name's preset; for a URL, any that fits)",
    )
    d.add_argument(
        "--timeout", type=positive_float, default=30.0, metavar="S", help="seconds to wait for the server (default 30)"
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=run_download)


def run_models(args) -> int:
    entries = registry()
    rows = [("NAME", "PRESET", "FILE", "SHA256", "IN CACHE")]
    for entry in entries.values():
        sha = "-" if entry.bundled else entry.sha256[:12] + "..." if entry.sha256 else "unknown"
        rows.append((entry.name, entry.preset or "-", entry.file, sha, _cache_state(entry)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if args.urls and row is not rows[0]:
            entry = entries[row[0]]
            for url in entry.urls:
                print(f"    {url}")
            if entry.page:
                original = entry.original or entry.file.removeprefix("tpsmm-")
                print(f"    by hand: {entry.page} ({original}; {entry.licence} licence)")
    print(f"\ncache: {cache_dir()}  (FOMM_HOME moves it)")
    print("mirrors: third-party copies of the original authors' files; sha256 'unknown' = checked by tensor shapes")
    if any(not e.urls for e in entries.values()):
        print(
            "tpsmm-*: the Thin-Plate Spline Motion Model's checkpoints (MIT licence), and vox-512: the "
            "community's 512x512 FOMM (CC0), are fetched by hand (fomm download NAME says from where and to which path)"
        )
    print("get one: fomm download NAME; then use it by name: fomm animate --checkpoint NAME ...")
    return 0


def _cache_state(entry) -> str:
    if entry.bundled:
        return "bundled (no download)"
    path = cached_path(entry)
    if path.is_file():
        mb = path.stat().st_size / 1e6
        return f"yes ({mb:.0f} MB)" if mb >= 10 else f"yes ({mb:.1f} MB)"
    partial = sum(p.stat().st_size for p in (cache_dir() / ".partial").glob(f"*-{entry.file}.part"))
    return f"partial ({partial / 1e6:.1f} MB)" if partial else "no"


def run_download(args) -> int:
    from fomm.hub.fetch import download  # imports torch and requests: only when downloading

    result = download(
        args.name,
        out=args.out,
        sha256=args.sha256,
        preset=args.preset,
        progress=not args.no_progress,
        timeout=args.timeout,
    )
    state = "already there" if result.url is None else f"downloaded from {result.url}"
    print(
        f"{result.path}: {state}; {result.size / 1e6:.1f} MB, sha256 {result.sha256}, tensor shapes fit {result.preset}"
    )
    name = args.name
    if name in registry() and args.out is None and resolve_checkpoint(name) == result.path:
        print(f"use it by name: fomm animate --checkpoint {name} --source photo.jpg --driving video.mp4 --out out.mp4")
    sys.stdout.flush()
    return 0
