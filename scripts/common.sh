# Shared by scripts/run, scripts/test and scripts/test-lowest (sourced from the checkout's
# root, not run). Needs only python3 with venv and pip; uv comes from PyPI into .venv.

# uv's version, pinned so that every machine reads uv.lock alike.
UV_VERSION=0.13.9
# The machine's python3, never a Python uv would download.
export UV_PYTHON_DOWNLOADS=never

# fingerprint FILE...: one sha256 of the files' contents.
fingerprint() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

# venv_with_uv: .venv (python3 -m venv) with uv in it, each made only when missing.
venv_with_uv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  [ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "uv==$UV_VERSION"
}

# sync_locked NAME WHAT [uv sync options]: install uv.lock's exact versions (hash-checked)
# into .venv, saying "NAME: installing WHAT ..." — only when uv.lock or pyproject.toml
# changed since NAME's last sync (stamp .venv/.synced-<NAME's last part>), so a later
# start needs no network. --inexact keeps what else is in .venv (uv itself, another
# script's extras).
sync_locked() {
  local name=$1 what=$2
  shift 2
  local stamp=".venv/.synced-${name##*/}" want
  want=$(fingerprint uv.lock pyproject.toml)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "$name: installing $what from uv.lock into .venv"
  venv_with_uv
  UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --quiet --locked --inexact "$@"
  echo "$want" >"$stamp"
}

# need_redis_server NAME: redis-server on PATH (the tests start their own); installs the
# Debian package with apt-get when it is missing, or stops with one line saying why not.
need_redis_server() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$1: redis-server is missing and there is no apt-get to install it;" \
      "install redis-server and run again" >&2
    exit 1
  fi
  echo "$1: installing redis-server with apt-get"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    redis-server >/dev/null
}
