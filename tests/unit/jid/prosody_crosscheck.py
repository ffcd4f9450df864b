#!/usr/bin/env python3
"""Cross-checks our JID preparation against Prosody's own normaliser.

Runs the same inputs through build/jidprep (our common/jid) and through
Prosody's util.encodings / util.jid under lua5.4, and compares:
  * localpart:    prep_localpart    vs stringprep.nodeprep
  * resourcepart: prep_resourcepart vs stringprep.resourceprep
  * domainpart:   prep_domainpart   vs nameprep after util.jid's dot strip
  * whole JID:    normalize_jid     vs util.jid.prep
Inputs: every row of prep_table.tsv (whose expected values are checked too)
and 20000 deterministic random strings over code points chosen to exercise
case folding, NFKC, bidi, prohibited and unassigned characters.
Where both accept, the results must be byte-for-byte equal. Allowed
differences, counted and printed:
  * ours stricter: a part that prepares to the empty string (Prosody returns
    "", we reject); a domain that nameprep accepts but that is not a host
    name or IP literal (spaces, punctuation, leading hyphen...);
  * ours looser: the input holds a code point unassigned in Unicode 3.2 and
    Prosody rejects it. Debian builds Prosody's util.encodings with ICU, whose
    bidi check (RFC 3454 §6) uses today's bidi classes for such code points
    (e.g. U+08A0, Arabic since Unicode 6.1), where libidn's uses 3.2's (none);
    ejabberd rejects unassigned code points altogether. The servers disagree
    among themselves there; a JID the server refuses is no account, so
    accepting it can never merge or split one.
Exit 0 = equal, 1 = difference, 77 = skipped (no lua5.4 or no Prosody).
  prosody_crosscheck.py PATH/TO/jidprep
"""
import os
import random
import shutil
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
PROSODY = "/usr/lib/prosody"

LUA = r"""
local enc = require "util.encodings"
local sp = enc.stringprep
local jid = require "util.jid"
local function hex(s)
  if s == nil then return "-" end
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function host(s)
  -- util.jid.prepped_split's host handling, on a bare domain string
  if s == "." then return nil end
  if s:sub(-1) == "." then s = s:sub(1, -2) end
  return sp.nameprep(s)
end
for line in io.lines() do
  local s = unhex(line)
  local _, raw_host = jid.split(s)
  local n, _, r = jid.prepped_split(s)
  io.write(hex(sp.nodeprep(s)), "\t", hex(sp.resourceprep(s)), "\t", hex(host(s)), "\t",
           hex(jid.prep(s)), "\t", hex(n), "\t", hex(r), "\t", hex(raw_host), "\n")
end
"""


def decode(field):
    """Table escapes (tests/unit/jid/prep_table.tsv, decoded the same way by
    test_jid.cpp): \\xNN a byte, \\u{HEX} a code point (UTF-8), \\[N] the
    previous unit N times in all, \\\\ a backslash."""
    out = bytearray()
    last = b""
    i = 0
    while i < len(field):
        c = field[i]
        if c != "\\":
            last = c.encode()
            out += last
            i += 1
            continue
        k = field[i + 1]
        if k == "x":
            last = bytes([int(field[i + 2:i + 4], 16)])
            out += last
            i += 4
        elif k == "u":
            end = field.index("}", i)
            last = chr(int(field[i + 3:end], 16)).encode("utf-8", "surrogatepass")
            out += last
            i = end + 1
        elif k == "[":
            end = field.index("]", i)
            out += last * (int(field[i + 2:end]) - 1)
            i = end + 1
        else:
            last = k.encode()
            out += last
            i += 2
    return bytes(out)


