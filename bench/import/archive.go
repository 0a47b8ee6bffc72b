// The generated archive: a decade of one listener's streams written as
// Spotify writes its Extended Streaming History, and what topk must count
// from it, computed here from the streams themselves (the independent
// count), never by the code under measurement.

package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Spotify's layout of the archive.
const (
	archiveFolder = "Spotify Extended Streaming History/"
	archivePDF    = archiveFolder + "ReadMeFirst_ExtendedStreamingHistory.pdf"
	// minPlayedMS is Spotify's (and topk's) shortest stream that counts.
	minPlayedMS = 30_000
)

// The reasons the import report gives (imports.Skip…, listen's
// played_at_out_of_range), spelled out here as the report prints them.
const (
	reasonTooShort   = "too_short"
	reasonEpisode    = "podcast_episode"
	reasonAudiobook  = "audiobook"
	reasonNoMetadata = "no_track_metadata"
	reasonOutOfRange = "played_at_out_of_range"
)

// archiveConfig is what to generate.
type archiveConfig struct {
	Streams int       // stream objects of the decade (duplicates not included)
	Years   int       // how far back the history goes
	PerFile int       // streams per Streaming_History_Audio file (Spotify: ~16k)
	Dups    int       // streams repeated at the start of the next file
	Offline int       // streams whose ts Spotify wrote as 1970 (refused)
	Now     time.Time // the last stream ends shortly before it
	Seed    uint64
}

type kind uint8

const (
	kindMusic kind = iota
	kindEpisode
	kindVideo // a video podcast episode, written in the Video file
	kindAudiobook
	kindNoMetadata
)

// stream is one object of the archive.
type stream struct {
	end       int64 // ts, Unix seconds
	ms        int64 // ms_played
	item      int32 // track (music), episode, or audiobook chapter index
	kind      kind
	incognito bool
	shuffle   bool
	offline   bool // Spotify lost its time: ts 1970-01-01
	start     uint8
	stop      uint8
	platform  uint8
}

// reason_start and reason_end values.
var reasons = []string{"trackdone", "fwdbtn", "clickrow", "playbtn", "appload", "endplay", "logout", "backbtn", "remote"}

const (
	rTrackDone = iota
	rFwdBtn
	rClickRow
	rPlayBtn
	rAppLoad
	rEndPlay
	rLogout
	rBackBtn
	rRemote
)

// outcome is what the import must do with s, by Spotify's rules as
// imports/spotify.go states them (music only, ms_played ≥ 30 s, a 1970
// ts is outside the contract's window): skipped or refused with a
// reason, or accepted ("", "").
func (s *stream) outcome() (skip, refuse string) {
	switch {
	case s.kind == kindEpisode || s.kind == kindVideo:
		return reasonEpisode, ""
	case s.kind == kindAudiobook:
		return reasonAudiobook, ""
	case s.kind == kindNoMetadata:
		return reasonNoMetadata, ""
	case s.ms < minPlayedMS:
		return reasonTooShort, ""
	case s.offline:
		return "", reasonOutOfRange
	}
	return "", ""
}

// The catalogue: artists, their albums and tracks, podcast shows and
// audiobooks. Names are unique where topk's keys must tell them apart
// (artists; an artist's albums; an artist's tracks) even case-folded, so
// counting by name here is counting by topk's item keys.
type catalogue struct {
	artists  []string
	albumsOf [][]int32 // per artist, its albums
	albums   []album
	tracks   []track
	episodes []episode
	chapters []episode // audiobook chapters: show is the book
	shows    []string  // podcast shows
	books    []string  // audiobook titles
	bookURIs []string
}

type album struct {
	name   string
	artist int32
	tracks []int32
}

type track struct {
	name   string
	album  int32
	artist int32
	uri    string
	ms     int64 // length
}

type episode struct {
	name string
	show int32
	uri  string
	ms   int64
}

