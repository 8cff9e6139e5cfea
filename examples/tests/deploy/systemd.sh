#!/bin/sh
# The README's systemd units under a real systemd: socket activation, Type=notify, two hot
# restarts by `systemctl reload` under wrk, the watchdog across them, a stop with a drain
# delay and its STATUS= lines, a cold restart under wrk.
#
# systemd runs as PID 1 of its own pid, mount, cgroup, network, uts and ipc namespaces
# (root, util-linux's unshare, systemd, wrk and curl needed), so it manages nothing of the
# machine's: its /run and cgroup mounts are private, its network is its own loopback.
#
#   sh examples/tests/deploy/systemd.sh target/release/examples/hello_tokio
#
# Exits 0 when every check passed. Not run by `.ci/run`: it needs root and namespaces.
set -eu

BIN=$(realpath "${1:?usage: systemd.sh PATH/TO/hello_tokio-or-hello_smol}")
W=$(mktemp -d /tmp/graceful-systemd.XXXXXX)
CG=graceful-systemd-$$
mkdir -p "$W/units"

# The README's units; the changes for this namespace: DefaultDependencies=no (no
# sysinit.target here), a loopback address, the binary's path, output to a file (no journal).
cat > "$W/units/hello.socket" <<EOF
[Unit]
DefaultDependencies=no
[Socket]
ListenStream=127.0.0.1:3000
Backlog=4096
EOF
cat > "$W/units/hello.service" <<EOF
[Unit]
Requires=hello.socket
After=hello.socket
DefaultDependencies=no
[Service]
Type=notify
NotifyAccess=main
ExecStart=$BIN --timeout 30 --drain-delay 5
ExecReload=/bin/kill -HUP \$MAINPID
ExecStop=/bin/sh -c 'kill -TERM \$MAINPID && while kill -0 \$MAINPID 2>/dev/null; do sleep 0.1; done'
KillSignal=SIGTERM
TimeoutStopSec=40
WatchdogSec=10
Restart=on-failure
StandardOutput=append:$W/hello.out
StandardError=append:$W/hello.out
EOF
printf '[Unit]\nDefaultDependencies=no\nWants=hello.socket systemd-journald.socket\n' > "$W/units/graceful.target"
cat > "$W/boot.sh" <<EOF
#!/bin/sh
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
[ -d /var/log/journal ] && mount -t tmpfs tmpfs /var/log/journal
mkdir -p /run/systemd/system
cp $W/units/* /run/systemd/system/
# cgroup v2 only: systemd then creates its cgroups under the v2 hierarchy's $CG alone,
# and none in the machine's v1 controller hierarchies.
mount -t cgroup2 none /sys/fs/cgroup
exec env container=graceful-test /lib/systemd/systemd --unit=graceful.target --log-target=console
EOF
chmod +x "$W/boot.sh"

mkdir -p /sys/fs/cgroup/unified/$CG
sh -c "echo \$\$ > /sys/fs/cgroup/unified/$CG/cgroup.procs; \
  exec unshare --pid --fork --mount --cgroup --net --uts --ipc --mount-proc $W/boot.sh" \
  > "$W/systemd.log" 2>&1 &
UNSHARE=$!

cleanup() {
  kill -KILL "$UNSHARE" 2>/dev/null || true
  [ -n "${SD:-}" ] && kill -KILL "$SD" 2>/dev/null || true
  sleep 1
  for d in $(find /sys/fs/cgroup/unified/$CG -depth -type d 2>/dev/null); do
    rmdir "$d" 2>/dev/null || true
  done
}
trap cleanup EXIT

SD=
for _ in $(seq 100); do
  SD=$(pgrep -P "$UNSHARE" -x systemd || true)
  [ -n "$SD" ] && nsenter -t "$SD" -m -p -- systemctl is-system-running >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$SD" ] || { echo "FAIL: systemd did not start"; cat "$W/systemd.log"; exit 1; }
N="nsenter -t $SD -m -p -n --"
show() { $N systemctl show -p "$1" --value hello.service; }
fail() {
  echo "FAIL: $*"; cat "$W/hello.out"
  echo "systemd:"; $N journalctl --no-pager -u hello.service | tail -40
  exit 1
}
check_wrk() {
  grep -q 'requests in' "$1" || fail "wrk: $(cat "$1")"
  ! grep -Eq 'Socket errors|Non-2xx' "$1" || fail "wrk saw errors: $(cat "$1")"
  echo "  wrk: $(grep 'requests in' "$1" | sed 's/^ *//'), no socket error, no non-2xx"
}

