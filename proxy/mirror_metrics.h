// The mirror series every part of an account's traffic counts into (one
// definition each: the hub's feature files share them).
#pragma once

#include <string>

#include "common/util/metrics.h"

namespace s2::mirror_metrics {

inline Metric& archived(bool outgoing) {
  static Metric& in = counter("s2proxy_messages_archived_total", "messages committed to the mirror",
                              "direction=\"incoming\"");
  static Metric& out = counter("s2proxy_messages_archived_total",
                               "messages committed to the mirror", "direction=\"outgoing\"");
  return outgoing ? out : in;
}

inline Metric& deduplicated() {
  static Metric& m =
      counter("s2proxy_messages_deduplicated_total", "copies recognised as already archived");
  return m;
}

inline Metric& write_errors() {
  static Metric& m = counter("s2proxy_mirror_write_errors_total", "failed mirror writes");
  return m;
}

}  // namespace s2::mirror_metrics
