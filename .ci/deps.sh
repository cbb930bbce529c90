#!/bin/sh
# Installs what baepo's tests and demo need, from Debian's packages.
# Idempotent: does nothing when everything is there.
set -eu
missing=""
command -v go >/dev/null 2>&1 || { echo "deps: Go is missing: install Go 1.26 or newer (https://go.dev/doc/install) and put it on PATH" >&2; exit 1; }
for pkg in $(cat "$(dirname "$0")/packages.txt"); do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root: apt-get install -y$missing   (or: sudo make deps)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
