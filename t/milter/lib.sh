# SPDX-License-Identifier: MIT
# t/milter/lib.sh - what the miltertest scripts share (sourced after
# t/lib.sh and `scratch`): start waypost-milter on $dir/w.conf, run one
# miltertest script as one test.
MILTER="$top_builddir/milter/waypost-milter"
command -v miltertest >/dev/null || { echo "Bail out! miltertest is not installed"; exit 1; }
MILTER_PIDS="" # more children of the script to stop at exit (a sink, say)

# milter_start: start the milter as a child and wait for its socket; at exit
# stop it and everything in MILTER_PIDS, and remove $dir.  (The poke dates
# from when libmilter noticed SIGTERM only when a connection woke it; the
# milter now wakes its listener itself.)
milter_start() {
    "$MILTER" -f -c "$dir/w.conf" 2> "$dir/milter.log" &
    mpid=$!
    trap 'kill $mpid $MILTER_PIDS 2>/dev/null; python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$dir/milter.sock" 2>/dev/null; wait $mpid $MILTER_PIDS 2>/dev/null; rm -rf "$dir"' EXIT
    local i=0
    while [ ! -S "$dir/milter.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    check "milter is listening" [ -S "$dir/milter.sock" ]
}

mt() { # mt NAME LUA-BODY: run one miltertest script
    printf 'dofile("%s")\n%s\n' "$top_srcdir/t/milter/common.lua" "$2" > "$dir/$1.lua"
    if out=$(miltertest -D sock="unix:$dir/milter.sock" -s "$dir/$1.lua" 2>&1); then ok "miltertest: $1"
    else not_ok "miltertest: $1"; printf '%s\n' "$out" | sed 's/^/#   /' | head -5; fi
}
