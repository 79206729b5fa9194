package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const box = "From alice@example.org Thu Dec  3 16:17:05 2026\n" +
	"From: alice@example.org\nSubject: one\nStatus: RO\nX-Status: AF\n\nhello\n>From the start\n>>From kept\n\n" +
	"From bob@example.org Fri Dec  4 10:00:00 2026\n" +
	"From: bob@example.org\nSubject: two\n\nbye\n"

func TestMbox(t *testing.T) {
	var got []Message
	err := Mbox(strings.NewReader(box), "INBOX", func(m Message, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d messages", len(got))
	}
	want0 := "From: alice@example.org\r\nSubject: one\r\nStatus: RO\r\nX-Status: AF\r\n\r\nhello\r\nFrom the start\r\n>From kept\r\n"
	if string(got[0].Raw) != want0 {
		t.Errorf("message 1:\n%q\nwant\n%q", got[0].Raw, want0)
	}
	if strings.Join(got[0].Flags, " ") != `\Seen \Answered \Flagged` {
		t.Errorf("flags %v", got[0].Flags)
	}
	if got[0].Date.Day() != 3 || got[1].Date.Day() != 4 {
		t.Errorf("dates %v %v", got[0].Date, got[1].Date)
	}
	if !bytes.HasSuffix(got[1].Raw, []byte("bye\r\n")) {
		t.Errorf("message 2 %q", got[1].Raw)
	}
}

func TestMaildir(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"cur", "new", "tmp", ".Work.2026/cur", ".Work.2026/new"} {
		os.MkdirAll(filepath.Join(root, p), 0o755)
	}
	os.WriteFile(filepath.Join(root, "cur", "1.host:2,SR"), []byte("Subject: a\n\nx\n"), 0o644)
	os.WriteFile(filepath.Join(root, "new", "2.host"), []byte("Subject: b\n\ny\n"), 0o644)
	os.WriteFile(filepath.Join(root, ".Work.2026/cur", "3.host:2,FT"), []byte("Subject: c\n\nz\n"), 0o644)
	got := map[string][]string{}
	err := Maildir(root, "/", func(m Message, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		got[m.Mailbox+" "+string(m.Raw[:10])] = m.Flags
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || strings.Join(got["INBOX Subject: a"], " ") != `\Seen \Answered` ||
		strings.Join(got["Work/2026 Subject: c"], " ") != `\Flagged \Deleted` || got["INBOX Subject: b"] != nil {
		t.Fatalf("maildir: %v", got)
	}
}

// A folder of .eml files, or an empty one, is not a Maildir: refused, not
// "imported 0 messages".
func TestNotMaildir(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.eml"), []byte("Subject: a\n\nx\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	err := Maildir(root, "/", func(Message, error) error { t.Fatal("a message from a non-Maildir"); return nil })
	if err == nil || !strings.Contains(err.Error(), "not a Maildir") {
		t.Fatalf("folder of .eml files: %v", err)
	}
	// A Maildir whose only messages are in a .Folder is one.
	os.MkdirAll(filepath.Join(root, ".Archive", "cur"), 0o755)
	if err := Maildir(root, "/", func(Message, error) error { return nil }); err != nil {
		t.Fatalf("maildir with only .Archive: %v", err)
	}
}

func FuzzMbox(f *testing.F) {
	f.Add([]byte(box))
	f.Add([]byte("From x\n\n\nFrom y\nFrom z\n>From\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := Mbox(bytes.NewReader(b), "INBOX", func(m Message, err error) error {
			n++
			if bytes.Contains(m.Raw, []byte("\n")) && !bytes.Contains(m.Raw, []byte("\r\n")) {
				t.Fatalf("bare LF left in %q", m.Raw)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n > bytes.Count(b, []byte("From "))+1 {
			t.Fatalf("%d messages from %d From lines", n, bytes.Count(b, []byte("From ")))
		}
	})
}

func TestIdentityIgnoresClientState(t *testing.T) {
	a := "From: a@example.com\r\nStatus: O\r\nSubject: hi\r\n\r\nStatus: RO in the body\r\n"
	b := "From: a@example.com\r\nStatus: RO\r\nX-Status: AF\r\nX-Mozilla-Status: 0001\r\n\tfolded\r\nSubject: hi\r\n\r\nStatus: RO in the body\r\n"
	c := "From: a@example.com\r\nSubject: hi\r\n\r\nStatus: RO in the body\r\n"
	if string(Identity([]byte(a))) != c || string(Identity([]byte(b))) != c {
		t.Fatalf("Identity:\n%q\n%q\nwant %q", Identity([]byte(a)), Identity([]byte(b)), c)
	}
	d := "From: a@example.com\r\nSubject: other\r\n\r\nStatus: RO in the body\r\n"
	if string(Identity([]byte(d))) == c {
		t.Fatal("a changed Subject is another message")
	}
	if got := string(Identity([]byte("Status: R\nno end of header"))); got != "no end of header" {
		t.Fatalf("no blank line: %q", got)
	}
}

func FuzzIdentity(f *testing.F) {
	f.Add([]byte("Status: RO\r\n\tx\r\nSubject: a\r\n\r\nbody"))
	f.Add([]byte("X-Status:\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id := Identity(b)
		if len(id) > len(b) {
			t.Fatalf("Identity grew %q to %q", b, id)
		}
		if again := Identity(id); !bytes.Equal(again, id) && bytes.Contains(b, []byte("\n\n")) {
			t.Fatalf("not idempotent: %q -> %q -> %q", b, id, again)
		}
	})
}
