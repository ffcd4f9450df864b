// JID parsing tables (RFC 7622 split, libidn's XMPP stringprep profiles; see
// common/jid/jid.h). prep_table.tsv holds the tricky part-level cases; the
// same file is run against Prosody's own util.encodings by
// prosody_crosscheck.py (ctest jid_prosody_crosscheck).
#include <doctest/doctest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/jid/jid.h"

using s2::Jid;
using s2::parse_jid;

namespace {

struct Valid {
  std::string in;
  std::string local, domain, resource;
};

std::string rep(char c, size_t n) { return std::string(n, c); }

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// prep_table.tsv escapes (as prosody_crosscheck.py's decode): \xNN a byte,
// \u{HEX} a code point, \[N] the previous unit N times in all, \\ a backslash.
std::string decode(const std::string& f) {
  std::string out, last;
  for (size_t i = 0; i < f.size();) {
    if (f[i] != '\\') {
      // One UTF-8 sequence is one unit.
      size_t n = 1;
      while (i + n < f.size() && (static_cast<unsigned char>(f[i + n]) & 0xC0) == 0x80) ++n;
      last = f.substr(i, n);
      out += last;
      i += n;
      continue;
    }
    char k = f[i + 1];
    if (k == 'x') {
      last = std::string(1, static_cast<char>(std::stoi(f.substr(i + 2, 2), nullptr, 16)));
      out += last;
      i += 4;
    } else if (k == 'u') {
      size_t end = f.find('}', i);
      last.clear();
      append_utf8(last,
                  static_cast<char32_t>(std::stoul(f.substr(i + 3, end - i - 3), nullptr, 16)));
      out += last;
      i = end + 1;
    } else if (k == '[') {
      size_t end = f.find(']', i);
      for (int n = std::stoi(f.substr(i + 2, end - i - 2)); n > 1; --n) out += last;
      i = end + 1;
    } else {
      last = std::string(1, k);
      out += last;
      i += 2;
    }
  }
  return out;
}

struct PrepRow {
  int line;
  std::string in;
  std::optional<std::string> local, resource, domain;
};

std::vector<PrepRow> prep_table() {
  std::ifstream f(S2_JID_PREP_TABLE);
  REQUIRE(f.good());
  std::vector<PrepRow> rows;
  std::string line;
  for (int ln = 1; std::getline(f, line); ++ln) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) cols.push_back(c);
    REQUIRE(cols.size() >= 4);
    auto exp = [](const std::string& c) -> std::optional<std::string> {
      if (c == "-") return std::nullopt;
      return decode(c);
    };
    rows.push_back({ln, decode(cols[0]), exp(cols[1]), exp(cols[2]), exp(cols[3])});
  }
  return rows;
}

// A domain of exactly n bytes made of 50-byte labels and a shorter tail.
std::string domain_of(size_t n) {
  std::string d;
  while (n - d.size() > 51) d += rep('d', 50) + ".";
  return d + rep('e', n - d.size());
}

}  // namespace

TEST_CASE("part preparation table (nodeprep, resourceprep, nameprep + host syntax)") {
  auto rows = prep_table();
  CHECK(rows.size() >= 60);
  for (const auto& r : rows) {
    CAPTURE(r.line);
    CAPTURE(r.in);
    CHECK(s2::prep_localpart(r.in) == r.local);
    CHECK(s2::prep_resourcepart(r.in) == r.resource);
    CHECK(s2::prep_domainpart(r.in) == r.domain);
  }
}

TEST_CASE("one account however it is spelled (issue 11)") {
  CHECK(*parse_jid("\xC3\x84rger@Example.com") == *parse_jid("\xC3\xA4rger@example.com"));
  CHECK(*parse_jid("\xEF\xBC\xA1lice@example.com") ==
        *parse_jid("alice@example.com"));  // fullwidth A
  CHECK(*parse_jid("stra\xC3\x9F"
                   "e@example.com") == *parse_jid("strasse@example.com"));
  CHECK(*parse_jid("a\xC2\xAD"
                   "b@example.com") == *parse_jid("ab@example.com"));  // soft hyphen
  CHECK(*parse_jid("x@\xC3\x9C"
                   "ber.example") == *parse_jid("x@\xC3\xBC"
                                                "ber.example"));
  // Resources are not case-folded (resourceprep) but are NFKC-normalised.
  CHECK_FALSE(*parse_jid("a@b/R") == *parse_jid("a@b/r"));
  CHECK(*parse_jid("a@b/\xEF\xAC\x81") == *parse_jid("a@b/fi"));  // ligature
}

