package mailmeta

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseOK parses raw and fails the test on any invariant violation.
func parseOK(t *testing.T, raw string) *Meta {
	t.Helper()
	m := Parse([]byte(raw), DefaultLimits())
	if s := checkMeta(m, []byte(raw), DefaultLimits()); s != "" {
		t.Fatalf("invariant: %s", s)
	}
	return m
}

// mime returns BODY[n.MIME] (or BODY[HEADER]) and BODY[n] of p.
func spanOf(raw string, p *Part) (hdr, body string) {
	return raw[p.HeaderStart:p.BodyStart], raw[p.BodyStart:p.End]
}

func expectSpan(t *testing.T, raw string, p *Part, hdr, body string) {
	t.Helper()
	h, b := spanOf(raw, p)
	if h != hdr {
		t.Errorf("header bytes\n got %q\nwant %q", h, hdr)
	}
	if b != body {
		t.Errorf("body bytes\n got %q\nwant %q", b, body)
	}
}

func section(t *testing.T, m *Meta, path ...int) *Part {
	t.Helper()
	p, ok := m.Section(path)
	if !ok {
		t.Fatalf("Section(%v) not found", path)
	}
	return p
}

func hasDefectPrefix(m *Meta, s string) bool {
	for _, d := range m.Defects {
		if strings.Contains(d, s) {
			return true
		}
	}
	return false
}

func TestSimpleText(t *testing.T) {
	hdr := crlf(`Return-Path: <bounce@example.org>
From: "Jane Doe" <jane@example.com>
To: bob@example.net, "Carol, C." <carol@example.net>
Cc: dave@example.net
Subject: Lunch
 tomorrow?
Date: Tue, 7 Apr 2026 10:00:01 +0200
Message-ID: <abc.123@example.com>
In-Reply-To: <prev@example.com>
References: <root@example.com> <prev@example.com>
 <root@example.com>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

`)
	body := crlf("Hi Bob,\n\nShall we   meet at noon?\n\n-- \nJane\n")
	raw := hdr + body
	m := parseOK(t, raw)

	e := m.Envelope
	if e.Subject != "Lunch tomorrow?" || e.Date != "Tue, 7 Apr 2026 10:00:01 +0200" || e.MessageID != "<abc.123@example.com>" || e.InReplyTo != "<prev@example.com>" {
		t.Errorf("envelope strings: %+v", e)
	}
	wantFrom := []Address{{Name: "Jane Doe", Mailbox: "jane", Host: "example.com"}}
	if !reflect.DeepEqual(e.From, wantFrom) || !reflect.DeepEqual(e.Sender, wantFrom) || !reflect.DeepEqual(e.ReplyTo, wantFrom) {
		t.Errorf("from/sender/reply-to: %+v %+v %+v", e.From, e.Sender, e.ReplyTo)
	}
	wantTo := []Address{{Mailbox: "bob", Host: "example.net"}, {Name: "Carol, C.", Mailbox: "carol", Host: "example.net"}}
	if !reflect.DeepEqual(e.To, wantTo) {
		t.Errorf("to: %+v", e.To)
	}
	if len(e.Cc) != 1 || e.Bcc != nil {
		t.Errorf("cc/bcc: %+v %+v", e.Cc, e.Bcc)
	}
	if m.MessageID != "abc.123@example.com" {
		t.Errorf("MessageID %q", m.MessageID)
	}
	if !reflect.DeepEqual(m.InReplyTo, []string{"prev@example.com"}) || !reflect.DeepEqual(m.References, []string{"root@example.com", "prev@example.com"}) {
		t.Errorf("threading ids %v %v", m.InReplyTo, m.References)
	}
	if want := time.Date(2026, 4, 7, 8, 0, 1, 0, time.UTC); !m.Date.Equal(want) {
		t.Errorf("Date %v", m.Date)
	}
	if m.Subject != "Lunch tomorrow?" || m.BaseSubject != "Lunch tomorrow?" {
		t.Errorf("subject %q base %q", m.Subject, m.BaseSubject)
	}
	if len(m.To) != 2 || m.To[1] != (Addr{Name: "Carol, C.", Email: "carol@example.net"}) {
		t.Errorf("decoded To %+v", m.To)
	}
	if m.Preview != "Hi Bob, Shall we meet at noon? -- Jane" {
		t.Errorf("preview %q", m.Preview)
	}
	if len(m.Headers) != 11 || m.Headers[4] != (HeaderField{"Subject", "Lunch tomorrow?"}) {
		t.Errorf("headers %v", m.Headers)
	}
	b := m.Body
	if b.Type != "text" || b.Subtype != "plain" || b.Encoding != "8bit" || !reflect.DeepEqual(b.Params, []Param{{"charset", "utf-8"}}) {
		t.Errorf("body part %+v", b)
	}
	expectSpan(t, raw, b, hdr, body)
	if b.Lines != 6 || b.Size != int64(len(body)) {
		t.Errorf("lines %d size %d", b.Lines, b.Size)
	}
	if m.HasAttachment || len(m.Defects) != 0 {
		t.Errorf("attachments %v defects %v", m.Attachments, m.Defects)
	}
	// RFC 9051 §6.4.5: part 1 of a non-multipart message is its body.
	if section(t, m, 1) != b {
		t.Error("Section(1) is not the body")
	}
	if _, ok := m.Section([]int{2}); ok {
		t.Error("Section(2) of a single-part message")
	}
	if _, ok := m.Section([]int{1, 1}); ok {
		t.Error("Section(1.1) of a text message")
	}
}

