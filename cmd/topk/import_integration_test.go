//go:build integration

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"

	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/uploads"
	"github.com/topk-charts/topk/internal/importfixture"
	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
	"github.com/topk-charts/topk/store/postgres"
)

const importAdmin = "import-admin-token-0123456789"

// History files through `topk import` and the upload route into the real
// pipeline, the user's listens already partly there from a crawl and a
// ListenBrainz submission: the charts of every range equal the independent
// count (each identity once) after the first import, and stay equal after
// the same archive is imported again by the command and uploaded twice;
// every refused record is on the dead-letter topic with its reason, once
// per import; the exit status says records were refused; a wrong token,
// an oversized upload and a zip bomb are refused and import nothing; an
// interrupted command resumes from its checkpoint.
func TestIntegrationImport(t *testing.T) {
	cfg := testenv.Config(t)
	for k, v := range map[string]string{
		"TOPK_NAMESPACE": cfg.Namespace, "TOPK_POSTGRES_DB": cfg.Postgres.Database, "TOPK_CASSANDRA_KEYSPACE": cfg.Cassandra.Keyspace,
		"TOPK_RUNTIME_DIR": t.TempDir(), "TOPK_DEV_MODE": "1", "TOPK_TOKEN_KEY": "", "TOPK_ADMIN_TOKEN": importAdmin,
		"TOPK_IMPORT_MAX_BYTES": "65536",
	} {
		t.Setenv(k, v)
	}
	testenv.Database(t, cfg)
	topics := testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)
	if code, _, stderr := runTopk("migrate", "postgres"); code != 0 {
		t.Fatalf("topk migrate postgres: %s", stderr)
	}
	env, err := LoadEnv(io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env.Log = testenv.Logger(t)
	runPipeline(t, env.Config)
	a := startFullAPI(t, env)

	const user = "importer"
	data, exp := importfixture.Spotify(false)
	archive := filepath.Join(t.TempDir(), "my_spotify_data.zip")
	if err := os.WriteFile(archive, data, 0o644); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, f := range exp.Files {
		for _, n := range f.Refused {
			refused += n
		}
	}
	tr := newTruth()
	var want []listen.Listen
	for _, l := range exp.Listens() {
		l.Listen.UserID = user
		want = append(want, l.Listen)
	}

	// Two of the archive's listens came before it: one crawled (a raw
	// record as the crawler writes it), one submitted through the
	// ListenBrainz api with the user's token.
	pool, err := postgres.Open(t.Context(), wiring.Postgres(env.Config.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewStore(pool, nil)
	tok, _, err := store.CreateToken(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	crawled, submitted := want[0], want[len(want)-1]
	produce(t, env.Config, []*sarama.ProducerMessage{rawMessage(topics, crawled)})
	sub := `{"listen_type":"import","payload":[{"listened_at":` + jsonInt(submitted.PlayedAt.Unix()) +
		`,"track_metadata":{"artist_name":` + jsonString(submitted.ArtistName) + `,"track_name":` + jsonString(submitted.TrackName) + `,"release_name":` + jsonString(submitted.AlbumName) + `}}]}`
	if code, body := a.send(http.MethodPost, "/1/submit-listens", "application/json", strings.NewReader(sub), "Token "+tok); code != 200 {
		t.Fatalf("submit: %d %s", code, body)
	}
	tr.add(crawled)
	tr.add(submitted)

	// topk import, as a person runs it.
	state := t.TempDir()
	code, stdout, stderr := runTopk("import", "--user", user, "--state", state, "--quiet", archive)
	t.Logf("topk import:\n%s%s", stdout, stderr)
	if code != exitRefused || !strings.Contains(stdout, "14 accepted") || !strings.Contains(stdout, "refused #") {
		t.Fatalf("topk import: exit %d, want %d and a report", code, exitRefused)
	}
	for _, l := range want {
		tr.add(l)
	}
	waitPipeline(t, env.Config, topics)
	checkImported(t, a, tr, user)

	// Again, by the command and twice by upload (the admin token, then the
	// user's): nothing counts twice.
	if code, _, stderr := runTopk("import", "--user", user, "--state", state, "--quiet", archive); code != exitRefused {
		t.Fatalf("second topk import: exit %d: %s", code, stderr)
	}
	for _, auth := range []string{"Bearer " + importAdmin, "Token " + tok} {
		st := a.upload(user, "my_spotify_data.zip", data, auth)
		if st.State != uploads.StateDone || st.Counts.Sent != len(want) || st.Counts.DeadLetters != refused || st.Counts.Refused != refused {
			t.Fatalf("upload: %+v", st)
		}
	}
	waitPipeline(t, env.Config, topics)
	checkImported(t, a, tr, user)

	// Every refused record is a dead letter of stage import, once per import.
	letters := testenv.Records(t, env.Config, string(topics.DLQ))
	if len(letters) != 4*refused {
		t.Fatalf("%d dead letters, want %d (4 imports of %d refused records)", len(letters), 4*refused, refused)
	}
	for _, m := range letters {
		h := map[string]string{}
		for _, r := range m.Headers {
			h[string(r.Key)] = string(r.Value)
		}
		if h[processors.HeaderStage] != processors.StageImport || h[processors.HeaderReason] == "" || h[processors.HeaderKey] != user ||
			!strings.HasPrefix(h["import_file"], "Spotify Extended Streaming History/") {
			t.Errorf("dead letter %s: headers %v", m.Key, h)
		}
	}

	// Refused uploads import nothing.
	for _, tc := range []struct {
		name, auth string
		body       []byte
		status     int
	}{
		{"wrong token", "Token 00000000-0000-4000-8000-000000000000", data, 401},
		{"another user's token", "Token " + tok, data, 403},
		{"oversized", "Token " + tok, bytes.Repeat([]byte("["), 70000), 413},
		{"zip bomb", "Token " + tok, importfixture.DeclaredBomb(), 413},
	} {
		target := user
		if tc.name == "another user's token" {
			target = "someone-else"
		}
		body, ct := multipartFile(t, "f.zip", tc.body)
		code, answer := a.send(http.MethodPost, "/v1/users/"+target+"/imports", ct, body, tc.auth)
		if code != tc.status || !strings.Contains(answer, `"error"`) {
			t.Errorf("%s: %d %s, want %d", tc.name, code, answer, tc.status)
		}
	}

	// A ListenBrainz export by the command, and a Spotify archive with a
	// damaged file by upload: the damaged file is named, the rest counted.
	lbData, lbExp := importfixture.ListenBrainz()
	lbArchive := filepath.Join(t.TempDir(), "listenbrainz_lb-user_1735600000.zip")
	if err := os.WriteFile(lbArchive, lbData, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runTopk("import", "--user", "lb-user", "--state", state, "--quiet", lbArchive)
	if code != exitRefused || !strings.Contains(stdout, string(imports.FormatListenBrainz)) {
		t.Fatalf("topk import of a ListenBrainz export: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, l := range lbExp.Listens() {
		l.Listen.UserID = "lb-user"
		tr.add(l.Listen)
	}
	corrupt, corruptExp := importfixture.Spotify(true)
	st := a.upload("damaged", "my_spotify_data.zip", corrupt, "Bearer "+importAdmin)
	if st.State != uploads.StateDone || !strings.Contains(st.Error, "Streaming_History_Audio_2023_2.json") || st.Counts.Sent != len(corruptExp.Listens()) {
		t.Fatalf("upload of a damaged archive: %+v", st)
	}
	for _, l := range corruptExp.Listens() {
		l.Listen.UserID = "damaged"
		tr.add(l.Listen)
	}
	waitPipeline(t, env.Config, topics)
	checkImported(t, a, tr, "lb-user")
	checkImported(t, a, tr, "damaged")

	// An interrupted command resumes after its checkpoint: the records
	// up to it are passed over.
	abs, _ := filepath.Abs(archive)
	fi, _ := os.Stat(archive)
	cp, _ := json.Marshal(importState{User: user, File: abs, Size: fi.Size(), ModTime: fi.ModTime(),
		After: imports.Position{File: "Spotify Extended Streaming History/Streaming_History_Audio_2019-2021_0.json", Index: 9}, Saved: time.Now()})
	if err := os.WriteFile(importStatePath(state, user, abs, fi.Size(), fi.ModTime()), cp, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runTopk("import", "--user", user, "--state", state, "--quiet", archive)
	if code != exitRefused || !strings.Contains(stderr, "resuming after") || !strings.Contains(stdout, "(10 passed over") {
		t.Fatalf("resumed import: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(importStatePath(state, user, abs, fi.Size(), fi.ModTime())); !os.IsNotExist(err) {
		t.Errorf("checkpoint left after a complete import: %v", err)
	}
	waitPipeline(t, env.Config, topics)
	checkImported(t, a, tr, user)

	// The charts page's upload box, in headless Chromium: the archive for a
	// new user, with that user's token; the page shows the import done and
	// the user's all-time chart equals the independent count.
	boxTok, _, err := store.CreateToken(t.Context(), "box-user")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range want {
		l.UserID = "box-user"
		tr.add(l)
	}
	importThroughThePage(t, a, "box-user", boxTok, archive, len(want), refused)
	waitPipeline(t, env.Config, topics)
	checkImported(t, a, tr, "box-user")
}

// importThroughThePage uploads file with the charts page's import box and
// waits for the page to say the import is done with sent listens and
// refused records.
func importThroughThePage(t *testing.T, a *apiUnderTest, user, token, file string, sent, refused int) {
	t.Helper()
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(a.url+"/#user="+user+"&range=all"),
		chromedp.WaitVisible("#ifile"),
		chromedp.SetUploadFiles("#ifile", []string{file}),
		chromedp.SendKeys("#itoken", token),
		chromedp.Click("#isubmit"),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("istatus").textContent.startsWith("done") && document.getElementById("istatus").textContent`,
		chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.TextContent("#istatus"))
		t.Fatalf("the page's import status %q: %v", text, err)
	}
	t.Logf("the page says: %s", status)
	if !strings.Contains(status, fmt.Sprintf("sent %d", sent)) || !strings.Contains(status, fmt.Sprintf("refused %d", refused)) {
		t.Fatalf("the page says %q, want sent %d and refused %d", status, sent, refused)
	}
}

// checkImported compares every range's charts of user with the truth.
func checkImported(t *testing.T, a *apiUnderTest, tr *truth, user string) {
	t.Helper()
	a.settle()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	first := tr.first(user)
	for _, entity := range []string{"tracks", "artists", "albums"} {
		a.checkTop(tr, user, entity, "range=all", first, today, "")
		for y := first.Year(); y <= today.Year(); y++ {
			from := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
			to := time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)
			if len(tr.chart(user, "artists", from, to)) == 0 {
				continue // no listens that year: a 404
			}
			a.checkTop(tr, user, entity, "from="+from.Format(listen.DayLayout)+"&to="+to.Format(listen.DayLayout), from, to, "")
		}
	}
}

// send is one request with a body and an Authorization header.
func (a *apiUnderTest) send(method, path, contentType string, body io.Reader, auth string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, body)
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// upload posts data as a multipart file and waits for the import to end.
func (a *apiUnderTest) upload(user, name string, data []byte, auth string) uploads.Status {
	a.t.Helper()
	body, ct := multipartFile(a.t, name, data)
	code, answer := a.send(http.MethodPost, "/v1/users/"+user+"/imports", ct, body, auth)
	if code != http.StatusAccepted {
		a.t.Fatalf("upload: %d %s", code, answer)
	}
	var st struct {
		uploads.Status
		StatusURL string `json:"status_url"`
	}
	if err := json.Unmarshal([]byte(answer), &st); err != nil {
		a.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, answer := a.send(http.MethodGet, st.StatusURL, "", nil, auth)
		if code != 200 {
			a.t.Fatalf("status: %d %s", code, answer)
		}
		var s uploads.Status
		if err := json.Unmarshal([]byte(answer), &s); err != nil {
			a.t.Fatal(err)
		}
		if s.State != uploads.StateRunning {
			return s
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("import still running: %s", answer)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func multipartFile(t *testing.T, name string, data []byte) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	return &b, w.FormDataContentType()
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }
