package mailmeta

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

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

// decodeWords decodes RFC 2047 encoded words in an unstructured value
// (RFC 2047 §6.2) and returns valid UTF-8.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return validUTF8(s)
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return validUTF8(s)
	}
	return validUTF8(d)
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

// base64Len is the length decodeBase64 would produce, without decoding.
func base64Len(src []byte) int64 {
	var total int64
	n := 0
	end := func() {
		if n >= 2 {
			total += int64(n - 1)
		}
		n = 0
	}
	for _, c := range src {
		if b64[c] == 0xff {
			if c == '=' {
				end()
			}
			continue
		}
		n++
		if n == 4 {
			total += 3
			n = 0
		}
	}
	end()
	return total
}

// decodeQP decodes quoted-printable leniently (RFC 2045 §6.7): soft line
// breaks are removed, malformed escapes are kept literally. At most limit
// bytes are appended to dst.
func decodeQP(dst, src []byte, limit int) []byte {
	dst, _ = qp(dst, src, limit, false)
	return dst
}

// qpLen is the length decodeQP would produce.
func qpLen(src []byte) int64 {
	_, n := qp(nil, src, len(src), true)
	return n
}

// qp decodes src into dst, or only counts the output when count is set.
func qp(dst, src []byte, limit int, count bool) ([]byte, int64) {
	var n int64
	out := func(c byte) {
		n++
		if !count {
			dst = append(dst, c)
		}
	}
	for i := 0; i < len(src) && n < int64(limit); i++ {
		c := src[i]
		if c != '=' {
			out(c)
			continue
		}
		if i+2 < len(src) {
			if h, ok := unhex(src[i+1]); ok {
				if l, ok := unhex(src[i+2]); ok {
					out(h<<4 | l)
					i += 2
					continue
				}
			}
		}
		// Soft line break: "=" then optional white space then a line end.
		j := i + 1
		for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		switch {
		case j < len(src) && src[j] == '\n':
			i = j
		case j+1 < len(src) && src[j] == '\r' && src[j+1] == '\n':
			i = j + 1
		case j >= len(src):
			i = j
		default:
			out('=')
		}
	}
	return dst, n
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
