// Package utf7 decodes UTF-7 (RFC 2152), the 7-bit Unicode mail charset
// ("utf-7", "unicode-1-1-utf-7") that golang.org/x/text and go-message do
// not know. It is not IMAP's modified UTF-7 (RFC 9051 §5.1.3), which
// go-imap has. Only decoding: Stoa never writes UTF-7. See ADR 0008.
package utf7

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// Encoding decodes UTF-7 to UTF-8; its encoder refuses every input.
var Encoding encoding.Encoding = enc{}

// ErrEncode is returned by the encoder.
var ErrEncode = errors.New("utf7: encoding to UTF-7 is not supported")

type enc struct{}

func (enc) NewDecoder() *encoding.Decoder { return &encoding.Decoder{Transformer: &decoder{}} }
func (enc) NewEncoder() *encoding.Encoder { return &encoding.Encoder{Transformer: refuse{}} }

type refuse struct{ transform.NopResetter }

func (refuse) Transform(dst, src []byte, atEOF bool) (int, int, error) {
	if len(src) == 0 {
		return 0, 0, nil
	}
	return 0, 0, ErrEncode
}

// RFC 2152 "Modified Base64": the base64 alphabet without padding.
var b64 [256]int8

func init() {
	for i := range b64 {
		b64[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		b64[alphabet[i]] = int8(i)
	}
}

// decoder is lenient, as mail readers are: malformed input becomes
// U+FFFD, never an error.
type decoder struct {
	shifted bool   // inside a "+…" base64 run
	fresh   bool   // the run has just begun ("+-" is a literal '+')
	bits    uint32 // pending base64 bits
	nbits   uint
	high    rune // pending high surrogate, 0 if none
}

func (d *decoder) Reset() { *d = decoder{} }

// put writes r to dst at n, reporting false if dst is too short.
func put(dst []byte, n int, r rune) (int, bool) {
	if len(dst)-n < utf8.RuneLen(r) {
		return n, false
	}
	return n + utf8.EncodeRune(dst[n:], r), true
}

func (d *decoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		// Room for the worst case of one byte: a lone surrogate's U+FFFD
		// and the character that follows.
		if len(dst)-nDst < 2*utf8.UTFMax {
			return nDst, nSrc, transform.ErrShortDst
		}
		c := src[nSrc]
		if d.shifted {
			if v := b64[c]; v >= 0 {
				d.fresh = false
				d.bits = d.bits<<6 | uint32(v)
				d.nbits += 6
				if d.nbits >= 16 {
					d.nbits -= 16
					u := rune(d.bits >> d.nbits & 0xffff)
					d.bits &= 1<<d.nbits - 1
					nDst = d.unit(dst, nDst, u)
				}
				nSrc++
				continue
			}
			// RFC 2152: any other character ends the run; '-' is absorbed,
			// and "+-" stands for '+'.
			if d.fresh { // "+-", or a bare '+' a sloppy encoder left: '+'
				nDst, _ = put(dst, nDst, '+')
			}
			nDst = d.flushHigh(dst, nDst)
			d.shifted, d.fresh, d.bits, d.nbits = false, false, 0, 0
			nSrc++
			if c == '-' {
				continue
			}
		} else {
			nSrc++
		}
		switch {
		case c == '+':
			d.shifted, d.fresh = true, true
		case c >= 0x80:
			nDst, _ = put(dst, nDst, utf8.RuneError) // not 7-bit
		default:
			dst[nDst] = c
			nDst++
		}
	}
	if atEOF {
		if len(dst)-nDst < utf8.UTFMax {
			return nDst, nSrc, transform.ErrShortDst
		}
		if d.shifted && d.fresh { // a bare '+' at the very end
			nDst, _ = put(dst, nDst, '+')
		}
		nDst = d.flushHigh(dst, nDst)
		d.Reset()
	}
	return nDst, nSrc, nil
}

// unit adds one UTF-16 code unit.
func (d *decoder) unit(dst []byte, n int, u rune) int {
	switch {
	case utf16.IsSurrogate(u) && u < 0xdc00: // high
		n = d.flushHigh(dst, n)
		d.high = u
		return n
	case utf16.IsSurrogate(u): // low
		if d.high == 0 {
			n, _ = put(dst, n, utf8.RuneError)
			return n
		}
		r := utf16.DecodeRune(d.high, u)
		d.high = 0
		n, _ = put(dst, n, r)
		return n
	}
	n = d.flushHigh(dst, n)
	n, _ = put(dst, n, u)
	return n
}

// flushHigh writes a high surrogate that no low one followed as U+FFFD.
func (d *decoder) flushHigh(dst []byte, n int) int {
	if d.high != 0 {
		d.high = 0
		n, _ = put(dst, n, utf8.RuneError)
	}
	return n
}
