#!/bin/sh
# Prints the configured greeting.
. /etc/lenix-multi.conf
echo "${GREETING:-hello}"
