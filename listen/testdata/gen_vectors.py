# Independent Python implementation of the topk listen contract (package
# listen): normalization, identity and item keys (with a pure-Python XXH64),
# written from the contract's description, not ported from the Go code. It writes the shared
# test vectors that listen/vectors_test.go checks the Go implementation
# against:
#
#   python3 listen/testdata/gen_vectors.py > listen/testdata/vectors.json
#
# Regenerate only with a NormalizationVersion bump, or to add vectors (the
# output must then differ by added lines only: existing values never change
# within a version). Python 3.11 carries
# Unicode 14 tables, Go 1.26 x/text Unicode 15: equal for every code point
# assigned in 14 (checked for all single code points when written).
import base64, datetime, hashlib, json, struct, unicodedata, sys

VERSION = 1
NOW = "2026-11-28T12:00:00Z"
WS = set([0x09,0x0a,0x0b,0x0c,0x0d,0x20,0x85,0xa0,0x1680] + list(range(0x2000,0x200b)) + [0x2028,0x2029,0x202f,0x205f,0x3000])

def collapse(s):
    out, pending = [], False
    for ch in s:
        if ord(ch) in WS:
            pending = len(out) > 0
        else:
            if pending:
                out.append(" "); pending = False
            out.append(ch)
    return "".join(out)

def normalize(s):
    s = unicodedata.normalize("NFC", s)
    s = s.casefold()
    s = unicodedata.normalize("NFC", s)
    return collapse(s)

def lp(s):
    b = s.encode("utf-8")
    return struct.pack(">I", len(b)) + b

