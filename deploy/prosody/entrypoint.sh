#!/bin/sh
# Prosody container start (runs as user prosody): a self-signed certificate
# for $PROSODY_DOMAIN on first start, the accounts in $PROSODY_USERS
# ("user:password ..."; passwords are set again at every start), then
# Prosody in the foreground.
set -eu
domain=${PROSODY_DOMAIN:-legacy.test}
certs=/var/lib/prosody-certs
cfg=/etc/prosody/prosody.cfg.lua
if [ ! -s "$certs/$domain.crt" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=$domain" \
		-addext "subjectAltName=DNS:$domain,DNS:*.$domain" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-keyout "$certs/$domain.key" -out "$certs/$domain.crt" 2>/dev/null
	chmod 600 "$certs/$domain.key"
	chmod 644 "$certs/$domain.crt"
fi
for entry in ${PROSODY_USERS:-}; do
	prosodyctl --config "$cfg" register "${entry%%:*}" "$domain" "${entry#*:}" >/dev/null
done
exec prosody --config "$cfg" -F
