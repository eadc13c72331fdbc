#!/usr/bin/env bash
# Builds the Debian packages lookout-aggregator_VERSION_ARCH.deb and
# lookout-agent_VERSION_ARCH.deb with dpkg-deb (from packaging/debian/: the
# systemd units, the default configs as conffiles, the maintainer scripts).
#
#   scripts/build-deb.sh                  # release build, packages in target/debian/
#   scripts/build-deb.sh --bin-dir DIR    # package binaries already built in DIR
#   scripts/build-deb.sh --out DIR        # write the packages to DIR
#
# dpkg-deb rather than cargo-deb: it is on every Debian machine, so
# packaging needs nothing built or downloaded besides Lookout itself.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin_dir=""
out_dir="$target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) bin_dir=$2; shift 2 ;;
        --out) out_dir=$2; shift 2 ;;
        *) echo "usage: $0 [--bin-dir DIR] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$bin_dir" ]; then
    (cd "$root" && cargo build --release --locked -p lookout-aggregator -p lookout-agent \
        --bin lookout-aggregator --bin lookout-agent)
    bin_dir="$target/release"
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
mkdir -p "$out_dir"

# build_package NAME CONFIG SUMMARY DESCRIPTION
build_package() {
    local name=$1 config=$2 summary=$3 description=$4 short=${1#lookout-}
    local stage
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' RETURN
    chmod 0755 "$stage"
    install -D -m 0755 "$bin_dir/$name" "$stage/usr/bin/$name"
    # As dh_strip does: the release profile keeps line tables for profiling.
    if command -v strip >/dev/null; then
        strip --strip-unneeded "$stage/usr/bin/$name"
    fi
    install -D -m 0644 "$root/packaging/debian/$name.service" "$stage/lib/systemd/system/$name.service"
    install -D -m 0644 "$root/packaging/debian/$config" "$stage/etc/lookout/$config"
    install -D -m 0644 "$root/README.md" "$stage/usr/share/doc/$name/README.md"
    install -d -m 0755 "$stage/DEBIAN"
    printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: lookout\nFiles: *\nLicense: MIT or Apache-2.0\n' \
        > "$stage/usr/share/doc/$name/copyright"
    chmod 0644 "$stage/usr/share/doc/$name/copyright"
    for script in postinst prerm postrm; do
        install -m 0755 "$root/packaging/debian/$short.$script" "$stage/DEBIAN/$script"
    done
    echo "/etc/lookout/$config" > "$stage/DEBIAN/conffiles"
    cat > "$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: Lookout developers <lookout@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: libc6 (>= 2.36), adduser, init-system-helpers (>= 1.54)
Section: admin
Priority: optional
Description: $summary
$description
CONTROL
    dpkg-deb --root-owner-group --build "$stage" "$out_dir/${name}_${version}_${arch}.deb" >/dev/null
    echo "$out_dir/${name}_${version}_${arch}.deb"
}

build_package lookout-aggregator aggregator.toml \
    "Lookout aggregator: indexes, searches and alerts on logs and host metrics" \
    " Receives logs and host metrics from Lookout agents and other shippers,
 indexes them, answers searches over an HTTP API and a web UI, and
 notifies on-call by email, webhook, chat and Alertmanager."
build_package lookout-agent agent.toml \
    "Lookout agent: ships log files, the journal and host metrics" \
    " Tails log files through every kind of rotation without losing a line,
 reads the systemd journal and container logs, collects host metrics and
 ships them to a Lookout aggregator, spooling on disk while it is away."
