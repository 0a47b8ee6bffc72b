"""Drives a topk api with liblistenbrainz, the ListenBrainz client library,
as a scrobbler or a stats client would, and checks every answer against
counts made here from what was submitted (not from topk's answers).

Run by TestIntegrationListenBrainzClient (cmd/topk), which starts the
pipeline and the api and passes:

  LB_URL          the api's base URL
  LB_TOKEN        a token of LB_USER
  LB_USER         the user the test submits for
  LB_OTHER_TOKEN  a token of LB_OTHER_USER
  LB_OTHER_USER   another user

Exit status 0 when every check held; each failure is printed.
"""

import datetime as dt
import json
import os
import random
import sys
import time
import unicodedata
from collections import Counter

import requests
from liblistenbrainz import ListenBrainz, Listen
from liblistenbrainz.errors import InvalidAuthTokenException, ListenBrainzAPIException

URL = os.environ["LB_URL"]
TOKEN = os.environ["LB_TOKEN"]
USER = os.environ["LB_USER"]
OTHER_TOKEN = os.environ["LB_OTHER_TOKEN"]
OTHER_USER = os.environ["LB_OTHER_USER"]

failures = []


def check(ok, what):
    if ok:
        print("ok  ", what)
    else:
        print("FAIL", what)
        failures.append(what)


def norm(s):
    """The identity's normalization for the ASCII names used here: case
    folded, whitespace collapsed and trimmed (topk's listen.Normalize)."""
    return " ".join(unicodedata.normalize("NFC", s).casefold().split())


# ---------------------------------------------------------------- the data

rng = random.Random(13)
now = int(time.time())
ARTISTS = ["Artist %d" % i for i in range(30)]
counted = {}  # identity -> (listened_at, artist, track, album) as first sent


def identity(ts, artist, track):
    return (ts, norm(artist), norm(track))


def make_listen(ts):
    a = rng.choice(ARTISTS)
    t = "Song %d" % rng.randrange(12)
    album = "Album %d" % rng.randrange(3) if rng.random() < 0.7 else None
    return ts, a, t, album


def odd_spelling(name):
    """Another spelling of the same name: other case, more spaces."""
    return rng.choice([name.upper(), name.lower(), "  " + name.replace(" ", "   ") + " "])


def to_lb(ts, artist, track, album):
    return Listen(track_name=track, artist_name=artist, release_name=album, listened_at=ts)


client = ListenBrainz(api_base_url=URL)

# ------------------------------------------------------------ tokens

def token_valid(token):
    """GET /1/validate-token?token=… (this client version checks tokens
    only through set_auth_token)."""
    body = requests.get(URL + "/1/validate-token", params={"token": token}).json()
    return body["valid"] and body.get("user_name") == USER if token == TOKEN else body["valid"]


client.set_auth_token(TOKEN)  # checks it with GET /1/validate-token
check(token_valid(TOKEN), "validate-token: the user's token is valid, naming the user")
check(not token_valid("0d0d0d0d-0000-4000-8000-000000000000"), "validate-token: an unknown token is not")
try:
    ListenBrainz(api_base_url=URL).set_auth_token("not-a-token")
    check(False, "set_auth_token with a bad token raises InvalidAuthTokenException")
except InvalidAuthTokenException:
    check(True, "set_auth_token with a bad token raises InvalidAuthTokenException")

# ------------------------------------------------------------ submit

start = time.time()
listens = []
seconds = rng.sample(range(now - 400 * 86400, now - 120), 3000)
for ts in seconds:
    listens.append(make_listen(ts))
# duplicates: the same listens again, spelled otherwise (counted once)
dups = [(ts, odd_spelling(a), odd_spelling(t), al) for ts, a, t, al in rng.sample(listens, 400)]
batches = listens + dups
rng.shuffle(batches)
for ts, a, t, al in batches:
    counted.setdefault(identity(ts, a, t), (ts, a, t, al))
sent = 0
for i in range(0, len(batches), 500):
    part = batches[i:i + 500]
    r = client.submit_multiple_listens([to_lb(*l) for l in part])
    sent += len(part)
    if r != {"status": "ok"}:
        check(False, "import of %d listens answered %r" % (len(part), r))
