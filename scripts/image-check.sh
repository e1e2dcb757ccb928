#!/usr/bin/env bash
# Builds the container image and checks it the way the chart runs it.
# Needs docker and a build with the tests (scripts/build.sh: it provides the
# fake API server the manager is run against). Not part of CI: the CI machines
# have no container runtime.
#
#   scripts/image-check.sh [IMAGE]     (default ipguard:check)
#
# 1. docker build of the Dockerfile.
# 2. `version`, and `check` on examples/clean (exit 0) and examples/broken
#    (exit 1), with no network.
# 3. `manager --self-signed` against the fake API server, as the chart's
#    security context runs it: UID 65532, read-only root filesystem, every
#    capability dropped, no new privileges, only /tmp writable. It must
#    become ready, serve /metrics, answer an AdmissionReview over TLS
#    verified with the CA it made, and exit 0 on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-ipguard:check}
BUILD_DIR=${BUILD_DIR:-build}
FAKE="$BUILD_DIR/tests/fakeapi/fake-apiserver"
BENCH="$BUILD_DIR/bench/bench_webhook"
command -v docker >/dev/null || { echo "image-check: docker is not installed" >&2; exit 2; }
if [ ! -x "$FAKE" ] || [ ! -x "$BENCH" ]; then
  echo "image-check: run scripts/build.sh first" >&2
  exit 2
fi

work=$(mktemp -d)
chmod 755 "$work"
container=ipguard-image-check-$$
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  if [ -n "${fake_pid:-}" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== docker build -t $IMAGE ."
docker build --network=host -t "$IMAGE" . >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
docker image inspect "$IMAGE" --format 'image size: {{.Size}} bytes, user {{.Config.User}}'

echo "== version and check"
docker run --rm --network=none "$IMAGE" version
docker run --rm --network=none -v "$PWD/examples:/work:ro" "$IMAGE" check /work/clean >/dev/null
status=0
docker run --rm --network=none -v "$PWD/examples:/work:ro" "$IMAGE" check /work/broken >/dev/null || status=$?
[ "$status" -eq 1 ] || { echo "image-check: check examples/broken exited $status, not 1" >&2; exit 1; }
echo "check: examples/clean exit 0, examples/broken exit 1"

echo "== manager under the chart's security context"
# A certificate for the fake API server on 127.0.0.1 (bench_webhook writes one).
"$BENCH" serve "$work" 0 >"$work/serve.log" 2>&1 &
bench_pid=$!
for _ in $(seq 1 300); do grep -q serving "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
kill "$bench_pid" 2>/dev/null || true
port=$((20000 + RANDOM % 20000))
"$FAKE" --port "$port" --tls-dir "$work" --token image-check >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 1 100); do grep -q https "$work/fake.log" 2>/dev/null && break; sleep 0.1; done
cat >"$work/kubeconfig" <<CONF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: "https://127.0.0.1:$port", certificate-authority: /kube/ca.crt}
users:
- name: u
  user: {token: image-check}
contexts:
- name: fake
  context: {cluster: fake, user: u, namespace: ipguard-system}
current-context: fake
CONF
chmod 644 "$work"/*
webhook=$((port + 1)) metrics=$((port + 2)) probe=$((port + 3))
docker run -d --name "$container" --network=host --user 65532:65532 --read-only \
  --cap-drop=ALL --security-opt no-new-privileges --tmpfs /tmp:uid=65532 \
  -v "$work:/kube:ro" "$IMAGE" manager --kubeconfig /kube/kubeconfig --self-signed \
  --webhook-ip 127.0.0.1 --webhook-port "$webhook" --metrics-port "$metrics" \
  --probe-port "$probe" --leader-elect=false >/dev/null
ready=""
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$probe/readyz" >/dev/null; then ready=yes; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { docker logs "$container"; echo "image-check: manager never became ready" >&2; exit 1; }
curl -sf "http://127.0.0.1:$metrics/metrics" | grep -q '^ipguard_' \
  || { echo "image-check: no ipguard_ metrics" >&2; exit 1; }
docker exec "$container" cat /tmp/k8s-webhook-server/serving-certs/ca.crt >"$work/served-ca.crt"
answer=$(curl -sf --cacert "$work/served-ca.crt" -H 'Content-Type: application/json' \
  --data @"$work/review.json" "https://127.0.0.1:$webhook/validate")
echo "$answer" | grep -q '"allowed":true' || { echo "image-check: unexpected answer: $answer" >&2; exit 1; }
docker stop -t 10 "$container" >/dev/null
code=$(docker inspect "$container" --format '{{.State.ExitCode}}')
[ "$code" -eq 0 ] || { docker logs "$container"; echo "image-check: exit $code on SIGTERM" >&2; exit 1; }
echo "manager: ready, /metrics served, AdmissionReview allowed over verified TLS, exit 0 on SIGTERM"
echo "image-check: $IMAGE passed"