const altHeader = `From: a@example.com
Subject: alt
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XX"

`

func TestMultipartAlternative(t *testing.T) {
	raw := crlf(altHeader + `This is the preamble.
--XX
Content-Type: text/plain; charset=us-ascii

plain body
--XX  
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<p>html =C3=A9 body</p>
--XX--
epilogue
`)
	m := parseOK(t, raw)
	b := m.Body
	if b.Type != "multipart" || b.Subtype != "alternative" || len(b.Children) != 2 {
		t.Fatalf("structure %s/%s %d", b.Type, b.Subtype, len(b.Children))
	}
	expectSpan(t, raw, b.Children[0], "Content-Type: text/plain; charset=us-ascii\r\n\r\n", "plain body")
	expectSpan(t, raw, b.Children[1],
		"Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
		"<p>html =C3=A9 body</p>")
	if c := b.Children[1]; c.Encoding != "quoted-printable" || c.Lines != 1 || c.Params[0] != (Param{"charset", "utf-8"}) {
		t.Errorf("html part %+v", c)
	}
	if section(t, m, 2) != b.Children[1] {
		t.Error("Section(2)")
	}
	if m.Preview != "plain body" {
		t.Errorf("preview %q", m.Preview)
	}
	if m.HasAttachment || len(m.Defects) != 0 {
		t.Errorf("attachments %v defects %v", m.Attachments, m.Defects)
	}
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	if tx.Plain != "plain body" || tx.HTML != "html é body" {
		t.Errorf("text %+v", tx)
	}
}

func TestNestedMixedWithAttachment(t *testing.T) {
	pdf := "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+"
	raw := crlf(`From: a@example.com
Subject: report
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

see attached
--inner
Content-Type: text/html

<b>see</b> attached
--inner--

--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64
Content-ID: <part2@example.com>
Content-Description: Quarterly report
Content-Language: en, de
Content-Location: http://example.com/
 report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

` + pdf + `
--outer--
`)
	m := parseOK(t, raw)
	alt := section(t, m, 1)
	if alt.Type != "multipart" || len(alt.Children) != 2 {
		t.Fatalf("part 1: %+v", alt)
	}
	// The blank line before "--outer" ends the inner epilogue, not a part.
	expectSpan(t, raw, section(t, m, 1, 1), "Content-Type: text/plain\r\n\r\n", "see attached")
	expectSpan(t, raw, section(t, m, 1, 2), "Content-Type: text/html\r\n\r\n", "<b>see</b> attached")
	if _, b := spanOf(raw, alt); !strings.HasPrefix(b, "--inner\r\n") || !strings.HasSuffix(b, "--inner--\r\n") {
		t.Errorf("alternative body %q", b)
	}
	att := section(t, m, 2)
	_, body := spanOf(raw, att)
	if body != pdf {
		t.Errorf("attachment body %q", body)
	}
	if att.ID != "<part2@example.com>" || att.Description != "Quarterly report" || att.Encoding != "base64" ||
		att.Disposition != "attachment" || !reflect.DeepEqual(att.DispositionParams, []Param{{"filename", "report.pdf"}}) ||
		!reflect.DeepEqual(att.Language, []string{"en", "de"}) || att.Location != "http://example.com/report.pdf" ||
		att.MD5 != "Q2hlY2sgSW50ZWdyaXR5IQ==" || att.Lines != 0 {
		t.Errorf("attachment part %+v", att)
	}
	want := []Attachment{{Name: "report.pdf", Type: "application/pdf", Size: int64(len(pdf) / 4 * 3), Part: "2"}}
	if !m.HasAttachment || !reflect.DeepEqual(m.Attachments, want) {
		t.Errorf("attachments %+v", m.Attachments)
	}
	if m.Preview != "see attached" {
		t.Errorf("preview %q", m.Preview)
	}
	if _, ok := m.Section([]int{1, 3}); ok {
		t.Error("Section(1.3) exists")
	}
	if _, ok := m.Section([]int{3}); ok {
		t.Error("Section(3) exists")
	}
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	if tx.Plain != "see attached" || tx.HTML != "see attached" || !reflect.DeepEqual(tx.AttachmentNames, []string{"report.pdf"}) {
		t.Errorf("text %+v", tx)
	}
}

