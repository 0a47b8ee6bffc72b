//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/topk-charts/topk/internal/testenv"
)

// The charts page in headless Chromium (Debian's chromium; .ci/run
// installs it): it picks a user and a range through the page's own
// controls, and the bars and numbers shown equal the API's answer. A
// screenshot goes to test-output/charts-page.png.
func TestIntegrationChartsPageInBrowser(t *testing.T) {
	cfg := testenv.Config(t)
	topics := testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)
	now := time.Now().UTC()
	g := &apiGen{r: rand.New(rand.NewPCG(9, 9)), now: now, used: map[string]bool{}}
	var msgs []*sarama.ProducerMessage
	for range 600 {
		msgs = append(msgs, rawMessage(topics, g.listen("browser-user", 60*24*time.Hour)))
	}
	produce(t, cfg, msgs)
	runPipeline(t, cfg)
	waitPipeline(t, cfg, topics)
	a := startAPI(t, cfg, true)
	a.warm("browser-user", "artists")

	code, body := a.get("/v1/users/browser-user/top/artists?range=30d&k=20")
	if code != 200 {
		t.Fatalf("api: %d %s", code, body)
	}
	var want struct {
		Items []struct {
			Name  string `json:"name"`
			Plays int    `json:"plays"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil || len(want.Items) == 0 {
		t.Fatalf("api answer %s: %v", body, err)
	}

	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(a.url+"/"),
		chromedp.WaitVisible("#user"),
		chromedp.SendKeys("#user", "browser-user"),
		chromedp.SetValue("#range", "30d"),
		chromedp.SetValue("#entity", "artists"),
		chromedp.SetValue("#k", "20"),
		chromedp.Evaluate[chromedp.Void](`void document.getElementById("user").dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible("#bars .row"),
		chromedp.Sleep(500*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	names, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#bars .row")].map(r => r.dataset.name)`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	plays, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#bars .row")].map(r => r.dataset.plays)`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(filepath.Dir(file), "..", "..", "test-output")
	if err := os.MkdirAll(out, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(out, "charts-page.png"), png, 0o644)
	}
	if len(names) != len(want.Items) {
		t.Fatalf("page shows %d bars, the api answers %d items", len(names), len(want.Items))
	}
	for i, it := range want.Items {
		if names[i] != it.Name || plays[i] != strconv.Itoa(it.Plays) {
			t.Errorf("bar %d: page %q %s plays, api %q %d plays", i+1, names[i], plays[i], it.Name, it.Plays)
		}
	}
	checkActivityChart(t, ctx, a)
}

// browser is a headless Chromium tab (Debian's chromium) for at most 90 s,
// closed when the test ends.
func browser(t *testing.T) context.Context {
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

// checkActivityChart: the plays-per-day chart of the 30d range has a bar
// per day of the range (empty days included) with the API's plays, a
// date axis from the range's first to its last day, and hovering a bar
// (a real mouse move) shows its date and plays.
func checkActivityChart(t *testing.T, ctx context.Context, a *apiUnderTest) {
	t.Helper()
	code, body := a.get("/v1/users/browser-user/activity?range=30d")
	if code != 200 {
		t.Fatalf("activity: %d %s", code, body)
	}
	var act struct {
		Range struct{ From, To string } `json:"range"`
		Plays int                       `json:"plays"`
		Days  []struct {
			Day   string `json:"day"`
			Plays int    `json:"plays"`
		} `json:"days"`
	}
	if err := json.Unmarshal([]byte(body), &act); err != nil || len(act.Days) == 0 {
		t.Fatalf("activity answer %s: %v", body, err)
	}
	from, err1 := time.Parse(time.DateOnly, act.Range.From)
	to, err2 := time.Parse(time.DateOnly, act.Range.To)
	if err1 != nil || err2 != nil {
		t.Fatalf("activity range %+v", act.Range)
	}
	type slot struct {
		Day   string `json:"day"`
		Plays string `json:"plays"`
	}
	slots, err := chromedp.Run(ctx, chromedp.Evaluate[[]slot](`[...document.querySelectorAll("#days .slot")].map(s => ({day: s.dataset.day, plays: s.dataset.plays}))`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	wantDays := int(to.Sub(from).Hours()/24) + 1
	if len(slots) != wantDays {
		t.Fatalf("activity chart has %d bars, the range %s..%s has %d days", len(slots), act.Range.From, act.Range.To, wantDays)
	}
	byDay := map[string]int{}
	for _, d := range act.Days {
		byDay[d.Day] = d.Plays
	}
	best := 0
	for i, s := range slots {
		if want := from.AddDate(0, 0, i).Format(time.DateOnly); s.Day != want || s.Plays != strconv.Itoa(byDay[want]) {
			t.Errorf("bar %d: page %s %s plays, want %s %d plays", i, s.Day, s.Plays, want, byDay[want])
		}
		if n, _ := strconv.Atoi(s.Plays); n > byDay[slots[best].Day] {
			best = i
		}
	}
	axis, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#axis span")].map(s => s.textContent)`))
	if err != nil || len(axis) < 2 || axis[0] != act.Range.From || axis[len(axis)-1] != act.Range.To {
		t.Fatalf("date axis %v (%v), want %s … %s", axis, err, act.Range.From, act.Range.To)
	}
	type point struct{ X, Y float64 }
	at, err := chromedp.Run(ctx, chromedp.Evaluate[point](fmt.Sprintf(`(() => { const r = document.querySelectorAll("#days .slot")[%d].getBoundingClientRect();
		return {x: r.left + r.width / 2, y: r.bottom - 2}; })()`, best)))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, at.X, at.Y), chromedp.WaitVisible("#tip.on")); err != nil {
		t.Fatalf("hover: %v", err)
	}
	tip, err := chromedp.Run(ctx, chromedp.Text("#tip"))
	if err != nil {
		t.Fatalf("hover: %v", err)
	}
	if want := fmt.Sprintf("%s · %d plays", slots[best].Day, byDay[slots[best].Day]); tip != want {
		t.Fatalf("hover on %s shows %q, want %q", slots[best].Day, tip, want)
	}
}
