// Stream Management (XEP-0198, urn:xmpp:sm:3): the elements and the counting state
// of one stream, for either role.
//
// SmState holds both directions of one SM session: the inbound counter h (stanzas
// this side handled, §4) and the outbound queue of stanzas the peer has not
// acknowledged yet. The same class serves the client↔proxy stream (proxy is the
// server) and the proxy↔upstream stream (proxy is the client); a resumed stream keeps
// using the SmState of the stream it resumes (§5). Only <message/>, <presence/> and
// <iq/> count (§4: "stanzas", never nonzas), and all counters are mod 2^32 (§4: h
// wraps to zero after 2^32-1). An <a h> that acknowledges more than was sent is a
// stream error <undefined-condition/> with <handled-count-too-high/> (§4); one that
// goes backwards is treated the same way, since acks are cumulative. The queue is
// bounded (ARCHITECTURE.md §10): a stanza that does not fit is refused *before* it
// is counted, so the caller can bounce it (resource-constraint) instead of sending a
// stanza it could never retransmit. Queued stanzas are held by reference (Stanza is
// refcounted): clone before modifying one that was sent, e.g. to add <delay/>.
//
// The parsers report errors as values. <enable/> and <resume/> come from the peer
// that the proxy serves and are answered with <failed/> carrying a stanza error
// condition ("Error Handling"): their errors use "bad-request". Errors in the other elements
// (<enabled/>, <resumed/>, <failed/>, <a/>, <r/>) are misuse that ends the stream
// ("Error Handling"): their conditions are stream conditions ("undefined-condition").
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/session2/result.h"
#include "common/xml/stanza.h"

namespace s2::session2 {

inline constexpr std::string_view kNsSm = "urn:xmpp:sm:3";
// §5: "The SM-ID SHOULD NOT be longer than 4000 bytes."
inline constexpr size_t kMaxSmIdBytes = 4000;

struct SmEnable {  // §3 <enable resume max/>
  bool resume = false;
  std::optional<uint32_t> max;  // preferred maximum resumption time, seconds
};
struct SmEnabled {  // §3 <enabled id resume max location/>
  std::string id;   // empty when absent (required when resume is true)
  bool resume = false;
  std::optional<uint32_t> max;
  std::string location;  // empty when absent
};
struct SmResume {  // §5 <resume previd h/>
  std::string previd;
  uint32_t h = 0;
};
struct SmResumed {  // §5 <resumed previd h/>
  std::string previd;
  uint32_t h = 0;
};
struct SmFailed {         // §5 / Error Handling: <failed h><condition/></failed>
  std::string condition;  // stanza error condition, empty when absent
  std::optional<uint32_t> h;
};
struct SmAck {  // §4 <a h/>
  uint32_t h = 0;
};
struct SmRequest {};  // §4 <r/>

using SmElement =
    std::variant<SmEnable, SmEnabled, SmResume, SmResumed, SmFailed, SmAck, SmRequest>;

// Parsers: the element must be the named element with xmlns='urn:xmpp:sm:3'.
// Conditions: stanza "bad-request" for enable/resume, stream "undefined-condition"
// for the rest (see above).
Result<SmEnable> parse_sm_enable(const Stanza& el);
Result<SmEnabled> parse_sm_enabled(const Stanza& el);
Result<SmResume> parse_sm_resume(const Stanza& el);  // previd and h are required
Result<SmResumed> parse_sm_resumed(const Stanza& el);
Result<SmFailed> parse_sm_failed(const Stanza& el);
Result<SmAck> parse_sm_ack(const Stanza& el);
Result<SmRequest> parse_sm_request(const Stanza& el);
// Any of the above, dispatched on the element name. Unknown names in the SM
// namespace (and <t/>, <n/> of old drafts) are "unsupported-stanza-type".
Result<SmElement> parse_sm(const Stanza& el);

// Builders; each element carries xmlns='urn:xmpp:sm:3'.
Stanza build_sm_enable(const SmEnable& e);
Stanza build_sm_enabled(const SmEnabled& e);
Stanza build_sm_resume(std::string_view previd, uint32_t h);
Stanza build_sm_resumed(std::string_view previd, uint32_t h);
// `condition`: a stanza error condition (RFC 6120 §8.3.3), omitted when empty.
Stanza build_sm_failed(std::string_view condition = {}, std::optional<uint32_t> h = {});
Stanza build_sm_ack(uint32_t h);
Stanza build_sm_request();
// The application-specific condition of the §4 stream error: put it in the
// <stream:error> together with <undefined-condition/> (see errors.h).
Stanza build_handled_count_too_high(uint32_t h, uint32_t send_count);

// True for a top-level <message/>, <presence/> or <iq/> of the stream's default
// namespace (no xmlns, jabber:client or jabber:server): the elements SM counts.
bool is_sm_counted(const Stanza& s);

class SmState {
 public:
  enum class Outbound {
    Queued,      // counted and queued: send it
    NotCounted,  // not a stanza (nonza): send it, SM ignores it
    QueueFull,   // refused, not counted: do not send it (bounce with resource-constraint)
  };

  // `max_queue` is clamped to 2^31-1 (the sequence arithmetic needs it below 2^31);
  // 0 refuses every stanza.
  explicit SmState(size_t max_queue = 500)
      : max_queue_(max_queue < kQueueCeiling ? max_queue : kQueueCeiling) {}
  // Counters carried over from elsewhere (persisted state, a previous process), with
  // an empty queue: everything sent so far counts as acknowledged.
  static SmState restore(size_t max_queue, uint32_t inbound_h, uint32_t acked_h) {
    SmState s(max_queue);
    s.inbound_h_ = inbound_h;
    s.sent_ = s.acked_ = acked_h;
    return s;
  }

  // Inbound: call for every element received from the peer once it is handled (the
  // proxy took responsibility for it). Returns true when it was counted.
  bool on_inbound(const Stanza& s);
  uint32_t inbound_h() const { return inbound_h_; }
  Stanza build_ack() const { return build_sm_ack(inbound_h_); }

  // Outbound: call before sending an element to the peer.
  Outbound on_outbound(const Stanza& s);

  // The peer's <a h/>: drops and returns the newly acknowledged stanzas, oldest first
  // (empty for a repeated ack). Error (stream "undefined-condition") when h acknowledges
  // more than was sent or less than was already acknowledged; the state is unchanged.
  Result<std::vector<Stanza>> on_ack(uint32_t h);
  // Resumption (§5) with the peer's h from <resume/> or <resumed/>: acknowledges up to
  // h like on_ack() and returns the stanzas to retransmit, oldest first. They stay
  // queued, keeping their sequence numbers: the peer acknowledges them again.
  Result<std::vector<Stanza>> on_resume(uint32_t peer_h);
  // Ends the session: returns every unacknowledged stanza (oldest first) and empties
  // the queue, e.g. to bounce them or carry them into a fresh session (§4).
  std::vector<Stanza> take_unacked();

  uint32_t sent_count() const { return sent_; }  // stanzas counted outbound, mod 2^32
  uint32_t acked_h() const { return acked_; }    // last h the peer acknowledged
  size_t unacked_count() const { return queue_.size(); }
  size_t max_queue() const { return max_queue_; }

 private:
  static constexpr size_t kQueueCeiling = 0x7fffffff;
  size_t max_queue_;
  uint32_t inbound_h_ = 0;
  uint32_t sent_ = 0;   // sequence number of the last stanza sent
  uint32_t acked_ = 0;  // queue_[i] has sequence number acked_ + i + 1
  std::deque<Stanza> queue_;
};

}  // namespace s2::session2
