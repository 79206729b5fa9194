package proto

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func read(t *testing.T, in string, l Limits) ([]byte, error, int) {
	t.Helper()
	r := &Reader{R: bufio.NewReaderSize(strings.NewReader(in), 16), L: l}
	conts := 0
	b, err := r.ReadCommand(func([]byte, int64) error { conts++; return nil })
	return b, err, conts
}

var lim = Limits{MaxLine: 100, MaxLiteral: 20, MaxCommand: 200, DiscardCap: 100}

func TestReadCommandLiterals(t *testing.T) {
	b, err, conts := read(t, "a APPEND INBOX {5}\r\nhello FOO {3+}\r\nabc\r\nnext\r\n", lim)
	if err != nil || conts != 1 || string(b) != "a APPEND INBOX {5}\r\nhello FOO {3+}\r\nabc" {
		t.Fatalf("%q %v %d", b, err, conts)
	}
	c, err := ParseCommand(b)
	if err != nil || c.Name != "APPEND" || len(c.Args) != 4 || string(c.Args[1].B) != "hello" || string(c.Args[3].B) != "abc" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestReadCommandRefusedLiterals(t *testing.T) {
	// Synchronizing: nothing read beyond the line, no continuation.
	r := &Reader{R: bufio.NewReader(strings.NewReader("a APPEND INBOX {50}\r\nb NOOP\r\n")), L: lim}
	conts := 0
	_, err := r.ReadCommand(func([]byte, int64) error { conts++; return nil })
	var le *LiteralError
	if !errors.As(err, &le) || !le.Sync || conts != 0 || Tag(le.Partial) != "a" {
		t.Fatalf("%v %d", err, conts)
	}
	b, err := r.ReadCommand(nil)
	if err != nil || string(b) != "b NOOP" {
		t.Fatalf("%q %v", b, err)
	}
	// Non-synchronizing: discarded with the rest of the command.
	r = &Reader{R: bufio.NewReader(strings.NewReader("a APPEND INBOX {30+}\r\n" + strings.Repeat("x", 30) + " {2+}\r\nzz\r\nb NOOP\r\n")), L: lim}
	_, err = r.ReadCommand(nil)
	if !errors.As(err, &le) || le.Sync {
		t.Fatal(err)
	}
	if b, err = r.ReadCommand(nil); err != nil || string(b) != "b NOOP" {
		t.Fatalf("%q %v", b, err)
	}
	// Above the discard cap: fatal.
	r = &Reader{R: bufio.NewReader(strings.NewReader("a APPEND INBOX {3000+}\r\n")), L: lim}
	if _, err = r.ReadCommand(nil); err != ErrFatal {
		t.Fatal(err)
	}
}

func TestReadLineTooLong(t *testing.T) {
	r := &Reader{R: bufio.NewReaderSize(strings.NewReader("a "+strings.Repeat("x", 500)+"\r\nb NOOP\r\n"), 16), L: lim}
	b, err := r.ReadCommand(nil)
	if err != ErrLineTooLong || Tag(b) != "a" {
		t.Fatalf("%q %v", b, err)
	}
	if b, err = r.ReadCommand(nil); err != nil || string(b) != "b NOOP" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestParse(t *testing.T) {
	c, err := ParseCommand([]byte(`x1 uid fetch 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (From "To")]<0.100> BINARY[1.2] MODSEQ) (CHANGEDSINCE 5 VANISHED)`))
	if err != nil || c.Name != "FETCH" || !c.UID || len(c.Args) != 3 {
		t.Fatalf("%+v %v", c, err)
	}
	items, err := ParseFetchItems(c.Args[1])
	if err != nil || len(items) != 4 {
		t.Fatal(items, err)
	}
	if it := items[1]; it.Name != "BODY[]" || !it.Peek || !it.Partial || it.Count != 100 || it.Section.String() != "HEADER.FIELDS (FROM TO)" {
		t.Fatalf("%+v", it)
	}
	if it := items[2]; it.Name != "BINARY[]" || it.Section.String() != "1.2" {
		t.Fatalf("%+v", it)
	}
	set, err := ParseNumSet(c.Args[0].S)
	if err != nil || !set.Contains(7, 7) || set.Contains(7, 6) || !set.Contains(5, 3) {
		t.Fatal(set, err)
	}
	for _, bad := range []string{"", "a", "a ", "a FETCH (", `a LOGIN "x`, "a X {5}\r\nab", "a STORE 1 +FLAGS (\\Seen", "a FETCH 1 BODY[", "+ NOOP"} {
		if _, err := ParseCommand([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	sc, err := ParseSearch(mustArgs(t, `a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM "bob" NOT SEEN 1:5 HEADER X-A "b" (LARGER 10 SINCE 1-Feb-2024) MODSEQ 7`))
	if err != nil || len(sc.Return) != 2 || sc.Key.Op != "AND" || len(sc.Key.Sub) != 5 || !sc.Key.HasText() {
		t.Fatalf("%+v %v", sc, err)
	}
}

func mustArgs(t *testing.T, s string) []Value {
	c, err := ParseCommand([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c.Args
}

func TestUTF7(t *testing.T) {
	for utf, enc := range map[string]string{"Entwürfe": "Entw&APw-rfe", "a&b": "a&-b", "日本語": "&ZeVnLIqe-", "~peter/mail/台北/日本語": "~peter/mail/&U,BTFw-/&ZeVnLIqe-"} {
		if got := EncodeUTF7(utf); got != enc {
			t.Errorf("encode %q = %q", utf, got)
		}
		if got, ok := DecodeUTF7(enc); !ok || got != utf {
			t.Errorf("decode %q = %q", enc, got)
		}
	}
	for _, bad := range []string{"&", "&AGE", "&AGEA-", "&AGE-"} {
		if _, ok := DecodeUTF7(bad); ok {
			t.Errorf("%q decoded", bad)
		}
	}
}

// The normalised set (sorted, merged, "*" ranges folded) answers like the
// set as sent, for any value of "*".
func TestNumSetNormalized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	num := func() string {
		if rng.IntN(6) == 0 {
			return "*"
		}
		return strconv.Itoa(1 + rng.IntN(40))
	}
	for i := 0; i < 3000; i++ {
		var parts []string
		for j := 0; j < 1+rng.IntN(6); j++ {
			p := num()
			if rng.IntN(2) == 0 {
				p += ":" + num()
			}
			parts = append(parts, p)
		}
		text := strings.Join(parts, ",")
		set, err := ParseNumSet(text)
		if err != nil {
			t.Fatal(text, err)
		}
		var raw NumSet // as sent: linear scan
		for _, p := range parts {
			r, _ := ParseNumSet(p)
			raw.Ranges = append(raw.Ranges, r.Ranges...)
		}
		for star := uint32(1); star <= 45; star += 4 {
			for n := uint32(1); n <= 50; n++ {
				if got, want := set.Contains(n, star), raw.Contains(n, star); got != want {
					t.Fatalf("%s with * = %d: Contains(%d) = %v, want %v (normalised %v)", text, star, n, got, want, set.Ranges)
				}
			}
		}
	}
	big, _ := ParseNumSet(strings.Repeat("1,", 32000) + "1:*")
	if len(big.Ranges) != 2 {
		t.Errorf("32,001 ranges normalised to %v", big.Ranges)
	}
}
