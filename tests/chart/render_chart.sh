#!/usr/bin/env bash
# Renders charts/ipguard for each certificate mode, with MetalLB on and off, for
# Kubernetes 1.26 and 1.30, twice each: every document must parse and carry its
# identity, a mode's required values must be enforced, and the same values must give
# the same bytes every time (GitOps tools must see no drift).
#
#   tests/chart/render_chart.sh SOURCE_DIR WORK_DIR
#
# Builds tests/chart/render with Debian's Go and sprig (scripts/setup.sh installs
# them); exits 77 (skipped) when they are missing.
set -euo pipefail
root=$1
work=$2
mkdir -p "$work"
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/Masterminds/sprig ]; then
  echo "render_chart: SKIPPED (golang-go and golang-github-masterminds-sprig-dev are not installed)"
  exit 77
fi
GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$work/gocache" GOFLAGS=-buildvcs=false \
  go build -o "$work/render" "$root/tests/chart/render/main.go"

chart="$root/charts/ipguard"
fail=0
render() {  # name, kube version, then --set flags
  local name=$1 kube=$2
  shift 2
  for i in 1 2; do
    if ! "$work/render" -kube-version "$kube" "$@" "$chart" > "$work/$name.$i.yaml" 2> "$work/$name.$i.err"; then
      echo "FAIL $name ($kube): render failed:"; cat "$work/$name.$i.err"; fail=1; return
    fi
  done
  if ! cmp -s "$work/$name.1.yaml" "$work/$name.2.yaml"; then
    echo "FAIL $name ($kube): two renders differ"; fail=1; return
  fi
  echo "ok   $name ($kube): $(grep -c '^kind:' "$work/$name.1.yaml") objects, same bytes twice"
}
expect_refusal() {  # name, then --set flags: rendering must fail
  local name=$1
  shift
  if "$work/render" "$@" "$chart" > /dev/null 2> "$work/$name.err"; then
    echo "FAIL $name: rendered although it must be refused"; fail=1
  else
    echo "ok   $name: refused ($(head -c 160 "$work/$name.err" | tr '\n' ' '))"
  fi
}

for kube in v1.26.0 v1.30.0; do
  render "selfSigned-$kube" "$kube"
  render "selfSigned-metallb-$kube" "$kube" -set metallb.enabled=true
  render "certManager-$kube" "$kube" -set certificates.mode=certManager
  render "secret-$kube" "$kube" -set certificates.mode=secret -set certificates.secretName=my-tls \
    -set certificates.caBundle=Y2EK
done
expect_refusal secret-without-name -set certificates.mode=secret

# The flags the Deployment passes must be ones the binary accepts: with a kubeconfig
# that does not exist, flag parsing passes and the manager stops at the kubeconfig.
if [ -n "${IPGUARD_BIN:-}" ]; then
  for name in selfSigned-metallb-v1.30.0 certManager-v1.30.0 secret-v1.30.0; do
    mapfile -t args < <(python3 - "$work/$name.1.yaml" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
for i, line in enumerate(lines):
    if line.strip() == "args:":
        for item in lines[i + 1:]:
            stripped = item.lstrip()
            if not stripped.startswith("- "):
                break
            print(stripped[2:].strip().strip('"'))
        break
PY
)
    out=$("$IPGUARD_BIN" "${args[@]}" --kubeconfig "$work/no-such-kubeconfig" 2>&1 || true)
    if echo "$out" | grep -q "no-such-kubeconfig"; then
      echo "ok   $name: the binary accepts the Deployment's ${#args[@]} arguments"
    else
      echo "FAIL $name: the binary refuses the Deployment's arguments: $out"; fail=1
    fi
  done
fi
grep -q "matchConditions" "$work/selfSigned-v1.30.0.1.yaml" || { echo "FAIL: no matchConditions on 1.30"; fail=1; }
if grep -q "matchConditions" "$work/selfSigned-v1.26.0.1.yaml"; then
  echo "FAIL: matchConditions rendered for 1.26, which does not support them"; fail=1
fi
exit $fail
