// Command fixturegen writes the history archives of imports' tests
// (package internal/importfixture) to files:
//
//	go run ./imports/fixturegen -out imports/testdata        # spotify-history.zip, the committed one
//	go run ./imports/fixturegen -out /tmp/fixtures -all      # every fixture, zip bombs included
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/topk-charts/topk/internal/importfixture"
)

func main() {
	out := flag.String("out", "imports/testdata", "folder to write to")
	all := flag.Bool("all", false, "write every fixture, not only "+importfixture.SpotifyName)
	flag.Parse()
	if err := run(*out, *all); err != nil {
		fmt.Fprintln(os.Stderr, "fixturegen:", err)
		os.Exit(1)
	}
}

func run(out string, all bool) error {
	files := importfixture.All()
	names := []string{importfixture.SpotifyName}
	if all {
		names = names[:0]
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		path := filepath.Join(out, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
		fmt.Printf("%s\t%d bytes\n", path, len(files[name]))
	}
	return nil
}
