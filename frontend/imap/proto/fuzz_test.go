package proto

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzParseCommand feeds raw input through the reader and every argument
// parser; none may panic or loop.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"a LOGIN bob \"p w\"", "a UID FETCH 1:*,5 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (A B)]<0.10>)",
		"a APPEND INBOX (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {5}\r\nhello", "a SEARCH RETURN (ALL) OR UID 1:5 NOT SEEN HEADER x y",
		"a SELECT INBOX (QRESYNC (1 2 1:5 (1,3 5,9)))", "a APPEND INBOX ~{3}\r\n\x00ab", "a STORE $ +FLAGS.SILENT (\\Deleted)",
		"a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (STATUS (MESSAGES))", "a CREATE &ZeVnLIqe-",
	} {
		f.Add([]byte(s + "\r\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Reader{R: bufio.NewReaderSize(bytes.NewReader(data), 16), L: Limits{MaxLine: 200, MaxLiteral: 100, MaxCommand: 400, DiscardCap: 300}}
		for i := 0; i < 10; i++ {
			b, err := r.ReadCommand(func([]byte, int64) error { return nil })
			if err != nil && err != ErrLineTooLong {
				if _, ok := err.(*LiteralError); !ok {
					break
				}
			}
			c, err := ParseCommand(b)
			if err != nil {
				continue
			}
			ParseSearch(c.Args)
			for _, a := range c.Args {
				ParseFetchItems(a)
				Flags(a)
				if s, ok := a.AString(); ok {
					ParseNumSet(s)
					ParseDateTime(s)
					if u, ok := DecodeUTF7(s); ok {
						if back, ok := DecodeUTF7(EncodeUTF7(u)); !ok || back != u {
							t.Fatalf("utf7 round trip %q", s)
						}
					}
				}
				if a.Kind == List {
					for _, x := range a.L {
						if it, err := parseFetchItem(x.S); err == nil && x.Kind == Atom {
							if _, err := parseSection(it.Section.String(), false); err != nil {
								t.Fatalf("section %q does not round-trip", it.Section.String())
							}
						}
					}
				}
			}
		}
	})
}
