package imports

import (
	"archive/zip"
	"errors"
	"io"
	"testing"
)

// endless inflates forever and never checks a declared size, as a
// decompressor without archive/zip's check would.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// The limit holds whatever the reader below does: the read that passes it
// fails, having handed on no byte past it.
func TestEntryReaderLimit(t *testing.T) {
	for _, declared := range []int64{10, 1000, 1 << 40} {
		e := &entryReader{r: endless{}, archive: "a.zip", name: "m.json", declared: declared, limit: 1000}
		n, err := io.Copy(io.Discard, e)
		var le *LimitError
		if !errors.As(err, &le) || le.File != "m.json" {
			t.Errorf("declared %d: err %v", declared, err)
		}
		if n > 1000 {
			t.Errorf("declared %d: %d bytes handed on, over the limit", declared, n)
		}
	}
}

// lying stands for archive/zip's reader of a member that inflates past
// its declared size: the read past it returns ErrFormat.
type lying struct{ declared, n int64 }

func (l *lying) Read(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.declared {
		return 0, zip.ErrFormat
	}
	l.n += int64(len(p))
	return len(p), nil
}

func TestEntryReaderDeclared(t *testing.T) {
	e := &entryReader{r: &lying{declared: 100}, archive: "a.zip", name: "m.json", declared: 100, limit: 1000}
	n, err := io.Copy(io.Discard, e)
	var le *LimitError
	if !errors.As(err, &le) || n > 100 {
		t.Errorf("%d bytes, err %v", n, err)
	}
}
