package mailmeta

import (
	"bytes"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"github.com/stoa-mail/stoa/storage/mailmeta/utf7"
)

// UTF-7 (RFC 2152) is the one mail charset go-message/charset lacks
// (golang.org/x/text has no decoder); its names per the IANA registry.
func init() {
	for _, name := range []string{"utf-7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7"} {
		charset.RegisterEncoding(name, utf7.Encoding)
	}
}

// charsetToUTF8 converts b from the named charset to UTF-8. Unknown or
// broken charsets never fail: the bytes are taken as UTF-8 when valid,
// else as ISO-8859-1.
func charsetToUTF8(cs string, b []byte) string {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unknown-8bit", "x-unknown":
		return bestEffort(b)
	}
	if r, err := charset.Reader(cs, bytes.NewReader(b)); err == nil && r != nil {
		if out, err := io.ReadAll(r); err == nil {
			return strings.ToValidUTF8(string(out), "\uFFFD")
		}
	}
	return bestEffort(b)
}

func bestEffort(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return latin1(string(b))
}

// wordDecoder decodes RFC 2047 encoded words; words in unknown charsets
// are passed through as raw bytes instead of failing the whole value.
var wordDecoder = &mime.WordDecoder{
	CharsetReader: func(cs string, input io.Reader) (io.Reader, error) {
		if r, err := charset.Reader(cs, input); err == nil && r != nil {
			return r, nil
		}
		return input, nil
	},
}

// DecodeWords decodes the RFC 2047 encoded words of an unstructured header
// value (RFC 2047 §6.2) and returns valid UTF-8.
func DecodeWords(s string) string { return decodeWords(s) }

// decodeWords decodes RFC 2047 encoded words in an unstructured value
// (RFC 2047 §6.2) and returns valid UTF-8.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return validUTF8(s)
	}
	// Padding wrong in a "B" word ("...bG4==?=", sent by some Exchange
	// versions) would leave it undecoded: re-pad it, as mail clients do.
	d, err := wordDecoder.DecodeHeader(repadBWords(s))
	if err != nil {
		return validUTF8(s)
	}
	return validUTF8(d)
}

// bWord matches an RFC 2047 §2 encoded word in the "B" encoding.
var bWord = regexp.MustCompile(`=\?([^?\s]+)\?([bB])\?([^?\s]*)\?=`)

// repadBWords re-pads the base64 of every "B" word (RFC 2047 §4.1):
// surplus or missing "=" is the common fault.
func repadBWords(s string) string {
	if !strings.Contains(s, "?B?") && !strings.Contains(s, "?b?") {
		return s // no B word: no regexp (this runs for every header value with "=?")
	}
	return bWord.ReplaceAllStringFunc(s, func(w string) string {
		m := bWord.FindStringSubmatch(w)
		b := strings.TrimRight(m[3], "=")
		if len(b)%4 == 1 { // a lone sextet carries no byte
			b = b[:len(b)-1]
		}
		if r := len(b) % 4; r != 0 {
			b += strings.Repeat("=", 4-r)
		}
		return "=?" + m[1] + "?" + m[2] + "?" + b + "?="
	})
}

// b64 maps base64 alphabet bytes (RFC 2045 §6.8) to their value, others to 0xff.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(a); i++ {
		t[a[i]] = byte(i)
	}
	return
}()

