#!/usr/bin/env bash
# Dependency audit: pip-audit over the packages installed in .venv (from requirements-dev.txt),
# against a vulnerability service (PyPI's JSON API by default, AUDIT_SERVICE=osv for OSV).
#
#   bash scripts/audit.sh            # exit 0 clean, 1 vulnerable, 3 service unreachable
#
# Accepted findings live in deploy/audit-allowlist.txt ("ID until YYYY-MM-DD reason"); expired
# entries are not applied. Before auditing, a probe asks the service about a release with a
# known vulnerability (requests 2.25.0: CVE-2023-32681): if the answer does not name it, the
# service is unreachable (no internet, or a package mirror without the JSON API) and the audit
# exits 3 instead of reporting a clean result it never checked.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
AUDIT="$VENV/bin/pip-audit"
SERVICE=${AUDIT_SERVICE:-pypi}
ALLOWLIST=${AUDIT_ALLOWLIST:-deploy/audit-allowlist.txt}
TIMEOUT=${AUDIT_TIMEOUT_S:-30}

[ -x "$AUDIT" ] || { echo "audit: $AUDIT missing (bash scripts/test.sh installs it)" >&2; exit 2; }

probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
echo "requests==2.25.0" >"$probe"
out=$(timeout "$TIMEOUT" "$AUDIT" -s "$SERVICE" --timeout "$TIMEOUT" --no-deps --disable-pip \
  --progress-spinner off -r "$probe" 2>&1) || true  # exit 1 = "vulnerabilities found": expected here
if ! grep -qE "PYSEC-|GHSA-|CVE-" <<<"$out"; then
  echo "audit: vulnerability service '$SERVICE' unreachable (probe found no known vulnerability):" >&2
  grep -vE "^WARNING|^\s*$" <<<"$out" | tail -3 >&2
  exit 3
fi

ignores=()
today=$(date +%F)
while read -r id until date _; do
  [[ -z "${id:-}" || "$id" == \#* ]] && continue
  if [[ "$until" != "until" || ! "$date" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
    echo "audit: malformed allowlist line for $id (want: ID until YYYY-MM-DD reason)" >&2
    exit 2
  fi
  if [[ "$date" < "$today" ]]; then
    echo "audit: allowance for $id expired on $date: not applied" >&2
  else
    ignores+=(--ignore-vuln "$id")
  fi
done <"$ALLOWLIST"

# --skip-editable: the project's own packages (-e ./contract ...) are not on PyPI.
exec "$AUDIT" -s "$SERVICE" --timeout "$TIMEOUT" --skip-editable --progress-spinner off --desc on "${ignores[@]}"
