//go:build integration

package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/kafka"
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
		l := g.listen("browser-user", 60*24*time.Hour)
		b, _ := json.Marshal(map[string]string{"user_id": l.UserID, "played_at": l.PlayedAt.Format(time.RFC3339),
			"artist_name": l.ArtistName, "track_name": l.TrackName, "album_name": l.AlbumName})
		msgs = append(msgs, &sarama.ProducerMessage{Topic: string(topics.Raw), Key: sarama.StringEncoder(l.UserID), Value: sarama.ByteEncoder(b)})
	}
	client, err := sarama.NewClient(cfg.Kafka.Brokers, kafka.NewSaramaConfig("topk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	p.Close()
	runPipeline(t, cfg)
	waitPipeline(t, cfg, topics)
	a := startAPI(t, cfg, true)

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

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("chromium not installed (apt-get install chromium; .ci/run installs it)")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	err = chromedp.Do(ctx,
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
}
