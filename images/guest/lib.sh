# Shared by the guest's scripts (sourced, busybox sh).

export PATH=/sbin:/bin:/usr/sbin:/usr/bin

# Prints one marker line, "stratus-guest: <words>", on the first serial port
# (the console when there is none), as a single write so that lines of
# concurrent scripts never mix.
mark() {
  local tty=/dev/ttyS0
  [ -c "$tty" ] || tty=/dev/console
  printf 'stratus-guest: %s\n' "$*" >"$tty" 2>/dev/null || true
}

# Ends whatever line the serial console is on.
mark_break() {
  local tty=/dev/ttyS0
  [ -c "$tty" ] || tty=/dev/console
  printf '\n' >"$tty" 2>/dev/null || true
}

# Starts DHCP on interface $1 in the background (retrying for ever, so that a
# network that is plugged in later still gives a lease), unless it runs already.
start_dhcp() {
  local ifname=$1 pidfile=/run/udhcpc.$1.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  ip link set "$ifname" up 2>/dev/null || return 0
  udhcpc -f -S -i "$ifname" -p "$pidfile" -s /etc/stratus/udhcpc.sh -t 3 -T 1 -A 2 \
    >/dev/null 2>&1 </dev/null &
}

# Stops the DHCP client of interface $1.
stop_dhcp() {
  local pidfile=/run/udhcpc.$1.pid
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  rm -f "$pidfile" /run/lease."$1"
}

# The network interfaces but the loopback, one per line.
interfaces() {
  local dev
  for dev in /sys/class/net/*; do
    dev=${dev##*/}
    case $dev in lo|'*') ;; *) echo "$dev" ;; esac
  done
}