func TestMessageRFC822InMultipart(t *testing.T) {
	inner := crlf(`From: =?iso-8859-1?q?J=F6rg?= <joerg@example.de>
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
Date: Mon, 6 Apr 2026 09:00:00 +0000
Message-ID: <inner@example.de>
Content-Type: multipart/mixed; boundary=b2

--b2
Content-Type: text/plain

inner text
--b2
Content-Type: image/png
Content-Disposition: inline

PNG
--b2--
`)
	raw := crlf(`From: fwd@example.com
Subject: Fwd: Grüße
Content-Type: multipart/mixed; boundary=b1

--b1

Forwarded below.
--b1
Content-Type: message/rfc822
Content-Disposition: attachment

`) + inner + crlf(`--b1--
`)
	m := parseOK(t, raw)
	first := section(t, m, 1)
	expectSpan(t, raw, first, "\r\n", "Forwarded below.")
	if first.Type != "text" || first.Subtype != "plain" {
		t.Errorf("header-less part type %s/%s", first.Type, first.Subtype)
	}
	msg := section(t, m, 2)
	if msg.Type != "message" || msg.Subtype != "rfc822" || msg.Envelope == nil || msg.Message == nil {
		t.Fatalf("part 2 %+v", msg)
	}
	_, body := spanOf(raw, msg)
	if body+"\r\n" != inner {
		t.Errorf("message/rfc822 body %q", body)
	}
	if msg.Lines != int64(strings.Count(inner, "\n")) {
		t.Errorf("rfc822 lines %d", msg.Lines)
	}
	env := msg.Envelope
	if env.Subject != "=?utf-8?q?Gr=C3=BC=C3=9Fe?=" || env.MessageID != "<inner@example.de>" ||
		!reflect.DeepEqual(env.From, []Address{{Name: "=?iso-8859-1?q?J=F6rg?=", Mailbox: "joerg", Host: "example.de"}}) {
		t.Errorf("inner envelope %+v", env)
	}
	// BODY[2.HEADER] and BODY[2.TEXT] come from the enclosed message.
	ih, it := spanOf(raw, msg.Message)
	if !strings.HasPrefix(ih, "From: =?iso") || !strings.HasSuffix(ih, "boundary=b2\r\n\r\n") || !strings.HasPrefix(it, "--b2\r\n") {
		t.Errorf("inner header/text %q / %q", ih, it)
	}
	expectSpan(t, raw, section(t, m, 2, 1), "Content-Type: text/plain\r\n\r\n", "inner text")
	expectSpan(t, raw, section(t, m, 2, 2), "Content-Type: image/png\r\nContent-Disposition: inline\r\n\r\n", "PNG")
	if _, ok := m.Section([]int{2, 3}); ok {
		t.Error("Section(2.3) exists")
	}
	want := []Attachment{{Type: "message/rfc822", Size: int64(len(body)), Part: "2"}}
	if !reflect.DeepEqual(m.Attachments, want) {
		t.Errorf("attachments %+v", m.Attachments)
	}
	if m.Subject != "Fwd: Grüße" || m.BaseSubject != "Grüße" {
		t.Errorf("subject %q base %q", m.Subject, m.BaseSubject)
	}
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	// The enclosed header is body text too (RFC 9051 §6.4.4), decoded.
	if tx.Plain != "Forwarded below.\nFrom: Jörg <joerg@example.de>\nSubject: Grüße\nDate: Mon, 6 Apr 2026 09:00:00 +0000\nMessage-ID: <inner@example.de>\nContent-Type: multipart/mixed; boundary=b2\ninner text" {
		t.Errorf("plain %q", tx.Plain)
	}
}

func TestMessageRFC822Single(t *testing.T) {
	// A message whose body is a non-multipart message: 1 is the enclosed
	// message, 1.1 its body (RFC 9051 §6.4.5).
	raw := crlf(`Content-Type: message/rfc822

Subject: inner

hello
`)
	m := parseOK(t, raw)
	if section(t, m, 1) != m.Body {
		t.Error("Section(1)")
	}
	in := section(t, m, 1, 1)
	if in != m.Body.Message {
		t.Error("Section(1.1) is not the enclosed body")
	}
	expectSpan(t, raw, in, "Subject: inner\r\n\r\n", "hello\r\n")
	if m.Body.Envelope.Subject != "inner" {
		t.Errorf("inner envelope %+v", m.Body.Envelope)
	}
}

func TestRFC2231(t *testing.T) {
	raw := crlf(`Content-Type: multipart/mixed; boundary=z

--z
Content-Type: application/octet-stream;
 name*0*=utf-8''%E2%82%AC%20rates;
 name*1=" 2026";
 name*2*=.pdf
Content-Disposition: attachment;
 filename*=iso-8859-1'de'Gr%FC%DFe.txt; size=3

abc
--z
Content-Type: text/plain; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A; charset=us-ascii; format=flowed

x
--z
Content-Type: application/pdf; name="=?utf-8?q?Rechnung_M=C3=A4rz.pdf?="

y
--z--
`)
	m := parseOK(t, raw)
	p1 := section(t, m, 1)
	if !reflect.DeepEqual(p1.Params, []Param{{"name", "€ rates 2026.pdf"}}) {
		t.Errorf("continuations %+v", p1.Params)
	}
	if !reflect.DeepEqual(p1.DispositionParams, []Param{{"filename", "Grüße.txt"}, {"size", "3"}}) {
		t.Errorf("disposition %+v", p1.DispositionParams)
	}
	p2 := section(t, m, 2)
	want := []Param{{"title", "This is ***fun***"}, {"charset", "us-ascii"}, {"format", "flowed"}}
	if !reflect.DeepEqual(p2.Params, want) {
		t.Errorf("order or RFC 2231 value: %+v", p2.Params)
	}
	// RFC 2047 in a quoted name is not standard, but common: Params keep
	// it as sent, the attachment name is decoded.
	p3 := section(t, m, 3)
	if p3.Params[0].Value != "=?utf-8?q?Rechnung_M=C3=A4rz.pdf?=" {
		t.Errorf("raw name %q", p3.Params[0].Value)
	}
	var names []string
	for _, a := range m.Attachments {
		names = append(names, a.Part+" "+a.Name)
	}
	if !reflect.DeepEqual(names, []string{"1 Grüße.txt", "3 Rechnung März.pdf"}) {
		t.Errorf("attachment names %q", names)
	}
}

