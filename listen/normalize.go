package listen

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// UnicodeVersion is the version of the Unicode tables Normalize was defined
// with for NormalizationVersion 1. golang.org/x/text picks its tables by Go
// release (Unicode 15.0.0 before Go 1.27, 17.0.0 from Go 1.27), and a new
// table can normalize or fold newly assigned characters differently: a test
// fails when the linked tables differ from this, so that an upgrade comes
// with a deliberate NormalizationVersion bump, not silently changed
// identities.
const UnicodeVersion = "15.0.0"

// fold is x/text's Unicode full case folding (corrected for Cherokee in
// Normalize); a fold Caser is stateless and safe for concurrent use.
var fold = cases.Fold()

// Normalize: Unicode NFC, case fold (golang.org/x/text/cases.Fold),
// whitespace collapsed (any Unicode space run → one ASCII space) and trimmed.
//
// Precisely: NFC(Fold(NFC(s))), then CollapseSpace. Fold is cases.Fold
// corrected for Cherokee (see isCherokeeSmall), which makes it exactly
// Unicode's full case folding (CaseFolding.txt, statuses C and F). The
// second NFC is there because folding can leave a string that is not NFC
// (U+0390 folds to U+03B9 U+0308 U+0301), so that Normalize is idempotent.
// Fold is the default, language-independent full folding: "ß", "ẞ" and
// "SS" all become "ss", "İ" (U+0130) becomes "i̇" (i + U+0307), "I"
// becomes "i" and "ı" (U+0131) stays. No compatibility mapping (NFKC):
// fullwidth "Ａ" folds to "ａ", not "a"; no-break spaces count as
// whitespace but U+200B ZERO WIDTH SPACE does not. Invalid UTF-8 bytes
// pass through unchanged (Parse never lets them in).
func Normalize(s string) string {
	if isASCII(s) {
		return asciiNormalize(s)
	}
	s = norm.NFC.String(s)
	s = foldString(s)
	if strings.ContainsFunc(s, isCherokeeSmall) {
		s = strings.Map(cherokeeFold, s)
	}
	s = norm.NFC.String(s)
	return CollapseSpace(s)
}

// foldString is fold.String without its per-call heap buffer: names that
// are already folded cost no allocation, others one.
func foldString(s string) string {
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	src := append((*bp)[:0], s...)
	*bp = src
	if n, err := fold.Span(src, true); err == nil && n == len(src) {
		return s
	}
	dst := make([]byte, len(s)+len(s)/2+8)
	for {
		n, _, err := fold.Transform(dst, src, true)
		switch err {
		case nil:
			return string(dst[:n])
		case transform.ErrShortDst:
			dst = make([]byte, 2*len(dst))
		default:
			return fold.String(s)
		}
	}
}

// scratch holds buffers for foldString.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Cherokee is the one script whose case folding goes to the capitals
// (CaseFolding.txt: U+AB70–U+ABBF → U+13A0–U+13EF, U+13F8–U+13FD →
// U+13F0–U+13F5), but x/text's Fold maps the capitals U+13A0–U+13F5 to the
// small letters, so that Fold swaps the two cases and is not idempotent.
// After Fold, every small Cherokee letter therefore came from a capital
// one, and cherokeeFold puts it back, giving Unicode's full case folding
// (and what Python's str.casefold, ICU and others return).
func isCherokeeSmall(r rune) bool {
	return (r >= 0xab70 && r <= 0xabbf) || (r >= 0x13f8 && r <= 0x13fd)
}

func cherokeeFold(r rune) rune {
	switch {
	case r >= 0xab70 && r <= 0xabbf:
		return r - 0xab70 + 0x13a0
	case r >= 0x13f8 && r <= 0x13fd:
		return r - 0x13f8 + 0x13f0
	}
	return r
}

// CollapseSpace trims s and replaces every run of whitespace inside it with
// one ASCII space. Whitespace is Unicode White_Space (unicode.IsSpace):
// tab, LF, VT, FF, CR, space, U+0085, U+00A0, U+1680, U+2000–U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000. Everything else, including
// invalid UTF-8, is kept byte for byte. This is the display form of names.
func CollapseSpace(s string) string {
	if !needsCollapse(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if isSpace(r) {
			pending = b.Len() > 0
		} else {
			if pending {
				b.WriteByte(' ')
				pending = false
			}
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// needsCollapse reports whether CollapseSpace would change s.
func needsCollapse(s string) bool {
	prevSpace := true // a space at the start needs trimming
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if isSpace(r) {
			if r != ' ' || prevSpace {
				return true
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		i += size
	}
	return prevSpace && len(s) > 0 // trailing space
}

// asciiNormalize is Normalize for ASCII: NFC and folding are lower-casing.
func asciiNormalize(s string) string {
	change := needsCollapse(s)
	if !change {
		for i := 0; i < len(s); i++ {
			if 'A' <= s[i] && s[i] <= 'Z' {
				change = true
				break
			}
		}
	}
	if !change {
		return s
	}
	b := make([]byte, 0, len(s))
	pending := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if asciiSpace[c] {
			pending = len(b) > 0
			continue
		}
		if pending {
			b = append(b, ' ')
			pending = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiSpace[r]
	}
	return unicode.IsSpace(r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
