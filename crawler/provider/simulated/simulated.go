package simulated

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/topk-charts/topk/crawler/provider"
)

// Population is a deterministic set of listeners. The zero value is not
// usable: use New.
type Population struct {
	seed    uint64
	artists int
	// mean plays per hour of an average listener, before the daily rhythm.
	meanPerHour float64
	history     time.Duration
}

// Config describes a population.
type Config struct {
	// Seed selects the population; default 1.
	Seed uint64
	// Artists in the catalogue; default 5000. Each has 3 albums of 10 tracks.
	Artists int
	// MeanPlaysPerHour of an average listener over a day; default 2.5.
	MeanPlaysPerHour float64
	// History is how far back a listener's plays go (a first crawl imports
	// all of it); default 30 days.
	History time.Duration
}

// New returns the population of cfg.
func New(cfg Config) *Population {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Artists <= 0 {
		cfg.Artists = 5000
	}
	if cfg.MeanPlaysPerHour <= 0 {
		cfg.MeanPlaysPerHour = 2.5
	}
	if cfg.History <= 0 {
		cfg.History = 30 * 24 * time.Hour
	}
	return &Population{seed: cfg.Seed, artists: cfg.Artists, meanPerHour: cfg.MeanPlaysPerHour, history: cfg.History}
}

const (
	albumsPerArtist = 3
	tracksPerAlbum  = 10
)

// rhythm is the relative activity by local hour (mean 1): quiet nights, a
// morning commute, an evening peak.
var rhythm = [24]float64{
	0.35, 0.2, 0.1, 0.05, 0.05, 0.1, 0.4, 0.9, 1.3, 1.1, 1.0, 1.0,
	1.1, 1.1, 1.0, 1.0, 1.2, 1.5, 1.7, 1.8, 1.9, 1.7, 1.3, 0.75,
}

type listener struct {
	activity float64 // multiplier of meanPerHour
	tzHours  int     // offset of local time from UTC
	shift    uint64  // rotates the Zipf ranks: this listener's own favourites
	stride   uint64
}

func hash(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func (p *Population) listener(user string) listener {
	r := rand.New(rand.NewPCG(p.seed, hash("listener", user)))
	return listener{
		activity: math.Exp(r.NormFloat64()*0.6) / math.Exp(0.18), // log-normal, mean 1
		tzHours:  r.IntN(18) - 8,
		shift:    r.Uint64N(uint64(p.artists)),
		stride:   []uint64{1, 7, 11, 13}[r.IntN(4)],
	}
}

// Plays returns user's plays with from ≤ played_at ≤ to (limited to the
// history window before now), oldest first, at most one per second.
func (p *Population) Plays(user string, from, to, now time.Time) []provider.Play {
	if start := now.Add(-p.history); from.Before(start) {
		from = start
	}
	if to.After(now) {
		to = now
	}
	if to.Before(from) {
		return nil
	}
	l := p.listener(user)
	var out []provider.Play
	for h := from.Truncate(time.Hour); !h.After(to); h = h.Add(time.Hour) {
		for _, pl := range p.hour(user, l, h) {
			if !pl.PlayedAt.Before(from) && !pl.PlayedAt.After(to) {
				out = append(out, pl)
			}
		}
	}
	return out
}

// hour generates the plays of one listener in the hour starting at h.
func (p *Population) hour(user string, l listener, h time.Time) []provider.Play {
	r := rand.New(rand.NewPCG(p.seed^hash("hour", user), uint64(h.Unix())))
	local := (h.UTC().Hour() + l.tzHours + 24) % 24
	n := poisson(r, p.meanPerHour*l.activity*rhythm[local])
	if n == 0 {
		return nil
	}
	n = min(n, 20) // a 3-minute track: 20 an hour at most
	// n distinct seconds of the hour, in order.
	secs := make([]int, 0, n)
	for len(secs) < n {
		s := r.IntN(3600)
		dup := false
		for _, x := range secs {
			dup = dup || x == s
		}
		if !dup {
			secs = append(secs, s)
		}
	}
	sortInts(secs)
	own := rand.NewZipf(r, 1.3, 2, uint64(p.artists-1))
	global := rand.NewZipf(r, 1.1, 1, uint64(p.artists-1))
	trackZ := rand.NewZipf(r, 1.4, 1, albumsPerArtist*tracksPerAlbum-1)
	out := make([]provider.Play, n)
	for i, s := range secs {
		var a uint64
		if r.Float64() < 0.75 { // mostly this listener's own favourites
			a = (own.Uint64()*l.stride + l.shift) % uint64(p.artists)
		} else {
			a = global.Uint64()
		}
		t := trackZ.Uint64()
		out[i] = p.play(a, t, h.Add(time.Duration(s)*time.Second))
	}
	return out
}

func (p *Population) play(artist, track uint64, at time.Time) provider.Play {
	album := track / tracksPerAlbum
	return provider.Play{
		PlayedAt:   at.UTC(),
		Artist:     name(p.seed, "artist", artist, 0, 2),
		Track:      name(p.seed, "track", artist, track, 3),
		Album:      name(p.seed, "album", artist, album, 2),
		ArtistID:   "sim-a" + itoa(artist),
		TrackID:    "sim-t" + itoa(artist) + "-" + itoa(track),
		AlbumID:    "sim-l" + itoa(artist) + "-" + itoa(album),
		DurationMS: int64(150_000 + (hash(itoa(artist), itoa(track))%150)*1000),
	}
}

var syllables = strings.Fields("ka lo mi ra ne so tu vi de ba na po li ve ro sa ti mo ze lu fa gi ho ju ke ly an el or un is at")

// name is a pronounceable name of words words, the same for the same inputs.
func name(seed uint64, kind string, a, b uint64, words int) string {
	r := rand.New(rand.NewPCG(seed^hash(kind), a<<20|b))
	ws := make([]string, words)
	for i := range ws {
		var w strings.Builder
		for range 1 + r.IntN(3) {
			w.WriteString(syllables[r.IntN(len(syllables))])
		}
		s := w.String()
		ws[i] = strings.ToUpper(s[:1]) + s[1:]
	}
	return strings.Join(ws, " ")
}

func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, prod := math.Exp(-lambda), 0, 1.0
	for {
		prod *= r.Float64()
		if prod <= l {
			return k
		}
		k++
	}
}

func sortInts(s []int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// Provider crawls the population in-process. The cursor is Unix seconds of
// the newest play published.
type Provider struct {
	Population *Population
	// PageSize plays per page; default 1000.
	PageSize int
	// Now default time.Now.
	Now func() time.Time
}

// Crawl emits the plays after cursor up to now, in pages, oldest first.
func (s *Provider) Crawl(ctx context.Context, acct provider.Account, cursor int64, emit func(context.Context, provider.Page) error) (provider.Result, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	size := s.PageSize
	if size <= 0 {
		size = 1000
	}
	t := now().UTC()
	plays := s.Population.Plays(acct.ExternalID, time.Unix(cursor+1, 0), t, t)
	total := (len(plays) + size - 1) / size
	for i := 0; i < len(plays); i += size {
		if err := ctx.Err(); err != nil {
			return provider.Result{}, err
		}
		page := plays[i:min(i+size, len(plays))]
		if err := emit(ctx, provider.Page{
			Plays: page, Cursor: page[len(page)-1].PlayedAt.Unix(), Done: i/size + 1, Total: total,
		}); err != nil {
			return provider.Result{}, err
		}
	}
	return provider.Result{}, nil
}
