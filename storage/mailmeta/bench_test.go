package mailmeta

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchMessage builds a ~50 KB multipart message: a typical header, a
// multipart/alternative with quoted-printable text and HTML, and a base64
// PDF attachment.
func benchMessage() []byte {
	var b strings.Builder
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n\tby mail.example.com (Stoa) with ESMTPS id %08x\r\n\tfor <bob@example.com>; Tue, 7 Apr 2026 10:00:0%d +0000\r\n", i, i, i, i*7919, i)
	}
	b.WriteString(`DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel;
	h=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
	b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR
From: "Alice Example" <alice@example.net>
To: Bob <bob@example.com>, =?utf-8?q?Ren=C3=A9e?= <renee@example.com>
Cc: team@example.com
Subject: =?utf-8?q?Re:_Quarterly_report_=E2=80=93_draft?=
Date: Tue, 7 Apr 2026 10:00:01 +0000
Message-ID: <20260407100001.abc123@example.net>
In-Reply-To: <prev.1@example.com>
References: <root.0@example.com> <prev.1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-boundary-0123456789"

This is a multi-part message in MIME format.
--mixed-boundary-0123456789
Content-Type: multipart/alternative; boundary="alt-boundary-9876543210"

--alt-boundary-9876543210
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

`)
	line := "Here is the draft of the quarterly report =E2=80=93 please review the fi=\r\ngures in section 3 and send comments before Friday.\r\n"
	for b.Len() < 12000 {
		b.WriteString(line)
	}
	b.WriteString("\r\n--alt-boundary-9876543210\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>")
	html := "<p style=3D\"margin:0\">Here is the <b>draft</b> of the quarterly report &ndash; please review.</p>\r\n"
	for b.Len() < 24000 {
		b.WriteString(html)
	}
	b.WriteString("</body></html>\r\n--alt-boundary-9876543210--\r\n\r\n--mixed-boundary-0123456789\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	pdf := make([]byte, 19500)
	for i := range pdf {
		pdf[i] = byte(i * 31)
	}
	enc := base64.StdEncoding.EncodeToString(pdf)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--mixed-boundary-0123456789--\r\n")
	return []byte(b.String())
}

func TestBenchMessage(t *testing.T) {
	raw := benchMessage()
	m := Parse(raw, DefaultLimits())
	if s := checkMeta(m, raw, DefaultLimits()); s != "" {
		t.Fatal(s)
	}
	if len(raw) < 45000 || len(raw) > 55000 || len(m.Defects) != 0 || len(m.Attachments) != 1 || m.Attachments[0].Size != 19500 ||
		!strings.HasPrefix(m.Preview, "Here is the draft of the quarterly report – please review the figures") {
		t.Errorf("bench message: %d bytes, defects %v, attachments %+v, preview %q", len(raw), m.Defects, m.Attachments, m.Preview)
	}
}

func BenchmarkParse(b *testing.B) {
	raw := benchMessage()
	lim := DefaultLimits()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw, lim)
	}
}

func BenchmarkExtractText(b *testing.B) {
	raw := benchMessage()
	lim := DefaultLimits()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		ExtractText(raw, lim, 0)
	}
}
