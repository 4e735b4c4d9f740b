#!/bin/sh
# Run by acpid when the ACPI power button is pressed (QMP system_powerdown):
# announce it, flush and power off at once.
. /etc/stratus/lib.sh
mark powering-off
killall dropbear udhcpc 2>/dev/null
sync
poweroff -f
