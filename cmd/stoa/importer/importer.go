// Package importer reads mbox files and Maildir folders for `stoa import`,
// the way operators migrate from Dovecot. The mbox reader is written here
// because the one Go library for it (emersion/go-mbox) is not served by
// the module proxy we build from; it is small and fuzzed (ADR 0001).
package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Message is one message to import.
type Message struct {
	Mailbox string    // mailbox name relative to the account ("INBOX", "Work/2026")
	Raw     []byte    // RFC 5322 bytes with CRLF line ends
	Flags   []string  // IMAP flags
	Date    time.Time // internal date (zero: now)
}

// MaxMessage caps one message (bytes); longer ones are returned truncated
// with ErrTooLarge so the caller can report and skip them.
const MaxMessage = 64 << 20

// ErrTooLarge reports a message above MaxMessage.
var ErrTooLarge = errors.New("importer: message too large")

// toCRLF turns bare LF line ends into CRLF (RFC 5322 §2.3).
func toCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b[i])
	}
	return out
}

// flagsFromStatus maps the Status/X-Status headers that mutt, Dovecot and
// Thunderbird write into mbox files to IMAP flags.
func flagsFromStatus(raw []byte) []string {
	end := bytes.Index(raw, []byte("\n\n"))
	if e2 := bytes.Index(raw, []byte("\r\n\r\n")); e2 >= 0 && (end < 0 || e2 < end) {
		end = e2
	}
	if end < 0 {
		end = len(raw)
	}
	var flags []string
	for _, line := range strings.Split(string(raw[:end]), "\n") {
		line = strings.TrimRight(line, "\r")
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(name) {
		case "status":
			if strings.Contains(val, "R") {
				flags = append(flags, `\Seen`)
			}
		case "x-status":
			for _, c := range val {
				switch c {
				case 'A':
					flags = append(flags, `\Answered`)
				case 'F':
					flags = append(flags, `\Flagged`)
				case 'T':
					flags = append(flags, `\Draft`)
				case 'D':
					flags = append(flags, `\Deleted`)
				}
			}
		}
	}
	return flags
}

// Mbox reads messages from an mbox file (mboxo/mboxrd: a line starting
// with "From " begins a message; ">From " lines are unquoted one level).
func Mbox(r io.Reader, mailbox string, fn func(Message, error) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur []byte
	started, tooBig := false, false
	var date time.Time
	flush := func() error {
		if !started {
			return nil
		}
		// The blank line mbox puts before each "From " belongs to the format.
		if bytes.HasSuffix(cur, []byte("\n\n")) {
			cur = cur[:len(cur)-1]
		}
		var err error
		if tooBig {
			err = ErrTooLarge
		}
		raw := toCRLF(cur)
		m := Message{Mailbox: mailbox, Raw: raw, Flags: flagsFromStatus(raw), Date: date}
		cur, tooBig = nil, false
		return fn(m, err)
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A very long line: gather it whole.
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if len(line) > 0 {
			if bytes.HasPrefix(line, []byte("From ")) {
				if err := flush(); err != nil {
					return err
				}
				started = true
				date = parseFromLine(line)
			} else if started {
				l := line
				if bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) && l[0] == '>' {
					l = l[1:]
				}
				if len(cur)+len(l) > MaxMessage {
					tooBig = true
				} else {
					cur = append(cur, l...)
				}
			}
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	return flush()
}

// parseFromLine reads the asctime date of "From sender Thu Dec  3 16:17:05 2026".
func parseFromLine(line []byte) time.Time {
	f := strings.Fields(string(line))
	if len(f) < 7 {
		return time.Time{}
	}
	t, err := time.Parse("Mon Jan _2 15:04:05 2006", strings.Join(f[len(f)-5:], " "))
	if err != nil {
		return time.Time{}
	}
	return t
}

// maildirFlags maps the info part ":2,FRS" (Maildir spec) to IMAP flags.
func maildirFlags(name string) []string {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		return nil
	}
	var flags []string
	for _, c := range name[i+3:] {
		switch c {
		case 'S':
			flags = append(flags, `\Seen`)
		case 'R':
			flags = append(flags, `\Answered`)
		case 'F':
			flags = append(flags, `\Flagged`)
		case 'T':
			flags = append(flags, `\Deleted`)
		case 'D':
			flags = append(flags, `\Draft`)
		case 'P':
			flags = append(flags, `$Forwarded`)
		}
	}
	return flags
}

// Maildir reads a Maildir++ tree (Dovecot's layout): the root is INBOX,
// each ".Name.Sub" folder becomes the mailbox "Name/Sub" (with sep).
func Maildir(root, sep string, fn func(Message, error) error) error {
	boxes := map[string]string{root: "INBOX"}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && len(e.Name()) > 1 && e.Name() != ".." {
			name := strings.ReplaceAll(e.Name()[1:], ".", sep)
			boxes[filepath.Join(root, e.Name())] = name
		}
	}
	var dirs []string
	for d := range boxes {
		if isMaildirFolder(d) {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return fmt.Errorf("%s is not a Maildir: neither it nor a .Folder in it has cur/ or new/ (a folder of .eml files is not imported)", root)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		for _, sub := range []string{"cur", "new"} {
			files, err := os.ReadDir(filepath.Join(d, sub))
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			for _, f := range files {
				if f.IsDir() {
					continue
				}
				p := filepath.Join(d, sub, f.Name())
				info, err := f.Info()
				if err != nil {
					return err
				}
				if info.Size() > MaxMessage {
					if err := fn(Message{Mailbox: boxes[d]}, ErrTooLarge); err != nil {
						return err
					}
					continue
				}
				raw, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := fn(Message{Mailbox: boxes[d], Raw: toCRLF(raw), Flags: maildirFlags(f.Name()), Date: info.ModTime()}, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isMaildirFolder says whether d has cur/ or new/.
func isMaildirFolder(d string) bool {
	for _, sub := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(d, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// clientState are the header fields mail clients rewrite inside an mbox
// file as the user reads it (mutt, Dovecot, Thunderbird, Eudora): state,
// not content.
var clientState = map[string]bool{
	"status": true, "x-status": true, "x-keywords": true, "x-uid": true, "x-imapbase": true,
	"x-mozilla-status": true, "x-mozilla-status2": true, "x-mozilla-keys": true, "content-length": true, "lines": true,
}

// Identity is the message without the header fields a mail client rewrites
// as it reads an mbox (Status:, X-Status:, X-Mozilla-Status:…, with their
// continuation lines): a message read or flagged since the last import is
// still the same message.
func Identity(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	rest, skip := raw, false
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if t := bytes.TrimRight(line, "\r\n"); len(t) == 0 { // end of the header
			out = append(out, line...)
			return append(out, rest...)
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, ok := bytes.Cut(line, []byte(":"))
			skip = ok && clientState[strings.ToLower(string(bytes.TrimSpace(name)))]
		}
		if !skip {
			out = append(out, line...)
		}
	}
	return out
}
