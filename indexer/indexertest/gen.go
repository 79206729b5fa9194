package indexertest

import (
	"fmt"
	"math/rand"
	"strings"
)

// Generator makes reproducible benchmark mail: words drawn from a fixed
// vocabulary (pronounceable, a third with diacritics) with a Zipf
// distribution (s = 1.1), as word frequencies in real mail have.
type Generator struct {
	Vocabulary []string
	r          *rand.Rand
	z          *rand.Zipf
}

// NewGenerator returns a generator over a vocabulary of n words; the same
// seed gives the same messages.
func NewGenerator(n int, seed int64) *Generator {
	voc := vocabulary(n)
	r := rand.New(rand.NewSource(seed))
	return &Generator{Vocabulary: voc, r: r, z: rand.NewZipf(r, 1.1, 1, uint64(len(voc)-1))}
}

// Word draws a word as often as it occurs in the generated mail.
func (g *Generator) Word() string { return g.Vocabulary[g.z.Uint64()] }

// UniformWord draws any vocabulary word with the same probability.
func (g *Generator) UniformWord() string { return g.Vocabulary[g.r.Intn(len(g.Vocabulary))] }

// Message returns message i: headers, then 5 to 24 lines of 12 words.
func (g *Generator) Message(i int) []byte {
	words := func(k int) string {
		ws := make([]string, k)
		for j := range ws {
			ws[j] = g.Word()
		}
		return strings.Join(ws, " ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s <%s@example.com>\r\nTo: bench@example.test\r\nSubject: %s\r\n", words(2), g.UniformWord(), words(5))
	fmt.Fprintf(&b, "Message-ID: <m%d@bench.example>\r\nDate: Mon, 2 Jan 2026 15:04:05 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", i)
	for l := 0; l < 5+g.r.Intn(20); l++ {
		b.WriteString(words(12))
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

func vocabulary(n int) []string {
	r := rand.New(rand.NewSource(3))
	cons := []string{"b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "st"}
	vow := []string{"a", "e", "i", "o", "u", "é", "ü", "ö", "y"}
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		var b strings.Builder
		for k := 2 + r.Intn(3); k > 0; k-- {
			b.WriteString(cons[r.Intn(len(cons))])
			b.WriteString(vow[r.Intn(len(vow))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}
