package cassandra

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/topk-charts/topk/schemas"
)

func TestSplitStatements(t *testing.T) {
	src := "-- a comment; with a semicolon\nCREATE TABLE a (\n  x int -- trailing\n);\n\nCREATE TABLE b (y int);\n"
	got := splitStatements(src)
	want := []string{"CREATE TABLE a (\n  x int \n);", "CREATE TABLE b (y int);"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRenderEverySchemaFile(t *testing.T) {
	c := Config{Keyspace: "topk_x", ReplicationFactor: 3}
	files, err := fs.Glob(schemas.Cassandra, "cassandra/*.cql")
	if err != nil || len(files) < 3 {
		t.Fatalf("schema files %v: %v", files, err)
	}
	for _, f := range files {
		stmts, sum, err := render(f, c)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(stmts) == 0 || sum == "" {
			t.Fatalf("%s: %d statements, checksum %q", f, len(stmts), sum)
		}
		for _, s := range stmts {
			if !strings.Contains(s, "topk_x") {
				t.Errorf("%s: statement does not name the keyspace: %s", f, s)
			}
			if strings.Contains(s, "{{") {
				t.Errorf("%s: unrendered template: %s", f, s)
			}
		}
	}
	stmts, _, _ := render(keyspaceFile, c)
	if !strings.Contains(stmts[0], "'replication_factor': 3") {
		t.Fatalf("keyspace statement ignores the replication factor: %s", stmts[0])
	}
}
