#!/bin/sh
# udhcpc's event script: configures the leased IPv4 address, routes and DNS of
# $interface and prints "stratus-guest: address <if> <ip/prefix>" for each new lease.
. /etc/stratus/lib.sh

case $1 in
  deconfig)
    ip -4 addr flush dev "$interface" 2>/dev/null
    ip link set "$interface" up 2>/dev/null
    rm -f /run/lease."$interface"
    ;;
  bound|renew)
    prefix=${mask:-24}
    old=$(cat /run/lease."$interface" 2>/dev/null)
    if [ "$old" != "$ip/$prefix" ]; then
      ip -4 addr flush dev "$interface" 2>/dev/null
    fi
    ip addr replace "$ip/$prefix" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu" 2>/dev/null
    # Classless static routes (option 121: "dest/len gw ..."), else the routers.
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
          ip route replace "$1" dev "$interface" 2>/dev/null
        else
          ip route replace "$1" via "$2" dev "$interface" 2>/dev/null
        fi
        shift 2
      done
    else
      for r in $router; do
        ip route replace default via "$r" dev "$interface" 2>/dev/null && break
      done
    fi
    if [ -n "$dns" ]; then
      : >/etc/resolv.conf
      [ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf
      for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    fi
    echo "$ip/$prefix" >/run/lease."$interface"
    [ "$old" != "$ip/$prefix" ] && mark address "$interface" "$ip/$prefix"
    ;;
esac
exit 0