TEST_CASE("valid JIDs parse and normalise") {
  const std::string l1023 = rep('a', 1023);
  const std::string r1023 = rep('R', 1023);
  const std::string d1023 = domain_of(1023);
  REQUIRE(d1023.size() == 1023);

  const Valid rows[] = {
      {"example.com", "", "example.com", ""},
      {"alice@example.com", "alice", "example.com", ""},
      {"alice@example.com/phone", "alice", "example.com", "phone"},
      // Case folding: local and domain lower-cased, resource kept.
      {"Alice@Example.COM/Phone", "alice", "example.com", "Phone"},
      // One trailing dot of the domain is stripped (§3.2).
      {"alice@example.com.", "alice", "example.com", ""},
      {"alice@example.com./r", "alice", "example.com", "r"},
      // Resource keeps '/', '@' and spaces (split at the first '/').
      {"a@b/c@d/e", "a", "b", "c@d/e"},
      {"b/c@d", "", "b", "c@d"},
      {"a@b/ spaced out ", "a", "b", " spaced out "},
      // IP literals.
      {"alice@192.168.0.1", "alice", "192.168.0.1", ""},
      {"alice@[::1]/r", "alice", "[::1]", "r"},
      {"[2001:DB8::A]", "", "[2001:db8::a]", ""},
      {"x@[::ffff:1.2.3.4]", "x", "[::ffff:1.2.3.4]", ""},
      // Domain labels: digits, hyphens inside, underscore, non-ASCII kept.
      {"u@a-b.c_d.example", "u", "a-b.c_d.example", ""},
      {"u@123.example", "u", "123.example", ""},
      {"u@localhost", "u", "localhost", ""},
      {"u@b\xC3\xBC\x63her.example", "u", "b\xC3\xBC\x63her.example", ""},
      // Non-ASCII localpart: Unicode case folding (nodeprep, table B.2).
      {"J\xC3\xBCrgen@example.com", "j\xC3\xBCrgen", "example.com", ""},
      {"\xC3\x9C@example.com", "\xC3\xBC", "example.com", ""},
      {"\xF0\x9F\x98\x80@example.com/\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80", "example.com",
       "\xF0\x9F\x98\x80"},
      // Localpart may hold other ASCII punctuation.
      {"a.b+c_d-e!#$%*=?^`{|}~@example.com", "a.b+c_d-e!#$%*=?^`{|}~", "example.com", ""},
      // Length limits: exactly 1023 bytes per part.
      {l1023 + "@x", l1023, "x", ""},
      {"x@x/" + r1023, "x", "x", r1023},
      {d1023, "", d1023, ""},
      {d1023 + ".", "", d1023, ""},  // dot stripped, then 1023
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    auto j = parse_jid(r.in);
    REQUIRE(j.has_value());
    CHECK(j->local == r.local);
    CHECK(j->domain == r.domain);
    CHECK(j->resource == r.resource);
  }
}

TEST_CASE("invalid JIDs are rejected") {
  const std::string l1024 = rep('a', 1024);
  const std::string d1024 = domain_of(1024);
  REQUIRE(d1024.size() == 1024);

  const std::string rows[] = {
      "",
      "@example.com",  // empty localpart
      "a@",            // empty domain
      "a@/r",
      "a@b/",  // empty resource
      "/r",
      ".",      // domain only a dot
      "a@b..",  // two trailing dots
      "a@.b",   // empty label
      "a@b..c",
      "a@-b.com",  // label starts/ends with hyphen
      "a@b-.com",
      "a@b c.com",  // space in domain
      "a@b:5222",   // port
      "a@b@c",      // '@' in domain
      "a b@c",      // space in localpart
      "a\"b@c",
      "a&b@c",
      "a'b@c",
      "a:b@c",
      "a<b@c",
      "a>b@c",  // RFC 7622 §3.3.1
      std::string("a\x01@c"),
      std::string("a\x7F@c"),
      "a\xC2\x85@c",                // C1 control (NEL)
      "a\xC2\xA0@c",                // NO-BREAK SPACE
      "a\xE3\x80\x80@c",            // IDEOGRAPHIC SPACE
      std::string("a@c/r\x00", 6),  // NUL in resource
      "a@c/r\x1B",                  // ESC in resource
      "a@c/r\xC2\x9F",              // C1 in resource
      // Invalid UTF-8: lone continuation, overlong, surrogate, > U+10FFFF, truncated.
      "\x80@c",
      "\xC0\xAF@c",
      "\xED\xA0\x80@c",
      "\xF4\x90\x80\x80@c",
      "a\xE2\x82@c",
      "a@c/\xFF",
      // IP literals.
      "a@[::1",
      "a@[]",
      "a@[1.2.3.4]",
      "a@[fe80::1%eth0]",
      "a@[::g]",
      "a@1.2.3",
      "a@1.2.3.256",
      "a@01.2.3.4",
      "a@1.2.3.4.5",
      "a@example.123",
      "a@" + rep('l', 64) + ".com",  // 64-byte label
      // Length limits: 1024 bytes per part.
      l1024 + "@x",
      "x@x/" + rep('r', 1024),
      d1024,
      d1024 + ".",
      rep('a', 5000),
  };
  for (const auto& r : rows) {
    CAPTURE(r);
    CHECK_FALSE(parse_jid(r).has_value());
  }
}

