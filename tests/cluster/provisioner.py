#!/usr/bin/env python3
"""appcoup-cluster hostPath provisioner: a small host process behind the default StorageClass.

Polls the apiserver; for each Pending PVC of a StorageClass whose provisioner is
``appcoup.local/hostpath`` it creates a hostPath PV pre-bound to that claim (any access
mode, ReadWriteOnce and ReadWriteMany alike: it is a single node), and it deletes the
directory and the PV of released volumes. Standard library only.

Usage: provisioner.py --server URL --pki DIR --root DIR
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request

PROVISIONER = "appcoup.local/hostpath"


class Api:
    def __init__(self, server: str, pki: str) -> None:
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(pki, "provisioner.crt"), os.path.join(pki, "provisioner.key"))

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return json.loads(r.read() or b"{}")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def once(api: Api, root: str) -> None:
    classes = {sc["metadata"]["name"] for sc in api.call("GET", "/apis/storage.k8s.io/v1/storageclasses")["items"]
               if sc.get("provisioner") == PROVISIONER}
    for pvc in api.call("GET", "/api/v1/persistentvolumeclaims")["items"]:
        md, spec = pvc["metadata"], pvc["spec"]
        if pvc.get("status", {}).get("phase") != "Pending" or spec.get("volumeName"):
            continue
        if spec.get("storageClassName") not in classes:
            continue
        name = "pvc-" + md["uid"]
        path = os.path.join(root, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "appcoup"},
                         "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec["storageClassName"],
                "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": md["namespace"],
                             "name": md["name"], "uid": md["uid"]},
            },
        }
        try:
            api.call("POST", "/api/v1/persistentvolumes", pv)
            log(f"provisioned {name} for {md['namespace']}/{md['name']} at {path}")
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise
    for pv in api.call("GET", "/api/v1/persistentvolumes")["items"]:
        md = pv["metadata"]
        if md.get("annotations", {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            continue
        if pv.get("status", {}).get("phase") not in ("Released", "Failed"):
            continue
        path = pv["spec"].get("hostPath", {}).get("path", "")
        if path.startswith(root.rstrip("/") + "/"):
            shutil.rmtree(path, ignore_errors=True)
        try:
            api.call("DELETE", "/api/v1/persistentvolumes/" + md["name"])
            log(f"deleted {md['name']}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args()
    os.makedirs(a.root, exist_ok=True)
    api = Api(a.server, a.pki)
    log(f"appcoup-cluster provisioner for {PROVISIONER}, volumes under {a.root}")
    while True:
        try:
            once(api, a.root)
        except Exception as e:  # noqa: BLE001 - keep going: the apiserver may restart
            log(f"error: {e!r}")
        time.sleep(a.interval)


if __name__ == "__main__":
    sys.exit(main())