func TestEncodedWords(t *testing.T) {
	raw := crlf(`From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <jm@example.de>
To: "=?iso-8859-1?Q?Andr=E9?= Pirard" <pirard@example.be>, =?koi8-r?b?7dnb?= <m@example.ru>
Subject: =?ISO-8859-1?Q?Re:_Caf=E9?= =?UTF-8?Q?_=E2=82=AC?= [list] Re: ok
X-Unknown: =?x-unknown?q?abc?=

.
`)
	m := parseOK(t, raw)
	if m.Envelope.Subject != "=?ISO-8859-1?Q?Re:_Caf=E9?= =?UTF-8?Q?_=E2=82=AC?= [list] Re: ok" {
		t.Errorf("raw subject %q", m.Envelope.Subject)
	}
	if m.Subject != "Re: Café € [list] Re: ok" {
		t.Errorf("decoded subject %q", m.Subject)
	}
	if m.BaseSubject != "Café € [list] Re: ok" {
		t.Errorf("base subject %q", m.BaseSubject)
	}
	if m.Envelope.From[0].Name != "=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?=" {
		t.Errorf("raw name %q", m.Envelope.From[0].Name)
	}
	want := []Addr{{Name: "Jörg Müller", Email: "jm@example.de"}}
	if !reflect.DeepEqual(m.From, want) {
		t.Errorf("from %+v", m.From)
	}
	wantTo := []Addr{{Name: "André Pirard", Email: "pirard@example.be"}, {Name: "Мыш", Email: "m@example.ru"}}
	if !reflect.DeepEqual(m.To, wantTo) {
		t.Errorf("to %+v", m.To)
	}
}

func TestGroups(t *testing.T) {
	raw := crlf(`From: Team: alice@example.com, "Bob B" <bob@example.com>;, carol@example.com
To: undisclosed-recipients:;
Cc: jdoe@example.com (John Doe), <@relay1,@relay2:route@example.net>
Sender: <>

`)
	m := parseOK(t, raw)
	wantFrom := []Address{
		{Mailbox: "Team", GroupStart: true},
		{Mailbox: "alice", Host: "example.com"},
		{Name: "Bob B", Mailbox: "bob", Host: "example.com"},
		{GroupEnd: true},
		{Mailbox: "carol", Host: "example.com"},
	}
	if !reflect.DeepEqual(m.Envelope.From, wantFrom) {
		t.Errorf("envelope from %+v", m.Envelope.From)
	}
	if !reflect.DeepEqual(m.Envelope.To, []Address{{Mailbox: "undisclosed-recipients", GroupStart: true}, {GroupEnd: true}}) {
		t.Errorf("envelope to %+v", m.Envelope.To)
	}
	if m.To != nil {
		t.Errorf("decoded empty group %+v", m.To)
	}
	wantCc := []Address{{Mailbox: "jdoe", Host: "example.com"}, {Adl: "@relay1,@relay2", Mailbox: "route", Host: "example.net"}}
	if !reflect.DeepEqual(m.Envelope.Cc, wantCc) {
		t.Errorf("envelope cc %+v", m.Envelope.Cc)
	}
	if !reflect.DeepEqual(m.Cc, []Addr{{Name: "John Doe", Email: "jdoe@example.com"}, {Email: "route@example.net"}}) {
		t.Errorf("decoded cc %+v", m.Cc)
	}
	if len(m.From) != 3 || m.From[1].Name != "Bob B" {
		t.Errorf("decoded from %+v", m.From)
	}
	// An empty Sender takes From (RFC 9051 §7.5.2).
	if !reflect.DeepEqual(m.Envelope.Sender, wantFrom) {
		t.Errorf("sender %+v", m.Envelope.Sender)
	}
}

func TestAddressOddities(t *testing.T) {
	for _, tc := range []struct{ in, name, email string }{
		{`"john doe"@example.com`, "", `"john doe"@example.com`},
		{`"john"@example.com`, "", `john@example.com`},
		{`John Q. Public <jqp@example.com>`, "John Q. Public", "jqp@example.com"},
		{`Big Bug bb@bug.com`, "Big Bug", "bb@bug.com"},
		{`a@b@c`, "", "a@b@c"},
		{`<jdoe@example.com`, "", "jdoe@example.com"},
		{`"unterminated <x@y>`, "", `"unterminated <x@y>"`},
		{`Amazon.co.jp@jmmlm.com <a@jmmlm.com>`, "Amazon.co.jp@jmmlm.com", "a@jmmlm.com"},
		{`jdoe@machine(comment).  example`, "comment", "jdoe@machine.example"},
	} {
		_, d := parseAddressList(tc.in)
		if len(d) != 1 || d[0].Name != tc.name || d[0].Email != tc.email {
			t.Errorf("%s: got %+v, want %q %q", tc.in, d, tc.name, tc.email)
		}
	}
	_, d := parseAddressList("a@example.com b@example.com")
	if len(d) != 2 {
		t.Errorf("missing comma: %+v", d)
	}
}

func TestMissingHeaders(t *testing.T) {
	raw := "\r\njust a body\r\n"
	m := parseOK(t, raw)
	if !reflect.DeepEqual(m.Envelope, Envelope{}) || m.Headers != nil || m.MessageID != "" || !m.Date.IsZero() || m.Subject != "" {
		t.Errorf("meta %+v", m)
	}
	expectSpan(t, raw, m.Body, "\r\n", "just a body\r\n")
	if !reflect.DeepEqual(m.Body.Params, []Param{{"charset", "us-ascii"}}) || m.Body.Encoding != "7bit" {
		t.Errorf("defaults %+v", m.Body)
	}
	// Empty input.
	m = parseOK(t, "")
	if m.Body.Type != "text" || m.Body.End != 0 {
		t.Errorf("empty %+v", m.Body)
	}
	// Header only, no body and no empty line: not a defect.
	raw = "Subject: only\r\n"
	m = parseOK(t, raw)
	expectSpan(t, raw, m.Body, raw, "")
	if len(m.Defects) != 0 || m.Subject != "only" {
		t.Errorf("header only: %v %q", m.Defects, m.Subject)
	}
}

