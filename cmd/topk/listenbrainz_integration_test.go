//go:build integration

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/topk-charts/topk/internal/testenv"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/postgres"
)

// pythonWithClient is the Python of the virtual environment holding
// liblistenbrainz (`make pyenv`; TOPK_PYTHON names another). A missing
// one fails the test: it is not optional.
func pythonWithClient(t *testing.T) string {
	t.Helper()
	py := os.Getenv("TOPK_PYTHON")
	if py == "" {
		root, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		py = filepath.Join(root, ".runtime", "pyenv", "bin", "python")
	}
	if err := exec.Command(py, "-c", "import liblistenbrainz").Run(); err != nil {
		t.Fatalf("%s cannot import liblistenbrainz (%v): run `make pyenv` (or set TOPK_PYTHON to a Python that has it)", py, err)
	}
	return py
}

// TestIntegrationListenBrainzClient drives the whole api (`topk api`'s
// routes on the real stack, the pipeline running) with liblistenbrainz,
// the ListenBrainz client library: testdata/liblistenbrainz_check.py
// validates tokens, imports 3,400 listens (400 duplicates in other
// spellings) and single listens, sends invalid requests, a playing now,
// reads listens, listen counts and the stats of every range, deletes a
// few listens (/1/delete-listen: one submitted twice, one then submitted
// again, one msid that matches nothing, the errors) and reads them all
// again, and checks each answer against its own count of what it
// submitted and deleted.
func TestIntegrationListenBrainzClient(t *testing.T) {
	py := pythonWithClient(t)
	cfg := testenv.Config(t)
	for k, v := range map[string]string{
		"TOPK_NAMESPACE": cfg.Namespace, "TOPK_POSTGRES_DB": cfg.Postgres.Database, "TOPK_CASSANDRA_KEYSPACE": cfg.Cassandra.Keyspace,
		"TOPK_RUNTIME_DIR": t.TempDir(), "TOPK_DEV_MODE": "1", "TOPK_TOKEN_KEY": "",
	} {
		t.Setenv(k, v)
	}
	testenv.Database(t, cfg)
	testenv.Topics(t, cfg)
	testenv.Keyspace(t, cfg)
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"migrate", "postgres"}, &out, &errb); code != 0 {
		t.Fatalf("topk migrate postgres: %s", errb.String())
	}
	env, err := LoadEnv(io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env.Log = testenv.Logger(t)
	runPipeline(t, env.Config)
	a := startFullAPI(t, env)

	pool, err := postgres.Open(t.Context(), wiring.Postgres(env.Config.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewStore(pool, nil)
	tok, _, err := store.CreateToken(t.Context(), "scrobbler")
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _, err := store.CreateToken(t.Context(), "someone-else")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/liblistenbrainz_check.py")
	cmd.Env = append(os.Environ(), "LB_URL="+a.url, "LB_TOKEN="+tok, "LB_USER=scrobbler", "LB_OTHER_TOKEN="+otherTok, "LB_OTHER_USER=someone-else",
		"PYTHONUNBUFFERED=1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	err = cmd.Run()
	t.Logf("liblistenbrainz_check.py:\n%s", logs.String())
	if err != nil {
		t.Fatalf("the client's checks failed: %v", err)
	}
}