def table():
    rows = []
    with open(os.path.join(HERE, "prep_table.tsv"), encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            inp = decode(cols[0])
            exp = [None if c == "-" else decode(c) for c in cols[1:4]]
            rows.append((ln, inp, exp))
    return rows


POOL = (
    [chr(c) for c in range(0x20, 0x7F)] * 2
    + list("ÄäÖöÜüßẞİıΣσςﬁﬀ№™Ⅻ½ｆＡ１．＠／ǅĲŉǰΐ")
    + ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u034f", "\u180b"]  # map to nothing
    + ["\u00a0", "\u2003", "\u3000", "\u2028", "\u0085", "\u0000", "\u0007", "\u001b", "\u007f"]
    + ["\u05d0", "\u05d1", "\u0627", "\u0628", "\u200e", "\u200f", "\u202a", "\u202e", "\u0660"]
    + ["\u0301", "\u0308", "\u030a", "A\u030a", "e\u0301", "\u212b", "\u2126", "\u1e9b\u0323"]
    + ["\ue000", "\uf8ff", "\U000f0000", "\ufffd", "\ufffe", "\uffff", "\U0001d11e", "\U000e0001"]
    + ["\u0221", "\u0234", "\u08a0", "\U0001f600", "\u2ff0", "\u0340", "\u0341", "\u206a"]
    + ["\uac00", "\u1100\u1161", "\u3131", "\u4e00", "\u30ac", "\uff76\uff9e", "\u0130", "\u01c4"]
)


def randoms(n, seed=7622):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        length = rnd.choice([1, 1, 2, 3, 4, 6, 10, 20])
        s = "".join(rnd.choice(POOL) for _ in range(length))
        b = s.encode("utf-8", "surrogatepass")
        if i % 97 == 0:  # a few invalid UTF-8 strings
            b = b[: rnd.randrange(len(b) + 1)] + rnd.choice([b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xff"])
        if i % 13 == 0:  # JID shapes
            b = b + rnd.choice([b"@example.com", b"@Example.COM./res", b"/r"])
        if i % 17 == 0:
            b = b"user@" + b
        out.append(b)
    # Length limits around 1023 bytes, with multi-byte and mapped-away code points.
    for base in ["a", "Ä", "ä", "\u00ad", "ﬁ", "\u3000", "Ａ"]:
        unit = base.encode()
        for total in (1021, 1022, 1023, 1024, 1025):
            s = unit * (total // len(unit)) + b"b" * (total % len(unit))
            out += [s, b"x@" + s, b"x@y/" + s, s + b"@y"]
    out.append("ﬁ".encode() * 340 + b"ab")  # 1022 bytes in, 682 code points; NFKC doubles them
    out.append("Ⅻ".encode() * 341)  # 1023 bytes in, "xii" * 341 out (1023)
    out.append("Ⅻ".encode() * 300 + "ﬃ".encode() * 41)  # out > 1023
    return out


def has_unassigned_32(b):
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return any(unicodedata.ucd_3_2_0.category(c) == "Cn" for c in s)


def run(cmd, lines, env=None):
    data = "".join(x.hex() + "\n" for x in lines)
    p = subprocess.run(cmd, input=data, capture_output=True, text=True, env=env, check=False)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-500:]}")
    res = [l.split("\t") for l in p.stdout.splitlines()]
    if len(res) != len(lines):
        sys.exit(f"{cmd[0]}: {len(res)} answers for {len(lines)} inputs")
    return [[None if c == "-" else bytes.fromhex(c) for c in r] for r in res]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    jidprep = sys.argv[1]
    lua = shutil.which("lua5.4")
    if not lua or not os.path.exists(f"{PROSODY}/util/encodings.so"):
        print("skip: needs lua5.4 and Prosody (/usr/lib/prosody/util/encodings.so)")
        return 77
    env = dict(os.environ, LUA_CPATH=f"{PROSODY}/?.so;;", LUA_PATH=f"{PROSODY}/?.lua;;")

    rows = table()
    inputs = [r[1] for r in rows] + randoms(20000)
    ours = run([jidprep], inputs)
    theirs = run([lua, "-e", LUA], inputs, env)

    fails = []
    stricter_empty = stricter_host = looser_unassigned = 0
    names = ["nodeprep", "resourceprep", "nameprep", "jid.prep"]
    # Our domain result for every raw host Prosody split off, for the whole-JID rule.
    ours_host = run([jidprep], [t[6] if t[6] is not None else b"" for t in theirs])
    both = 0
    for i, (inp, o, t) in enumerate(zip(inputs, ours, theirs)):
        for k in range(4):
            if o[k] == t[k]:
                both += o[k] is not None
                continue
            if o[k] is None and t[k] is not None:
                empty = t[k] == b"" if k < 3 else b"" in (t[4], t[5])
                if empty:
                    stricter_empty += 1
                    continue
                if (k == 2) or (k == 3 and ours_host[i][2] is None):
                    stricter_host += 1
                    continue
            if o[k] is not None and t[k] is None and has_unassigned_32(inp):
                looser_unassigned += 1
                continue
            fails.append((i, names[k], inp, o[k], t[k]))
    by_input = {inp: i for i, inp in enumerate(inputs)}
    for ln, inp, exp in rows:
        i = by_input[inp]
        for k in range(3):
            if exp[k] != ours[i][k]:
                fails.append((i, f"table line {ln} expects {names[k]}", inp, ours[i][k], exp[k]))
    for i, what, inp, o, t in fails[:40]:
        print(f"DIFF {what}: input {inp!r}: ours {o!r}, Prosody {t!r}")
    print(f"{len(inputs)} inputs ({len(rows)} table rows), {len(fails)} differences; "
          f"ours stricter: {stricter_empty} empty parts, {stricter_host} non-host domains; "
          f"ours looser: {looser_unassigned} with code points unassigned in Unicode 3.2")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
