-- Prosody 0.12 behind s2proxy (deploy/docker-compose.yml). Clients reach it
-- only through s2proxy on the compose network; its c2s port is not published.
-- The domain comes from the container's PROSODY_DOMAIN.
data_path = "/var/lib/prosody"
log = { { levels = { min = "info" }, to = "console" } }
network_backend = "epoll"

c2s_ports = { 5222 }
c2s_require_encryption = true
-- s2s stays with Prosody (s2proxy fronts c2s only): publish 5269 on this
-- service in the compose file and remove "s2s" below to federate.
s2s_ports = { 5269 }
modules_disabled = { "s2s" }
http_ports = {}
https_ports = {}

-- <domain>.crt / <domain>.key, made by the entrypoint on first start; the same
-- volume is mounted read-only into s2proxy as its --upstream-ca.
certificates = "/var/lib/prosody-certs"

authentication = "internal_hashed"
storage = "internal"
modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "private"; "pep"; "vcard"; "blocklist";
	"carbons"; "mam"; "csi_simple"; "offline"; "smacks"; "cloud_notify";
	"ping"; "version"; "uptime"; "time";
}
archive_expires_after = "never"
default_archive_policy = true
smacks_hibernation_time = 300

VirtualHost (ENV_PROSODY_DOMAIN or "legacy.test")
