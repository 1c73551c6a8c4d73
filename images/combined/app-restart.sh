#!/bin/sh
# A restarting supervisor, in the spirit of supervisord or s6 but in a few lines of POSIX sh:
# one loop per program starts it again whenever it exits (after a short pause), and SIGTERM/SIGINT
# stop both loops and both programs. The container never exits for a crash of one program, so the
# runtime sees nothing: no exit, no restart count, one log stream for both programs.
here=$(dirname "$0")
running=1
loop() {  # loop NAME CMD...: run CMD, and again each time it exits, until told to stop
  name=$1; shift
  trap 'kill -TERM "$child" 2>/dev/null; exit 0' TERM INT
  while :; do
    "$@" &
    child=$!
    wait "$child"
    code=$?
    echo "app-restart: $name exited ($code); starting it again" >&2
    sleep 0.2
  done
}
loop generator sh "${GENERATOR:-$here/generator.sh}" &
gen_loop=$!
loop echo "${PYTHON:-python3}" "${ECHO:-$here/echo.py}" &
echo_loop=$!
stop() { running=0; kill -TERM "$gen_loop" "$echo_loop" 2>/dev/null; }
trap stop TERM INT
# Poll with a background sleep: `wait` returns as soon as a trapped signal arrives,
# and each wait reaps any exited child (orphans handed to PID 1 included).
while [ "$running" = 1 ]; do
  sleep 0.5 &
  wait $!
done
wait
exit 0
