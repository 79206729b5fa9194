package indexer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// Kinds of documents in an index.
const (
	KindEmail      = "email"
	KindCheckpoint = "checkpoint"
)

// Doc is the one document indexed per email membership. Its ID is
// DocID(account, mailbox, uid): a membership is never reused (UIDs are not
// reused in a mailbox, mailbox ids not in an account), and every change
// record names memberships by mailbox and UID. JSON names are the
// OpenSearch field names (indexer/opensearch mapping).
type Doc struct {
	Kind         string    `json:"kind"`
	Account      string    `json:"account"`
	Mailbox      uint32    `json:"mailbox"`
	UID          uint32    `json:"uid"`
	EmailID      uint64    `json:"email_id"`
	ThreadID     uint64    `json:"thread_id"`
	ModSeq       uint64    `json:"modseq"`
	BlobID       string    `json:"blob_id,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	MessageID    string    `json:"message_id,omitempty"`
	Date         time.Time `json:"date,omitzero"`
	InternalDate time.Time `json:"internal_date,omitzero"`
	Size         int64     `json:"size,omitempty"`
	Flags        []string  `json:"flags,omitempty"`

	// Address fields: From holds "Name <email>" per address (the text IMAP
	// FROM searches); the others serve exact filters and aggregations.
	From        []string `json:"from,omitempty"`
	FromName    []string `json:"from_name,omitempty"`
	FromEmail   []string `json:"from_email,omitempty"`
	FromDomain  []string `json:"from_domain,omitempty"`
	To          []string `json:"to,omitempty"`
	ToName      []string `json:"to_name,omitempty"`
	ToEmail     []string `json:"to_email,omitempty"`
	ToDomain    []string `json:"to_domain,omitempty"`
	Cc          []string `json:"cc,omitempty"`
	CcName      []string `json:"cc_name,omitempty"`
	CcEmail     []string `json:"cc_email,omitempty"`
	CcDomain    []string `json:"cc_domain,omitempty"`
	Bcc         []string `json:"bcc,omitempty"`
	BccName     []string `json:"bcc_name,omitempty"`
	BccEmail    []string `json:"bcc_email,omitempty"`
	BccDomain   []string `json:"bcc_domain,omitempty"`
	Body        string   `json:"body,omitempty"` // decoded text/plain (and other text/*)
	HTML        string   `json:"html,omitempty"` // text/html reduced to text
	Attachments []string `json:"attachment_names,omitempty"`
	AttachTypes []string `json:"attachment_types,omitempty"`
	HasAttach   bool     `json:"has_attachment,omitempty"`

	// Headers holds every decoded header value, one element per field
	// (TEXT searches it).
	Headers []string `json:"headers,omitempty"`
	// HeaderNames lists lower-case field names (HEADER name "").
	HeaderNames []string `json:"header_names,omitempty"`
	// HeaderTerms is every header value analysed here, each term prefixed
	// with its lower-case field name ("subject:hello"), one array element
	// per field, indexed with a whitespace analyser: HEADER name value
	// is then a phrase query of prefixed terms.
	HeaderTerms []string `json:"header_terms,omitempty"`
}

// DocID names the document of one membership.
func DocID(account string, mailbox, uid uint32) string {
	return account + "/" + strconv.FormatUint(uint64(mailbox), 10) + "/" + strconv.FormatUint(uint64(uid), 10)
}

// CheckpointID names the checkpoint document of an account.
func CheckpointID(account string) string { return account + "/cp" }

// ParseUID returns the UID from a document id made by DocID.
func ParseUID(id string) (uint32, bool) {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(id[i+1:], 10, 32)
	return uint32(n), err == nil
}

// TextLimit caps the decoded text indexed per message part kind (bytes).
const TextLimit = 1 << 20

// BuildDoc makes the document of one email from its metadata and raw bytes.
func BuildDoc(account string, e storage.Email, meta *mailmeta.Meta, raw []byte, lim mailmeta.Limits) *Doc {
	d := &Doc{Kind: KindEmail, Account: account, Mailbox: e.Mailbox, UID: e.UID, EmailID: e.EmailID,
		ThreadID: e.ThreadID, ModSeq: e.ModSeq, BlobID: e.BlobID, Size: e.Size, Flags: e.Flags}
	if !e.InternalDate.IsZero() {
		d.InternalDate = e.InternalDate.UTC()
	}
	if meta != nil {
		d.Subject = meta.Subject
		d.MessageID = meta.MessageID
		if !meta.Date.IsZero() {
			d.Date = meta.Date.UTC()
		}
		d.From, d.FromName, d.FromEmail, d.FromDomain = addrs(meta.From)
		d.To, d.ToName, d.ToEmail, d.ToDomain = addrs(meta.To)
		d.Cc, d.CcName, d.CcEmail, d.CcDomain = addrs(meta.Cc)
		d.Bcc, d.BccName, d.BccEmail, d.BccDomain = addrs(meta.Bcc)
		seen := map[string]bool{}
		for _, a := range meta.Attachments {
			d.HasAttach = true
			if a.Type != "" && !seen[a.Type] {
				seen[a.Type] = true
				d.AttachTypes = append(d.AttachTypes, a.Type)
			}
		}
		names := map[string]bool{}
		for _, h := range meta.Headers {
			n := strings.ToLower(h.Name)
			if !names[n] {
				names[n] = true
				d.HeaderNames = append(d.HeaderNames, n)
			}
			v := DecodeHeader(h.Value)
			d.Headers = append(d.Headers, v)
			if t := headerTerms(n, v); t != "" {
				d.HeaderTerms = append(d.HeaderTerms, t)
			}
		}
	}
	if raw != nil {
		t := mailmeta.ExtractText(raw, lim, TextLimit)
		d.Body, d.HTML, d.Attachments = t.Plain, t.HTML, t.AttachmentNames
	}
	return d
}

func headerTerms(name, value string) string {
	var b strings.Builder
	for _, t := range Analyze(value) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(t)
	}
	return b.String()
}

// HeaderQueryTerms returns the prefixed terms of HEADER name value.
func HeaderQueryTerms(name, value string) []string {
	n := strings.ToLower(name)
	ts := Analyze(value)
	for i := range ts {
		ts[i] = n + ":" + ts[i]
	}
	return ts
}

func addrs(as []mailmeta.Addr) (full, names, emails, domains []string) {
	seen := map[string]bool{}
	for _, a := range as {
		s := a.Email
		if a.Name != "" {
			s = a.Name + " <" + a.Email + ">"
		}
		full = append(full, s)
		if a.Name != "" {
			names = append(names, a.Name)
		}
		if a.Email != "" {
			e := strings.ToLower(a.Email)
			emails = append(emails, e)
			if i := strings.LastIndexByte(e, '@'); i >= 0 && !seen[e[i+1:]] {
				seen[e[i+1:]] = true
				domains = append(domains, e[i+1:])
			}
		}
	}
	return
}

// DecodeHeader decodes RFC 2047 encoded words with the parser's decoder
// (every charset go-message knows; badly padded "B" words re-padded), so
// that TEXT and HEADER see what SUBJECT and the scan see.
func DecodeHeader(v string) string { return mailmeta.DecodeWords(v) }

// Loader reads what BuildDoc needs from the store.
type Loader struct {
	Store *storage.Store
}

// Doc loads and builds the document of e.
func (l Loader) Doc(ctx context.Context, account string, e storage.Email) (*Doc, error) {
	meta, err := l.Store.Meta(ctx, e.BlobID)
	if err != nil {
		return nil, fmt.Errorf("meta %s: %w", e.BlobID, err)
	}
	raw, err := l.Store.Blob(ctx, e.BlobID)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", e.BlobID, err)
	}
	return BuildDoc(account, e, meta, raw, l.Store.Config().ParseLimits), nil
}
