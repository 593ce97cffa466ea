# shellcheck shell=bash
# Loopback sshd test hosts for shell scripts (benchmarks); the Rust tests use
# tests/it/support/hosts.rs, which works the same way. Source this file, then:
#
#   testhosts_start N DIR   start N hosts; writes DIR/inventory.ini, DIR/known_hosts,
#                           DIR/ssh_config (Host host1..hostN), DIR/client_ed25519 and
#                           DIR/home/.ssh/{known_hosts,id_ed25519} (a client HOME)
#   testhosts_stop          kill every host and reap it (call from an EXIT trap)
#
# TESTHOSTS_LOGLEVEL sets sshd's LogLevel (default ERROR; VERBOSE logs each session).
# TESTHOSTS_HIDE="virsh zpool" leaves those commands off the hosts' PATH (a
# directory of links to this machine's commands but those): hosts that are
# not hypervisors or ZFS hosts, although this machine has the tools.
#
# Each host is `sshd -D -e` as PID 1 of its own PID namespace (unshare --pid
# --fork --kill-child): killing it makes the kernel kill and reap everything the
# host ran, and this shell reaps unshare, so nothing is left behind even though
# PID 1 on this machine does not reap orphans. Each has its own /proc
# (--mount-proc), as the tests' hosts do: a host's process table lists its
# own processes only, as a real host's does, so a tool that scans it (pgrep,
# `rigger watch`'s sample) costs what it costs on one host, not on all of
# them.

TESTHOSTS_UNSHARE_PIDS=()

testhosts_start() {
    local n=$1 dir=$2 i
    mkdir -p /run/sshd "$dir/home/.ssh"
    chmod 755 /run/sshd
    # Each run walks its own 127.B.C.x range, derived from this shell's PID;
    # past 250 hosts it goes on in 127.B.C+1.x (1,000 hosts: four /24s).
    local b=$((2 + ($$ / 256) % 250)) c=$(($$ % 256)) port=2200
    ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$dir/client_ed25519"
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    cp "$dir/client_ed25519" "$dir/home/.ssh/id_ed25519"
    : >"$dir/known_hosts"
    printf '[testhosts]\n' >"$dir/inventory.ini"
    : >"$dir/ssh_config"
    local path_env=
    if [[ -n "${TESTHOSTS_HIDE:-}" ]]; then
        local d f hide=" $TESTHOSTS_HIDE "
        mkdir -p "$dir/path"
        for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
            for f in "$d"/*; do
                [[ -x "$f" && ! -d "$f" && "$hide" != *" ${f##*/} "* && ! -e "$dir/path/${f##*/}" ]] || continue
                ln -s "$f" "$dir/path/${f##*/}"
            done
        done
        path_env=" PATH=$dir/path"
    fi
    for ((i = 1; i <= n; i++)); do
        local h="$dir/host$i"
        mkdir -p "$h/home"
        ssh-keygen -q -t ed25519 -N '' -C "host$i" -f "$h/ssh_host_ed25519_key" &
    done
    wait
    for ((i = 1; i <= n; i++)); do
        local h="$dir/host$i" addr="127.$b.$(((c + (i - 1) / 250) % 256)).$(((i - 1) % 250 + 1))"
        cat >"$h/sshd_config" <<CFG
ListenAddress $addr:$port
HostKey $h/ssh_host_ed25519_key
PidFile none
UsePAM no
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $dir/authorized_keys
SetEnv HOME=$h/home$path_env
MaxSessions 200
MaxStartups 200:30:400
LogLevel ${TESTHOSTS_LOGLEVEL:-ERROR}
PrintMotd no
Subsystem sftp internal-sftp
CFG
        echo "[$addr]:$port $(cut -d' ' -f1,2 "$h/ssh_host_ed25519_key.pub")" >>"$dir/known_hosts"
        echo "host$i ansible_host=$addr ansible_port=$port ansible_user=root ansible_ssh_private_key_file=$dir/client_ed25519" >>"$dir/inventory.ini"
        cat >>"$dir/ssh_config" <<CFG
Host host$i
    HostName $addr
    Port $port
    User root
    IdentityFile $dir/client_ed25519
    UserKnownHostsFile $dir/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    LogLevel ERROR
CFG
        unshare --pid --fork --kill-child --mount-proc -- /usr/sbin/sshd -D -e -f "$h/sshd_config" </dev/null 2>"$h/sshd.log" &
        TESTHOSTS_UNSHARE_PIDS+=($!)
    done
    cp "$dir/known_hosts" "$dir/home/.ssh/known_hosts"

    # Ready when every address is listening (ss -p: and owned by an sshd).
    local deadline=$((SECONDS + 20 + n / 10)) listening thirds=$c
    for ((i = 1; i <= (n - 1) / 250; i++)); do thirds+="|$(((c + i) % 256))"; done
    while :; do
        listening=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -cE "127\.$b\.($thirds)\..*sshd" || true)
        ((listening >= n)) && break
        if ((SECONDS >= deadline)); then
            echo "error: only $listening of $n test hosts listen after $((20 + n / 10)) s; sshd logs:" >&2
            cat "$dir"/host*/sshd.log >&2
            return 1
        fi
        for i in "${TESTHOSTS_UNSHARE_PIDS[@]}"; do
            if ! kill -0 "$i" 2>/dev/null; then
                echo "error: an sshd test host exited at start-up; sshd logs:" >&2
                cat "$dir"/host*/sshd.log >&2
                return 1
            fi
        done
        sleep 0.02
    done
}

testhosts_stop() {
    local u s
    for u in "${TESTHOSTS_UNSHARE_PIDS[@]}"; do
        # Kill the namespace's init (sshd), not unshare: an sshd orphaned by unshare
        # would become a zombie of PID 1.
        for s in $(pgrep -P "$u"); do kill -KILL "$s" 2>/dev/null || true; done
    done
    for u in "${TESTHOSTS_UNSHARE_PIDS[@]}"; do wait "$u" 2>/dev/null || true; done
    TESTHOSTS_UNSHARE_PIDS=()
}