// history is the generated archive and its expectation.
type history struct {
	cfg     archiveConfig
	cat     *catalogue
	streams []stream // the decade's streams in time order (video ones included)
	files   []*archiveFile
	// listens are the distinct accepted listens, in time order.
	listens []counted
}

// counted is one listen topk must count: its day and track.
type counted struct {
	sec   int64
	track int32
}

// archiveFile is one JSON file of the archive and what its import must
// report.
type archiveFile struct {
	name     string
	streams  []int32 // indexes into history.streams, in file order
	read     int
	accepted int
	skipped  map[string]int
	refused  map[string]int
}

// generate makes a decade of streams.
func generate(cfg archiveConfig) *history {
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d))
	h := &history{cfg: cfg}
	h.cat = newCatalogue(r, max(60, cfg.Streams/50))
	h.listen(r)
	h.split()
	h.expect()
	return h
}

// words are what names are made of.
var (
	adjectives = strings.Fields("Velvet Silver Hollow Electric Quiet Golden Broken Midnight Paper Neon Northern Wild Blue Crimson " +
		"Distant Gentle Lonely Bright Frozen Secret Violet Burning Silent Restless Tender Hidden Falling Endless Sleeping Wandering")
	plurals = strings.Fields("Owls Rivers Lights Hearts Machines Ghosts Wolves Tides Stars Gardens Mirrors Engines Birds Sparrows " +
		"Horses Lanterns Comets Foxes Islands Signals Echoes Clouds Harbours Pilots Sailors Dancers")
	nouns = strings.Fields("Heart River Night Summer Fire Ocean Dream Rain Road Home Light City Shadow Morning Window Letter " +
		"Island Signal Echo Garden Winter Harbour Mountain Thunder Silence Highway Station Desert Forest Mirror Circle Engine Lantern")
	firstNames = strings.Fields("Mira Jonas Elin Oskar Lena Tomás Aino Felix Nora Emil Ida Hugo Saga Leon Alva Viktor Maja Anton " +
		"Frida Linnea Björn Astrid Noé Inès Zoë Mateo Chloé Søren")
	consonants = strings.Fields("b d f g k l m n p r s t v z br dr kr st tr sk sl gr fl")
	vowels     = []string{"a", "e", "i", "o", "u", "a", "e", "o", "y", "é", "ö", "å", "ø", "ü"}
)

// word is an invented capitalized word of 2–3 syllables, now and then
// with a diacritic (precomposed: names are NFC as Spotify sends them).
func word(r *rand.Rand) string {
	var b strings.Builder
	for range 2 + r.IntN(2) {
		b.WriteString(consonants[r.IntN(len(consonants))])
		v := r.IntN(len(vowels))
		if v >= 9 && r.IntN(4) != 0 { // diacritics are rarer
			v = r.IntN(9)
		}
		b.WriteString(vowels[v])
	}
	if r.IntN(3) == 0 {
		b.WriteString(consonants[r.IntN(10)])
	}
	s := b.String()
	c, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(c)) + s[n:]
}

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

func artistName(r *rand.Rand) string {
	switch n := r.IntN(20); {
	case n < 6:
		return "The " + pick(r, adjectives) + " " + pick(r, plurals)
	case n < 12:
		return pick(r, firstNames) + " " + word(r)
	case n < 17:
		return word(r)
	case n < 19:
		return word(r) + " & the " + pick(r, plurals)
	default:
		return word(r) + " " + word(r)
	}
}

func albumName(r *rand.Rand) string {
	var s string
	switch n := r.IntN(10); {
	case n < 4:
		s = pick(r, adjectives) + " " + pick(r, plurals)
	case n < 7:
		s = word(r)
	default:
		s = pick(r, nouns) + " of " + pick(r, plurals)
	}
	if r.IntN(12) == 0 {
		s += " (Deluxe Edition)"
	}
	return s
}

