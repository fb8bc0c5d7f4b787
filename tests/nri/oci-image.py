"""An OCI image layout as a tar (what `ctr images import` takes) holding the
given files, for tests/vm/t-nri.sh's offline pods: no registry, no pull.

  oci-image.py OUT.tar NAME ENTRYPOINT_JSON SRC:DEST...

Each SRC (a static binary) lands at DEST, mode 0755; DEST /bin/busybox also
gets /bin/sh and /bin/sleep as links. One uncompressed layer."""
import hashlib
import io
import json
import sys
import tarfile
import time

out, name, entry, files = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]


def blob(tf, data, media):
    d = hashlib.sha256(data).hexdigest()
    ti = tarfile.TarInfo("blobs/sha256/" + d)
    ti.size, ti.mtime = len(data), int(time.time())
    tf.addfile(ti, io.BytesIO(data))
    return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}


layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as lt:
    for d in ("bin", "tmp", "proc", "sys", "dev", "etc", "out"):
        ti = tarfile.TarInfo(d)
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        lt.addfile(ti)
    for f in files:
        src, dest = f.split(":", 1)
        data = open(src, "rb").read()
        ti = tarfile.TarInfo(dest.lstrip("/"))
        ti.size, ti.mode = len(data), 0o755
        lt.addfile(ti, io.BytesIO(data))
        if dest == "/bin/busybox":
            for link in ("sh", "sleep"):
                li = tarfile.TarInfo("bin/" + link)
                li.type, li.linkname = tarfile.SYMTYPE, "busybox"
                lt.addfile(li)
layer = layer.getvalue()
config = {
    "architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": entry, "Env": ["PATH=/bin"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
}
with tarfile.open(out, "w") as tf:
    lay = blob(tf, layer, "application/vnd.oci.image.layer.v1.tar")
    cfg = blob(tf, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    man = blob(tf, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": cfg, "layers": [lay]}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
    man["annotations"] = {"io.containerd.image.name": name,
                          "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    man["platform"] = {"architecture": "amd64", "os": "linux"}
    for n, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                    ("index.json", json.dumps({"schemaVersion": 2, "manifests": [man]}).encode())):
        ti = tarfile.TarInfo(n)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
