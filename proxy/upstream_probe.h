// `s2proxy check-config --probe`: after the configuration checks, connect to
// the upstream as the daemon would (--upstream, --upstream-tls, --upstream-ca,
// --upstream-insecure), check its certificate against --domain, read the SASL
// mechanisms it offers, and say what was found (issue 13 item 7). A blocking,
// one-shot client: it never logs in and sends no credentials.
#pragma once

#include "proxy/config.h"

namespace s2 {

// Prints one line per finding on stdout. Exit 0 when the daemon could log
// users in there (TLS as configured, certificate valid unless insecure, a
// mechanism it speaks: SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN over TLS), else 1
// with the reason on stderr.
int probe_upstream(const Config& cfg, double timeout_s);

}  // namespace s2