func TestBareLF(t *testing.T) {
	raw := altHeader + "--XX\nContent-Type: text/plain\n\none\ntwo\n--XX\n\nthree\n--XX--\n"
	m := parseOK(t, raw)
	expectSpan(t, raw, m.Body, altHeader, raw[len(altHeader):])
	expectSpan(t, raw, section(t, m, 1), "Content-Type: text/plain\n\n", "one\ntwo")
	expectSpan(t, raw, section(t, m, 2), "\n", "three")
	if l := section(t, m, 1).Lines; l != 2 {
		t.Errorf("lines %d", l)
	}
	// Mixed line ends in one message.
	raw = "Subject: mix\r\nContent-Type: multipart/mixed; boundary=q\n\r\n--q\r\n\nA\n--q--"
	m = parseOK(t, raw)
	expectSpan(t, raw, m.Body, "Subject: mix\r\nContent-Type: multipart/mixed; boundary=q\n\r\n", "--q\r\n\nA\n--q--")
	expectSpan(t, raw, section(t, m, 1), "\n", "A")
}

func TestNoBlankLine(t *testing.T) {
	raw := "From: a@example.com\r\nSubject: x\r\nThis line is not a header\r\nmore\r\n"
	m := parseOK(t, raw)
	expectSpan(t, raw, m.Body, "From: a@example.com\r\nSubject: x\r\n", "This line is not a header\r\nmore\r\n")
	if !hasDefectPrefix(m, "no header/body separator") || m.Subject != "x" {
		t.Errorf("defects %v subject %q", m.Defects, m.Subject)
	}
	// In a part.
	raw = crlf("Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/html\n<p>hi</p>\n--q--\n")
	m = parseOK(t, raw)
	expectSpan(t, raw, section(t, m, 1), "Content-Type: text/html\r\n", "<p>hi</p>")
	if section(t, m, 1).Subtype != "html" || !hasDefectPrefix(m, "1: no header/body separator") {
		t.Errorf("part %+v defects %v", section(t, m, 1), m.Defects)
	}
}

func TestMissingClosingBoundary(t *testing.T) {
	raw := crlf(altHeader + "--XX\n\nfirst\n--XX\nContent-Type: text/html\n\n<i>last</i>\n")
	m := parseOK(t, raw)
	if len(m.Body.Children) != 2 {
		t.Fatalf("children %d", len(m.Body.Children))
	}
	expectSpan(t, raw, section(t, m, 2), "Content-Type: text/html\r\n\r\n", "<i>last</i>\r\n")
	if !hasDefectPrefix(m, "missing closing boundary") {
		t.Errorf("defects %v", m.Defects)
	}
	// Inner multipart unclosed: it ends at the outer delimiter.
	raw = crlf(`Content-Type: multipart/mixed; boundary=o

--o
Content-Type: multipart/alternative; boundary=i

--i

a
--o

b
--o--
`)
	m = parseOK(t, raw)
	expectSpan(t, raw, section(t, m, 1, 1), "\r\n", "a")
	expectSpan(t, raw, section(t, m, 2), "\r\n", "b")
	if !hasDefectPrefix(m, "1: missing closing boundary") {
		t.Errorf("defects %v", m.Defects)
	}
}

func TestBoundaryRules(t *testing.T) {
	raw := crlf(`Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

--bogus is not a delimiter
 --b neither
--b	 
Content-Type: text/plain

second
--b--	
--b
epilogue, ignored
`)
	m := parseOK(t, raw)
	if len(m.Body.Children) != 2 {
		t.Fatalf("children %d", len(m.Body.Children))
	}
	_, b := spanOf(raw, section(t, m, 1))
	if b != "--bogus is not a delimiter\r\n --b neither" {
		t.Errorf("part 1 %q", b)
	}
	// Adjacent delimiters make no part (RFC 2046 §5.1.1 needs the CRLF).
	raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n")
	m = parseOK(t, raw)
	if len(m.Body.Children) != 1 || !hasDefectPrefix(m, "adjacent") {
		t.Errorf("adjacent: %d children, %v", len(m.Body.Children), m.Defects)
	}
	// A multipart with only "--b" then "--b--" keeps one empty part.
	raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b--\n")
	m = parseOK(t, raw)
	if m.Body.Type != "multipart" || len(m.Body.Children) != 1 || m.Body.Children[0].Size != 0 {
		t.Errorf("empty multipart %+v", m.Body)
	}
}

func TestDegradedMultipart(t *testing.T) {
	for _, tc := range []struct{ name, raw, defect string }{
		{"no boundary", "Content-Type: multipart/mixed\r\n\r\nbody\r\n", "multipart without boundary"},
		{"no delimiter", "Content-Type: multipart/mixed; boundary=x\r\n\r\nbody\r\n", "no boundary delimiter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseOK(t, tc.raw)
			if m.Body.Type != "text" || m.Body.Subtype != "plain" || m.Body.Lines != 1 || !hasDefectPrefix(m, tc.defect) {
				t.Errorf("%+v %v", m.Body, m.Defects)
			}
			if m.Preview != "body" {
				t.Errorf("preview %q", m.Preview)
			}
		})
	}
}

