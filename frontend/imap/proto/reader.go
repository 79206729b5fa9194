// Package proto reads and parses IMAP commands (RFC 9051 §9, RFC 3501 §9).
// It knows nothing of the store, so it can be tested and fuzzed alone.
package proto

import (
	"bufio"
	"errors"
	"io"
)

// Limits bound what one command may make the server read.
type Limits struct {
	MaxLine    int   // bytes of one line (between literals)
	MaxLiteral int64 // bytes of one literal
	MaxCommand int64 // bytes of a whole command, literals included
	// DiscardCap is how much of a refused non-synchronizing literal
	// (RFC 7888) is read and thrown away to keep the session in step;
	// beyond it the connection is closed.
	DiscardCap int64
}

// ErrLineTooLong: a line exceeded MaxLine; the line was skipped.
var ErrLineTooLong = errors.New("line too long")

// ErrFatal means the input cannot be resynchronised; close the connection.
var ErrFatal = errors.New("cannot resynchronise with client")

// LiteralError reports a refused literal. For a synchronizing literal no
// continuation was sent, so the client sends nothing more for this command
// (RFC 9051 §7.5). A non-synchronizing one was read and discarded with the
// rest of its command.
type LiteralError struct {
	Partial []byte // the command up to the literal, for the tag
	Sync    bool
	Size    int64
}

func (e *LiteralError) Error() string { return "literal too large" }

// Reader reads commands with their literals.
type Reader struct {
	R *bufio.Reader
	L Limits
}

// ReadLine reads one line without its CRLF (or bare LF). Overlong lines
// are consumed and reported as ErrLineTooLong, with a prefix of the line.
func (r *Reader) ReadLine(dst []byte) ([]byte, error) {
	start := len(dst)
	skipped := int64(0)
	for {
		frag, err := r.R.ReadSlice('\n')
		if len(dst)-start+len(frag) > r.L.MaxLine+2 {
			if skipped == 0 {
				n := min(len(frag), 64)
				dst = append(dst, frag[:n]...)
			}
			skipped += int64(len(frag))
			if skipped > 16*int64(r.L.MaxLine)+(1<<20) {
				return dst, ErrFatal
			}
			if err == nil {
				return dst, ErrLineTooLong
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			return dst, err
		}
		if skipped > 0 {
			if err == nil {
				return dst, ErrLineTooLong
			}
		} else {
			dst = append(dst, frag...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(dst) > start {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
		dst = dst[:len(dst)-1] // the LF
		if len(dst) > start && dst[len(dst)-1] == '\r' {
			dst = dst[:len(dst)-1]
		}
		return dst, nil
	}
}

// literalAt reports a literal announcement {n}, {n+} or ~{n} at the end of
// line (RFC 9051 §9 literal, literal8; RFC 7888).
func literalAt(line []byte) (n int64, sync, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	i := len(line) - 2
	sync = true
	if line[i] == '+' {
		sync = false
		i--
	}
	end := i + 1
	for i >= 0 && line[i] >= '0' && line[i] <= '9' {
		i--
	}
	if i < 0 || line[i] != '{' || end-i-1 == 0 || end-i-1 > 19 {
		return 0, false, false
	}
	for _, c := range line[i+1 : end] {
		n = n*10 + int64(c-'0')
		if n > 1<<53 {
			return 0, false, false
		}
	}
	return n, sync, true
}

// ReadCommand reads one command: its line and, after each literal
// announcement, the literal and the following line. cont is called before a
// synchronizing literal is read, with the command so far and the literal
// size: it sends "+ ...", or refuses with a *LiteralError (nothing more is
// read). The result holds the whole command, literals inline after their
// CRLF, without the final CRLF.
func (r *Reader) ReadCommand(cont func(partial []byte, n int64) error) ([]byte, error) {
	var buf []byte
	for {
		lineStart := len(buf)
		var err error
		buf, err = r.ReadLine(buf)
		if err != nil {
			return buf, err
		}
		n, sync, ok := literalAt(buf[lineStart:])
		if !ok {
			return buf, nil
		}
		if n > r.L.MaxLiteral || int64(len(buf))+n > r.L.MaxCommand {
			le := &LiteralError{Partial: buf, Sync: sync, Size: n}
			if sync {
				return buf, le
			}
			return buf, r.discard(n, le)
		}
		if sync && cont != nil {
			if err := cont(buf, n); err != nil {
				return buf, err
			}
		}
		buf = append(buf, '\r', '\n')
		l := len(buf)
		buf = grow(buf, int(n))
		if _, err := io.ReadFull(r.R, buf[l:l+int(n)]); err != nil {
			return buf, err
		}
		buf = buf[:l+int(n)]
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, len(b)+n+256)
	copy(nb, b)
	return nb
}

// discard throws away a refused non-synchronizing literal and the rest of
// its command, so the next command starts in step.
func (r *Reader) discard(n int64, le *LiteralError) error {
	total := int64(0)
	var line []byte
	for {
		total += n
		if total > r.L.DiscardCap {
			return ErrFatal
		}
		if _, err := io.CopyN(io.Discard, r.R, n); err != nil {
			return err
		}
		var err error
		line, err = r.ReadLine(line[:0])
		if err == ErrLineTooLong {
			return le
		}
		if err != nil {
			return err
		}
		var ok bool
		if n, _, ok = literalAt(line); !ok {
			return le
		}
	}
}
