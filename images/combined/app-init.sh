#!/bin/sh
# A supervisor that behaves like an init: it forwards SIGTERM/SIGINT to both programs,
# reaps what exits, and when either program dies it stops the other and exits non-zero,
# so the runtime sees the failure and restarts the container.
here=$(dirname "$0")
sh "${GENERATOR:-$here/generator.sh}" &
gen=$!
"${PYTHON:-python3}" "${ECHO:-$here/echo.py}" &
echo_pid=$!
status=0
stop() { status=0; kill -TERM "$gen" "$echo_pid" 2>/dev/null; }
trap stop TERM INT
# Poll with a background sleep: `wait` returns as soon as a trapped signal arrives,
# and each wait reaps any exited child (orphans handed to PID 1 included).
while kill -0 "$gen" 2>/dev/null && kill -0 "$echo_pid" 2>/dev/null; do
  sleep 0.2 &
  wait $!
done
kill -0 "$gen" 2>/dev/null && { echo "app-init: echo exited; stopping generator" >&2; status=1; }
kill -0 "$echo_pid" 2>/dev/null && { echo "app-init: generator exited; stopping echo" >&2; status=1; }
kill -TERM "$gen" "$echo_pid" 2>/dev/null
wait
exit "$status"