TEST_CASE("bare, full, equality") {
  auto j = parse_jid("Alice@Example.com/Phone");
  REQUIRE(j);
  CHECK(j->bare() == "alice@example.com");
  CHECK(j->full() == "alice@example.com/Phone");
  CHECK_FALSE(j->is_bare());
  CHECK(j->to_bare().is_bare());
  CHECK(j->to_bare().full() == "alice@example.com");
  CHECK(parse_jid("example.com")->bare() == "example.com");
  CHECK(parse_jid("example.com/r")->full() == "example.com/r");

  CHECK(*parse_jid("ALICE@example.com.") == *parse_jid("alice@EXAMPLE.com"));
  CHECK_FALSE(*parse_jid("a@b/R") == *parse_jid("a@b/r"));  // resource is case-sensitive
  CHECK(s2::jid_equal_bare("A@B/x", "a@b/y"));
  CHECK(s2::jid_equal_bare("a@b.", "a@b"));
  CHECK_FALSE(s2::jid_equal_bare("a@b", "b"));
  CHECK_FALSE(s2::jid_equal_bare("a@b", "a@"));

  CHECK(s2::normalize_jid("A@B./r") == std::optional<std::string>("a@b/r"));
  CHECK(s2::bare_jid("A@B./r") == std::optional<std::string>("a@b"));
  CHECK_FALSE(s2::normalize_jid("a@").has_value());
}

TEST_CASE("single-part preparation and make_jid") {
  CHECK(s2::prep_localpart("Alice") == std::optional<std::string>("alice"));
  CHECK_FALSE(s2::prep_localpart("").has_value());
  CHECK_FALSE(s2::prep_localpart("a@b").has_value());
  CHECK(s2::prep_domainpart("Example.COM.") == std::optional<std::string>("example.com"));
  CHECK_FALSE(s2::prep_domainpart(".").has_value());
  CHECK(s2::prep_resourcepart("App.x7Qd") == std::optional<std::string>("App.x7Qd"));
  CHECK_FALSE(s2::prep_resourcepart("").has_value());
  CHECK_FALSE(s2::prep_resourcepart("a\nb").has_value());

  auto j = s2::make_jid("Bob", "Example.org", "Desk/1");
  REQUIRE(j);
  CHECK(j->full() == "bob@example.org/Desk/1");
  CHECK(s2::make_jid("", "example.org")->full() == "example.org");
  CHECK_FALSE(s2::make_jid("a b", "example.org").has_value());
  CHECK_FALSE(s2::make_jid("a", "").has_value());
}

TEST_CASE("UTF-8 validation") {
  struct Row {
    std::string s;
    bool ok;
  };
  const Row rows[] = {
      {"", true},
      {"plain", true},
      {"\xC2\x80", true},
      {"\xDF\xBF", true},
      {"\xE0\xA0\x80", true},
      {"\xEF\xBF\xBF", true},
      {"\xF0\x90\x80\x80", true},
      {"\xF4\x8F\xBF\xBF", true},
      {"\x80", false},
      {"\xC1\xBF", false},          // overlong
      {"\xE0\x9F\xBF", false},      // overlong
      {"\xF0\x8F\xBF\xBF", false},  // overlong
      {"\xED\xBF\xBF", false},      // surrogate
      {"\xF4\x90\x80\x80", false},  // > U+10FFFF
      {"\xF5\x80\x80\x80", false},
      {"\xC2", false},  // truncated
      {"\xE0\xA0", false},
      {"\xC2\x41", false},  // bad continuation
  };
  for (const auto& r : rows) {
    CAPTURE(r.s);
    CHECK(s2::is_valid_utf8(r.s) == r.ok);
  }
}

TEST_CASE("parse_jid never crashes on any two-byte input") {
  // Every JID-relevant byte class at every position; the answer matters less
  // than that parsing is total (sanitizer builds catch out-of-bounds reads).
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      std::string s{static_cast<char>(a), static_cast<char>(b)};
      auto j = parse_jid(s);
      if (j) CHECK(parse_jid(j->full()) == j);  // normalisation is idempotent
    }
}