def played_at_seconds(v):
    if isinstance(v, str):
        s = v.replace("z", "Z").replace("t", "T")
        d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return int(d.replace(microsecond=0).timestamp())
    if v > 1e11:
        return int(v // 1000)
    return int(v // 1)

def identity(rec):
    sec = played_at_seconds(rec["played_at"])
    b = struct.pack(">I", VERSION) + lp(rec["user_id"]) + struct.pack(">q", sec) + lp(normalize(rec["artist_name"])) + lp(normalize(rec["track_name"]))
    return hashlib.sha256(b).digest()[:16].hex()

# --- XXH64, seed 0 ---
P1, P2, P3, P4, P5 = 11400714785074694791, 14029467366897019727, 1609587929392839161, 9650029242287828579, 2870177450012600261
M = (1 << 64) - 1
def rotl(x, r): return ((x << r) | (x >> (64 - r))) & M
def rnd(acc, inp):
    acc = (acc + inp * P2) & M
    return (rotl(acc, 31) * P1) & M
def merge(acc, val):
    acc ^= rnd(0, val)
    return (acc * P1 + P4) & M
def xxh64(data, seed=0):
    n = len(data); i = 0
    if n >= 32:
        v1 = (seed + P1 + P2) & M; v2 = (seed + P2) & M; v3 = seed; v4 = (seed - P1) & M
        while i + 32 <= n:
            v1 = rnd(v1, struct.unpack_from("<Q", data, i)[0])
            v2 = rnd(v2, struct.unpack_from("<Q", data, i + 8)[0])
            v3 = rnd(v3, struct.unpack_from("<Q", data, i + 16)[0])
            v4 = rnd(v4, struct.unpack_from("<Q", data, i + 24)[0])
            i += 32
        h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) & M
        h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4)
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        k = rnd(0, struct.unpack_from("<Q", data, i)[0])
        h ^= k
        h = (rotl(h, 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * P1) & M
        h = (rotl(h, 23) * P2 + P3) & M
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M
        h = (rotl(h, 11) * P1) & M
        i += 1
    h ^= h >> 33; h = (h * P2) & M
    h ^= h >> 29; h = (h * P3) & M
    h ^= h >> 32
    return h
assert xxh64(b"") == 0xEF46DB3751D8E999
assert xxh64(b"a") == 0xD24EC4F1A98C6E5B
assert xxh64(b"abc") == 0x44BC2CF5AD770999

def item(kind, *parts):
    b = bytes([kind]) + struct.pack(">I", VERSION) + b"".join(lp(normalize(p)) for p in parts)
    k = xxh64(b)
    return k if k != 0 else 1
def hex64(k): return "%016x" % k
def artist_key(a): return item(1, a)
def track_key(a, t): return item(2, a, t)
def album_key(a, al):
    if normalize(al) == "": return 0
    return item(3, a, al)

# ---------------- normalization ----------------
normalize_cases = [
    ("ascii lower-cased", "Radiohead", "radiohead"),
    ("ascii already normal", "in rainbows", "in rainbows"),
    ("NFC e-acute stays", "Beyonc\u00e9", "beyonc\u00e9"),
    ("NFD e + combining acute composes", "Beyonce\u0301", "beyonc\u00e9"),
    ("NFD upper E + combining acute", "BEYONCE\u0301", "beyonc\u00e9"),
    ("sharp s folds to ss", "Stra\u00dfe", "strasse"),
    ("STRASSE folds to ss", "STRASSE", "strasse"),
    ("capital sharp s folds to ss", "\u1e9e", "ss"),
    ("Turkish dotted capital I folds to i + combining dot above (no Turkish tailoring)", "\u0130stanbul", "i\u0307stanbul"),
    ("Latin capital I folds to dotted i", "ISTANBUL", "istanbul"),
    ("Turkish dotless i stays", "\u0131", "\u0131"),
    ("Greek final and medial sigma fold alike", "\u03a3\u0391\u03a3 \u03c2", "\u03c3\u03b1\u03c3 \u03c3"),
    ("Kelvin sign folds to k", "\u212a", "k"),
    ("Angstrom sign: NFC to A-ring, folded", "\u212b", "\u00e5"),
    ("ligature fi folds to f i", "\ufb01", "fi"),
    ("fullwidth letters fold but are not mapped to ASCII (no NFKC)", "\uff21\uff22\uff23", "\uff41\uff42\uff43"),
    ("U+0390 folds to a non-NFC sequence, recomposed", "\u0390", "\u0390"),
    ("Hangul jamo compose", "\u1100\u1161", "\uac00"),
    ("tab and newline collapse", "Pink\tFloyd\n", "pink floyd"),
    ("CRLF and VT/FF collapse", "Pink\r\n\u000b\u000cFloyd", "pink floyd"),
    ("NBSP collapses", "Sigur\u00a0R\u00f3s", "sigur r\u00f3s"),
    ("ideographic space collapses", "\u5b87\u591a\u7530\u3000\u30d2\u30ab\u30eb", "\u5b87\u591a\u7530 \u30d2\u30ab\u30eb"),
    ("em space, narrow NBSP, NEL, line separator collapse", "a\u2003\u202f\u0085\u2028b", "a b"),
    ("leading and trailing whitespace trimmed", "  \t The Beatles \u3000 ", "the beatles"),
    ("run of spaces inside", "The    Beatles", "the beatles"),
    ("zero width space is not whitespace", "a\u200bb", "a\u200bb"),
    ("only whitespace is empty", " \t\u00a0\u3000 ", ""),
    ("empty", "", ""),
    ("Cherokee capital stays (folding goes to the capitals)", "\u13a5", "\u13a5"),
    ("Cherokee small folds to the capital", "\uab75\u13f8", "\u13a5\u13f0"),
    ("emoji kept", "Coldplay \U0001f3b5", "coldplay \U0001f3b5"),
]
normalize_out = []
for name, inp, out in normalize_cases:
    got = normalize(inp)
    assert got == out, (name, got, out)
    assert normalize(got) == got
    normalize_out.append({"name": name, "in": inp, "out": out})

# ---------------- identity ----------------
def rec(user="alice", at="2026-11-28T09:15:00Z", artist="Radiohead", track="Reckoner", **kw):
    r = {"user_id": user, "played_at": at, "artist_name": artist, "track_name": track}
    r.update(kw)
    return r

identity_cases = [
    ("example from DESIGN.md", rec(album_name="In Rainbows")),
    ("unicode names", rec(user="bj\u00f6rk_fan", artist="Sigur R\u00f3s", track="Hopp\u00edpolla")),
    ("played_at as Unix seconds", rec(at=1795857300)),
    ("played_at as Unix milliseconds", rec(at=1795857300123)),
    ("Japanese names", rec(user="u42", artist="\u5b87\u591a\u7530\u30d2\u30ab\u30eb", track="First Love", at="2026-01-01T00:00:00Z")),
    ("Turkish dotted I", rec(artist="\u0130zel", track="Bir Hayli")),
]
identity_out = []
for name, r in identity_cases:
    identity_out.append({"name": name, "record": r, "identity": identity(r)})

equal_pairs = [
    ("case of names", rec(artist="RADIOHEAD", track="reckoner"), rec()),
    ("surrounding whitespace and NBSP", rec(artist="  Radiohead\t", track="Reckoner\u00a0"), rec()),
    ("inner whitespace runs", rec(artist="Pink\t\tFloyd", track="Time\u3000 Remastered"), rec(artist="Pink Floyd", track="Time Remastered")),
    ("NFD vs NFC", rec(artist="Beyonce\u0301", track="Halo"), rec(artist="Beyonc\u00e9", track="Halo")),
    ("sharp s vs SS", rec(artist="Die \u00c4rzte", track="Stra\u00dfe"), rec(artist="DIE A\u0308RZTE", track="STRASSE")),
    ("Cherokee small vs capital", rec(artist="\uab7f\uab75", track="a"), rec(artist="\u13af\u13a5", track="A")),
    ("Kelvin sign vs K", rec(artist="\u212araftwerk", track="Autobahn"), rec(artist="Kraftwerk", track="autobahn")),
    ("same second, different milliseconds", rec(at="2026-11-28T09:15:00.123Z"), rec(at="2026-11-28T09:15:00.987Z")),
    ("same instant, +01:00 vs Z", rec(at="2026-11-28T10:15:00+01:00"), rec(at="2026-11-28T09:15:00Z")),
    ("same instant, -05:00 vs +05:30", rec(at="2026-11-28T04:15:00-05:00"), rec(at="2026-11-28T14:45:00+05:30")),
    ("lower-case t and z", rec(at="2026-11-28t09:15:00z"), rec(at="2026-11-28T09:15:00Z")),
    ("Unix seconds vs RFC 3339", rec(at=1795857300), rec(at="2026-11-28T09:15:00Z")),
    ("Unix milliseconds vs seconds", rec(at=1795857300999), rec(at=1795857300)),
    ("fractional seconds number truncated", rec(at=1795857300.75), rec(at=1795857300)),
    ("metadata does not count", rec(album_name="In Rainbows", track_id="x1", artist_id="a1", album_id="b1", duration_ms=290000, source="lastfm", event_id="e-1"),
        rec(album_name="OK Computer", source="spotify", event_id="e-2")),
]
equal_out = []
for name, a, b in equal_pairs:
    assert identity(a) == identity(b), name
    equal_out.append({"name": name, "a": a, "b": b})

differ_pairs = [
    ("user_id is exact: case counts", rec(user="Alice"), rec(user="alice")),
    ("next second", rec(at="2026-11-28T09:15:01Z"), rec(at="2026-11-28T09:15:00Z")),
    ("another track", rec(track="Nude"), rec()),
    ("another artist", rec(artist="Radiohead UK"), rec()),
    ("artist/track boundary is unambiguous", rec(artist="ab", track="c"), rec(artist="a", track="bc")),
    ("a space inside counts", rec(artist="Pink Floyd"), rec(artist="PinkFloyd")),
    ("fullwidth is not ASCII (no NFKC)", rec(artist="\uff21\uff22\uff22\uff21"), rec(artist="ABBA")),
    ("zero width space counts", rec(track="Reck\u200boner"), rec()),
    ("dotless i is not i", rec(artist="R\u0131dioh"), rec(artist="Ridioh")),
    ("dotted capital I is not I", rec(artist="\u0130zel"), rec(artist="Izel")),
    ("same wall clock, different offsets", rec(at="2026-11-28T09:15:00+01:00"), rec(at="2026-11-28T09:15:00Z")),
]
differ_out = []
for name, a, b in differ_pairs:
    assert identity(a) != identity(b), name
    differ_out.append({"name": name, "a": a, "b": b})

# ---------------- item keys ----------------
item_cases = [
    ("DESIGN example", "Radiohead", "Reckoner", "In Rainbows"),
    ("same items, other spelling", "  RADIOHEAD ", "reckoner", "IN\u00a0RAINBOWS"),
    ("no album", "Radiohead", "Reckoner", ""),
    ("album of only whitespace is no album", "Radiohead", "Reckoner", " \t "),
    ("self-titled: track and album keys differ", "Weezer", "Weezer", "Weezer"),
    ("boundary ab|c", "ab", "c", "c"),
    ("boundary a|bc", "a", "bc", "bc"),
    ("NFD", "Beyonce\u0301", "Halo", "I Am... Sasha Fierce"),
    ("NFC", "Beyonc\u00e9", "Halo", "I Am... Sasha Fierce"),
]
item_out = []
for name, a, t, al in item_cases:
    item_out.append({"name": name, "artist": a, "track": t, "album": al,
        "artist_key": hex64(artist_key(a)), "track_key": hex64(track_key(a, t)), "album_key": hex64(album_key(a, al))})
assert item_out[0]["artist_key"] == item_out[1]["artist_key"] and item_out[0]["track_key"] == item_out[1]["track_key"] and item_out[0]["album_key"] == item_out[1]["album_key"]
assert item_out[2]["album_key"] == "0"*16 and item_out[3]["album_key"] == "0"*16
assert item_out[4]["track_key"] != item_out[4]["album_key"]
assert item_out[5]["track_key"] != item_out[6]["track_key"]
assert item_out[7]["track_key"] == item_out[8]["track_key"]

# ---------------- validation ----------------
def j(o): return json.dumps(o, ensure_ascii=False, separators=(",", ":"))
MIN = '"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"Reckoner"'
def obj(*members): return "{" + ",".join(members) + "}"
def base(**over):
    r = {"user_id": "alice", "played_at": "2026-11-28T09:15:00Z", "artist_name": "Radiohead", "track_name": "Reckoner"}
    for k, v in over.items():
        if v is DROP: r.pop(k)
        else: r[k] = v
    return j(r)
DROP = object()
def canon(**over):
    r = {"user_id": "alice", "played_at": "2026-11-28T09:15:00Z", "artist_name": "Radiohead", "track_name": "Reckoner"}
    r.update(over)
    return r

V = []
def ok(name, raw, expect=None, **extra):
    e = {"name": name, "raw": raw, "ok": True}
    if expect is not None: e["expect"] = expect
    e.update(extra); V.append(e)
def bad(name, raw, reason, field=None, **extra):
    e = {"name": name, "raw": raw, "ok": False, "reason": reason}
    if field: e["field"] = field
    e.update(extra); V.append(e)

ok("minimal", "{" + MIN + "}", canon())
ok("DESIGN example", j(rec(album_name="In Rainbows")), canon(album_name="In Rainbows"))
ok("every field", j(rec(album_name="In Rainbows", track_id="spotify:track:1", artist_id="a7f7df4a-77d8-4f12-8acd-5c60c93f4de8", album_id="mb-1", duration_ms=290000, source="lastfm", event_id="client-1")),
   canon(album_name="In Rainbows", track_id="spotify:track:1", artist_id="a7f7df4a-77d8-4f12-8acd-5c60c93f4de8", album_id="mb-1", duration_ms=290000, source="lastfm", event_id="client-1"))
ok("whitespace around the object", " \n\t{" + MIN + "}\r\n ", canon())
ok("unknown fields ignored, nested and repeated", "{" + MIN + ',"extra":{"a":[1,{"b":null}]},"x":1,"x":"two","USER_ID":5}', canon())
ok("field names are exact: User_Id is an unknown field", "{" + MIN + ',"User_Id":"bob"}', canon())
ok("escaped field name", '{"user\\u005fid":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"Reckoner"}', canon())
ok("null optional fields are absent", base(album_name=None, track_id=None, duration_ms=None, source=None, event_id=None), canon())
ok("names trimmed and collapsed, spelling kept", base(artist_name="  Sigur\u00a0\u00a0R\u00f3s ", track_name="Hopp\u00edpolla\t(live)\n", album_name=" Takk... "),
   canon(artist_name="Sigur R\u00f3s", track_name="Hopp\u00edpolla (live)", album_name="Takk..."))
ok("case and NFD kept for display", base(artist_name="BEYONCE\u0301"), canon(artist_name="BEYONCE\u0301"))
ok("album of only whitespace is no album", base(album_name=" \t "), canon())
ok("escapes in strings decoded", base(artist_name="AC/DC", track_name="T.N.T. \"live\""), canon(artist_name="AC/DC", track_name="T.N.T. \"live\""))
ok("surrogate pair escape", '{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"Radiohead","track_name":"\\ud83c\\udfb5"}', canon(track_name="\U0001f3b5"))
ok("metadata kept as sent", base(track_id=" id with spaces ", source="\tconsole"), canon(track_id=" id with spaces ", source="\tconsole"))
ok("played_at with +01:00 converted to UTC", base(played_at="2026-11-28T10:15:00+01:00"), canon())
ok("played_at with -05:00 converted to UTC, crossing the day", base(played_at="2026-11-27T23:30:00-05:00"), canon(played_at="2026-11-28T04:30:00Z"))
ok("played_at +01:00 just after local midnight lands on the UTC day before", base(played_at="2026-11-28T00:30:00+01:00"), canon(played_at="2026-11-27T23:30:00Z"))
ok("played_at lower-case t and z", base(played_at="2026-11-28t09:15:00z"), canon())
ok("played_at fraction truncated", base(played_at="2026-11-28T09:15:00.999999999999Z"), canon())
ok("played_at Unix seconds", base(played_at=1795857300), canon())
ok("played_at Unix milliseconds", base(played_at=1795857300999), canon())
ok("played_at fractional seconds", base(played_at=1795857300.999), canon())
ok("played_at exponent form", base(played_at=DROP)[:-1] + ',"played_at":1.7958573e9}', canon())
ok("played_at milliseconds in exponent form", base(played_at=DROP)[:-1] + ',"played_at":1.7958573009E+12}', canon())
ok("played_at leap day", base(played_at="2024-02-29T12:00:00Z"), canon(played_at="2024-02-29T12:00:00Z"))
ok("played_at lower bound 2002-01-01T00:00:00Z", base(played_at="2002-01-01T00:00:00Z"), canon(played_at="2002-01-01T00:00:00Z"))
ok("played_at lower bound with offset", base(played_at="2002-01-01T01:00:00+01:00"), canon(played_at="2002-01-01T00:00:00Z"))
ok("played_at lower bound as seconds", base(played_at=1009843200), canon(played_at="2002-01-01T00:00:00Z"))
ok("played_at lower bound as milliseconds", base(played_at=1009843200000), canon(played_at="2002-01-01T00:00:00Z"))
ok("played_at upper bound now + 10 min", base(played_at="2026-11-28T12:10:00Z"), canon(played_at="2026-11-28T12:10:00Z"))
ok("played_at upper bound, fraction truncated into range", base(played_at="2026-11-28T12:10:00.999Z"), canon(played_at="2026-11-28T12:10:00Z"))
ok("user_id of 128 bytes", base(user_id="u" * 128), canon(user_id="u" * 128))
ok("user_id of 64 two-byte characters (128 bytes)", base(user_id="\u00e9" * 64), canon(user_id="\u00e9" * 64))
ok("user_id with inner space and unicode", base(user_id="bj\u00f6rk fan"), canon(user_id="bj\u00f6rk fan"))
ok("duration_ms 0", base(duration_ms=0), canon())
ok("duration_ms integral float", base(duration_ms=215000.0), canon(duration_ms=215000))
ok("duration_ms exponent", base()[:-1] + ',"duration_ms":2.15e5}', canon(duration_ms=215000))
ok("record of exactly 10240 bytes", "{" + MIN + "}", canon(), pad_to=10240)

bad("nil value (tombstone)", None, "nil_value")
bad("empty value", "", "nil_value")
bad("record of 10241 bytes", "{" + MIN + "}", "too_large", pad_to=10241)
bad("not json", "hello", "not_json")
bad("only whitespace", "  \n", "not_json")
bad("unterminated object", "{" + MIN, "not_json")
bad("two objects", "{" + MIN + "}{" + MIN + "}", "not_json")
bad("trailing garbage", "{" + MIN + "} x", "not_json")
bad("trailing comma", "{" + MIN + ",}", "not_json")
bad("single quotes", "{'user_id':'alice'}", "not_json")
bad("NaN", base(played_at=DROP)[:-1] + ',"played_at":NaN}', "not_json")
bad("comment", "{" + MIN + "/* c */}", "not_json")
bad("raw control character in a string", '{"user_id":"al\tice","played_at":1795857300,"artist_name":"a","track_name":"b"}', "not_json")
bad("invalid UTF-8", None, "not_json", raw_base64=base64.b64encode(b'{"user_id":"al\xffice","played_at":1795857300,"artist_name":"a","track_name":"b"}').decode())
bad("UTF-8 byte order mark", "\ufeff{" + MIN + "}", "not_json")
bad("invalid escape in an unknown field", "{" + MIN + ',"x":"\\q"}', "not_json")
bad("array", "[" + "{" + MIN + "}]", "not_object")
bad("string", '"alice"', "not_object")
bad("number", "42", "not_object")
bad("null", "null", "not_object")
bad("true", "true", "not_object")
bad("duplicate user_id", "{" + MIN + ',"user_id":"bob"}', "duplicate_field", "user_id")
bad("duplicate through an escaped name", "{" + MIN + ',"track\\u005fname":"Nude"}', "duplicate_field", "track_name")
bad("duplicate optional field, even null", base(album_name=None)[:-1] + ',"album_name":"x"}', "duplicate_field", "album_name")
bad("missing user_id", base(user_id=DROP), "missing_field", "user_id")
bad("null user_id", base(user_id=None), "missing_field", "user_id")
bad("missing played_at", base(played_at=DROP), "missing_field", "played_at")
bad("missing artist_name", base(artist_name=DROP), "missing_field", "artist_name")
bad("missing track_name", base(track_name=DROP), "missing_field", "track_name")
bad("empty object", "{}", "missing_field", "user_id")
bad("user_id a number", base(user_id=42), "bad_field_type", "user_id")
bad("played_at a boolean", base(played_at=True), "bad_field_type", "played_at")
bad("played_at an object", base(played_at={"s": 1}), "bad_field_type", "played_at")
bad("artist_name an array", base(artist_name=["Radiohead"]), "bad_field_type", "artist_name")
bad("track_name a number", base(track_name=7), "bad_field_type", "track_name")
bad("album_name a number", base(album_name=1), "bad_field_type", "album_name")
bad("track_id a number", base(track_id=123), "bad_field_type", "track_id")
bad("artist_id an object", base(artist_id={}), "bad_field_type", "artist_id")
bad("album_id a boolean", base(album_id=False), "bad_field_type", "album_id")
bad("duration_ms a string", base(duration_ms="215000"), "bad_field_type", "duration_ms")
bad("source a number", base(source=1), "bad_field_type", "source")
bad("event_id a number", base(event_id=12345), "bad_field_type", "event_id")
bad("first field in contract order is reported", j({"event_id": 1, "user_id": 5, "played_at": True, "artist_name": "a", "track_name": "b"}), "bad_field_type", "user_id")
bad("lone high surrogate in a name", '{"user_id":"alice","played_at":1795857300,"artist_name":"\\ud800","track_name":"b"}', "bad_string", "artist_name")
bad("lone low surrogate in user_id", '{"user_id":"a\\udc00","played_at":1795857300,"artist_name":"a","track_name":"b"}', "bad_string", "user_id")
bad("empty user_id", base(user_id=""), "bad_user_id", "user_id")
bad("user_id of 129 bytes", base(user_id="u" * 129), "bad_user_id", "user_id")
bad("user_id of 43 three-byte characters (129 bytes)", base(user_id="\u20ac" * 43), "bad_user_id", "user_id")
bad("user_id with |", base(user_id="a|b"), "bad_user_id", "user_id")
bad("user_id with an escaped |", '{"user_id":"a\\u007cb","played_at":1795857300,"artist_name":"a","track_name":"b"}', "bad_user_id", "user_id")
bad("user_id with a control character", base(user_id="a\u0007b"), "bad_user_id", "user_id")
bad("user_id with a tab", base(user_id="a\tb"), "bad_user_id", "user_id")
bad("user_id with DEL", base(user_id="a\u007fb"), "bad_user_id", "user_id")
bad("user_id with a C1 control", base(user_id="a\u0085b"), "bad_user_id", "user_id")
bad("user_id with a leading space", base(user_id=" alice"), "bad_user_id", "user_id")
bad("user_id with a trailing NBSP", base(user_id="alice\u00a0"), "bad_user_id", "user_id")
bad("played_at words", base(played_at="yesterday"), "bad_played_at", "played_at")
bad("played_at empty string", base(played_at=""), "bad_played_at", "played_at")
bad("played_at numeric string", base(played_at="1795857300"), "bad_played_at", "played_at")
bad("played_at without offset", base(played_at="2026-11-28T09:15:00"), "bad_played_at", "played_at")
bad("played_at with a space instead of T", base(played_at="2026-11-28 09:15:00Z"), "bad_played_at", "played_at")
bad("played_at offset without colon", base(played_at="2026-11-28T09:15:00+0100"), "bad_played_at", "played_at")
bad("played_at offset +24:00", base(played_at="2026-11-28T09:15:00+24:00"), "bad_played_at", "played_at")
bad("played_at comma fraction", base(played_at="2026-11-28T09:15:00,5Z"), "bad_played_at", "played_at")
bad("played_at empty fraction", base(played_at="2026-11-28T09:15:00.Z"), "bad_played_at", "played_at")
bad("played_at date only", base(played_at="2026-11-28"), "bad_played_at", "played_at")
bad("played_at February 30", base(played_at="2026-02-30T09:15:00Z"), "bad_played_at", "played_at")
bad("played_at February 29 of a common year", base(played_at="2026-02-29T09:15:00Z"), "bad_played_at", "played_at")
bad("played_at hour 24", base(played_at="2026-11-28T24:00:00Z"), "bad_played_at", "played_at")
bad("played_at leap second 60", base(played_at="2016-12-31T23:59:60Z"), "bad_played_at", "played_at")
bad("played_at just before 2002", base(played_at="2001-12-31T23:59:59Z"), "played_at_out_of_range", "played_at")
bad("played_at just before 2002, fraction does not help", base(played_at="2001-12-31T23:59:59.999Z"), "played_at_out_of_range", "played_at")
bad("played_at seconds just before 2002", base(played_at=1009843199), "played_at_out_of_range", "played_at")
bad("played_at milliseconds just before 2002", base(played_at=1009843199999), "played_at_out_of_range", "played_at")
bad("played_at now + 10 min + 1 s", base(played_at="2026-11-28T12:10:01Z"), "played_at_out_of_range", "played_at")
bad("played_at 0", base(played_at=0), "played_at_out_of_range", "played_at")
bad("played_at negative", base(played_at=-1795857300), "played_at_out_of_range", "played_at")
bad("played_at 10^11 is seconds (year 5138)", base(played_at=100000000000), "played_at_out_of_range", "played_at")
bad("played_at 10^11 + 1 is milliseconds (1973)", base(played_at=100000000001), "played_at_out_of_range", "played_at")
bad("played_at huge", base(played_at=1e300), "played_at_out_of_range", "played_at")
bad("played_at huge integer", base(played_at=DROP)[:-1] + ',"played_at":123456789012345678901234567890}', "played_at_out_of_range", "played_at")
bad("played_at year 0000", base(played_at="0000-01-01T00:00:00Z"), "played_at_out_of_range", "played_at")
bad("empty artist_name", base(artist_name=""), "empty_name", "artist_name")
bad("track_name of only whitespace", base(track_name=" \t\u00a0\u3000"), "empty_name", "track_name")
bad("NUL in artist_name", base(artist_name="Radio\u0000head"), "bad_name", "artist_name")
bad("ESC in track_name", base(track_name="a\u001bb"), "bad_name", "track_name")
bad("BEL in album_name", base(album_name="\u0007"), "bad_name", "album_name")
ok("artist_name of 512 two-byte characters (the default name limit counts characters)", base(artist_name="\u00e9" * 512), canon(artist_name="\u00e9" * 512))
ok("album_name of 512 four-byte characters", base(album_name="\U0001f3b5" * 512), canon(album_name="\U0001f3b5" * 512))
ok("name limit counts after trimming and collapsing", base(track_name=" \t" + "ab\u3000 " * 170 + "xy\u00a0\n"), canon(track_name="ab " * 170 + "xy"))
bad("artist_name of 513 characters", base(artist_name="x" * 513), "name_too_long", "artist_name")
bad("track_name of 513 two-byte characters", base(track_name="\u00df" * 513), "name_too_long", "track_name")
bad("album_name of 513 characters", base(album_name="\u5b87" * 513), "name_too_long", "album_name")
bad("code points, not grapheme clusters: 257 e + U+0301 is 514", base(artist_name="e\u0301" * 257), "name_too_long", "artist_name")
bad("duration_ms negative", base(duration_ms=-1), "bad_duration", "duration_ms")
bad("duration_ms fraction", base(duration_ms=1.5), "bad_duration", "duration_ms")
bad("duration_ms over int64", base(duration_ms=9223372036854775808), "bad_duration", "duration_ms")
bad("duration_ms 1e30", base(duration_ms=1e30), "bad_duration", "duration_ms")

out = {
    "$comment": [
        "Shared test vectors of the topk listen contract (package listen, schemas/events/listen.schema.json).",
        "Every implementation must pass all of them; listen/vectors_test.go checks the Go one.",
        "normalize: Normalize(in) == out. identity: the listen Parse makes of record (at now) has Identity() == identity (hex).",
        "identity_equal / identity_differ: the listens of a and b have equal / different identities.",
        "item_keys: ArtistKey(artist), TrackKey(artist, track), AlbumKey(artist, album) as 16 hex digits.",
        "validation: Parse(raw, now). raw is the record text; null means a nil value (Kafka tombstone); raw_base64, when present, is the exact bytes instead.",
        "pad_to: insert ,\"pad\":\"xxx...\" before the last '}' of raw with as many x as make the record exactly pad_to bytes.",
        "ok: accepted, and the result equals expect (the canonical listen, as Codec writes it) when given; otherwise rejected with reason and, when given, field.",
        "Names are limited to 512 characters (code points after trimming and collapsing whitespace), the default of the configurable limit (TOPK_MAX_NAME_CHARS).",
        "Values change only with normalization_version. Written by gen_vectors.py, an independent Python implementation of the contract."
    ],
    "normalization_version": VERSION,
    "unicode_version": "15.0.0",
    "now": NOW,
    "normalize": normalize_out,
    "identity": identity_out,
    "identity_equal": equal_out,
    "identity_differ": differ_out,
    "item_keys": item_out,
    "validation": V,
}

# Compact-ish, ASCII-only layout: one vector per line.
def dumps(v): return json.dumps(v, ensure_ascii=True, separators=(", ", ": "))
lines = ["{"]
keys = list(out.keys())
for ki, k in enumerate(keys):
    v = out[k]
    comma = "," if ki < len(keys) - 1 else ""
    if isinstance(v, list) and v and isinstance(v[0], dict):
        lines.append("  %s: [" % json.dumps(k))
        for i, e in enumerate(v):
            lines.append("    " + dumps(e) + ("," if i < len(v) - 1 else ""))
        lines.append("  ]" + comma)
    elif isinstance(v, list):
        lines.append("  %s: [" % json.dumps(k))
        for i, e in enumerate(v):
            lines.append("    " + dumps(e) + ("," if i < len(v) - 1 else ""))
        lines.append("  ]" + comma)
    else:
        lines.append("  %s: %s%s" % (json.dumps(k), dumps(v), comma))
lines.append("}")
sys.stdout.write("\n".join(lines) + "\n")