func trackName(r *rand.Rand, artists []string) string {
	switch n := r.IntN(20); {
	case n < 6:
		return pick(r, nouns)
	case n < 11:
		return pick(r, adjectives) + " " + pick(r, nouns)
	case n < 13:
		return pick(r, nouns) + " of the " + pick(r, plurals)
	case n < 16:
		return word(r)
	case n < 17:
		return pick(r, adjectives) + " " + pick(r, nouns) + " - Live"
	case n < 18:
		return pick(r, nouns) + " - 2011 Remaster"
	case n < 19 && len(artists) > 0:
		return pick(r, nouns) + " (feat. " + pick(r, artists) + ")"
	default:
		return word(r) + " " + pick(r, nouns)
	}
}

// unique makes name unique in seen under case folding (the names use
// letters whose lower case is their fold) by numbering it.
func unique(seen map[string]bool, name string) string {
	for i := 1; ; i++ {
		n := name
		if i > 1 {
			n = name + " " + strconv.Itoa(i)
		}
		if k := strings.ToLower(n); !seen[k] {
			seen[k] = true
			return n
		}
	}
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func spotifyID(r *rand.Rand) string {
	b := make([]byte, 22)
	for i := range b {
		b[i] = base62[r.IntN(len(base62))]
	}
	return string(b)
}

func newCatalogue(r *rand.Rand, artists int) *catalogue {
	c := &catalogue{}
	seenArtists := map[string]bool{}
	for range artists {
		c.artists = append(c.artists, unique(seenArtists, artistName(r)))
	}
	c.albumsOf = make([][]int32, artists)
	for a := range artists {
		seenAlbums, seenTracks := map[string]bool{}, map[string]bool{}
		for range 1 + min(9, int(r.ExpFloat64()*2.5)) {
			al := album{name: unique(seenAlbums, albumName(r)), artist: int32(a)}
			n := 1 // a single
			if r.IntN(4) != 0 {
				n = 7 + r.IntN(9)
			}
			for range n {
				ms := int64(max(95_000, min(600_000, 215_000+r.NormFloat64()*55_000)))
				c.tracks = append(c.tracks, track{name: unique(seenTracks, trackName(r, c.artists)), album: int32(len(c.albums)),
					artist: int32(a), uri: "spotify:track:" + spotifyID(r), ms: ms})
				al.tracks = append(al.tracks, int32(len(c.tracks)-1))
			}
			c.albumsOf[a] = append(c.albumsOf[a], int32(len(c.albums)))
			c.albums = append(c.albums, al)
		}
	}
	for i := range 40 {
		var show string
		switch i % 3 {
		case 0:
			show = "The " + word(r) + " Podcast"
		case 1:
			show = pick(r, adjectives) + " " + pick(r, nouns) + " Talks"
		default:
			show = word(r) + " & " + word(r)
		}
		c.shows = append(c.shows, show)
		for e := range 60 {
			c.episodes = append(c.episodes, episode{name: fmt.Sprintf("Episode %d: %s %s", e+1, pick(r, adjectives), pick(r, nouns)),
				show: int32(i), uri: "spotify:episode:" + spotifyID(r), ms: int64(600_000 + r.IntN(3_600_000))})
		}
	}
	for b := range 8 {
		c.books = append(c.books, "The "+pick(r, nouns)+" of "+word(r))
		c.bookURIs = append(c.bookURIs, "spotify:show:"+spotifyID(r))
		for ch := range 30 {
			c.chapters = append(c.chapters, episode{name: fmt.Sprintf("Chapter %d", ch+1), show: int32(b),
				uri: "spotify:episode:" + spotifyID(r), ms: int64(900_000 + r.IntN(1_200_000))})
		}
	}
	return c
}

// hourWeights: when listening sessions start (UTC), per hour of the day.
var hourWeights = [24]float64{1, 0.5, 0.2, 0.1, 0.1, 0.3, 1, 3, 4, 2, 2, 2, 2.5, 2, 2, 2, 3, 4, 3.5, 3, 3, 3, 2.5, 1.5}

func weighted(r *rand.Rand, w []float64) int {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	x := r.Float64() * sum
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

// listen makes the decade's streams: days with more or less listening
// (none on some, more on weekends, more in later years), sessions of
// music (shuffled hits or an album in order, with skips), podcasts and,
// since late 2023, audiobooks; favourite artists change every year.
func (h *history) listen(r *rand.Rand) {
	cfg, cat := h.cfg, h.cat
	now := cfg.Now.UTC()
	today := now.Truncate(24 * time.Hour)
	first := today.AddDate(-cfg.Years, 0, 0)
	days := int(today.Sub(first)/(24*time.Hour)) + 1

	// How many streams each day gets.
	weights := make([]float64, days)
	sum := 0.0
	for d := range weights {
		day := first.AddDate(0, 0, d)
		if r.Float64() < 0.12 {
			continue // a day without Spotify
		}
		w := (0.6 + 0.8*float64(d)/float64(days)) * math.Exp(r.NormFloat64()*0.5)
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			w *= 1.3
		}
		weights[d] = w
		sum += w
	}
	counts := make([]int, days)
	acc := 0.0
	given := 0
	for d, w := range weights {
		acc += w / sum * float64(cfg.Streams)
		counts[d] = min(600, int(math.Round(acc))-given) // far under the daily cap of 2000
		given += counts[d]
	}

	// Favourite artists by year: the Zipf ranks map to artists through a
	// permutation whose top ranks are reshuffled every year.
	zipfArtist := rand.NewZipf(r, 1.07, 3, uint64(len(cat.artists)-1))
	perm := make([]int32, len(cat.artists))
	for i := range perm {
		perm[i] = int32(i)
	}
	year := -1
	cutoff := now.Add(-time.Minute).Unix()
	books := time.Date(2023, 10, 1, 0, 0, 0, 0, time.UTC)
	var end int64 // the end of the last stream
	for d := range days {
		day := first.AddDate(0, 0, d)
		if day.Year() != year {
			year = day.Year()
			for i := range min(300, len(perm)) {
				j := r.IntN(min(1500, len(perm)))
				perm[i], perm[j] = perm[j], perm[i]
			}
		}
		left := counts[d]
		if d == days-1 {
			// Today: as many as fit before now, at least one.
			left = max(1, min(40, int(now.Sub(today)/(4*time.Minute))))
		}
		var hours []int
		for range 1 + left/20 {
			hours = append(hours, weighted(r, hourWeights[:]))
		}
		slices.Sort(hours)
		if d == days-1 {
			hours = []int{0}
		}
		for s := 0; left > 0; s++ {
			at := day.Add(time.Duration(hours[min(s, len(hours)-1)])*time.Hour + time.Duration(r.IntN(3600))*time.Second).Unix()
			if d == days-1 {
				at = max(day.Unix(), now.Add(-time.Duration(left)*4*time.Minute).Unix())
			}
			at = max(at, end+int64(60+r.IntN(600)))
			n := min(left, 1+int(r.ExpFloat64()*14))
			if d == days-1 {
				n = left
			}
			left -= n
			sess := stream{shuffle: r.IntN(2) == 0, incognito: r.IntN(100) == 0, platform: uint8(r.IntN(3))}
			sess.start = rClickRow
			if r.IntN(3) == 0 {
				sess.start = rAppLoad
			}
			switch x := r.Float64(); {
			case x < 0.22 && d != days-1:
				end = h.podcast(r, sess, at, n)
			case x < 0.26 && day.After(books) && d != days-1:
				end = h.audiobook(r, sess, at, n)
			case x < 0.5:
				end = h.albumSession(r, sess, at, n, zipfArtist, perm)
			default:
				end = h.mixSession(r, sess, at, n, zipfArtist, perm)
			}
		}
	}
	// Nothing ends after now − 1 min (a session of yesterday may have run
	// late); today keeps at least one stream.
	cut := len(h.streams)
	for cut > 0 && h.streams[cut-1].end > cutoff {
		cut--
	}
	h.streams = h.streams[:cut]
	if len(h.streams) == 0 || h.streams[len(h.streams)-1].end < today.Unix() {
		t := &cat.tracks[cat.albums[cat.albumsOf[perm[0]][0]].tracks[0]]
		h.streams = append(h.streams, stream{end: max(today.Unix(), cutoff), ms: t.ms, item: int32(cat.albums[cat.albumsOf[perm[0]][0]].tracks[0]),
			kind: kindMusic, start: rClickRow, stop: rTrackDone})
	}
	// Spotify writes a few offline streams with ts 1970: music that
	// counted, now refused.
	for range cfg.Offline {
		for tries := 0; tries < 1000; tries++ {
			s := &h.streams[r.IntN(len(h.streams)-1)]
			if sk, rf := s.outcome(); sk == "" && rf == "" {
				s.offline = true
				break
			}
		}
	}
}

// play appends one music stream of track t at the end of at, skipped or
// not, and returns when it ended.
func (h *history) play(r *rand.Rand, sess stream, at int64, t int32, skipP float64, first bool) int64 {
	s := sess
	s.kind, s.item = kindMusic, t
	length := h.cat.tracks[t].ms
	s.stop = rTrackDone
	switch x := r.Float64(); {
	case x < skipP:
		s.ms = r.Int64N(minPlayedMS) // a skip: under 30 s
		s.stop = rFwdBtn
	case x < skipP+0.08:
		s.ms = minPlayedMS + r.Int64N(length-minPlayedMS) // stopped part-way, still a play
		s.stop = rEndPlay
	case x < skipP+0.081:
		s.ms = minPlayedMS // exactly the minimum: counts
		s.stop = rFwdBtn
	case x < skipP+0.082:
		s.ms = minPlayedMS - 1 // a millisecond short: does not
		s.stop = rFwdBtn
	default:
		s.ms = length
	}
	if !first {
		s.start = rTrackDone
		if r.IntN(10) == 0 {
			s.start = rFwdBtn
		}
	}
	if r.IntN(500) == 0 {
		s.kind = kindNoMetadata // a stream whose metadata Spotify lost
	}
	s.end = at + (s.ms+999)/1000
	h.streams = append(h.streams, s)
	return s.end + int64(r.IntN(3))
}

func (h *history) mixSession(r *rand.Rand, sess stream, at int64, n int, z *rand.Zipf, perm []int32) int64 {
	cat := h.cat
	for i := range n {
		a := perm[z.Uint64()]
		albums := cat.albumsOf[a]
		al := cat.albums[albums[zipfIndex(r, len(albums), 1.4)]]
		t := al.tracks[zipfIndex(r, len(al.tracks), 1.2)]
		at = h.play(r, sess, at, t, 0.30, i == 0)
	}
	return at
}

func (h *history) albumSession(r *rand.Rand, sess stream, at int64, n int, z *rand.Zipf, perm []int32) int64 {
	cat := h.cat
	a := perm[z.Uint64()]
	albums := cat.albumsOf[a]
	al := cat.albums[albums[zipfIndex(r, len(albums), 1.4)]]
	from := 0
	if r.IntN(3) == 0 {
		from = r.IntN(len(al.tracks))
	}
	sess.shuffle = false
	for i := range n {
		at = h.play(r, sess, at, al.tracks[(from+i)%len(al.tracks)], 0.12, i == 0)
	}
	return at
}

func (h *history) podcast(r *rand.Rand, sess stream, at int64, n int) int64 {
	show := r.IntN(len(h.cat.shows) / 4) // a few shows of all
	if r.IntN(5) == 0 {
		show = r.IntN(len(h.cat.shows))
	}
	video := time.Unix(at, 0).UTC().Year() >= 2021 && r.IntN(8) == 0
	episodes := min(n, 1+r.IntN(2))
	for range episodes {
		e := show*60 + r.IntN(60)
		s := sess
		s.kind, s.item, s.shuffle = kindEpisode, int32(e), false
		if video {
			s.kind = kindVideo
		}
		s.ms = h.cat.episodes[e].ms
		s.stop = rTrackDone
		if r.IntN(3) == 0 {
			s.ms = r.Int64N(s.ms)
			s.stop = rEndPlay
		}
		s.end = at + (s.ms+999)/1000
		h.streams = append(h.streams, s)
		at = s.end + 5
	}
	// What the session had left is music.
	if rest := n - episodes; rest > 0 {
		return h.albumSessionRest(r, sess, at, rest)
	}
	return at
}

// albumSessionRest: after a podcast, one album from its start.
func (h *history) albumSessionRest(r *rand.Rand, sess stream, at int64, n int) int64 {
	al := h.cat.albums[r.IntN(len(h.cat.albums))]
	for i := range n {
		at = h.play(r, sess, at, al.tracks[i%len(al.tracks)], 0.2, i == 0)
	}
	return at
}

func (h *history) audiobook(r *rand.Rand, sess stream, at int64, n int) int64 {
	b := r.IntN(len(h.cat.books))
	ch := r.IntN(30)
	chapters := min(n, 3)
	for i := range chapters {
		c := b*30 + (ch+i)%30
		s := sess
		s.kind, s.item, s.shuffle = kindAudiobook, int32(c), false
		s.ms = h.cat.chapters[c].ms
		s.stop = rTrackDone
		s.end = at + (s.ms+999)/1000
		h.streams = append(h.streams, s)
		at = s.end + 2
	}
	if rest := n - chapters; rest > 0 {
		return h.albumSessionRest(r, sess, at, rest)
	}
	return at
}

// zipfIndex is an index in [0, n) with weights 1/(i+1)^s: the first
// tracks of an album and albums of an artist are played most.
func zipfIndex(r *rand.Rand, n int, s float64) int {
	total := 0.0
	for i := range n {
		total += math.Pow(float64(i+1), -s)
	}
	x := r.Float64() * total
	for i := range n {
		x -= math.Pow(float64(i+1), -s)
		if x < 0 {
			return i
		}
	}
	return n - 1
}

// split lays the streams out in files as Spotify does: audio in files of
// about PerFile streams named by the years they span, each repeating the
// last few streams of the one before; video podcasts in their own file.
func (h *history) split() {
	var audio, video []int32
	for i := range h.streams {
		if h.streams[i].kind == kindVideo {
			video = append(video, int32(i))
		} else {
			audio = append(audio, int32(i))
		}
	}
	years := func(idx []int32) string {
		lo, hi := 9999, 0
		for _, i := range idx {
			if s := &h.streams[i]; !s.offline {
				y := time.Unix(s.end, 0).UTC().Year()
				lo, hi = min(lo, y), max(hi, y)
			}
		}
		if lo == hi {
			return strconv.Itoa(lo)
		}
		return fmt.Sprintf("%d-%d", lo, hi)
	}
	for n := 0; len(audio) > 0; n++ {
		k := min(len(audio), h.cfg.PerFile)
		if len(audio)-k < h.cfg.PerFile/4 {
			k = len(audio) // no short last file
		}
		chunk := audio[:k]
		audio = audio[k:]
		f := &archiveFile{}
		if n > 0 && h.cfg.Dups > 0 {
			prev := h.files[n-1].streams
			f.streams = append(f.streams, prev[len(prev)-min(h.cfg.Dups, len(prev)):]...)
		}
		f.streams = append(f.streams, chunk...)
		f.name = fmt.Sprintf("%sStreaming_History_Audio_%s_%d.json", archiveFolder, years(chunk), n)
		h.files = append(h.files, f)
	}
	if len(video) > 0 {
		h.files = append(h.files, &archiveFile{name: archiveFolder + "Streaming_History_Video_" + years(video) + ".json", streams: video})
	}
}

// expect is the independent count: each file's report, and the distinct
// listens (identity: the second and the track, which names its artist).
func (h *history) expect() {
	seen := map[counted]bool{}
	for _, f := range h.files {
		f.skipped, f.refused = map[string]int{}, map[string]int{}
		for _, i := range f.streams {
			s := &h.streams[i]
			f.read++
			switch skip, refuse := s.outcome(); {
			case skip != "":
				f.skipped[skip]++
			case refuse != "":
				f.refused[refuse]++
			default:
				f.accepted++
				c := counted{sec: s.end, track: s.item}
				if !seen[c] {
					seen[c] = true
					h.listens = append(h.listens, c)
				}
			}
		}
	}
	slices.SortFunc(h.listens, func(a, b counted) int {
		if a.sec != b.sec {
			return int(a.sec - b.sec)
		}
		return int(a.track - b.track)
	})
}

// totals sums the files' counts.
func (h *history) totals() (read, accepted int, skipped, refused map[string]int) {
	skipped, refused = map[string]int{}, map[string]int{}
	for _, f := range h.files {
		read += f.read
		accepted += f.accepted
		for k, v := range f.skipped {
			skipped[k] += v
		}
		for k, v := range f.refused {
			refused[k] += v
		}
	}
	return read, accepted, skipped, refused
}

// platforms by era, as Spotify writes them.
var platforms = [][3]string{
	{"Android OS 6.0.1 API 23 (samsung, SM-G920F)", "iOS 10.2 (iPhone8,1)", "Windows 10 (10.0.14393; x64)"},
	{"Android OS 9 API 28 (samsung, SM-G960F)", "iOS 13.3 (iPhone11,2)", "Windows 10 (10.0.18363; x64)"},
	{"android", "ios", "windows"},
}

// write writes the archive as Spotify sends it (my_spotify_data.zip) to w.
func (h *history) write(w io.Writer) error {
	zw := zip.NewWriter(w)
	mod := h.cfg.Now.UTC()
	if _, err := zw.CreateHeader(&zip.FileHeader{Name: archiveFolder, Method: zip.Store, Modified: mod}); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, f := range h.files {
		buf.Reset()
		buf.WriteString("[\n")
		for j, i := range f.streams {
			if j > 0 {
				buf.WriteString(",\n")
			}
			h.appendJSON(&buf, &h.streams[i])
		}
		buf.WriteString("\n]")
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mod})
		if err != nil {
			return err
		}
		if _, err := fw.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: archivePDF, Method: zip.Deflate, Modified: mod})
	if err != nil {
		return err
	}
	if _, err := fw.Write([]byte("%PDF-1.4\n% a stand-in for Spotify's description of the fields\n%%EOF\n")); err != nil {
		return err
	}
	return zw.Close()
}

