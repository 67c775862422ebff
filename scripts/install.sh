#!/usr/bin/env bash
# Installs gatewayd as a systemd service, with nothing on the host but what it runs with:
#   /usr/local/bin/gatewayd                   the release build
#   /etc/systemd/system/gatewayd.service      systemd/gatewayd.service
#   /etc/systemd/system/gatewayd.socket       systemd/gatewayd.socket (off until enabled)
#   /etc/gatewayd/gateway.yaml                conf/gateway.yaml, only if no config is there yet
#   /usr/local/share/doc/gatewayd/            README.md and docs/
# and the libraries the binary links, if missing (scripts/setup.sh --run). Never a test or
# benchmark package (prometheus, nginx, ...). Then: edit /etc/gatewayd/gateway.yaml,
# `systemctl enable --now gatewayd`.
#   scripts/install.sh [--config FILE] [--binary FILE]
#   scripts/install.sh --uninstall
#   --config FILE   FILE instead of conf/gateway.yaml as the initial config
#   --binary FILE   install this gatewayd, built elsewhere (`scripts/build.sh` on a build machine):
#                   nothing is compiled here. The way for a production host.
#   --uninstall     stop and disable the service, remove the binary, the unit and the docs; keep
#                   /etc/gatewayd and /var/log/gatewayd (the operator's config and logs)
# Without --binary it builds $BUILD_DIR (build/) here first, which needs the compiler and -dev
# packages (scripts/setup.sh --build installs those missing; they stay: remove them yourself).
# DESTDIR=/some/dir installs under that root instead (for packaging; no systemctl then).
set -euo pipefail
GW_SCRIPT=install
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

config="$GW_ROOT/conf/gateway.yaml"
binary=""
uninstall=0
while (($#)); do
  case "$1" in
    --uninstall) uninstall=1 ;;
    --config) (($# >= 2)) || gw_die "--config needs a value"; config="$2"; shift ;;
    --binary) (($# >= 2)) || gw_die "--binary needs a value"; binary="$2"; shift ;;
    -h | --help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
destdir="${DESTDIR:-}"
[[ -n "$destdir" || $EUID -eq 0 ]] || gw_die "run as root (or set DESTDIR)"
systemd_running() { [[ -z "$destdir" && -d /run/systemd/system ]]; }

if ((uninstall)); then
  if systemd_running; then
    # Stopping drains in-flight requests first (SIGTERM).
    systemctl disable --now gatewayd.socket gatewayd.service 2>/dev/null || true
  fi
  rm -f "$destdir/usr/local/bin/gatewayd" "$destdir/etc/systemd/system/gatewayd.service" \
    "$destdir/etc/systemd/system/gatewayd.socket"
  rm -rf "$destdir/usr/local/share/doc/gatewayd"
  systemd_running && systemctl daemon-reload
  gw_log "uninstalled from ${destdir:-/}; kept $destdir/etc/gatewayd (config) and" \
    "/var/log/gatewayd (logs): remove them yourself if you want them gone"
  exit 0
fi
[[ -f "$config" ]] || gw_die "no such config: $config"

if [[ -n "$binary" ]]; then
  [[ -f "$binary" && -x "$binary" ]] || gw_die "not an executable: $binary"
else
  "$GW_ROOT/scripts/setup.sh" --build
  dir="${BUILD_DIR:-$GW_ROOT/build}"
  gw_build "$dir" || gw_die "build failed"
  binary="$dir/gatewayd"
  gw_log "built here: the build packages stay installed; on a production host, build elsewhere" \
    "and install with --binary"
fi
# The libraries it links, also for the check below.
"$GW_ROOT/scripts/setup.sh" --run
if missing="$(ldd "$binary" | grep 'not found')"; then
  gw_die "$binary needs libraries this host lacks:"$'\n'"$missing"
fi
"$binary" -t -c "$config" || gw_die "$config does not validate; not installing it"

install -D -m 0755 "$binary" "$destdir/usr/local/bin/gatewayd"
install -D -m 0644 "$GW_ROOT/systemd/gatewayd.service" "$destdir/etc/systemd/system/gatewayd.service"
# Off until enabled (docs/operations.md): its ListenStream= must match a listener in the config.
install -D -m 0644 "$GW_ROOT/systemd/gatewayd.socket" "$destdir/etc/systemd/system/gatewayd.socket"
install -d -m 0755 "$destdir/etc/gatewayd"
target="$destdir/etc/gatewayd/gateway.yaml"
if [[ -e "$target" ]]; then
  # Never overwrite an operator's config; leave the new one beside it to compare.
  install -m 0644 "$config" "$target.new"
  gw_log "kept the existing $target; the shipped one is at $target.new"
else
  # World-readable: the service runs as a dynamic (unprivileged) user.
  install -m 0644 "$config" "$target"
fi
install -d -m 0755 "$destdir/usr/local/share/doc/gatewayd"
install -m 0644 "$GW_ROOT/README.md" "$destdir/usr/local/share/doc/gatewayd/"
for f in "$GW_ROOT"/docs/*.md; do
  [[ -e "$f" ]] && install -m 0644 "$f" "$destdir/usr/local/share/doc/gatewayd/"
done

if systemd_running; then
  systemctl daemon-reload
  gw_log "installed. Start it with: systemctl enable --now gatewayd   (logs: journalctl -u gatewayd)"
else
  gw_log "installed under ${destdir:-/} (systemd not running: no daemon-reload)"
fi
