#!/usr/bin/env bash
# Create .venv and install tagsmith with the whole stack.
#
# uv installs the stack in about a minute, but it ignores pip's configuration. On machines where
# pip is configured with local wheel folders / file indexes (air-gapped servers, this project's CI),
# those settings are where torch's wheels come from; without them uv would download multi-GB CUDA
# builds. So we read pip's configuration and hand it on to uv through its environment variables.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

if ! command -v uv >/dev/null 2>&1; then
  "$PY" -m pip install --quiet "uv==0.13.9"
fi

pip_cfg() {  # first value of a pip config key across global/user/site/env scopes, or empty
  "$PY" -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.$1='\(.*\)'$/\1/p" | head -n 1
}
find_links=$(pip_cfg find-links)
extra_index=$(pip_cfg extra-index-url)
index_url=$(pip_cfg index-url)
constraint=$(pip_cfg constraint)
cert=$(pip_cfg cert)

[ -n "$find_links" ] && export UV_FIND_LINKS="${find_links// /,}"
[ -n "$extra_index" ] && export UV_EXTRA_INDEX_URL="$extra_index"
[ -n "$index_url" ] && export UV_INDEX_URL="$index_url"
[ -n "$constraint" ] && [ -f "$constraint" ] && export UV_CONSTRAINT="$constraint"
[ -n "$cert" ] && export SSL_CERT_FILE="$cert"
# Local file indexes hold only some versions of some packages: let uv pick the best match across all
# indexes instead of stopping at the first index that knows a name.
export UV_INDEX_STRATEGY=unsafe-best-match
export UV_HTTP_TIMEOUT=${UV_HTTP_TIMEOUT:-180}

[ -x .venv/bin/python ] || uv venv --quiet --python "$PY" .venv
echo "installing tagsmith and its stack into .venv (uv; find-links=${find_links:-none})"
uv pip install --python .venv/bin/python -e ".[dev]"

# Headless Chromium screenshots the HTML reports in the tests (tagsmith/browser.py). Debian's package took
# 8 s here (25 packages, 113 MB download, 414 MB on disk), so setup installs it, but only when it is missing,
# apt-get exists and we are root; otherwise tests/test_sponsor_report.py fails saying what to install.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium for the report screenshots (apt-get, about 10 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo "could not install chromium: run apt-get install -y --no-install-recommends chromium" >&2
fi