check(True, "import: %d listens (%d duplicates in other spellings) in %d requests" % (sent, len(dups), (len(batches) + 499) // 500))

# single listens, one of them a duplicate of an imported one
for l in [make_listen(now - 60), make_listen(now - 30), batches[0]]:
    r = client.submit_single_listen(to_lb(*l))
    check(r == {"status": "ok"}, "single listen at %d answered %r" % (l[0], r))
    counted.setdefault(identity(l[0], l[1], l[2]), l)

# invalid listens: ListenBrainz refuses a whole request with one bad listen
bad_requests = [
    ("listened_at before 2002-10-01", {"listened_at": 1000000000, "track_metadata": {"artist_name": "a", "track_name": "t"}}),
    ("no track_name", {"listened_at": now - 10, "track_metadata": {"artist_name": "a"}}),
    ("empty artist_name", {"listened_at": now - 10, "track_metadata": {"artist_name": "  ", "track_name": "t"}}),
    ("an hour ahead", {"listened_at": now + 3000, "track_metadata": {"artist_name": "a", "track_name": "t"}}),
]
for what, bad in bad_requests:
    good = {"listened_at": now - 5, "track_metadata": {"artist_name": "Never Counted", "track_name": "Never"}}
    r = requests.post(URL + "/1/submit-listens", data=json.dumps({"listen_type": "import", "payload": [good, bad]}),
                      headers={"Authorization": "Token " + TOKEN})
    body = r.json()
    check(r.status_code == 400 and body.get("code") == 400 and body.get("error"),
          "invalid listen (%s): 400 %s" % (what, body.get("error")))

# another user's token submits for that user, never for ours
other = ListenBrainz(api_base_url=URL)
other.set_auth_token(OTHER_TOKEN)
other_listens = [make_listen(now - 1000 - i) for i in range(5)]
other.submit_multiple_listens([to_lb(*l) for l in other_listens])

expected = len(counted)


def wait_count(c, user, want, limit=90):
    deadline = time.time() + limit
    got = None
    while time.time() < deadline:
        try:
            got = c.get_user_listen_count(user)
        except ListenBrainzAPIException as e:
            if e.status_code != 404:  # 404: none of the user's listens counted yet
                raise
            got = None
        if got == want:
            return got, True
        time.sleep(0.2)
    return got, False


got, ok = wait_count(client, USER, expected)
check(ok, "listen-count: %s, want %d distinct listens (%.1f s after the first submission)" % (got, expected, time.time() - start))
got, ok = wait_count(client, OTHER_USER, len(other_listens))
check(ok, "listen-count of the other user: %s, want %d (their token counted for them)" % (got, len(other_listens)))
check(client.get_user_listen_count(USER) == expected, "listen-count unchanged by the other user's listens")

# ------------------------------------------------------------ playing now

client.submit_playing_now(Listen(track_name="Now Song", artist_name="Now Artist", additional_info={"duration": 240}))
pn = client.get_playing_now(USER)
check(pn is not None and pn.track_name == "Now Song" and pn.artist_name == "Now Artist", "playing-now: %r" % (pn and pn.track_name))
check(client.get_user_listen_count(USER) == expected, "playing now is not counted")
check(client.get_playing_now(OTHER_USER) is None, "the other user plays nothing now")

# ------------------------------------------------------------ listens

ordered = sorted(counted.values(), key=lambda l: -l[0])


def same_listens(got, want, what):
    g = [(l.listened_at, norm(l.artist_name), norm(l.track_name)) for l in got]
    w = [(l[0], norm(l[1]), norm(l[2])) for l in want]
    check(g == w, "%s: %d listens%s" % (what, len(g), "" if g == w else ", want %d: first %r vs %r" % (len(w), g[:2], w[:2])))


same_listens(client.get_listens(USER), ordered[:25], "get_listens() newest 25")
same_listens(client.get_listens(USER, count=100), ordered[:100], "get_listens(count=100)")
max_ts = ordered[500][0]
same_listens(client.get_listens(USER, max_ts=max_ts, count=50), ordered[501:551], "get_listens(max_ts, count=50)")
min_ts = ordered[1500][0]
after = [l for l in ordered if l[0] > min_ts]
same_listens(client.get_listens(USER, min_ts=min_ts, count=40), after[-40:], "get_listens(min_ts, count=40): the oldest 40 after it")
msids = {l.recording_msid for l in client.get_listens(USER, count=5)}
check(all(m and len(m) == 36 for m in msids), "listens carry a recording_msid: %r" % sorted(msids)[:2])

# ------------------------------------------------------------ stats


def period(rng_name, today):
    """The calendar period of a range, as topk documents it (weeks start on
    Monday; this_*: the current period through today; the others: the full
    period before the current one), as [from, to) dates."""
    def month_start(d):
        return d.replace(day=1)

    def add_months(d, n):
        m = d.month - 1 + n
        return d.replace(year=d.year + m // 12, month=m % 12 + 1, day=1)

    if rng_name == "all_time":
        return dt.date(2002, 1, 1), today + dt.timedelta(days=1)
    if rng_name in ("this_week", "week"):
        start = today - dt.timedelta(days=today.weekday())
        if rng_name == "week":
            start -= dt.timedelta(days=7)
        return start, start + dt.timedelta(days=7)
    if rng_name in ("this_month", "month"):
        start = month_start(today)
        if rng_name == "month":
            start = add_months(start, -1)
        return start, add_months(start, 1)
    if rng_name in ("this_year", "year"):
        start = dt.date(today.year - (rng_name == "year"), 1, 1)
        return start, dt.date(start.year + 1, 1, 1)
    if rng_name == "quarter":
        start = add_months(dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), -3)
        return start, add_months(start, 3)
    if rng_name == "half_yearly":
        start = add_months(dt.date(today.year, 6 * ((today.month - 1) // 6) + 1, 1), -6)
        return start, add_months(start, 6)
    raise ValueError(rng_name)


def epoch(d):
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp())


today = dt.datetime.now(dt.timezone.utc).date()
getters = {
    "artists": (client.get_user_artists, lambda l: norm(l[1])),
    "recordings": (client.get_user_recordings, lambda l: (norm(l[1]), norm(l[2]))),
    "releases": (client.get_user_releases, lambda l: (norm(l[1]), norm(l[3])) if l[3] else None),
    "release_groups": (client.get_user_release_groups, lambda l: (norm(l[1]), norm(l[3])) if l[3] else None),
}
ALL_RANGES = ["all_time", "this_year", "year", "half_yearly", "quarter", "month", "this_month", "week", "this_week"]


def check_stats(ranges, tag=""):
    """The top charts of each range against counted (what was sent and not
    deleted), every entity."""
    for rng_name in ranges:
        lo, hi = period(rng_name, today)
        in_range = [l for l in counted.values() if epoch(lo) <= l[0] < epoch(hi)]
        for entity, (get, key) in getters.items():
            want = Counter(k for k in map(key, in_range) if k is not None)
            ans = get(USER, count=1000, time_range=rng_name)
            if not want:
                check(ans is None, "%s%s %s: no listens in %s..%s, want no stats (204): %r" % (tag, entity, rng_name, lo, hi, ans and ans["payload"].get("count")))
                continue
            if ans is None:
                check(False, "%s%s %s: 204, want %d items" % (tag, entity, rng_name, len(want)))
                continue
            p = ans["payload"]
            items = p[entity]
            got_counts = [it["listen_count"] for it in items]
            ok = (sorted(got_counts, reverse=True) == got_counts == sorted(want.values(), reverse=True)
                  and p["total_%s_count" % entity[:-1]] == len(want) and p["count"] == len(items) and p["user_id"] == USER and p["range"] == rng_name)
            if rng_name != "all_time":
                ok = ok and p["from_ts"] == epoch(lo) and p["to_ts"] == epoch(hi)
            check(ok, "%s%s %s: %d items, %d listens%s" % (tag, entity, rng_name, len(items), sum(got_counts),
                                                        "" if ok else " (want %d items, %d listens; payload keys %s)" % (len(want), sum(want.values()), sorted(p))))
            # the top names are spellings that were sent
            if items and entity == "artists":
                top = items[0]["artist_name"]
                check(norm(top) in {norm(a) for a in ARTISTS}, "%sartists %s: top artist %r is one that was sent" % (tag, rng_name, top))


check_stats(ALL_RANGES)

# paging
a = client.get_user_artists(USER, count=3, offset=2)["payload"]
full = client.get_user_artists(USER, count=5)["payload"]
check([x["listen_count"] for x in a["artists"]] == [x["listen_count"] for x in full["artists"][2:5]] and a["offset"] == 2,
      "get_user_artists(count=3, offset=2) pages the chart")

# listening activity (liblistenbrainz has no method for it: requests)
def check_activity(ranges, tag=""):
    for rng_name in ranges:
        r = requests.get(URL + "/1/stats/user/%s/listening-activity" % USER, params={"range": rng_name})
        rows = r.json()["payload"]["listening_activity"]
        ok = r.status_code == 200 and rows
        for row in rows:
            n = sum(1 for l in counted.values() if row["from_ts"] <= l[0] <= row["to_ts"])
            if n != row["listen_count"]:
                ok = False
                print("     %s %s: %d listens, want %d" % (rng_name, row["time_range"], row["listen_count"], n))
        check(ok, "%slistening-activity %s: %d buckets, %d listens" % (tag, rng_name, len(rows), sum(r["listen_count"] for r in rows)))


check_activity(["week", "month", "year", "all_time"])

# ------------------------------------------------------------ errors

def post(body, token=TOKEN, raw=None):
    h = {"Authorization": "Token " + token} if token is not None else {}
    return requests.post(URL + "/1/submit-listens", data=raw if raw is not None else json.dumps(body), headers=h)


one = {"listened_at": now - 3, "track_metadata": {"artist_name": "e", "track_name": "e"}}
for what, r, code in [
    ("no Authorization header", post({"listen_type": "single", "payload": [one]}, token=None), 401),
    ("bad token", post({"listen_type": "single", "payload": [one]}, token="0d0d0d0d-0000-4000-8000-000000000000"), 401),
    ("bad listen_type", post({"listen_type": "sometimes", "payload": [one]}), 400),
    ("missing artist_name", post({"listen_type": "single", "payload": [{"listened_at": now, "track_metadata": {"track_name": "t"}}]}), 400),
    ("missing payload", post({"listen_type": "single"}), 400),
    ("oversized payload", post(None, raw='{"listen_type":"import","payload":[],"pad":"' + "x" * 10240001 + '"}'), 400),
]:
    body = r.json()
    check(r.status_code == code and body.get("code") == code and isinstance(body.get("error"), str) and body["error"],
          "%s: %d %s" % (what, r.status_code, body.get("error")))
try:
    client.get_user_artists(USER, time_range="decade")
    check(False, "an unknown range is refused")
except Exception as e:  # the client refuses it itself; the server's own answer:
    r = requests.get(URL + "/1/stats/user/%s/artists" % USER, params={"range": "decade"})
    check(r.status_code == 400 and r.json().get("error") == "Invalid range: decade", "unknown range: %d %s" % (r.status_code, r.text.strip()))
try:
    client.get_user_listen_count("nobody-" + USER)
    check(False, "an unknown user is a 404")
except ListenBrainzAPIException as e:
    check(e.status_code == 404, "unknown user: %d %s" % (e.status_code, e.message))

check(client.get_user_listen_count(USER) == expected, "listen-count after the errors: nothing else counted")

# ------------------------------------------------------------ deletes
# Listens deleted with their listened_at and recording_msid as /listens
# answers them (client.delete_listen takes such a Listen): the newest one,
# one that was submitted twice (in another spelling), one from the middle
# of the history, and one that is then submitted again (counted again).
# A delete that matches nothing, a delete sent twice and a delete with our
# token of the other user's listen change nothing. Then listen-count, the
# listens and the stats must be the count made here minus the deleted.


def listen_at(c, user, ts):
    """The listen at second ts as /listens answers it (one listen per second
    here: the seconds were sampled without repeats)."""
    got = c.get_listens(user, max_ts=ts + 1, count=1)
    return got[0] if got and got[0].listened_at == ts else None


def delete_raw(body, token=TOKEN, ctype="application/json"):
    h = {"Content-Type": ctype} if ctype else {}
    if token is not None:
        h["Authorization"] = "Token " + token
    return requests.post(URL + "/1/delete-listen", data=json.dumps(body), headers=h)


dup_ts = dups[0][0]
targets = [("the newest listen", ordered[0][0]), ("a listen submitted twice", dup_ts),
           ("a listen from the middle", ordered[len(ordered) // 2][0]), ("a listen then submitted again", ordered[7][0])]
deleted = []
for what, ts in targets:
    if any(ts == d[1] for d in deleted):
        continue  # the picks coincide (unlikely): one delete
    l = listen_at(client, USER, ts)
    if l is None or not l.recording_msid:
        check(False, "delete %s: no listen at %d in /listens" % (what, ts))
        continue
    r = client.delete_listen(l)
    check(r == {"status": "ok"}, "delete %s (%d, %s): %r" % (what, ts, l.recording_msid, r))
    deleted.append((what, ts, l))
for what, ts, l in deleted:
    if what == "a listen then submitted again":
        first = counted[identity(ts, l.artist_name, l.track_name)]
        r = client.submit_single_listen(to_lb(*first))
        check(r == {"status": "ok"}, "the deleted listen submitted again: %r" % r)
    else:
        del counted[identity(ts, l.artist_name, l.track_name)]
# the duplicate's delete again, its msid in upper case: harmless
dup = next((l for what, ts, l in deleted if ts == dup_ts), None)
if dup is not None:
    r = delete_raw({"listened_at": dup_ts, "recording_msid": dup.recording_msid.upper()})
    check(r.status_code == 200 and r.json() == {"status": "ok"}, "the same delete again: %d %s" % (r.status_code, r.text.strip()))
# an msid that matches nothing, at the second of a listen that stays
r = delete_raw({"listened_at": ordered[1][0], "recording_msid": "0d0d0d0d-0000-4000-8000-000000000001"})
check(r.status_code == 200 and r.json() == {"status": "ok"}, "a delete that matches nothing: %d %s" % (r.status_code, r.text.strip()))
# our token cannot delete the other user's listen: it deletes ours at that second, of which there is none
theirs = other.get_listens(OTHER_USER, count=1)[0]
r = delete_raw({"listened_at": theirs.listened_at, "recording_msid": theirs.recording_msid})
check(r.status_code == 200, "a delete of the other user's listen with our token: %d (deletes nothing of theirs)" % r.status_code)
# errors, in ListenBrainz's words
for what, r, code, msg in [
    ("no token", delete_raw({"listened_at": now, "recording_msid": theirs.recording_msid}, token=None), 401,
     "You need to provide an Authorization header."),
    ("no listened_at", delete_raw({"recording_msid": theirs.recording_msid}), 400, "Listen timestamp missing."),
    ("bad listened_at", delete_raw({"listened_at": "noon", "recording_msid": theirs.recording_msid}), 400, "noon: Listen timestamp invalid."),
    ("no recording_msid", delete_raw({"listened_at": now}), 400, "Recording MSID missing."),
    ("bad recording_msid", delete_raw({"listened_at": now, "recording_msid": "x"}), 400, "x: Recording MSID format invalid."),
    ("no JSON content type", delete_raw({"listened_at": now, "recording_msid": theirs.recording_msid}, ctype=None), 415, None),
]:
    body = r.json()
    check(r.status_code == code and body.get("code") == code and (msg is None or body.get("error") == msg),
          "delete-listen, %s: %d %s" % (what, r.status_code, body.get("error")))

expected = len(counted)
got, ok = wait_count(client, USER, expected)
check(ok, "listen-count after %d deletes (one listen submitted again): %s, want %d" % (len(deleted), got, expected))
got, ok = wait_count(other, OTHER_USER, len(other_listens), limit=5)
check(ok, "listen-count of the other user after our deletes: %s, want %d" % (got, len(other_listens)))

ordered = sorted(counted.values(), key=lambda l: -l[0])
deadline = time.time() + 30
while time.time() < deadline:  # raw_listens may follow the counts by a moment
    got = client.get_listens(USER, count=100)
    if [l.listened_at for l in got] == [l[0] for l in ordered[:100]]:
        break
    time.sleep(0.2)
same_listens(client.get_listens(USER, count=100), ordered[:100], "after the deletes: get_listens(count=100)")


def settled():
    """Whether the answers that read Cassandra show the deletes: a delete
    of a listen older than the view's days changes Cassandra only, and
    the flusher's and raw writer's notices end the api's cached answers
    of it (processors/stored) once Cassandra holds the change."""
    for what, ts, l in deleted:
        want = [x[0] for x in ordered if x[0] < ts + 1][:3]
        if [x.listened_at for x in client.get_listens(USER, max_ts=ts + 1, count=3)] != want:
            return False
    for rng_name in ["all_time", "this_year"]:
        lo, hi = period(rng_name, today)
        want = sum(1 for l in counted.values() if epoch(lo) <= l[0] < epoch(hi))
        ans = client.get_user_recordings(USER, count=1000, time_range=rng_name)
        if ans is None or sum(it["listen_count"] for it in ans["payload"]["recordings"]) != want:
            return False
    return True


start = time.time()
while not settled() and time.time() < start + 50:
    time.sleep(0.2)
print("     the answers that read Cassandra showed the deletes %.1f s after listen-count did (the cache's TTL is 30 s)" % (time.time() - start))
for what, ts, l in deleted:
    before = [x for x in ordered if x[0] < ts + 1][:3]
    same_listens(client.get_listens(USER, max_ts=ts + 1, count=3), before, "after the deletes: get_listens(max_ts) at %s" % what)
check_stats(["all_time", "this_year", "this_month", "this_week", "quarter"], "after the deletes: ")
check_activity(["week", "all_time"], "after the deletes: ")

print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