echo "systemd $($N systemctl --version | head -1 | cut -d' ' -f2) as PID 1 of its namespaces"
first=$($N curl -s -m 5 127.0.0.1:3000/pid) || fail "socket activation: no answer"
[ "$(show ActiveState)" = active ] && [ "$(show MainPID)" = "$first" ] ||
  fail "after activation: $(show ActiveState) main $(show MainPID), /pid $first"
echo "ok: socket activation and READY=1: MainPID $first active"

main=$first
for round in 1 2; do
  $N wrk -t2 -c16 -d4s http://127.0.0.1:3000/ > "$W/wrk$round.txt" 2>&1 &
  sleep 1
  $N systemctl reload hello
  sleep 0.5
  new=$($N curl -s -m 5 127.0.0.1:3000/pid)
  [ "$new" != "$main" ] && [ "$(show MainPID)" = "$new" ] && [ "$(show ActiveState)" = active ] ||
    fail "reload $round: /pid $new, MainPID $(show MainPID), $(show ActiveState)"
  wait $!
  echo "ok: systemctl reload $round: MainPID $main -> $new"
  check_wrk "$W/wrk$round.txt"
  main=$new
done

sleep 12
[ "$(show ActiveState)" = active ] && [ "$(show NRestarts)" = 0 ] && [ "$(show MainPID)" = "$main" ] ||
  fail "watchdog: $(show ActiveState), $(show NRestarts) restarts"
echo "ok: WatchdogSec=10 kept for 12 s after the restarts"

if [ -n "${GRACEFUL_SYSTEMD_PAUSE:-}" ]; then
  echo "paused: systemd pid $SD, work dir $W; touch $W/go to go on"
  while [ ! -e "$W/go" ]; do sleep 0.5; done
fi
$N curl -s -m 20 127.0.0.1:3000/sleep/8000 > "$W/slow.txt" &
SLOW=$!
sleep 0.5
$N systemctl stop hello > "$W/stop.txt" 2>&1 &
STOP=$!
sleep 1.5
status=$(show StatusText)
ready=$($N curl -s -m 3 -o /dev/null -w '%{http_code}' 127.0.0.1:3000/ready)
[ "$(show ActiveState)" = deactivating ] && [ "$ready" = 503 ] ||
  fail "stopping: $(show ActiveState) $(show SubState) main $(show MainPID) restarts $(show NRestarts), /ready $ready; systemctl stop: $(cat "$W/stop.txt"); $($N ps -e -o pid,ppid,stat,comm)"
case "$status" in "draining: 1 active, 0 idle, 0 hijacked, "*" s left") ;; *) fail "STATUS=$status" ;; esac
wait $SLOW
[ "$(cat "$W/slow.txt")" = slept ] || fail "the slow request: $(cat "$W/slow.txt")"
wait $STOP
[ "$(show ActiveState)" = inactive ] && [ "$(show Result)" = success ] || fail "stopped: $(show Result)"
echo "ok: systemctl stop: deactivating, /ready 503 in the drain delay, STATUS=$status, the slow request answered, Result=success"

$N curl -s -m 5 127.0.0.1:3000/ > /dev/null
$N wrk -t2 -c16 -d4s http://127.0.0.1:3000/ > "$W/wrk3.txt" 2>&1 &
sleep 1
$N systemctl restart hello
wait $!
[ "$(show ActiveState)" = active ] || fail "after the cold restart: $(show ActiveState)"
echo "ok: cold systemctl restart (the socket unit holds the socket)"
check_wrk "$W/wrk3.txt"

$N systemctl poweroff >/dev/null 2>&1 || true
echo "PASS ($W)"
