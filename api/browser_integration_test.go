//go:build integration

package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/topk-charts/topk/charts/chartstest"
)

// The charts page's everyone view in headless Chromium (Debian's
// chromium; .ci/run installs it), on the api's fakes and a fake sitewide
// service, no pipeline: without a user chosen it shows the sitewide
// chart of the page's chart and range with plays and listeners equal to
// the api's answer; choosing another chart and range through the page's
// controls redraws it; a listen added to the sitewide service shows on
// its own within the page's refresh; choosing a user shows the user's
// chart and plays per day beside it; an api without a sitewide service
// says so in the view. A screenshot goes to
// test-output/charts-page-everyone.png.
func TestIntegrationEveryoneViewInBrowser(t *testing.T) {
	sw := &fakeSitewide{w: chartstest.NewWorld(1), now: testNow}
	f := newFixture(t, withSitewide(sw))
	hs := httptest.NewServer(f.srv.Echo())
	t.Cleanup(hs.Close)
	ctx := browserTab(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible("#ebars .row[data-name]")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	// The page's defaults: artists, 7d, top 20.
	checkEveryone(t, ctx, hs.URL, "artists", "range=7d&k=20")

	if err := chromedp.Do(ctx,
		chromedp.SetValue("#range", "30d"),
		chromedp.SetValue("#k", "10"),
		chromedp.SetValue("#entity", "tracks"),
		chromedp.Evaluate[chromedp.Void](`void document.getElementById("entity").dispatchEvent(new Event("change"))`),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	waitFor(t, ctx, `document.getElementById("etitle").textContent === "Top tracks of everyone" && document.querySelectorAll("#ebars .row[data-name]").length === 10`)
	checkEveryone(t, ctx, hs.URL, "tracks", "range=30d&k=10")

	// Live: a new track played today by many users goes to the top
	// without touching the page.
	for i := range 40 {
		sw.play("newcomer-"+strconv.Itoa(i), testNow.Add(-time.Minute), "Fresh Artist", "Brand New Track", "")
	}
	waitFor(t, ctx, `(() => { const r = document.querySelector("#ebars .row[data-name]");
		return r && r.dataset.name === "Brand New Track" && r.dataset.listeners === "40"; })()`)
	checkEveryone(t, ctx, hs.URL, "tracks", "range=30d&k=10")

	// Beside it, the user's view still shows the user's chart.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys("#user", "alice"),
		chromedp.Evaluate[chromedp.Void](`void document.getElementById("user").dispatchEvent(new Event("change"))`),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	waitFor(t, ctx, `document.getElementById("title").textContent === "Top tracks of alice" && document.querySelectorAll("#days .slot").length === 30`)
	code, body := f.get(t, "/v1/users/alice/top/tracks?range=30d&k=10")
	var mine struct {
		Items []struct {
			Name  string `json:"name"`
			Plays int    `json:"plays"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &mine); err != nil || code != 200 {
		t.Fatalf("alice's chart: %d %s", code, body)
	}
	type userRow struct{ Name, Plays string }
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]userRow](`[...document.querySelectorAll("#bars .row")].map(r => ({Name: r.dataset.name, Plays: r.dataset.plays}))`))
	if err != nil || len(rows) != len(mine.Items) {
		t.Fatalf("alice's view: %d rows (%v), the api answers %d", len(rows), err, len(mine.Items))
	}
	for i, it := range mine.Items {
		if rows[i].Name != it.Name || rows[i].Plays != strconv.Itoa(it.Plays) {
			t.Errorf("alice's row %d: page %+v, api %+v", i+1, rows[i], it)
		}
	}
	checkEveryone(t, ctx, hs.URL, "tracks", "range=30d&k=10")

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(filepath.Dir(file), "..", "test-output")
	if err := os.MkdirAll(out, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(out, "charts-page-everyone.png"), png, 0o644)
	}

	// Not served: the view shows the api's message.
	g := newFixture(t, fixtureOpts{recovered: true})
	gs := httptest.NewServer(g.srv.Echo())
	t.Cleanup(gs.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(gs.URL+"/"), chromedp.WaitVisible("#ebars .err")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text("#ebars .err")); err != nil || msg != "sitewide charts are not served by this api" {
		t.Errorf("not served: the view says %q (%v)", msg, err)
	}
}

// play adds a listen to the fake's world (a world of its own: the
// seeded one is the fixtures').
func (f *fakeSitewide) play(user string, at time.Time, artist, track, album string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.w.Play(user, at, artist, track, album)
}

// checkEveryone: the everyone view's rows (name, plays, listeners) are the
// api's answer to /v1/charts/top/{entity}?{query}.
func checkEveryone(t *testing.T, ctx context.Context, base, entity, query string) {
	t.Helper()
	res, err := http.Get(base + "/v1/charts/top/" + entity + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var want struct {
		Items []struct {
			Name      string `json:"name"`
			Plays     int    `json:"plays"`
			Listeners int    `json:"listeners"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&want); err != nil || res.StatusCode != 200 || len(want.Items) == 0 {
		t.Fatalf("api %s?%s: %d %v", entity, query, res.StatusCode, err)
	}
	type row struct{ Name, Plays, Listeners string }
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("#ebars .row[data-name]")].map(r =>
		({Name: r.dataset.name, Plays: r.dataset.plays, Listeners: r.dataset.listeners}))`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if len(rows) != len(want.Items) {
		t.Fatalf("%s?%s: the view shows %d rows, the api answers %d items", entity, query, len(rows), len(want.Items))
	}
	for i, it := range want.Items {
		if r := rows[i]; r.Name != it.Name || r.Plays != strconv.Itoa(it.Plays) || r.Listeners != strconv.Itoa(it.Listeners) {
			t.Errorf("%s?%s row %d: page %+v, api %+v", entity, query, i+1, r, it)
		}
	}
}

// waitFor polls expression in the page until it is true, for at most 10 s
// (the page refreshes every 2 s).
func waitFor(t *testing.T, ctx context.Context, expression string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expression))
		if err != nil {
			t.Fatalf("browser: %v", err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never got to %s", expression)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// browserTab is a headless Chromium tab (Debian's chromium) for at most
// 90 s, closed when the test ends (cmd/topk's browser, for the api's own
// pages).
func browserTab(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("chromium not installed (apt-get install chromium; .ci/run installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancel(); cancelTab(); cancelAlloc() })
	return ctx
}
