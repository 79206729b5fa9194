package imap

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/frontend/imap/proto"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

func TestWriterStrings(t *testing.T) {
	var b bytes.Buffer
	w := writer{Writer: bufio.NewWriter(&b)}
	w.str(`a"b\c`)
	w.sp()
	w.str("two\r\nlines")
	w.sp()
	w.str("café")
	w.sp()
	w.mailbox("Entwürfe")
	w.utf8 = true
	w.sp()
	w.str("café")
	w.sp()
	w.mailbox("Entwürfe")
	w.sp()
	w.numSet([]uint32{1, 2, 3, 5, 7, 8})
	w.Flush()
	want := `"a\"b\\c" {10}` + "\r\n" + `two` + "\r\n" + `lines {5}` + "\r\n" + `café "Entw&APw-rfe" "café" "Entwürfe" 1:3,5,7:8`
	if b.String() != want {
		t.Fatalf("got  %q\nwant %q", b.String(), want)
	}
}

func TestFilterHeader(t *testing.T) {
	h := []byte("From: a\r\nSubject: x\r\n  folded\r\nTo: b\r\n\r\n")
	if got := string(filterHeader(h, []string{"SUBJECT"}, false)); got != "Subject: x\r\n  folded\r\n\r\n" {
		t.Fatalf("%q", got)
	}
	if got := string(filterHeader(h, []string{"SUBJECT"}, true)); got != "From: a\r\nTo: b\r\n\r\n" {
		t.Fatalf("%q", got)
	}
}

func TestDecodeCTE(t *testing.T) {
	for enc, c := range map[string][2]string{
		"base64":           {"aGVs\r\nbG8=\r\n", "hello"},
		"quoted-printable": {"caf=C3=A9 =\r\nx", "café x"},
		"7bit":             {"plain", "plain"},
	} {
		got, err := decodeCTE([]byte(c[0]), enc)
		if err != nil || string(got) != c[1] {
			t.Errorf("%s: %q %v", enc, got, err)
		}
	}
	if _, err := decodeCTE([]byte("x"), "x-uuencode"); err != errUnknownCTE {
		t.Error(err)
	}
}

func TestSectionData(t *testing.T) {
	raw := []byte("Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n")
	m := mailmeta.Parse(raw, mailmeta.Limits{})
	for sec, want := range map[string]string{
		"1":        "one",
		"1.MIME":   "Content-Type: text/plain\r\n\r\n",
		"2.HEADER": "Subject: inner\r\n\r\n",
		"2.TEXT":   "inner body",
		"HEADER":   "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
	} {
		items, err := proto.ParseFetchItems(proto.Value{Kind: proto.Atom, S: "BODY[" + sec + "]"})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := sectionData(raw, m, items[0].Section)
		if !ok || string(got) != want {
			t.Errorf("%s: %q", sec, got)
		}
	}
	if _, ok := sectionData(raw, m, proto.Section{Part: []int{9}}); ok {
		t.Error("missing part found")
	}
}

func TestThreads(t *testing.T) {
	d := func(n int) time.Time { return time.Date(2024, 1, n, 0, 0, 0, 0, time.UTC) }
	msgs := []threadMsg{
		{num: 1, date: d(1), msgID: "a", subject: "x"},
		{num: 2, date: d(2), msgID: "b", refs: []string{"a"}, subject: "x", reply: true},
		{num: 3, date: d(3), msgID: "c", refs: []string{"a"}, subject: "x", reply: true},
		{num: 4, date: d(4), msgID: "d", subject: "other"},
		{num: 5, date: d(5), msgID: "e", refs: []string{"missing", "b"}, subject: "x", reply: true},
	}
	var out string
	for _, r := range references(append([]threadMsg(nil), msgs...)) {
		out += "(" + formatThread(r) + ")"
	}
	if out != "(1 (2 5)(3))(4)" {
		t.Errorf("REFERENCES: %s", out)
	}
	out = ""
	for _, r := range orderedSubject(append([]threadMsg(nil), msgs...)) {
		out += "(" + formatThread(r) + ")"
	}
	if out != "(1 (2)(3)(5))(4)" {
		t.Errorf("ORDEREDSUBJECT: %s", out)
	}
}

func TestResolve(t *testing.T) {
	s := &session{sel: &selected{uids: []uint32{2, 4, 6, 8, 10}}}
	set, _ := proto.ParseNumSet("5:*,1")
	iv, err := s.resolve(set, true)
	if err != nil || len(iv) != 1 || iv[0] != (ival{2, 4}) {
		t.Fatalf("%v %v", iv, err)
	}
	set, _ = proto.ParseNumSet("2,3,*")
	iv, _ = s.resolve(set, false)
	if len(iv) != 2 || iv[0] != (ival{1, 2}) || iv[1] != (ival{4, 4}) {
		t.Fatalf("%v", iv)
	}
	set, _ = proto.ParseNumSet("6")
	if _, err := s.resolve(set, false); err == nil {
		t.Fatal("seq beyond EXISTS accepted")
	}
}
