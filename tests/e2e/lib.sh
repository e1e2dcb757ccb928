# Shared by the end-to-end scenarios (run.sh, chart.sh): one PASS, FAIL or SKIP line per
# check, bounded waits, and kubectl apply with an expected verdict. Source it after
# setting TIMEOUT; define e2e_wait SECONDS CMD... (how a scenario waits: run.sh also stops
# when its manager has exited).

PASSED=0
FAILED=0
SKIPPED=0

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() {
  echo "FAIL $1"
  if [ $# -gt 1 ]; then printf '%s\n' "${2:0:3000}" | sed 's/^/     /'; fi
  FAILED=$((FAILED + 1))
}
skip() { echo "SKIP $1"; SKIPPED=$((SKIPPED + 1)); }
section() { echo; echo "== $*"; }

# poll SECONDS CMD...: runs CMD every second until it succeeds; false after SECONDS.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 1
  done
}

# check NAME CMD...: PASS when CMD succeeds (at once), FAIL otherwise.
check() {
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name" "command failed: $*"; fi
}

# check_eventually NAME CMD...: PASS when CMD succeeds within TIMEOUT seconds.
check_eventually() {
  local name=$1
  shift
  if e2e_wait "$TIMEOUT" "$@"; then pass "$name"; else fail "$name" "not true after ${TIMEOUT}s: $*"; fi
}

# jsonpath_is RESOURCE JSONPATH WANT [kubectl flags...]: the field has exactly this value.
jsonpath_is() {
  local res=$1 path=$2 want=$3
  shift 3
  [ "$(kubectl get "$res" "$@" -o "jsonpath=$path" 2>/dev/null)" = "$want" ]
}

# condition_is RESOURCE TYPE STATUS [kubectl flags...]
condition_is() {
  jsonpath_is "$1" "{.status.conditions[?(@.type==\"$2\")].status}" "$3" "${@:4}"
}

# expect_allowed NAME [kubectl apply flags...], the manifest on stdin: admitted.
expect_allowed() {
  local name=$1 out
  shift
  if out=$(kubectl apply "$@" -f - 2>&1); then pass "$name"; else fail "$name" "refused: $out"; fi
}

# expect_warning NAME SUBSTRING [kubectl apply flags...]: admitted, with a warning.
expect_warning() {
  local name=$1 want=$2 out
  shift 2
  if ! out=$(kubectl apply "$@" -f - 2>&1); then
    fail "$name" "refused: $out"
  elif [[ $out == *"Warning:"*"$want"* ]]; then
    pass "$name"
  else
    fail "$name" "admitted without the warning \"$want\": $out"
  fi
}

# free_port VAR: stores in VAR a local TCP port that nothing listens on (nor was handed
# out before in this run). Ports come from below the kernel's ephemeral range: a port in
# it may be taken, between the pick and the bind, as the local end of any outgoing
# connection (the control plane makes many), and the bind then fails.
USED_PORTS="16443 16643 23790 23791 23990 23991 10257 10457"
read -r EPHEMERAL_LO EPHEMERAL_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
  { EPHEMERAL_LO=32768; EPHEMERAL_HI=60999; }
if [ "$EPHEMERAL_LO" -ge 12000 ]; then
  PORT_LO=10000 PORT_SPAN=$((EPHEMERAL_LO - 10000))
elif [ "$EPHEMERAL_HI" -le 64535 ]; then
  PORT_LO=$((EPHEMERAL_HI + 1)) PORT_SPAN=$((65535 - EPHEMERAL_HI))
else  # no room outside the range: anywhere, as before
  PORT_LO=20000 PORT_SPAN=40000
fi
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((PORT_LO + RANDOM % PORT_SPAN))
    case " $USED_PORTS " in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+=" $p"
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  return 1
}
