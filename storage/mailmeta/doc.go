// Package mailmeta parses a raw RFC 5322 message once, at delivery, into the
// metadata that IMAP FETCH (ENVELOPE, BODYSTRUCTURE, BODY[section]), JMAP and
// the indexer need, so that they never re-parse the message.
//
// # Why the structure is scanned by hand
//
// IMAP serves BODY[1.2.HEADER], BODY[1.2.MIME], BODY[1.2] and BODY[1.2.TEXT]
// (RFC 9051 §6.4.5) by slicing the stored blob, which needs the exact byte
// offset where every part's header starts, where its body starts and where
// it ends (before the line break that precedes the next boundary, RFC 2046
// §5.1.1). go-message and net/mail read streams and do not report offsets,
// and they give up on input that real mail contains. So the MIME tree is
// found by a small scanner in this package that:
//
//   - accepts CRLF and bare LF line ends everywhere;
//   - ends a header block at the first empty line, or at the first line that
//     is neither a field nor a continuation (recorded as a defect); accepts
//     white space before the colon (RFC 5322 §4.5) and skips an mbox
//     "From " line at the start of a message;
//   - recognises "--boundary" lines with transport padding and the closing
//     "--boundary--" (RFC 2046 §5.1.1), ignores preamble and epilogue,
//     ends the last part at the end of the enclosing body when the closing
//     delimiter is missing, and makes no part of two adjacent delimiter
//     lines (no CRLF between them, so no body part);
//   - is linear in the input per nesting level and stops at the explicit
//     Limits, so Parse never panics, never loops and bounds memory.
//
// Header values, parameters (RFC 2231), encoded words (RFC 2047), charsets
// and transfer encodings are decoded by helpers in this package together
// with the standard library's mime package and go-message's charset tables.
//
// # Degraded structures
//
// Two invariants hold for every Part so that BODYSTRUCTURE can always be
// written (RFC 9051 §7.5.2, body-type-mpart needs 1*body, body-type-msg needs
// an envelope and a body):
//
//   - a Part with Type "multipart" has at least one child;
//   - a Part with Type "message" and Subtype "rfc822" or "global" has a
//     non-nil Envelope and Message.
//
// A container that cannot satisfy them (multipart without boundary parameter
// or without any delimiter line, or past MaxDepth/MaxParts) is turned into a
// text/plain leaf, the default of RFC 2045 §5.2, and a defect names the
// original type.
//
// # Stored form
//
// The result is meant to be stored JSON-encoded (short json tags). All
// strings are valid UTF-8 so that the JSON round trip is exact: raw header
// bytes that are not UTF-8 (RFC 6532 allows UTF-8 only) are read as
// ISO-8859-1, which is reversible.
package mailmeta
