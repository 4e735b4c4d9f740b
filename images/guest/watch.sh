#!/bin/sh
# After the guest is ready: reports the disks and network interfaces that
# appear or disappear (hot-plug), polling /sys twice a second. The devices
# listed in /run/stratus/{disks,nics} when it starts (those of the boot,
# written by /init) are not reported.
. /etc/stratus/lib.sh

# Sets $found to the whole disks (without loop and RAM disks), space-separated.
list_disks() {
  local dev
  found=
  for dev in /sys/block/*; do
    dev=${dev##*/}
    case $dev in loop*|ram*|zram*|'*') ;; *) found="$found $dev" ;; esac
  done
  found="$found "
}

# Sets $found to the network interfaces but lo, space-separated.
list_nics() {
  local dev
  found=
  for dev in /sys/class/net/*; do
    dev=${dev##*/}
    case $dev in lo|'*') ;; *) found="$found $dev" ;; esac
  done
  found="$found "
}

if [ -f /run/stratus/disks ]; then read -r known_disks </run/stratus/disks; known_disks=" $known_disks "; else list_disks; known_disks=$found; fi
if [ -f /run/stratus/nics ]; then read -r known_nics </run/stratus/nics; known_nics=" $known_nics "; else list_nics; known_nics=$found; fi

while :; do
  list_disks
  if [ "$found" != "$known_disks" ]; then
    for d in $found; do
      case $known_disks in *" $d "*) continue ;; esac
      sectors=0
      read -r sectors </sys/block/"$d"/size 2>/dev/null
      mark disk-added "$d" $((sectors * 512))
    done
    for d in $known_disks; do
      case $found in *" $d "*) ;; *) mark disk-removed "$d" ;; esac
    done
    known_disks=$found
    echo $known_disks >/run/stratus/disks
  fi
  list_nics
  if [ "$found" != "$known_nics" ]; then
    now=$found
    for n in $now; do
      case $known_nics in *" $n "*) continue ;; esac
      mac=
      read -r mac </sys/class/net/"$n"/address 2>/dev/null
      mark nic-added "$n" "$mac"
      start_dhcp "$n"
    done
    for n in $known_nics; do
      case $now in *" $n "*) ;; *) stop_dhcp "$n"; mark nic-removed "$n" ;; esac
    done
    known_nics=$now
    echo $known_nics >/run/stratus/nics
  fi
  sleep 0.5
done
