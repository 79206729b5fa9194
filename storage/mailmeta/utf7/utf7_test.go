package utf7

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/transform"
)

func decode(t testing.TB, s string) string {
	t.Helper()
	out, _, err := transform.String(Encoding.NewDecoder(), s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return out
}

// The examples of RFC 2152 §"Rules", and the edge cases a mail reader meets.
func TestDecode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"A+ImIDkQ.", "A\u2262\u0391."},             // RFC 2152 example: "A≢Α."
		{"Hi Mom -+Jjo--!", "Hi Mom -\u263a-!"},     // "Hi Mom -☺-!"
		{"+ZeVnLIqe-", "\u65e5\u672c\u8a9e"},        // 日本語
		{"Item 3 is +AKM-1.", "Item 3 is \u00a31."}, // £1
		{"1 +- 1 = 2", "1 + 1 = 2"},
		{"a+", "a+"},               // bare '+' at the end
		{"a+ b", "a+ b"},           // bare '+' before a space
		{"+2D3cAQ-", "\U0001f401"}, // a surrogate pair (D83D DC01)
		{"+2D0-x", "\ufffdx"},      // a lone high surrogate
		{"+3AE-", "\ufffd"},        // a lone low surrogate
		{"caf\xe9", "caf\ufffd"},   // 8-bit byte
		{"plain ASCII\r\n", "plain ASCII\r\n"},
		{"+AGEAYgBj", "abc"}, // run ended by the end of input
	} {
		if got := decode(t, c.in); got != c.want {
			t.Errorf("decode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if _, _, err := transform.String(Encoding.NewEncoder(), "x"); err == nil {
		t.Error("encoder accepted input")
	}
}

// encode is a reference UTF-7 encoder (every non-ASCII run in base64).
func encode(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		if r == '+' {
			b.WriteString("+-")
			i++
			continue
		}
		if r < 0x80 {
			b.WriteRune(r)
			i++
			continue
		}
		j := i
		for j < len(rs) && rs[j] >= 0x80 {
			j++
		}
		units := utf16.Encode(rs[i:j])
		var bits uint32
		var n uint
		b.WriteByte('+')
		for _, u := range units {
			bits = bits<<16 | uint32(u)
			n += 16
			for n >= 6 {
				n -= 6
				b.WriteByte(alphabet[bits>>n&63])
			}
		}
		if n > 0 {
			b.WriteByte(alphabet[bits<<(6-n)&63])
		}
		b.WriteByte('-')
		i = j
	}
	return b.String()
}

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"Grüße aus München", "日本語のテキスト", "emoji 🙂 and + signs", "Ωμέγα-", "a\U0001f701b"} {
		if got := decode(t, encode(s)); got != s {
			t.Errorf("round trip of %q via %q: %q", s, encode(s), got)
		}
	}
}

// A destination of any size gives the same result (ErrShortDst handling).
func TestSmallBuffers(t *testing.T) {
	in := encode("Grüße 🙂 日本語 +1") + "+2D0-" + "\xff"
	want := decode(t, in)
	for size := 8; size < 40; size++ {
		d := Encoding.NewDecoder()
		var out []byte
		buf := make([]byte, size)
		src := []byte(in)
		for {
			n, m, err := d.Transform(buf, src, true)
			out = append(out, buf[:n]...)
			src = src[m:]
			if err == nil {
				break
			}
			if err != transform.ErrShortDst {
				t.Fatal(err)
			}
		}
		if string(out) != want {
			t.Fatalf("dst of %d bytes: %q, want %q", size, out, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"A+ImIDkQ.", "Hi Mom -+Jjo--!", "+2D3cAQ-", "+2D0-x", "a+", "+-+-", "+AAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := decode(t, s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q: %q", s, out)
		}
		if len(out) > 3*len(s)+3 {
			t.Fatalf("%d bytes from %d", len(out), len(s))
		}
		// Text without '+' or 8-bit bytes is its own decoding.
		if !strings.ContainsAny(s, "+") && utf8.ValidString(s) && len([]rune(s)) == len(s) && out != s {
			t.Fatalf("ASCII %q decoded to %q", s, out)
		}
	})
}
