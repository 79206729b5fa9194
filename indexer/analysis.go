package indexer

import (
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
	"golang.org/x/text/unicode/norm"
)

// MaxTokenLen drops longer tokens (UTF-16 units, as Lucene's length filter
// counts), which also keeps terms far below Lucene's 32 KiB term limit.
const MaxTokenLen = 255

// The analysis is defined once, here: Bleve uses it as its tokenizer, the
// OpenSearch back end sends its terms pre-analysed, and the in-process
// matcher of unindexed mail uses it, so all agree term for term (ADR 0008).

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

func isWordStart(r rune) bool { return (unicode.IsLetter(r) || unicode.IsNumber(r)) && !isCJK(r) }

func isWordRest(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r)) && !isCJK(r)
}

// Span is one token with its byte offsets in the input.
type Span struct {
	Term       string
	Start, End int
}

// Tokenize splits s into tokens: maximal runs of letters, digits and
// (following) combining marks; every Han, Hiragana or Katakana character is
// a token of its own, so a phrase of them finds any substring. Tokens are
// folded: compatibility-decomposed (NFKD), lower-cased, folded to ASCII
// where Lucene's ASCIIFoldingFilter does (ß→ss, æ→ae, ø→o), combining marks
// removed (é→e, ά→α), recomposed (NFC).
func Tokenize(s string) []Span { return tokenize(s, 0) }

func tokenize(s string, depth int) []Span {
	var out []Span
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case isCJK(r):
			out = appendTok(out, s[i:i+n], i, i+n, depth)
			i += n
		case isWordStart(r):
			j := i + n
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !isWordRest(r2) {
					break
				}
				j += n2
			}
			out = appendTok(out, s[i:j], i, j, depth)
			i = j
		default:
			i += n
		}
	}
	return out
}

var folder = asciifolding.New()

func appendTok(out []Span, raw string, start, end, depth int) []Span {
	t := fold(raw)
	if !isTerm(t) {
		if depth > 0 { // folding a fold should not happen; never loop
			return out
		}
		// Folding can yield punctuation (⑴ → "(1)") or CJK: split the
		// result as if it had been typed so, which keeps Analyze idempotent.
		for _, p := range tokenize(t, depth+1) {
			if utf16Len(p.Term) <= MaxTokenLen {
				out = append(out, Span{Term: p.Term, Start: start, End: end})
			}
		}
		return out
	}
	if utf16Len(t) > MaxTokenLen {
		return out
	}
	return append(out, Span{Term: t, Start: start, End: end})
}

// isTerm reports whether Tokenize(t) would give t back as one token.
func isTerm(t string) bool {
	if t == "" {
		return false
	}
	r, n := utf8.DecodeRuneInString(t)
	if isCJK(r) {
		return n == len(t)
	}
	if !isWordStart(r) {
		return false
	}
	for _, r := range t[n:] {
		if !isWordRest(r) {
			return false
		}
	}
	return true
}

func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	if len(s) > foldCacheKeyMax {
		return foldSlow(s)
	}
	if v, ok := foldCache.m.Load(s); ok {
		return v.(string)
	}
	f := foldSlow(s)
	if foldCache.n.Add(1) > foldCacheMax {
		foldCache.m.Clear()
		foldCache.n.Store(0)
	}
	foldCache.m.Store(strings.Clone(s), f)
	return f
}

// foldCache holds recent non-ASCII words: words repeat (Zipf), and the
// Unicode normalisations cost microseconds each.
var foldCache struct {
	m sync.Map // token → folded
	n atomic.Int64
}

const (
	foldCacheMax    = 1 << 16
	foldCacheKeyMax = 64
)

func foldSlow(s string) string {
	s = norm.NFKD.String(s)
	s = strings.Map(unicode.ToLower, s)
	s = string(folder.Filter([]byte(s)))
	s = strings.Map(func(r rune) rune { // folding may yield capitals (ʁ → R)
		if unicode.Is(unicode.M, r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	return norm.NFC.String(s)
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// Analyze returns the folded terms of s in order.
func Analyze(s string) []string {
	sp := Tokenize(s)
	out := make([]string, len(sp))
	for i, t := range sp {
		out[i] = t.Term
	}
	return out
}

// containsPhrase reports whether terms occur consecutively in hay.
func containsPhrase(hay, terms []string) bool {
	if len(terms) == 0 {
		return true
	}
outer:
	for i := 0; i+len(terms) <= len(hay); i++ {
		for j, t := range terms {
			if hay[i+j] != t {
				continue outer
			}
		}
		return true
	}
	return false
}