func TestDigestDefault(t *testing.T) {
	raw := crlf(`Content-Type: multipart/digest; boundary=d

--d

Subject: one

1
--d
Content-Type: text/plain

not a message
--d--
`)
	m := parseOK(t, raw)
	p1, p2 := section(t, m, 1), section(t, m, 2)
	if p1.Type != "message" || p1.Subtype != "rfc822" || p1.Envelope.Subject != "one" || p2.Type != "text" {
		t.Errorf("digest parts %+v %+v", p1, p2)
	}
}

func TestInvalidContentType(t *testing.T) {
	m := parseOK(t, "Content-Type: text\r\nContent-Transfer-Encoding: BASE64 (yes)\r\n\r\naGk=\r\n")
	if m.Body.Type != "text" || m.Body.Subtype != "plain" || m.Body.Encoding != "base64" || !hasDefectPrefix(m, "invalid content-type") {
		t.Errorf("%+v %v", m.Body, m.Defects)
	}
	if m.Preview != "hi" {
		t.Errorf("preview %q", m.Preview)
	}
	m = parseOK(t, "Content-Type: Application/PDF name=\"x y.pdf\" (comment)\r\n\r\n%PDF\r\n")
	if m.Body.Type != "application" || m.Body.Subtype != "pdf" || !reflect.DeepEqual(m.Body.Params, []Param{{"name", "x y.pdf"}}) {
		t.Errorf("%+v", m.Body)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Part != "1" || m.Attachments[0].Name != "x y.pdf" {
		t.Errorf("attachments %+v", m.Attachments)
	}
}

func TestDuplicateHeadersFirstWins(t *testing.T) {
	m := parseOK(t, "Subject: first\r\nFrom: a@x\r\nSubject: second\r\nFrom: b@x\r\nmessage-id: <1@x>\r\nMessage-ID: <2@x>\r\n\r\n")
	if m.Envelope.Subject != "first" || m.Envelope.From[0].Mailbox != "a" || m.MessageID != "1@x" || len(m.Headers) != 6 {
		t.Errorf("%+v", m.Envelope)
	}
}

func TestMboxFromLine(t *testing.T) {
	raw := "From someone@example.com Mon Apr  6 09:00:00 2026\nSubject: mbox\n\nbody\n"
	m := parseOK(t, raw)
	if m.Subject != "mbox" || m.Body.HeaderStart != 0 || !hasDefectPrefix(m, "mbox From_ line") {
		t.Errorf("%q %v", m.Subject, m.Defects)
	}
}

func TestReferencesCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("References:")
	for i := 0; i < 150; i++ {
		fmt.Fprintf(&b, " <%d@x>", i)
	}
	b.WriteString(" <5@x>\r\nIn-Reply-To: <149@x> (comment) <149@x>\r\n\r\n")
	m := parseOK(t, b.String())
	if len(m.References) != 100 || m.References[0] != "0@x" || m.References[1] != "51@x" || m.References[99] != "149@x" {
		t.Errorf("references %d %v", len(m.References), m.References[:3])
	}
	if !reflect.DeepEqual(m.InReplyTo, []string{"149@x"}) {
		t.Errorf("in-reply-to %v", m.InReplyTo)
	}
	if got := msgIDs("foo@bar baz"); !reflect.DeepEqual(got, []string{"foo@bar"}) {
		t.Errorf("bare ids %v", got)
	}
	if got := normMsgID("  no-brackets@example.com  "); got != "no-brackets@example.com" {
		t.Errorf("normMsgID %q", got)
	}
}