// decodeBase64 decodes src leniently (RFC 2045 §6.8: characters outside
// the alphabet are ignored; "=" ends a group), appending at most limit
// bytes to dst.
func decodeBase64(dst, src []byte, limit int) []byte {
	var q [4]byte
	n := 0
	flush := func() {
		switch n {
		case 2:
			dst = append(dst, q[0]<<2|q[1]>>4)
		case 3:
			dst = append(dst, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2)
		}
		n = 0
	}
	start := len(dst)
	for _, c := range src {
		if len(dst)-start >= limit {
			break
		}
		v := b64[c]
		if v == 0xff {
			if c == '=' {
				flush()
			}
			continue
		}
		q[n] = v
		n++
		if n == 4 {
			dst = append(dst, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
			n = 0
		}
	}
	flush()
	if len(dst)-start > limit {
		dst = dst[:start+limit]
	}
	return dst
}

// b64ok is 1 for base64 alphabet bytes, else 0.
var b64ok = func() (t [256]uint8) {
	for i := range t {
		if b64[i] != 0xff {
			t[i] = 1
		}
	}
	return
}()

// base64Len is the length decodeBase64 would produce, without decoding.
// Groups end at "=" (found with IndexByte); within a group only alphabet
// bytes are counted, eight at a time.
func base64Len(src []byte) int64 {
	var total int64
	for len(src) > 0 {
		seg := src
		if i := bytes.IndexByte(src, '='); i >= 0 {
			seg, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		n := 0
		for len(seg) >= 8 {
			n += int(b64ok[seg[0]]) + int(b64ok[seg[1]]) + int(b64ok[seg[2]]) + int(b64ok[seg[3]]) +
				int(b64ok[seg[4]]) + int(b64ok[seg[5]]) + int(b64ok[seg[6]]) + int(b64ok[seg[7]])
			seg = seg[8:]
		}
		for _, c := range seg {
			n += int(b64ok[c])
		}
		total += int64(n / 4 * 3)
		if r := n % 4; r >= 2 {
			total += int64(r - 1)
		}
	}
	return total
}

// decodeQP decodes quoted-printable leniently (RFC 2045 §6.7): soft line
// breaks are removed, malformed escapes are kept literally. At most limit
// bytes are appended to dst.
func decodeQP(dst, src []byte, limit int) []byte {
	start := len(dst)
	for len(src) > 0 && len(dst)-start < limit {
		i := bytes.IndexByte(src, '=')
		if i < 0 {
			i = len(src)
		}
		if room := limit - (len(dst) - start); i > room {
			return append(dst, src[:room]...)
		}
		dst = append(dst, src[:i]...)
		if i == len(src) {
			break
		}
		b, n := qpEscape(src[i:])
		if b >= 0 {
			dst = append(dst, byte(b))
		}
		src = src[i+n:]
	}
	return dst
}

// qpLen is the length decodeQP would produce.
func qpLen(src []byte) int64 {
	var total int64
	for len(src) > 0 {
		i := bytes.IndexByte(src, '=')
		if i < 0 {
			return total + int64(len(src))
		}
		total += int64(i)
		b, n := qpEscape(src[i:])
		if b >= 0 {
			total++
		}
		src = src[i+n:]
	}
	return total
}

// qpEscape reads the escape at src[0] == '=': it returns the decoded byte
// (-1 for a soft line break) and the bytes consumed. "=" followed by
// anything else stands for itself.
func qpEscape(src []byte) (int, int) {
	if len(src) >= 3 {
		if h, ok := unhex(src[1]); ok {
			if l, ok := unhex(src[2]); ok {
				return int(h<<4 | l), 3
			}
		}
	}
	// Soft line break: "=" then optional white space then a line end.
	j := 1
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	switch {
	case j < len(src) && src[j] == '\n':
		return -1, j + 1
	case j+1 < len(src) && src[j] == '\r' && src[j+1] == '\n':
		return -1, j + 2
	case j >= len(src):
		return -1, j
	}
	return '=', 1
}

// decodeTransfer undoes the Content-Transfer-Encoding (RFC 2045 §6),
// returning at most limit bytes. Unknown encodings are identity.
func decodeTransfer(enc string, body []byte, limit int) []byte {
	switch enc {
	case "base64":
		return decodeBase64(make([]byte, 0, min(limit, len(body)*3/4+3)), body, limit)
	case "quoted-printable":
		return decodeQP(make([]byte, 0, min(limit, len(body))), body, limit)
	}
	if len(body) > limit {
		body = body[:limit]
	}
	return body
}

// decodedSize is the size of body after transfer decoding.
func decodedSize(enc string, body []byte) int64 {
	switch enc {
	case "base64":
		return base64Len(body)
	case "quoted-printable":
		return qpLen(body)
	}
	return int64(len(body))
}
