# Sourced by the scripts: a virtualenv for the project, created on first use.
# On Debian the system Python refuses `pip install` outside a venv (PEP 668), and python3-venv
# is not installed by default.
VENV="${REGISTRY_DOCTOR_VENV:-$PWD/.venv}"
export REGISTRY_DOCTOR_TOOLS="${REGISTRY_DOCTOR_TOOLS:-$HOME/.cache/registry-doctor/tools}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

apt_install() {
  # apt_install PKG... : install Debian packages that are missing, when we may.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "note: not a Debian system; cannot install ${missing[*]}" >&2; return 0
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  as_root apt-get update -qq >&2 || { echo "note: cannot run apt-get (not root)" >&2; return 0; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; }
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
}