// writeFile writes the archive to path and returns its size.
func (h *history) writeFile(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	if err := h.write(f); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

// appendJSON writes one stream object the way Spotify's files have it:
// every field in Spotify's order, indented, null where not set.
func (h *history) appendJSON(b *bytes.Buffer, s *stream) {
	cat := h.cat
	ts := time.Unix(s.end, 0).UTC()
	if s.offline {
		ts = time.Unix(0, 0).UTC()
	}
	era := min(2, max(0, (ts.Year()-h.cfg.Now.Year()+h.cfg.Years)/4))
	var trackName, artist, albumName, uri, epName, epShow, epURI, book, bookURI, chURI, chTitle *string
	switch s.kind {
	case kindMusic:
		t := &cat.tracks[s.item]
		trackName, artist, albumName, uri = &t.name, &cat.artists[t.artist], &cat.albums[t.album].name, &t.uri
	case kindEpisode, kindVideo:
		e := &cat.episodes[s.item]
		epName, epShow, epURI = &e.name, &cat.shows[e.show], &e.uri
	case kindAudiobook:
		c := &cat.chapters[s.item]
		book, bookURI, chURI, chTitle = &cat.books[c.show], &cat.bookURIs[c.show], &c.uri, &c.name
	}
	field := func(name string, v *string) {
		b.WriteString(",\n    \"")
		b.WriteString(name)
		b.WriteString("\": ")
		if v == nil {
			b.WriteString("null")
			return
		}
		appendString(b, *v)
	}
	b.WriteString("  {\n    \"ts\": \"")
	b.WriteString(ts.Format(time.RFC3339))
	b.WriteString("\"")
	plat := platforms[era][s.platform%3]
	field("platform", &plat)
	b.WriteString(",\n    \"ms_played\": ")
	b.WriteString(strconv.FormatInt(s.ms, 10))
	country, ip := "SE", fmt.Sprintf("85.%d.%d.%d", 224+s.end%32, (s.end/86400)%256, s.platform)
	field("conn_country", &country)
	field("ip_addr", &ip)
	field("master_metadata_track_name", trackName)
	field("master_metadata_album_artist_name", artist)
	field("master_metadata_album_album_name", albumName)
	field("spotify_track_uri", uri)
	field("episode_name", epName)
	field("episode_show_name", epShow)
	field("spotify_episode_uri", epURI)
	field("audiobook_title", book)
	field("audiobook_uri", bookURI)
	field("audiobook_chapter_uri", chURI)
	field("audiobook_chapter_title", chTitle)
	field("reason_start", &reasons[s.start])
	field("reason_end", &reasons[s.stop])
	fmt.Fprintf(b, ",\n    \"shuffle\": %t,\n    \"skipped\": %t,\n    \"offline\": %t", s.shuffle, s.stop == rFwdBtn, s.offline)
	if s.offline {
		fmt.Fprintf(b, ",\n    \"offline_timestamp\": %d", s.end)
	} else {
		b.WriteString(",\n    \"offline_timestamp\": null")
	}
	fmt.Fprintf(b, ",\n    \"incognito_mode\": %t\n  }", s.incognito)
}

// appendString writes s as a JSON string.
func appendString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20:
			fmt.Fprintf(b, "\\u%04x", c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
}

// itemKey names an item as topk's keys tell items apart: an artist by
// its name (artist empty); a track or an album by its artist and name.
type itemKey struct{ artist, name string }

// rangeCount is what a range must answer: its plays, per day and per item.
type rangeCount struct {
	plays                   int64
	days                    map[string]int64 // YYYY-MM-DD
	artists, tracks, albums map[itemKey]int64
}

// day is the UTC day of a Unix second, as days since 1970-01-01.
func day(sec int64) int64 { return sec / 86400 }

// count counts the distinct listens of the days from..to (days since
// 1970-01-01, both included).
func (h *history) count(from, to int64) *rangeCount {
	c := &rangeCount{days: map[string]int64{}, artists: map[itemKey]int64{}, tracks: map[itemKey]int64{}, albums: map[itemKey]int64{}}
	cat := h.cat
	for _, l := range h.listens {
		if d := day(l.sec); d < from || d > to {
			continue
		}
		t := &cat.tracks[l.track]
		artist := cat.artists[t.artist]
		c.plays++
		c.days[time.Unix(l.sec, 0).UTC().Format(time.DateOnly)]++
		c.artists[itemKey{name: artist}]++
		c.tracks[itemKey{artist: artist, name: t.name}]++
		c.albums[itemKey{artist: artist, name: cat.albums[t.album].name}]++
	}
	return c
}

// days are the days with listens.
func (h *history) days() map[int64]bool {
	d := map[int64]bool{}
	for _, l := range h.listens {
		d[day(l.sec)] = true
	}
	return d
}
