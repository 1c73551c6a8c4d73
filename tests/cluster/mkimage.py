#!/usr/bin/env python3
"""Assemble a single-layer OCI image tarball (for `ctr images import`) from local files.

No registry, no Docker: a layer tar of the given files, an image config, a manifest and an
index naming the image. Usage:
  mkimage.py --name appcoup.local/x:1 --out x.tar --file SRC:/DEST [--file ...]
             [--symlink /bin/sh:busybox] [--entrypoint /x] [--cmd arg] [--env K=V] [--label K=V]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile
import time


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def dirs_for(path: str, seen: set[str]) -> list[tarfile.TarInfo]:
    out = []
    parts = path.strip("/").split("/")[:-1]
    for i in range(len(parts)):
        d = "/".join(parts[: i + 1])
        if d not in seen:
            seen.add(d)
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            out.append(ti)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--file", action="append", default=[], help="SRC:/DEST")
    ap.add_argument("--symlink", action="append", default=[], help="/LINK:TARGET")
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--cmd", action="append", default=[])
    ap.add_argument("--env", action="append", default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    ap.add_argument("--label", action="append", default=["app.kubernetes.io/part-of=appcoup"])
    ap.add_argument("--workdir", default="/")
    a = ap.parse_args()

    seen: set[str] = set()
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for spec in a.file:
        src, dest = spec.rsplit(":", 1)
        members += [(d, None) for d in dirs_for(dest, seen)]
        with open(src, "rb") as fh:
            data = fh.read()
        ti = tarfile.TarInfo(dest.strip("/"))
        ti.size, ti.mode, ti.mtime = len(data), os.stat(src).st_mode & 0o7777, 0
        members.append((ti, data))
    for spec in a.symlink:
        link, target = spec.split(":", 1)
        members += [(d, None) for d in dirs_for(link, seen)]
        ti = tarfile.TarInfo(link.strip("/"))
        ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, target, 0o777, 0
        members.append((ti, None))
    for d in ("tmp",):
        if d not in seen:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o1777, 0
            members.append((ti, None))

    layer = tar_bytes(members)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    layer_gz = gzip.compress(layer, mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0)),
        "config": {
            "Env": a.env,
            "Entrypoint": a.entrypoint or None,
            "Cmd": a.cmd or None,
            "WorkingDir": a.workdir,
            "Labels": dict(l.split("=", 1) for l in a.label),
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "appcoup tests/cluster/mkimage.py"}],
    }
    config_b = json.dumps(config, sort_keys=True).encode()
    blobs: dict[str, bytes] = {}

    def blob(b: bytes) -> dict:
        dg = "sha256:" + hashlib.sha256(b).hexdigest()
        blobs[dg] = b
        return {"digest": dg, "size": len(b)}

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config_b)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layer_gz)}],
    }
    man_b = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(man_b),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": a.name, "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]},
        }],
    }
    out_members: list[tuple[tarfile.TarInfo, bytes | None]] = []

    def f(name: str, data: bytes) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
        out_members.append((ti, data))

    f("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    f("index.json", json.dumps(index, sort_keys=True).encode())
    for dg, b in blobs.items():
        f("blobs/sha256/" + dg.split(":", 1)[1], b)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(tar_bytes(out_members))
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