func TestBaseSubject(t *testing.T) {
	for in, want := range map[string]string{
		"Re: hello":                      "hello",
		"RE: Re: re: hello":              "hello",
		"Fwd: hello (fwd)":               "hello",
		"Fw: [list] Re: hello  (FWD) ":   "hello",
		"[list] hello":                   "hello",
		"[list]":                         "[list]",
		"[Fwd: Re: hello]":               "hello",
		"Re [2]: hello":                  "hello",
		"Re:\thello\t world":             "hello world",
		"Reply: hello":                   "Reply: hello",
		"   ":                            "",
		"[a] [b] Re: [c] hello":          "hello",
		"re: [fwd: [list] Re: hello]":    "hello",
		"Re:":                            "",
		"Subject with no prefix at all!": "Subject with no prefix at all!",
	} {
		if got := baseSubject(in); got != want {
			t.Errorf("baseSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDates(t *testing.T) {
	for in, want := range map[string]string{
		"Tue, 7 Apr 2026 10:00:01 +0200":               "2026-04-07T08:00:01Z",
		"7 Apr 2026 10:00 +0000":                       "2026-04-07T10:00:00Z",
		"Tue, 07 Apr 2026 10:00:01 +0000 (UTC)":        "2026-04-07T10:00:01Z",
		"Tue, 7 Apr 26 10:00:01 GMT":                   "2026-04-07T10:00:01Z",
		"Tue Apr  7 10:00:01 2026":                     "2026-04-07T10:00:01Z",
		"Tue, 7 Apr 2026 10:00:01 +0000 GMT+00:00 xyz": "2026-04-07T10:00:01Z",
		"yesterday": "",
	} {
		got := parseDate(in)
		s := ""
		if !got.IsZero() {
			s = got.UTC().Format(time.RFC3339)
		}
		if s != want {
			t.Errorf("parseDate(%q) = %q, want %q", in, s, want)
		}
	}
}

func TestLimits(t *testing.T) {
	// Depth: nest 30 multiparts.
	var b strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("\r\ndeep\r\n")
	raw := b.String()
	lim := Limits{MaxDepth: 5}
	m := Parse([]byte(raw), lim)
	if s := checkMeta(m, []byte(raw), lim); s != "" {
		t.Fatal(s)
	}
	if !hasDefectPrefix(m, "depth limit") {
		t.Errorf("defects %v", m.Defects)
	}
	p := m.Body
	depth := 0
	for p.Type == "multipart" {
		p = p.Children[0]
		depth++
	}
	if depth != 5 || p.Type != "text" {
		t.Errorf("leaf at depth %d: %s", depth, p.Type)
	}

	// Parts.
	b.Reset()
	b.WriteString("Content-Type: multipart/mixed; boundary=p\r\n\r\n")
	for i := 0; i < 50; i++ {
		b.WriteString("--p\r\n\r\nx\r\n")
	}
	raw = b.String()
	lim = Limits{MaxParts: 10}
	m = Parse([]byte(raw), lim)
	if s := checkMeta(m, []byte(raw), lim); s != "" {
		t.Fatal(s)
	}
	if len(m.Body.Children) != 9 || !hasDefectPrefix(m, "part limit") {
		t.Errorf("%d children, %v", len(m.Body.Children), m.Defects)
	}

	// Headers: count and bytes.
	b.Reset()
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "X-H%d: %s\r\n", i, strings.Repeat("v", 50))
	}
	b.WriteString("Subject: late\r\n\r\nbody")
	raw = b.String()
	for _, lim := range []Limits{{MaxHeaders: 5}, {MaxHeaderBytes: 300}} {
		m = Parse([]byte(raw), lim)
		if s := checkMeta(m, []byte(raw), lim); s != "" {
			t.Fatal(s)
		}
		n := 0
		for _, h := range m.Headers {
			n += len(h.Name) + len(h.Value) + 2
		}
		if len(m.Headers) > 6 || (lim.MaxHeaders == 5 && len(m.Headers) != 5) || n > 300 || m.Subject != "" || !hasDefectPrefix(m, "header limit") {
			t.Errorf("%+v: %d headers, subject %q, %v", lim, len(m.Headers), m.Subject, m.Defects)
		}
		if _, body := spanOf(raw, m.Body); body != "body" {
			t.Errorf("body %q", body)
		}
	}

	// Preview runes.
	raw = "\r\n" + strings.Repeat("é ", 1000)
	m = Parse([]byte(raw), Limits{MaxPreview: 7})
	if m.Preview != "é é é é" {
		t.Errorf("preview %q", m.Preview)
	}
}

func TestPreviewHTML(t *testing.T) {
	raw := crlf(`Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><head><title>T</title><style>p {color: red}</style>
<script type=3D"text/javascript">var x =3D "<p>";</script></head>
<body><!-- hidden --><p>Caf=E9 &amp; cr&egrave;me&nbsp;br&ucirc;l&eacute;e</p>
<p>2 &lt; 3</p></body></html>
`)
	m := parseOK(t, raw)
	if m.Preview != "T Café & crème brûlée 2 < 3" {
		t.Errorf("preview %q", m.Preview)
	}
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	if tx.HTML != "T\nCafé & crème brûlée\n2 < 3" {
		t.Errorf("html %q", tx.HTML)
	}
}

func TestExtractText(t *testing.T) {
	raw := crlf(`Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe =80 soft=
 break
--m
Content-Type: text/plain; charset=x-no-such-charset
Content-Transfer-Encoding: base64

SGVsbG8gd29ybGQ=
--m
Content-Type: text/plain; charset=iso-2022-jp

` + "\x1b$B$3$s$K$A$O\x1b(B" + `
--m
Content-Type: application/zip
Content-Disposition: attachment; filename="a.zip"
Content-Transfer-Encoding: base64

UEsDBA==
--m--
`)
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	if tx.Plain != "Grüße € soft break\nHello world\nこんにちは" {
		t.Errorf("plain %q", tx.Plain)
	}
	if !reflect.DeepEqual(tx.AttachmentNames, []string{"a.zip"}) {
		t.Errorf("names %v", tx.AttachmentNames)
	}
	// Cap: at most maxBytes, cut at a rune boundary.
	tx = ExtractText([]byte(raw), DefaultLimits(), 4)
	if tx.Plain != "Grü" {
		t.Errorf("capped %q", tx.Plain)
	}
	m := parseOK(t, raw)
	if len(m.Attachments) != 1 || m.Attachments[0].Size != 4 || m.Attachments[0].Part != "4" {
		t.Errorf("attachments %+v", m.Attachments)
	}
}

// UTF-7 (RFC 2152) bodies and encoded words are decoded: the corpus has
// real mail in "unicode-1-1-utf-7".
func TestUTF7(t *testing.T) {
	raw := crlf(`Subject: =?utf-7?Q?Hi_Mom_-+Jjo--!?=
Content-Type: text/plain; charset="unicode-1-1-utf-7"

Gr+APwA3w-e aus M+APw-nchen, 1 +- 1 = 2
`)
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	if tx.Plain != "Grüße aus München, 1 + 1 = 2" {
		t.Errorf("plain %q", tx.Plain)
	}
	if m := parseOK(t, raw); m.Subject != "Hi Mom -\u263a-!" {
		t.Errorf("subject %q", m.Subject)
	}
}

func TestTransferDecoders(t *testing.T) {
	for in, want := range map[string]string{
		"SGVsbG8=":         "Hello",
		"SGVs\r\nbG8=":     "Hello",
		"SGVsbG8":          "Hello",
		"SG Vs*bG8!":       "Hello",
		"SGk=SGk=":         "HiHi",
		"":                 "",
		"S":                "",
		"SGVsbG8gd29ybGQh": "Hello world!",
	} {
		if got := string(decodeBase64(nil, []byte(in), 1<<20)); got != want {
			t.Errorf("base64 %q = %q, want %q", in, got, want)
		}
		if n := base64Len([]byte(in)); n != int64(len(want)) {
			t.Errorf("base64Len %q = %d, want %d", in, n, len(want))
		}
	}
	for in, want := range map[string]string{
		"a=3Db":          "a=b",
		"soft=\r\nbreak": "softbreak",
		"soft=  \nbreak": "softbreak",
		"bad=ZZ":         "bad=ZZ",
		"end=":           "end",
		"lower=c3=a9":    "lower\xc3\xa9",
	} {
		if got := string(decodeQP(nil, []byte(in), 1<<20)); got != want {
			t.Errorf("qp %q = %q, want %q", in, got, want)
		}
		if n := qpLen([]byte(in)); n != int64(len(want)) {
			t.Errorf("qpLen %q = %d, want %d", in, n, len(want))
		}
	}
}

func TestNonUTF8Headers(t *testing.T) {
	raw := "Subject: Fr\xf6sche\r\nFrom: J\xf6rg <j@x>\r\nX-Utf8: M\xc3\xbcller\r\n\r\n"
	m := parseOK(t, raw)
	if m.Envelope.Subject != "Frösche" || m.Subject != "Frösche" || m.From[0].Name != "Jörg" || m.Headers[2].Value != "Müller" {
		t.Errorf("%q %q %+v %q", m.Envelope.Subject, m.Subject, m.From, m.Headers[2].Value)
	}
}

func TestCollapser(t *testing.T) {
	for _, tc := range []struct {
		in           string
		all          bool
		runes, bytes int
		want         string
	}{
		{"  a \t b\n\n c  ", false, 0, 0, "a b\nc"},
		{"  a \t b\n\n c  ", true, 0, 0, "a b c"},
		{"ab cd ef", true, 4, 0, "ab c"},
		{"ab cd ef", true, 3, 0, "ab"},
		{"é é é é", true, 5, 0, "é é é"},
		{"xé\u00a0é", true, 0, 4, "xé"},
		{"日本語", true, 0, 7, "日本"},
		{"aé", true, 1, 0, "a"},
	} {
		c := collapser{all: tc.all, maxRunes: tc.runes, maxBytes: tc.bytes}
		c.write(tc.in)
		if got := c.b.String(); got != tc.want {
			t.Errorf("%q (runes %d bytes %d): got %q want %q", tc.in, tc.runes, tc.bytes, got, tc.want)
		}
	}
}

func TestPreviewCutUTF8(t *testing.T) {
	// The preview decodes a prefix first; a cut inside a UTF-8 sequence
	// must not turn the text into ISO-8859-1.
	for n := 560; n < 580; n++ {
		raw := "Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("x", n) + strings.Repeat("é", 3000)
		m := Parse([]byte(raw), Limits{MaxPreview: 600})
		if strings.ContainsRune(m.Preview, 'Ã') || !strings.HasSuffix(m.Preview, "é") {
			t.Fatalf("n=%d: preview ends %q", n, m.Preview[len(m.Preview)-10:])
		}
	}
}

// The header of an enclosed message is body text (RFC 9051 §6.4.4): a
// bounce is found by the Message-ID and Subject of the mail it returns.
func TestExtractTextEnclosedHeader(t *testing.T) {
	raw := "From: MAILER-DAEMON@example.org\r\nSubject: Undelivered Mail\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\n" +
		"Message-ID: <orig-42@example.test>\r\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n" +
		"From: alice@example.test\r\n\r\nthe original body\r\n--b--\r\n"
	tx := ExtractText([]byte(raw), DefaultLimits(), 0)
	for _, want := range []string{"<orig-42@example.test>", "Subject: Grüße aus Köln", "From: alice@example.test", "the original body", "could not be delivered"} {
		if !strings.Contains(tx.Plain, want) {
			t.Errorf("plain text lacks %q:\n%s", want, tx.Plain)
		}
	}
	if strings.Contains(tx.Plain, "Undelivered Mail") {
		t.Errorf("the outer header is not body text:\n%s", tx.Plain)
	}
}

// An encoded word with surplus or missing base64 padding is decoded, as
// mail clients do (Exchange bounces carry "...==?=").
func TestDecodeWordsBadPadding(t *testing.T) {
	for in, want := range map[string]string{
		"=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4==?=":                "Grüße aus Köln",
		"=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4?=":                  "Grüße aus Köln",
		"Re: =?utf-8?b?S8O2bG4===?= und =?UTF-8?Q?K=C3=B6ln?=": "Re: Köln und Köln",
		"=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=":                 "Grüße aus Köln",
	} {
		if got := DecodeWords(in); got != want {
			t.Errorf("DecodeWords(%q) = %q, want %q", in, got, want)
		}
	}
}
